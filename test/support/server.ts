/**
 * Starts a real `tollgate serve` (the built binary, as users run it) on a free port with a fresh
 * data folder, and drives it with fetch, the real gcloud and curl. `npm test` builds first; when
 * running a single test file, run `npm run build` before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './fixtures.js';

export const BIN = join(ROOT, 'dist', 'cli', 'main.js');

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminToken: string;
  readonly adminTokenFile: string;
  /** The server's output so far (stdout + stderr), for debugging failed tests. */
  output(): string;
  /**
   * JSON request with a bearer token (the admin's unless given; `null` sends none). With `host`,
   * the request goes through the server in proxy form with that Host, as gcloud sends its regional
   * hosts (`us-central1-127.0.0.1:PORT`, which fetch cannot resolve).
   */
  request(method: string, path: string, body?: unknown, token?: string | null | RequestOptions): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The real gcloud in a private config made by `tollgate gcloud-config` (project `demo`). */
  gcloud(args: readonly string[], opts?: { tokenFile?: string; input?: string; env?: Record<string, string> }): Promise<CommandResult>;
  /** The `tollgate` CLI with TOLLGATE_URL and the admin token file set. */
  tollgate(args: readonly string[], opts?: { env?: Record<string, string>; input?: string }): Promise<CommandResult>;
  /** Environment for a gcloud/curl child process (CLOUDSDK_CONFIG etc.). */
  readonly gcloudEnv: Record<string, string>;
  /** SIGTERM and wait; `kill -9` with `signal: 'SIGKILL'`. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  readonly process: ChildProcess;
}

export interface RequestOptions {
  /** The admin's token unless given; `null` sends none. */
  readonly token?: string | null;
  /** Send in proxy form (absolute URL on this Host) through the server. */
  readonly host?: string;
}

export interface StartOptions {
  /** `--database` (PostgreSQL URL); default SQLite in the data folder. */
  readonly database?: string;
  /** Reuse a data folder (restart tests). */
  readonly dataDir?: string;
  readonly env?: Record<string, string>;
  readonly args?: readonly string[];
  /** The admin token to use when this server did not create one (a second replica on one database). */
  readonly adminToken?: string;
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` (npm test does it first)`);
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tollgate-data-'));
  const args = [BIN, 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...(opts.database ? ['--database', opts.database] : []), ...(opts.args ?? [])];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /Tollgate is listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stderr.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  const adminTokenFile = join(dataDir, 'admin-token');
  const adminToken = existsSync(adminTokenFile) ? readFileSync(adminTokenFile, 'utf8').trim() : (opts.adminToken ?? '');
  const config = mkdtempSync(join(tmpdir(), 'tollgate-gcloud-'));
  const gcloudEnv: Record<string, string> = { CLOUDSDK_CONFIG: config, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
  const lines = await run(process.execPath, [BIN, 'gcloud-config', '--url', url, '--token-file', adminTokenFile, '--project', 'demo'], {});
  if (lines.code !== 0) throw new Error(`gcloud-config failed: ${lines.stderr}`);
  const setup = await run('bash', ['-euo', 'pipefail', '-c', lines.stdout], { env: gcloudEnv });
  if (setup.code !== 0) throw new Error(`gcloud setup failed: ${setup.stderr}`);

  const port = Number(new URL(url).port);
  let exited = false;
  child.on('exit', () => { exited = true; });
  return {
    url,
    port,
    dataDir,
    adminToken,
    adminTokenFile,
    gcloudEnv,
    process: child,
    output: () => out,
    async request(method, path, body, tokenOrOptions) {
      const o: RequestOptions = typeof tokenOrOptions === 'object' && tokenOrOptions !== null ? tokenOrOptions : { token: tokenOrOptions };
      const headers: Record<string, string> = {};
      const t = o.token === undefined ? adminToken : o.token;
      if (t !== null) headers['authorization'] = `Bearer ${t}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (o.host !== undefined) return proxyRequest(port, o.host, method, path, headers, body);
      const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed };
    },
    gcloud(gargs, o = {}) {
      const env = { ...gcloudEnv, ...(o.tokenFile ? { CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: o.tokenFile } : {}), ...o.env };
      return run('gcloud', gargs, { env, ...(o.input === undefined ? {} : { input: o.input }) });
    },
    tollgate(targs, o = {}) {
      return run(process.execPath, [BIN, ...targs], { env: { TOLLGATE_URL: url, TOLLGATE_TOKEN_FILE: adminTokenFile, TOLLGATE_DATA_DIR: dataDir, ...o.env }, ...(o.input === undefined ? {} : { input: o.input }) });
    },
    async stop(signal = 'SIGTERM') {
      if (!exited) {
        const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill(signal);
        await done;
      }
      rmSync(config, { recursive: true, force: true });
    },
  };
}

/** An HTTP request in absolute form through the server as a proxy, on a Host of the caller's choosing. */
function proxyRequest(port: number, host: string, method: string, path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path: `http://${host}${path}`, headers: { ...headers, host } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

export function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string>; input?: string; cwd?: string }): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, [...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', (e) => resolve({ code: -1, stdout, stderr: `${stderr}${e.message}` }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
