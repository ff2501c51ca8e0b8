import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { startServer } from '../../server/app.js';
import { ConfigError, DEFAULT_DATA_DIR, DEFAULT_LISTEN, resolveServerConfig, type ServeFlags } from '../../server/config.js';
import { gcloudConfigLines } from '../../server/gcloud-config.js';
import { heapGrowthFlag } from '../../server/heap-growth.js';
import { CliExit, EXIT } from '../exit-codes.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the Tollgate server: every Google API on one port')
    .option('--data-dir <dir>', `data folder (env TOLLGATE_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option('--listen <host:port>', `listen address (env TOLLGATE_LISTEN, default ${DEFAULT_LISTEN}; port 0 picks a free one)`)
    .option('--database <url>', 'postgres://… for PostgreSQL, or a SQLite file (env TOLLGATE_DATABASE, default DATA_DIR/tollgate.db)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (env TOLLGATE_TLS_CERT)')
    .option('--tls-key <file>', 'private key for --tls-cert (env TOLLGATE_TLS_KEY)')
    .option('--public-url <url>', 'the URL clients use, when not the listen address (env TOLLGATE_PUBLIC_URL)')
    .option('--max-request-bytes <n>', 'largest request body accepted (env TOLLGATE_MAX_REQUEST_BYTES, default 10485760)')
    .option('--log-level <level>', 'debug, info, warn or error (env TOLLGATE_LOG_LEVEL, default info)')
    .option('--webhook-listen <host:port>', 'serve the Kubernetes admission webhook over TLS here (env TOLLGATE_WEBHOOK_LISTEN)')
    .option('--webhook-cert <file>', 'serving certificate for the webhook (env TOLLGATE_WEBHOOK_CERT; default: generated into DATA_DIR/webhook/)')
    .option('--webhook-key <file>', 'private key for --webhook-cert (env TOLLGATE_WEBHOOK_KEY)')
    .option('--webhook-client-ca <file>', 'require API-server client certificates signed by this CA (env TOLLGATE_WEBHOOK_CLIENT_CA)')
    .option('--metrics-listen <host:port>', 'serve /metrics on a listener of its own instead of the main one (env TOLLGATE_METRICS_LISTEN)')
    .option('--resolve-tags', 'resolve tag-only images to digests through their registry before deciding (env TOLLGATE_RESOLVE_TAGS=true)')
    .option('--registry-config <file>', 'Docker config file with registry credentials (env TOLLGATE_REGISTRY_CONFIG)')
    .option('--insecure-registry <host:port...>', 'registries spoken to over plain HTTP (env TOLLGATE_INSECURE_REGISTRIES, comma-separated)')
    .option('--run-runtime <kind>', 'where admitted Cloud Run-style revisions run: none or exec (env TOLLGATE_RUN_RUNTIME, default none)')
    .option('--run-runtime-exec <cmd>', 'command run with each admitted revision as JSON on stdin; prints its URL (env TOLLGATE_RUN_RUNTIME_EXEC)')
    .option('--run-runtime-timeout <seconds>', 'deadline for the exec runtime (env TOLLGATE_RUN_RUNTIME_TIMEOUT)')
    .option('--verify-placement <where>', 'where P-256 and RSA signatures are verified: adaptive, in-place or pool (env TOLLGATE_VERIFY_PLACEMENT, default adaptive)')
    .option('--audit-log <target>', 'also write decision audit entries as JSON lines: - for stdout, a file, or off (env TOLLGATE_AUDIT_LOG, default -)')
    .option('--audit-retention <duration>', 'remove audit entries older than this (such as 400d, 30d or 12h; at least 1h), or forever (env TOLLGATE_AUDIT_RETENTION, default 400d)')
    .action(async (flags: ServeFlags) => {
      let config;
      try {
        config = resolveServerConfig(flags, process.env);
      } catch (e) {
        if (e instanceof ConfigError) throw new CliExit(EXIT.USAGE, e.message);
        throw e;
      }
      // Before the server allocates anything: see heap-growth.ts.
      const growth = heapGrowthFlag(process.execArgv);
      if (growth !== undefined) setFlagsFromString(growth);
      let server;
      try {
        server = await startServer(config);
      } catch (e) {
        throw new CliExit(EXIT.DENIED, `cannot start: ${(e as Error).message}`);
      }
      // stderr, like the server's JSON logs: stdout carries nothing but the audit log's JSON lines
      // (`--audit-log -`, the default), so a log shipper can parse every line of it.
      const out = process.stderr;
      out.write(`Tollgate is listening on ${server.url}\n`);
      if (server.webhookUrl !== undefined) out.write(`Admission webhook is listening on ${server.webhookUrl}\n`);
      if (server.metricsUrl !== undefined) out.write(`Metrics are served on ${server.metricsUrl}/metrics\n`);
      out.write(`Data folder: ${config.dataDir}\n`);
      if (server.createdAdminToken) out.write(`Admin token written to ${server.adminTokenFile} (keep it secret)\n`);
      else if (!existsSync(server.adminTokenFile)) out.write(`No admin token file at ${server.adminTokenFile}: tokens are stored hashed; create a new one with \`tollgate iam tokens create\`.\n`);
      out.write('\nPoint gcloud at it (a configuration named "tollgate"; yours stays as it is):\n\n');
      out.write(`  eval "$(tollgate gcloud-config --data-dir ${shellQuote(config.dataDir)} --url ${server.url})"\n\n`);
      for (const line of gcloudConfigLines({ url: server.url, tokenFile: server.adminTokenFile })) out.write(`  ${line}\n`);
      out.write('\n');
      await new Promise<void>((resolveStop) => {
        const stop = (signal: string) => {
          process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'shutting down', signal })}\n`);
          server.close().then(() => resolveStop(), () => resolveStop());
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}

export function registerGcloudConfig(program: Command): void {
  program
    .command('gcloud-config')
    .description('print the gcloud commands that point gcloud at a Tollgate server, one per line, for eval')
    .option('--data-dir <dir>', `data folder holding admin-token (env TOLLGATE_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option('--url <url>', 'server URL (env TOLLGATE_URL, default http://127.0.0.1:7420)')
    .option('--token-file <file>', 'file holding the access token gcloud sends (env TOLLGATE_TOKEN_FILE, default DATA_DIR/admin-token)')
    .option('--project <id>', 'also set core/project')
    .action((opts: { dataDir?: string; url?: string; tokenFile?: string; project?: string }) => {
      const dataDir = resolve(opts.dataDir ?? process.env['TOLLGATE_DATA_DIR'] ?? DEFAULT_DATA_DIR);
      const url = opts.url ?? process.env['TOLLGATE_URL'] ?? `http://${DEFAULT_LISTEN}`;
      try {
        new URL(url);
      } catch {
        throw new CliExit(EXIT.USAGE, `--url is not a URL: ${url}`);
      }
      const tokenFile = resolve(opts.tokenFile ?? process.env['TOLLGATE_TOKEN_FILE'] ?? join(dataDir, 'admin-token'));
      for (const line of gcloudConfigLines({ url, tokenFile, ...(opts.project === undefined ? {} : { project: opts.project }) })) process.stdout.write(`${line}\n`);
    });
}

function shellQuote(s: string): string {
  return /^[\w./:-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
