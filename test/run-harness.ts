/**
 * A real Tollgate HTTP listener for the Cloud Run tests, built from the same parts as app.ts (real
 * store, IAM, KMS, decision service and every router) plus `runRouter`, until app.ts wires the Cloud
 * Run router itself; then the tests can move to test/support/server.ts. Driven with the real gcloud
 * in a private config made from `gcloudConfigLines`, and with the built `tollgate` CLI.
 *
 * Decisions are logged with `cloudRunLogEntries` (two entries per Cloud Run decision), as app.ts
 * should wire it; `wiring: 'current'` logs them with decisionLogEntry only, as app.ts does today.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaryAuthorizationRouter } from '../src/server/api/binaryauthorization.js';
import { cloudKmsRouter } from '../src/server/api/cloudkms.js';
import { containerAnalysisRouter } from '../src/server/api/containeranalysis.js';
import { evaluateRouter } from '../src/server/api/evaluate.js';
import { healthRouter } from '../src/server/api/health.js';
import { loggingRouter } from '../src/server/api/logging.js';
import { resourceManagerRouter } from '../src/server/api/resourcemanager.js';
import { runRouter } from '../src/server/api/run.js';
import { serviceUsageRouter } from '../src/server/api/serviceusage.js';
import { tollgateAdminRouter } from '../src/server/api/tollgate-admin.js';
import { tollgateProjectsRouter } from '../src/server/api/tollgate-projects.js';
import { unsupportedRouter } from '../src/server/api/unsupported.js';
import type { AppDeps } from '../src/server/app-deps.js';
import { cloudRunLogEntries } from '../src/server/audit/cloudrun-log.js';
import { DecisionAuditWriter, decisionLogEntry } from '../src/server/audit/decision-log.js';
import { gcloudConfigLines } from '../src/server/gcloud-config.js';
import { createRequestListener } from '../src/server/http/http-server.js';
import { bootstrapAdminToken, createIam } from '../src/server/iam/iam-service.js';
import { loadMasterKey } from '../src/server/kms/master-key.js';
import { jsonLogger } from '../src/server/log.js';
import { createRegistryClient } from '../src/server/registry/registry-client.js';
import { createTagResolver } from '../src/server/registry/tag-resolver.js';
import { createRunRuntime, type RunRuntime, type RuntimeConfig } from '../src/server/run/index.js';
import { createDecisionService } from '../src/server/services/evaluation.js';
import { openStore } from '../src/server/store/sql-store.js';
import type { AuditRecord, Store } from '../src/server/store/store.js';
import { ROOT } from './support/fixtures.js';
import type { CommandResult } from './support/server.js';

export const BIN = join(ROOT, 'dist', 'cli', 'main.js');

export interface RunServerOptions {
  readonly runtime?: RuntimeConfig;
  readonly insecureRegistries?: readonly string[];
  /** `final` (default): decisions logged with cloudRunLogEntries; `current`: decisionLogEntry only. */
  readonly wiring?: 'final' | 'current';
  readonly project?: string;
}

export interface RunServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminToken: string;
  readonly adminTokenFile: string;
  readonly store: Store;
  readonly runtime: RunRuntime;
  readonly gcloudEnv: Record<string, string>;
  /** Server log lines (warnings and errors). */
  log(): string;
  request(method: string, path: string, body?: unknown, opts?: { token?: string | null; host?: string }): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  gcloud(args: readonly string[], opts?: { env?: Record<string, string> }): Promise<CommandResult>;
  /** `tollgate run …` through the built CLI (registerRun on a fresh program). */
  tollgateRun(args: readonly string[], opts?: { env?: Record<string, string> }): Promise<CommandResult>;
  /** Waits for group-committed decision entries to land. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<CommandResult> {
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

/**
 * Runs `tollgate run ARGS` from the built CLI. Until main.ts registers `run`, a small driver builds
 * the program the way main.ts does and adds registerRun.
 */
const CLI_DRIVER = `
import { Command, CommanderError } from 'commander';
const { registerRun } = await import(process.env.TG_RUN_MODULE);
const { CliExit } = await import(process.env.TG_EXIT_MODULE);
const program = new Command('tollgate').exitOverride();
registerRun(program);
for (const c of program.commands) c.exitOverride();
for (const c of program.commands.flatMap((c) => c.commands)) c.exitOverride();
try {
  await program.parseAsync(process.argv);
  process.exitCode = typeof process.exitCode === 'number' ? process.exitCode : 0;
} catch (e) {
  if (e instanceof CliExit) { process.stderr.write('tollgate: ' + e.message + '\\n'); process.exitCode = e.code; }
  else if (e instanceof CommanderError) { process.exitCode = e.code === 'commander.helpDisplayed' ? 0 : 2; }
  else { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exitCode = 2; }
}
`;

export async function startRunServer(opts: RunServerOptions = {}): Promise<RunServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-run-'));
  const store = await openStore(join(dataDir, 'tollgate.db'));
  const masterKey = await loadMasterKey({ dataDir, store, requireEnv: false });
  const iam = createIam(store);
  const adminToken = (await bootstrapAdminToken(store)) as string;
  const adminTokenFile = join(dataDir, 'admin-token');
  writeFileSync(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
  let logText = '';
  const logger = jsonLogger('warn', (line) => { logText += line; });

  const holder: { listener?: ReturnType<typeof createRequestListener> } = {};
  const server: Server = createServer((req, res) => holder.listener?.(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const deps: AppDeps = { store, iam, logger, settings: { publicUrl: url, dataDir } };

  const writer = new DecisionAuditWriter({ store, logger });
  const logEntries = (d: Parameters<typeof decisionLogEntry>[0], r: Parameters<typeof decisionLogEntry>[1], t: string, id: string): AuditRecord[] =>
    opts.wiring === 'current' ? [decisionLogEntry(d, r, t, id)] : cloudRunLogEntries(d, r, t, id);
  const decisions = createDecisionService({ store, iam, logger, recorder: writer, logEntries, freshnessMs: 0 });
  const tags = createTagResolver({ client: createRegistryClient({ insecureRegistries: [...(opts.insecureRegistries ?? [])], defaultDeadlineMs: 5000 }), cacheTtlMs: 0 });
  const runtime = createRunRuntime(opts.runtime ?? { kind: 'none' });

  holder.listener = createRequestListener({
    routers: [
      healthRouter(store),
      binaryAuthorizationRouter(deps),
      containerAnalysisRouter(deps),
      cloudKmsRouter(deps, masterKey),
      resourceManagerRouter(deps),
      serviceUsageRouter(deps),
      loggingRouter(deps),
      evaluateRouter(deps, decisions),
      runRouter(deps, { decisions, runtime, tags, publicUrl: url }),
      tollgateProjectsRouter(deps),
      tollgateAdminRouter(deps),
      unsupportedRouter(),
    ],
    authenticate: (t) => iam.authenticate(t),
    maxBodyBytes: 1024 * 1024,
    logger,
  });

  const config = mkdtempSync(join(tmpdir(), 'tollgate-run-gcloud-'));
  const gcloudEnv: Record<string, string> = { CLOUDSDK_CONFIG: config, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
  const lines = gcloudConfigLines({ url, tokenFile: adminTokenFile, project: opts.project ?? 'demo' }).join('\n');
  const setup = await run('bash', ['-euo', 'pipefail', '-c', lines], { env: gcloudEnv });
  if (setup.code !== 0) throw new Error(`gcloud setup failed: ${setup.stderr}`);

  return {
    url,
    port,
    dataDir,
    adminToken,
    adminTokenFile,
    store,
    runtime,
    gcloudEnv,
    log: () => logText,
    async request(method, path, body, o = {}) {
      const t = o.token === undefined ? adminToken : o.token;
      const headers: Record<string, string> = {};
      if (t !== null) headers['authorization'] = `Bearer ${t}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      // A regional host is sent in proxy form, as gcloud does (fetch cannot resolve it).
      if (o.host !== undefined) return proxyRequest(port, o.host, method, path, headers, body);
      const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, body: parsed };
    },
    gcloud(args, o = {}) {
      return run('gcloud', args, { env: { ...gcloudEnv, ...o.env } });
    },
    tollgateRun(args, o = {}) {
      return run(process.execPath, ['--input-type=module', '-e', CLI_DRIVER, 'tollgate', 'run', ...args], {
        env: {
          TOLLGATE_URL: url,
          TOLLGATE_TOKEN_FILE: adminTokenFile,
          TG_RUN_MODULE: join(ROOT, 'dist', 'cli', 'commands', 'run.js'),
          TG_EXIT_MODULE: join(ROOT, 'dist', 'cli', 'exit-codes.js'),
          ...o.env,
        },
      });
    },
    async flush() {
      await new Promise((r) => setTimeout(r, 150));
      await writer.flush();
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await writer.close();
      await store.close();
      rmSync(config, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** An HTTP request in absolute form through the server as a proxy (the regional host trick). */
async function proxyRequest(port: number, host: string, method: string, path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { request } = await import('node:http');
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: `http://${host}${path}`, headers: { ...headers, host } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Seed 002's three queries and seed 001's, one term per line as the walkthroughs write them. */
export const BLOCKED_QUERY = ['resource.type="cloud_run_revision"', 'logName:"cloudaudit.googleapis.com%2Fsystem_event"', 'protoPayload.response.status.conditions.reason="ContainerImageUnauthorized"'].join('\n');
export const DRY_RUN_QUERY = ['resource.type="cloud_run_revision"', 'logName:"cloudaudit.googleapis.com%2Fsystem_event"', '"dry run"'].join('\n');
export const BREAKGLASS_QUERY = ['protoPayload.@type="type.googleapis.com/google.cloud.audit.AuditLog"', '"run.googleapis.com/binary-authorization-breakglass"'].join('\n');
export const BINAUTHZ_QUERY = ['', '  resource.type="cloud_run_revision"', '  AND protoPayload.serviceName="binaryauthorization.googleapis.com"', ''].join('\n');
