/**
 * `tollgate run deploy|describe|list|delete|settings`: Cloud Run-style deploys behind Binary
 * Authorization for users without gcloud, with the same outcomes as `gcloud run` (they use the same
 * API: `/v1/projects/P/locations/R/services`). `deploy` exits 0 when the revision was deployed
 * (dry run and breakglass included) and 1 when it was refused, printing the reason.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { clientSettings, createClient, formatTable, printJson, withClientOptions, type ApiClient, type ClientFlags } from '../client.js';
import { CliExit, EXIT } from '../exit-codes.js';

const BINAUTHZ = 'run.googleapis.com/binary-authorization';
const BREAKGLASS = 'run.googleapis.com/binary-authorization-breakglass';
const NONCE = 'client.knative.dev/nonce';

interface ProjectFlags extends ClientFlags {
  project?: string;
  region?: string;
}

interface DeployFlags extends ProjectFlags {
  image: string;
  binaryAuthorization?: string;
  clearBinaryAuthorization?: boolean;
  breakglass?: string;
  port?: string;
  allowUnauthenticated?: boolean;
}

interface SettingsFlags extends ClientFlags {
  project?: string;
  requireBinaryAuthorization?: string;
}

type Obj = Record<string, unknown>;

function projectOf(flags: { project?: string }): string {
  const p = flags.project ?? process.env['TOLLGATE_PROJECT'];
  if (p === undefined || p === '') throw new CliExit(EXIT.USAGE, 'give --project P (or set TOLLGATE_PROJECT)');
  return p;
}

function regionOf(flags: { region?: string }, required: boolean): string | undefined {
  const r = flags.region ?? process.env['TOLLGATE_RUN_REGION'];
  if ((r === undefined || r === '') && required) throw new CliExit(EXIT.USAGE, 'give --region R (or set TOLLGATE_RUN_REGION)');
  return r === '' ? undefined : r;
}

function servicePath(project: string, region: string, name?: string): string {
  const base = `/v1/projects/${encodeURIComponent(project)}/locations/${encodeURIComponent(region)}/services`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

function o(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}

function conditionsOf(service: Obj): Obj[] {
  const c = o(service['status'])['conditions'];
  return Array.isArray(c) ? (c as Obj[]) : [];
}

function ready(service: Obj): Obj | undefined {
  return conditionsOf(service).find((c) => c['type'] === 'Ready');
}

async function getOrUndefined(client: ApiClient, path: string): Promise<Obj | undefined> {
  try {
    return await client.request<Obj>('GET', path);
  } catch (e) {
    if (e instanceof CliExit && e.message.startsWith('NOT_FOUND:')) return undefined;
    throw e;
  }
}

function nonce(): string {
  return Array.from(randomBytes(10), (b) => String.fromCharCode(97 + (b % 26))).join('');
}

/** The Service to send: a new one, or the existing one with the flags applied (as gcloud does). */
export function serviceForDeploy(name: string, project: string, existing: Obj | undefined, flags: DeployFlags): Obj {
  const service: Obj = existing === undefined ? { apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name, namespace: project }, spec: { template: { spec: { containers: [{ image: flags.image }] } } } } : structuredClone(existing);
  delete service['status'];
  const meta = o(service['metadata']);
  const annotations: Record<string, string> = { ...(o(meta['annotations']) as Record<string, string>), 'run.googleapis.com/client-name': 'tollgate' };
  if (flags.binaryAuthorization !== undefined) annotations[BINAUTHZ] = flags.binaryAuthorization;
  if (flags.clearBinaryAuthorization === true) delete annotations[BINAUTHZ];
  if (flags.breakglass !== undefined) annotations[BREAKGLASS] = flags.breakglass;
  meta['annotations'] = annotations;
  service['metadata'] = meta;
  const spec = o(service['spec']);
  const template = o(spec['template']);
  const tmeta = o(template['metadata']);
  delete tmeta['name'];
  tmeta['labels'] = { ...(o(tmeta['labels']) as Record<string, string>), [NONCE]: nonce() };
  template['metadata'] = tmeta;
  const tspec = o(template['spec']);
  const containers = Array.isArray(tspec['containers']) && tspec['containers'].length > 0 ? (tspec['containers'] as Obj[]) : [{}];
  const first: Obj = { ...o(containers[0]), image: flags.image };
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliExit(EXIT.USAGE, `--port must be a port number, not ${flags.port}`);
    first['ports'] = [{ containerPort: port }];
  }
  containers[0] = first;
  tspec['containers'] = containers;
  template['spec'] = tspec;
  spec['template'] = template;
  service['spec'] = spec;
  return service;
}

async function allowUnauthenticated(client: ApiClient, resource: string): Promise<void> {
  const policy = await client.request<{ bindings?: { role: string; members: string[] }[]; etag?: string; version?: number }>('GET', `/v1/${resource}:getIamPolicy`);
  const bindings = [...(policy.bindings ?? [])];
  const invoker = bindings.find((b) => b.role === 'roles/run.invoker');
  if (invoker?.members.includes('allUsers') === true) return;
  if (invoker !== undefined) invoker.members = [...invoker.members, 'allUsers'];
  else bindings.push({ role: 'roles/run.invoker', members: ['allUsers'] });
  await client.request('POST', `/v1/${resource}:setIamPolicy`, { policy: { ...policy, bindings } });
}

function describeText(s: Obj): string {
  const meta = o(s['metadata']);
  const status = o(s['status']);
  const annotations = o(meta['annotations']);
  const r = ready(s);
  const lines = [
    `Service ${String(meta['name'])} in region ${String(o(meta['labels'])['cloud.googleapis.com/location'] ?? '')}: ${r?.['status'] === 'True' ? 'ready' : 'NOT ready'}`,
    `URL: ${String(status['url'] ?? '(none)')}`,
    `Binary Authorization: ${String(annotations[BINAUTHZ] ?? 'not enabled (revisions are deployed without a check)')}`,
    `Latest ready revision: ${String(status['latestReadyRevisionName'] ?? '(none)')}`,
    `Latest created revision: ${String(status['latestCreatedRevisionName'] ?? '(none)')}`,
    `Generation: ${String(meta['generation'])} (observed ${String(status['observedGeneration'])})`,
  ];
  for (const c of conditionsOf(s)) {
    if (c['message'] !== undefined) lines.push(`${String(c['type'])}: ${String(c['status'])}${c['reason'] === undefined ? '' : ` (${String(c['reason'])})`}: ${String(c['message'])}`);
  }
  return `${lines.join('\n')}\n`;
}

export function registerRun(program: Command): void {
  const runCmd = program.command('run').description('Cloud Run-style services behind Binary Authorization (the same API `gcloud run` uses)');

  withClientOptions(
    runCmd
      .command('deploy')
      .description('create or update a service; exit 0 when the revision was deployed, 1 when it was refused (the reason is printed)')
      .argument('<service>'),
  )
    .requiredOption('--image <image>', 'container image (by digest, or by tag: resolved to a digest and pinned)')
    .option('--project <id>', 'project (env TOLLGATE_PROJECT)')
    .option('--region <region>', 'region (env TOLLGATE_RUN_REGION)')
    .option('--binary-authorization <policy>', 'guard the service with the project policy (only "default")')
    .option('--clear-binary-authorization', 'remove the Binary Authorization guard')
    .option('--breakglass <justification>', 'deploy this revision whatever the policy says; the justification is audited')
    .option('--port <port>', 'container port')
    .option('--allow-unauthenticated', 'grant roles/run.invoker to allUsers')
    .action(async (name: string, flags: DeployFlags) => {
      const settings = clientSettings(flags);
      const project = projectOf(flags);
      const region = regionOf(flags, true) as string;
      if (flags.binaryAuthorization !== undefined && flags.clearBinaryAuthorization === true) throw new CliExit(EXIT.USAGE, '--binary-authorization and --clear-binary-authorization exclude each other');
      const client = createClient(settings);
      const existing = await getOrUndefined(client, servicePath(project, region, name));
      const body = serviceForDeploy(name, project, existing, flags);
      const result = existing === undefined
        ? await client.request<Obj>('POST', servicePath(project, region), body)
        : await client.request<Obj>('PUT', servicePath(project, region, name), body);
      if (flags.allowUnauthenticated === true) await allowUnauthenticated(client, `projects/${project}/locations/${region}/services/${name}`);
      const r = ready(result);
      if (settings.format === 'json') printJson(result);
      if (r?.['status'] !== 'True') throw new CliExit(EXIT.DENIED, `deployment of ${name} failed: ${String(r?.['message'] ?? 'the service is not ready')}`);
      if (settings.format !== 'json') {
        const status = o(result['status']);
        process.stdout.write(`Service [${name}] revision [${String(status['latestReadyRevisionName'])}] has been deployed and is serving 100 percent of traffic.\nService URL: ${String(status['url'])}\n`);
      }
    });

  withClientOptions(runCmd.command('describe').description('show a service').argument('<service>'))
    .option('--project <id>', 'project (env TOLLGATE_PROJECT)')
    .option('--region <region>', 'region (env TOLLGATE_RUN_REGION)')
    .action(async (name: string, flags: ProjectFlags) => {
      const settings = clientSettings(flags);
      const s = await createClient(settings).request<Obj>('GET', servicePath(projectOf(flags), regionOf(flags, true) as string, name));
      if (settings.format === 'json') printJson(s);
      else process.stdout.write(describeText(s));
    });

  withClientOptions(runCmd.command('list').description('list services (every region unless --region)'))
    .option('--project <id>', 'project (env TOLLGATE_PROJECT)')
    .option('--region <region>', 'region (env TOLLGATE_RUN_REGION); default every region')
    .action(async (flags: ProjectFlags) => {
      const settings = clientSettings(flags);
      const list = await createClient(settings).request<{ items?: Obj[] }>('GET', servicePath(projectOf(flags), regionOf(flags, false) ?? '-'));
      const items = list.items ?? [];
      if (settings.format === 'json') {
        printJson(items);
        return;
      }
      process.stdout.write(formatTable(
        ['SERVICE', 'REGION', 'READY', 'BINARY_AUTHORIZATION', 'URL', 'LAST_DEPLOYED_BY'],
        items.map((s) => {
          const meta = o(s['metadata']);
          const annotations = o(meta['annotations']);
          return [
            String(meta['name']),
            String(o(meta['labels'])['cloud.googleapis.com/location'] ?? ''),
            ready(s)?.['status'] === 'True' ? 'yes' : 'no',
            String(annotations[BINAUTHZ] ?? '-'),
            String(o(s['status'])['url'] ?? ''),
            String(annotations['serving.knative.dev/lastModifier'] ?? ''),
          ];
        }),
      ));
    });

  withClientOptions(runCmd.command('delete').description('delete a service and its revisions').argument('<service>'))
    .option('--project <id>', 'project (env TOLLGATE_PROJECT)')
    .option('--region <region>', 'region (env TOLLGATE_RUN_REGION)')
    .action(async (name: string, flags: ProjectFlags) => {
      const settings = clientSettings(flags);
      const r = await createClient(settings).request<Obj>('DELETE', servicePath(projectOf(flags), regionOf(flags, true) as string, name));
      if (settings.format === 'json') printJson(r);
      else process.stdout.write(`Deleted service [${name}].\n`);
    });

  withClientOptions(
    runCmd
      .command('settings')
      .description("show or change the project's Cloud Run settings (requireRunBinaryAuthorization refuses services without --binary-authorization=default)"),
  )
    .option('--project <id>', 'project (env TOLLGATE_PROJECT)')
    .option('--require-binary-authorization <bool>', 'true or false')
    .action(async (flags: SettingsFlags) => {
      const settings = clientSettings(flags);
      const project = projectOf(flags);
      const client = createClient(settings);
      const path = `/tollgate/v1/projects/${encodeURIComponent(project)}/runSettings`;
      let r: { project: string; requireRunBinaryAuthorization: boolean };
      if (flags.requireBinaryAuthorization !== undefined) {
        const v = flags.requireBinaryAuthorization.toLowerCase();
        if (v !== 'true' && v !== 'false') throw new CliExit(EXIT.USAGE, `--require-binary-authorization must be true or false, not ${flags.requireBinaryAuthorization}`);
        r = await client.request('PATCH', path, { requireRunBinaryAuthorization: v === 'true' });
      } else {
        r = await client.request('GET', path);
      }
      if (settings.format === 'json') printJson(r);
      else process.stdout.write(`Project ${r.project}: requireRunBinaryAuthorization ${String(r.requireRunBinaryAuthorization)}\n`);
    });

  for (const c of runCmd.commands) c.exitOverride();
}
