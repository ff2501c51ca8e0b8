/**
 * `tollgate audit`: reads the server's audit log (decisions and Admin Activity) through the same
 * Cloud Logging `entries:list` endpoint that `gcloud logging read` uses, with the same filters.
 */
import type { Command } from 'commander';
import { clientSettings, createClient, formatTable, listAll, printJson, withClientOptions, type ApiClient, type ClientFlags } from '../client.js';
import { CliExit, EXIT } from '../exit-codes.js';

interface AuditFlags extends ClientFlags {
  project?: string;
  filter?: string;
  limit: string;
  order: string;
}

type Entry = Record<string, unknown>;

const MAX_LIMIT = 100_000;

/** Without --project: every project of the server (listing them takes an administrator's token). */
async function everyProject(client: ApiClient): Promise<string[]> {
  let projects: { projectId: string }[];
  try {
    projects = await listAll<{ projectId: string }>(client, '/tollgate/v1/projects', 'projects');
  } catch (e) {
    if (e instanceof CliExit && /^PERMISSION_DENIED:/.test(e.message)) {
      throw new CliExit(EXIT.USAGE, 'give --project P (or set TOLLGATE_PROJECT): reading every project\'s log needs an administrator\'s token');
    }
    throw e;
  }
  if (projects.length === 0) throw new CliExit(EXIT.USAGE, 'the server has no projects yet; give --project P');
  return projects.map((p) => p.projectId);
}

export function registerAudit(program: Command): void {
  withClientOptions(
    program
      .command('audit')
      .description('read the audit log: every decision (allowed, denied, dry run, breakglass) and every write, newest first; filters are Cloud Logging filters, as with `gcloud logging read`'),
  )
    .option('--project <id>', 'project whose log to read (env TOLLGATE_PROJECT); without it, every project\'s (an administrator\'s token)')
    .option('--filter <filter>', 'Cloud Logging filter, e.g. \'labels."imagepolicywebhook.image-policy.k8s.io/break-glass"="true"\'')
    .option('--limit <n>', 'entries to print at most', '20')
    .option('--order <order>', 'desc (newest first) or asc', 'desc')
    .action(async (flags: AuditFlags) => {
      const settings = clientSettings(flags);
      const project = flags.project ?? process.env['TOLLGATE_PROJECT'];
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new CliExit(EXIT.USAGE, `--limit must be a whole number from 1 to ${MAX_LIMIT}, not ${flags.limit}`);
      if (flags.order !== 'desc' && flags.order !== 'asc') throw new CliExit(EXIT.USAGE, `--order must be desc or asc, not ${flags.order}`);

      const client = createClient(settings);
      const projects = project !== undefined && project !== '' ? [project] : await everyProject(client);
      const entries: Entry[] = [];
      let pageToken: string | undefined;
      do {
        const body = {
          resourceNames: projects.map((p) => `projects/${p}`),
          orderBy: `timestamp ${flags.order}`,
          pageSize: Math.min(limit - entries.length, 1000),
          ...(flags.filter === undefined ? {} : { filter: flags.filter }),
          ...(pageToken === undefined ? {} : { pageToken }),
        };
        let page: { entries?: Entry[]; nextPageToken?: string };
        try {
          page = await client.request('POST', '/v2/entries:list', body);
        } catch (e) {
          // A filter the server cannot parse is bad input (exit 2), like any other usage error.
          if (e instanceof CliExit && /^INVALID_ARGUMENT:/.test(e.message)) throw new CliExit(EXIT.USAGE, e.message);
          throw e;
        }
        entries.push(...(page.entries ?? []).slice(0, limit - entries.length));
        pageToken = typeof page.nextPageToken === 'string' && page.nextPageToken !== '' ? page.nextPageToken : undefined;
      } while (pageToken !== undefined && entries.length < limit);

      if (settings.format === 'json') {
        printJson(entries);
        return;
      }
      process.stdout.write(formatTable(['TIME', 'WHO', 'METHOD', 'RESOURCE', 'RESULT'], entries.map(row)));
    });
}

function obj(v: unknown): Entry {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Entry) : {};
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function oneLine(s: string, max = 160): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** One table row: time, principal, method, resource, and a verdict-like summary. */
export function row(entry: Entry): string[] {
  const payload = obj(entry['protoPayload']);
  const who = str(obj(payload['authenticationInfo'])['principalEmail']) || '-';
  return [str(entry['timestamp']), who, str(payload['methodName']) || '-', str(payload['resourceName']) || '-', summary(entry)];
}

/** Decisions: the verdict and why; other entries: OK, or the failure status. */
export function summary(entry: Entry): string {
  const payload = obj(entry['protoPayload']);
  const decision = obj(obj(payload['metadata'])['tollgateDecision']);
  const verdict = obj(decision['verdict']);
  const kind = str(verdict['kind']);
  const messages = Array.isArray(decision['messages']) ? (decision['messages'] as unknown[]).filter((m): m is string => typeof m === 'string' && m !== '') : [];
  const images = Array.isArray(decision['images']) ? decision['images'].length : 0;
  const what = images === 1 ? '1 image' : `${images} images`;
  switch (kind) {
    case 'ALLOWED':
      return `ALLOWED (${what})`;
    case 'DENIED':
      return oneLine(`DENIED: ${messages[0] ?? what}${messages.length > 1 ? ` (+${messages.length - 1} more)` : ''}`);
    case 'DRY_RUN':
      return oneLine(`DRY_RUN, allowed; would deny: ${messages[0] ?? what}`);
    case 'BREAKGLASS': {
      const justification = str(verdict['justification']);
      const would = str(verdict['wouldHaveBeen']);
      return oneLine(`BREAKGLASS${justification === '' ? '' : ` "${justification}"`}${would === '' ? '' : `, would have been ${would}`}`);
    }
  }
  const status = obj(payload['status']);
  const code = status['code'];
  if (typeof code === 'number' && code !== 0) return oneLine(`FAILED (${code}): ${str(status['message'])}`);
  return 'OK';
}
