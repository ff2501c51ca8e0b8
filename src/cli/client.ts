/**
 * What commands that talk to a running Tollgate server share: the `--url`, `--token-file` and
 * `--format` options, and a small JSON client that turns Google error bodies into CliExit
 * (exit 3 when no answer could be had: unreachable, 401, 403; exit 1 for other API errors;
 * exit 2 for usage problems such as an unreadable token file).
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliExit, EXIT } from './exit-codes.js';

export const DEFAULT_URL = 'http://127.0.0.1:7420';

export interface ClientFlags {
  readonly url?: string;
  readonly tokenFile?: string;
  readonly format?: string;
  readonly timeout?: string;
}

export interface ClientSettings {
  readonly url: string;
  readonly tokenFile: string;
  readonly format: 'text' | 'json';
  /** How long one request may take, answer included; then "no decision" (exit 3). */
  readonly timeoutMs: number;
}

/** A CI step must not hang on a server that accepted the connection and never answers. */
const DEFAULT_TIMEOUT_SECONDS = 60;
export const TIMEOUT_OPTION = ['--timeout <seconds>', `seconds to wait for the server's answer, then exit 3 (env TOLLGATE_TIMEOUT, default ${DEFAULT_TIMEOUT_SECONDS})`] as const;

/** Adds `--url`, `--token-file` and `--format` to a command. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', `Tollgate server URL (env TOLLGATE_URL, default ${DEFAULT_URL})`)
    .option('--token-file <file>', 'file holding the access token (env TOLLGATE_TOKEN_FILE, default ${TOLLGATE_DATA_DIR:-./tollgate-data}/admin-token)')
    .option('--format <format>', 'text or json', 'text')
    .option(...TIMEOUT_OPTION);
}

/** Flags, then the environment, then the defaults. */
export function clientSettings(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const url = (flags.url ?? env['TOLLGATE_URL'] ?? DEFAULT_URL).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliExit(EXIT.USAGE, `--url is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliExit(EXIT.USAGE, `--url must be http:// or https://, not ${url}`);
  const tokenFile = resolve(flags.tokenFile ?? env['TOLLGATE_TOKEN_FILE'] ?? join(env['TOLLGATE_DATA_DIR'] ?? './tollgate-data', 'admin-token'));
  const format = flags.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new CliExit(EXIT.USAGE, `--format must be text or json, not ${format}`);
  const timeoutText = flags.timeout ?? env['TOLLGATE_TIMEOUT'] ?? String(DEFAULT_TIMEOUT_SECONDS);
  const seconds = Number(timeoutText);
  if (!/^\d+(\.\d+)?$/.test(timeoutText.trim()) || !(seconds > 0)) throw new CliExit(EXIT.USAGE, `--timeout must be a positive number of seconds, not ${timeoutText}`);
  return { url, tokenFile, format, timeoutMs: seconds * 1000 };
}

export interface ApiClient {
  readonly url: string;
  /** Sends JSON, returns the parsed JSON answer; throws CliExit on any failure. */
  request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
}

function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliExit(EXIT.USAGE, `cannot read the token file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (set --token-file or TOLLGATE_TOKEN_FILE)`);
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new CliExit(EXIT.USAGE, `the token file ${file} does not hold one token`);
  return token;
}

/** A client for the server in `settings`, authenticating with the token in its token file. */
export function createClient(settings: ClientSettings, fetchImpl: typeof fetch = fetch): ApiClient {
  let token: string | undefined;
  return {
    url: settings.url,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      token ??= readToken(settings.tokenFile);
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const timedOut = () => new CliExit(EXIT.NO_DECISION, `Tollgate at ${settings.url} did not answer within ${settings.timeoutMs / 1000} s (--timeout)`);
      const signal = AbortSignal.timeout(settings.timeoutMs);
      let res: Response;
      let text: string;
      try {
        res = await fetchImpl(`${settings.url}${path}`, { method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
        text = await res.text();
      } catch (e) {
        if (signal.aborted) throw timedOut();
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new CliExit(EXIT.NO_DECISION, `cannot reach Tollgate at ${settings.url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
      }
      let parsed: unknown;
      try {
        parsed = text === '' ? {} : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (res.ok) {
        if (parsed === undefined) throw new CliExit(EXIT.DENIED, `${method} ${path}: the server answered ${res.status} with a body that is not JSON`);
        return parsed as T;
      }
      throw apiFailure(res.status, parsed, text);
    },
  };
}

/** A Google error body (`{"error":{"code","message","status"}}`) as a CliExit. */
export function apiFailure(httpStatus: number, parsed: unknown, text = ''): CliExit {
  const err = typeof parsed === 'object' && parsed !== null ? (parsed as { error?: { message?: unknown; status?: unknown } }).error : undefined;
  const status = typeof err?.status === 'string' ? err.status : `HTTP ${httpStatus}`;
  const message = typeof err?.message === 'string' ? err.message : text.trim().slice(0, 500);
  const code = httpStatus === 401 || httpStatus === 403 ? EXIT.NO_DECISION : EXIT.DENIED;
  return new CliExit(code, `${status}: ${message}`);
}

/** Follows `nextPageToken` and gathers every item of a list method. */
export async function listAll<T>(client: ApiClient, path: string, key: string): Promise<T[]> {
  const items: T[] = [];
  let pageToken: string | undefined;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await client.request<Record<string, unknown>>('GET', `${path}${pageToken === undefined ? '' : `${sep}pageToken=${encodeURIComponent(pageToken)}`}`);
    const got = page[key];
    if (Array.isArray(got)) items.push(...(got as T[]));
    const next = page['nextPageToken'];
    if (typeof next !== 'string' || next === '') return items;
    pageToken = next;
  }
}

/** Prints rows as aligned columns under a header (nothing but the header when empty). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
