/**
 * Starts a Tollgate server: data folder, store (with migrations), master key, bootstrap admin,
 * every API's router on one listener, and a clean drain on SIGTERM.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AppDeps } from './app-deps.js';
import { binaryAuthorizationRouter } from './api/binaryauthorization.js';
import { cloudKmsRouter } from './api/cloudkms.js';
import { containerAnalysisRouter } from './api/containeranalysis.js';
import { healthRouter } from './api/health.js';
import { resourceManagerRouter } from './api/resourcemanager.js';
import { serviceUsageRouter } from './api/serviceusage.js';
import { tollgateAdminRouter } from './api/tollgate-admin.js';
import { tollgateProjectsRouter } from './api/tollgate-projects.js';
import { unsupportedRouter } from './api/unsupported.js';
import { evaluateRouter } from './api/evaluate.js';
import { runRouter } from './api/run.js';
import { cloudRunLogEntries } from './audit/cloudrun-log.js';
import { createRunRuntime } from './run/index.js';
import { loggingRouter } from './api/logging.js';
import { DecisionAuditWriter } from './audit/decision-log.js';
import { startAuditRetention } from './audit/retention.js';
import { Router } from './http/router.js';
import { createMetrics, seriesBy, type Metrics } from './metrics.js';
import { loadDockerConfig } from './registry/credentials.js';
import { createRegistryClient } from './registry/registry-client.js';
import { createTagResolver } from './registry/tag-resolver.js';
import { createDecisionService, type DecisionCache } from './services/evaluation.js';
import type { DecisionService } from './services/decision-service.js';
import { startWebhookListener, type WebhookListener } from './webhook/listener.js';
import { ROUTE_ADMISSION } from './webhook/handler.js';
import { placementFor } from './services/verify-placement.js';
import { appendFileSync } from 'node:fs';
import { parseListen, type ServerConfig } from './config.js';
import { createRequestListener } from './http/http-server.js';
import { bootstrapAdminToken, createIam } from './iam/iam-service.js';
import { loadMasterKey } from './kms/master-key.js';
import { jsonLogger, type Logger } from './log.js';
import { openStore } from './store/sql-store.js';
import { POSTGRES_AUDIT_ROWS_PER_STATEMENT } from './store/postgres-direct.js';
import { startAuditWorker } from './audit/audit-worker.js';
import type { Store } from './store/store.js';

export interface RunningServer {
  readonly url: string;
  readonly adminTokenFile: string;
  /** Set when this start created the bootstrap admin token. */
  readonly createdAdminToken: boolean;
  readonly deps: AppDeps;
  readonly decisions: DecisionService;
  readonly metrics: Metrics;
  /** The admission webhook's HTTPS URL, when `--webhook-listen` is set. */
  readonly webhookUrl?: string;
  readonly metricsUrl?: string;
  /** Stops accepting connections, lets in-flight requests finish, closes the store. */
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger = jsonLogger(config.logLevel)): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(config.database);
  try {
    return await start(config, store, logger);
  } catch (e) {
    await store.close();
    throw e;
  }
}

async function start(config: ServerConfig, store: Store, logger: Logger): Promise<RunningServer> {
  const masterKey = await loadMasterKey({
    dataDir: config.dataDir,
    ...(config.masterKey === undefined ? {} : { envKey: config.masterKey }),
    store,
    requireEnv: store.dialect === 'postgres',
  });
  const iam = createIam(store);
  const adminTokenFile = join(config.dataDir, 'admin-token');
  const token = await bootstrapAdminToken(store);
  if (token !== undefined) {
    writeFileSync(adminTokenFile, `${token}\n`, { mode: 0o600 });
    chmodSync(adminTokenFile, 0o600);
  }

  const tls = config.tlsCert !== undefined && config.tlsKey !== undefined ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined;
  const scheme = tls === undefined ? 'http' : 'https';
  // Settings need the real port (listen may ask for port 0), so routers are built after listen.
  const holder: { listener?: ReturnType<typeof createRequestListener> } = {};
  const handler: Parameters<typeof createHttpServer>[1] = (req, res) => holder.listener?.(req, res);
  const server: Server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
  server.keepAliveTimeout = 65_000;
  // gcloud behind its proxy setting never sends CONNECT for the APIs gcloud-config overrides;
  // anything else that tries gets a plain refusal instead of a hung socket.
  server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain\r\n\r\nTollgate is not a general HTTP proxy; run `tollgate gcloud-config` to point gcloud at it.\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listenPort, config.listenHost, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const listenUrl = `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
  const url = config.publicUrl ?? listenUrl;
  const deps: AppDeps = { store, iam, logger, settings: { publicUrl: url, dataDir: config.dataDir } };
  const metrics = createMetrics();
  const auditLines = auditLineSink(config.auditLog);
  // Decision entries are written by a thread of their own (see audit-worker.ts).
  const auditAppender = await startAuditWorker(config.database, store, logger);
  const recorder = new DecisionAuditWriter({
    store: auditAppender,
    logger,
    onError: (f) => { if (f.kind !== 'retrying') metrics.auditLost.inc({ kind: f.kind }, f.count); },
    ...(auditLines === undefined ? {} : { lineSink: auditLines }),
    // On PostgreSQL, one prepared statement per batch (see POSTGRES_AUDIT_ROWS_PER_STATEMENT).
    ...(store.dialect === 'postgres' ? { maxBatch: POSTGRES_AUDIT_ROWS_PER_STATEMENT } : {}),
  });
  // One registry client for the whole server (its tokens are shared); decisions resolve tags only
  // with --resolve-tags, Cloud Run deploys always pin digests.
  const credentials = config.registryConfig === undefined ? undefined : await loadDockerConfig(config.registryConfig);
  for (const w of credentials?.warnings ?? []) logger.warn(w);
  const registry = createRegistryClient({ ...(credentials === undefined ? {} : { credentials }), insecureRegistries: [...config.insecureRegistries] });
  const tags = config.resolveTags ? createTagResolver({ client: registry }) : undefined;
  // A deploy pins what the tag names now: a redeploy after the tag moved must get the new digest,
  // so Cloud Run resolves without the webhook's 30 s cache.
  const deployTags = createTagResolver({ client: registry, cacheTtlMs: 0 });
  // Every decision is counted, and counts a cache lookup or more: series are resolved once each.
  const decisionCount = seriesBy(
    (verdict: string, mode: string, source: string, reason: string) => `${verdict}\n${mode}\n${source}\n${reason}`,
    (verdict, mode, source, reason) => metrics.decisions.series({ verdict, mode, source, reason }),
  );
  const decisionTime = seriesBy((source: string) => source, (source) => metrics.decisionSeconds.series({ source }));
  const cacheCount = seriesBy((cache: DecisionCache, hit: boolean) => `${cache}\n${hit}`, (cache, hit) => metrics.cache.series({ cache, result: hit ? 'hit' : 'miss' }));
  // Reviews answered by the webhook tell the adaptive placement which of its trials went better.
  // A change of placement is logged (rare once the load is steady); every comparison at debug.
  const placement = placementFor(config.verifyPlacement, (s, moved) => {
    const fields = { placement: s.onPool ? 'pool' : 'in place', ...s.lastTrial };
    if (moved) logger.info(s.onPool ? 'signature verifications moved to the thread pool' : 'signature verifications back in place', fields);
    else logger.log('debug', 'signature verification placement compared', fields);
  });
  const checksInPlace = metrics.signatureChecks.series({ placement: 'in_place' });
  const checksOnPool = metrics.signatureChecks.series({ placement: 'pool' });
  const decisions = createDecisionService({
    placement,
    store,
    iam,
    logger,
    recorder,
    logEntries: cloudRunLogEntries,
    ...(tags === undefined ? {} : { tags }),
    observe: (d, req, seconds) => {
      decisionCount(d.verdict.kind, modeOf(d), req.source.kind, firstReason(d)).inc();
      decisionTime(req.source.kind).observe(seconds);
    },
    observeCache: (cache, hit) => cacheCount(cache, hit).inc(),
    observeStoreError: (operation) => metrics.storeErrors.inc({ operation }),
    observeVerification: (onPool) => (onPool ? checksOnPool : checksInPlace).inc(),
  });
  // Both listeners' requests: the API's routes and the webhook's (labelled `webhook …`). The
  // webhook counts every review, so each (route, status)'s series are resolved once.
  const httpSeries = seriesBy(
    (route: string, status: number) => `${route}\n${status}`,
    (route, status) => ({ count: metrics.httpRequests.series({ route, code: String(status) }), time: metrics.httpSeconds.series({ route }) }),
  );
  const observeHttp = ({ route, status, seconds }: { route: string; status: number; seconds: number }): void => {
    const s = httpSeries(route, status);
    s.count.inc();
    s.time.observe(seconds);
  };
  const metricsRouter = new Router('metrics').get('/metrics', async () => ({ raw: { contentType: 'text/plain; version=0.0.4; charset=utf-8', data: metrics.text() } }), { public: true });
  holder.listener = createRequestListener({
    routers: [
      healthRouter(store),
      ...(config.metricsListen === undefined ? [metricsRouter] : []),
      binaryAuthorizationRouter(deps),
      containerAnalysisRouter(deps),
      cloudKmsRouter(deps, masterKey),
      resourceManagerRouter(deps),
      serviceUsageRouter(deps),
      loggingRouter(deps),
      evaluateRouter(deps, decisions),
      runRouter(deps, { decisions, runtime: createRunRuntime(config.runRuntime), tags: deployTags, publicUrl: url }),
      tollgateProjectsRouter(deps),
      tollgateAdminRouter(deps),
      unsupportedRouter(),
    ],
    authenticate: (t) => iam.authenticate(t),
    maxBodyBytes: config.maxRequestBytes,
    logger,
    observe: observeHttp,
  });

  let webhook: WebhookListener | undefined;
  const webhookListen = config.webhookListen;
  if (webhookListen !== undefined) {
    webhook = await closeOnFailure(server, () => startWebhookListener({
      listen: webhookListen,
      dataDir: config.dataDir,
      decisions,
      logger,
      ...(config.webhookCert === undefined ? {} : { certFile: config.webhookCert }),
      ...(config.webhookKey === undefined ? {} : { keyFile: config.webhookKey }),
      ...(config.webhookClientCa === undefined ? {} : { clientCaFile: config.webhookClientCa }),
      observe: (o) => {
        observeHttp(o);
        if (o.route === ROUTE_ADMISSION) placement.answered();
      },
    }));
  }
  let metricsServer: Server | undefined;
  let metricsUrl: string | undefined;
  if (config.metricsListen !== undefined) {
    const { host: mHost, port: mPort } = parseListen(config.metricsListen);
    const ms = createHttpServer(createRequestListener({ routers: [metricsRouter], authenticate: async () => undefined, maxBodyBytes: 1024, logger }));
    metricsServer = ms;
    await closeOnFailure(server, () => new Promise<void>((resolve, reject) => {
      ms.once('error', reject);
      ms.listen(mPort, mHost, () => resolve());
    }).catch(async (e: unknown) => {
      await webhook?.close();
      throw e;
    }));
    const a = metricsServer.address() as AddressInfo;
    metricsUrl = `http://${a.address === '0.0.0.0' ? '127.0.0.1' : a.address}:${a.port}`;
  }
  // Old entries go as Cloud Logging's go (400 days by default), through the audit writer's thread.
  const retention = config.auditRetentionSeconds === undefined
    ? undefined
    : startAuditRetention({
        retentionSeconds: config.auditRetentionSeconds,
        prune: (before, maxRows, from) => auditAppender.pruneAudit(before, maxRows, from),
        logger,
        onPruned: (n) => metrics.auditPruned.inc({}, n),
      });
  logger.info('listening', { url, dataDir: config.dataDir, database: store.dialect, adminTokenFile: existsSync(adminTokenFile) ? adminTokenFile : undefined });

  let closing: Promise<void> | undefined;
  return {
    url,
    adminTokenFile,
    createdAdminToken: token !== undefined,
    deps,
    decisions,
    metrics,
    ...(webhook === undefined ? {} : { webhookUrl: webhook.url }),
    ...(metricsUrl === undefined ? {} : { metricsUrl }),
    close() {
      closing ??= (async () => {
        await Promise.all([
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
          webhook?.close(),
          metricsServer === undefined ? undefined : new Promise<void>((resolve) => metricsServer?.close(() => resolve())),
        ]);
        await retention?.stop();
        await recorder.close();
        await auditAppender.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/** Where decision entries also go as JSON lines (`-` stdout, `off`, or a file appended to). */
function auditLineSink(target: string): ((lines: string) => void) | undefined {
  if (target === 'off') return undefined;
  if (target === '-') return (lines) => { process.stdout.write(lines.endsWith('\n') ? lines : `${lines}\n`); };
  return (lines) => appendFileSync(target, lines.endsWith('\n') ? lines : `${lines}\n`);
}

/** How the decision was enforced: `breakglass`, `dry-run` (an image's rule is DRYRUN_AUDIT_LOG_ONLY), or `enforced`. */
function modeOf(d: import('../core/evaluation/decision.js').Decision): string {
  if (d.verdict.kind === 'BREAKGLASS') return 'breakglass';
  for (const i of d.images) if ('rule' in i && i.rule.enforcementMode === 'DRYRUN_AUDIT_LOG_ONLY') return 'dry-run';
  return 'enforced';
}

function firstReason(d: import('../core/evaluation/decision.js').Decision): string {
  const denied = d.images.find((i) => i.verdict === 'DENIED');
  return denied?.reason ?? d.images[0]?.reason ?? 'NONE';
}

/** Runs a later start-up step; if it fails, the main listener is closed so the process can exit. */
async function closeOnFailure<T>(server: Server, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw e;
  }
}
