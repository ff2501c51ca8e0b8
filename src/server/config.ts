/**
 * Server configuration: every flag also has an environment variable (flag wins). Parsed into a
 * plain object so the rest of the server never reads the environment itself.
 */
import { resolve } from 'node:path';
import { durationSeconds } from './duration.js';
import { parseRunRuntimeConfig, type RuntimeConfig } from './run/index.js';

export interface ServerConfig {
  readonly dataDir: string;
  readonly listenHost: string;
  readonly listenPort: number;
  /** `postgres://…`, or a SQLite file path. */
  readonly database: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Base URL clients use; defaults to the listen address. */
  readonly publicUrl?: string;
  readonly maxRequestBytes: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** TOLLGATE_MASTER_KEY: base64 of 32 bytes (required with PostgreSQL). */
  readonly masterKey?: string;
  /** The Kubernetes admission webhook's own TLS listener, when set. */
  readonly webhookListen?: string;
  readonly webhookCert?: string;
  readonly webhookKey?: string;
  readonly webhookClientCa?: string;
  /** Serve /metrics on a listener of its own instead of the main one. */
  readonly metricsListen?: string;
  /** Resolve tags to digests through the registry before deciding. */
  readonly resolveTags: boolean;
  readonly registryConfig?: string;
  readonly insecureRegistries: readonly string[];
  /** Where decision audit entries are also written as JSON lines: a file, `-` for stdout, or `off`. */
  readonly auditLog: string;
  /** Where admitted Cloud Run-style revisions run: `none` (default) or an `exec` command. */
  readonly runRuntime: RuntimeConfig;
  /** Where P-256 and RSA signature verifications run (services/verify-placement.ts). */
  readonly verifyPlacement: VerifyPlacementMode;
  /** How long audit entries are kept, in seconds; undefined: for ever (audit/retention.ts). */
  readonly auditRetentionSeconds?: number;
}

/** Cloud Logging keeps Admin Activity and System Event audit logs (its `_Required` bucket) 400 days. */
export const DEFAULT_AUDIT_RETENTION = '400d';

export const VERIFY_PLACEMENTS = ['adaptive', 'in-place', 'pool'] as const;
export type VerifyPlacementMode = (typeof VERIFY_PLACEMENTS)[number];

export const DEFAULT_DATA_DIR = './tollgate-data';
export const DEFAULT_LISTEN = '127.0.0.1:7420';

export interface ServeFlags {
  runRuntime?: string;
  runRuntimeExec?: string;
  runRuntimeTimeout?: string;
  webhookListen?: string;
  webhookCert?: string;
  webhookKey?: string;
  webhookClientCa?: string;
  metricsListen?: string;
  resolveTags?: boolean;
  registryConfig?: string;
  insecureRegistry?: string[];
  auditLog?: string;
  auditRetention?: string;
  verifyPlacement?: string;
  dataDir?: string;
  listen?: string;
  database?: string;
  tlsCert?: string;
  tlsKey?: string;
  publicUrl?: string;
  maxRequestBytes?: string;
  logLevel?: string;
}

export function resolveServerConfig(flags: ServeFlags, env: NodeJS.ProcessEnv): ServerConfig {
  const dataDir = resolve(flags.dataDir ?? env['TOLLGATE_DATA_DIR'] ?? DEFAULT_DATA_DIR);
  const { host, port } = parseListen(flags.listen ?? env['TOLLGATE_LISTEN'] ?? DEFAULT_LISTEN);
  const database = flags.database ?? env['TOLLGATE_DATABASE'] ?? resolve(dataDir, 'tollgate.db');
  const tlsCert = flags.tlsCert ?? env['TOLLGATE_TLS_CERT'];
  const tlsKey = flags.tlsKey ?? env['TOLLGATE_TLS_KEY'];
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  const maxRaw = flags.maxRequestBytes ?? env['TOLLGATE_MAX_REQUEST_BYTES'] ?? String(10 * 1024 * 1024);
  const maxRequestBytes = Number(maxRaw);
  if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < 1024) throw new ConfigError(`--max-request-bytes must be an integer ≥ 1024, not ${maxRaw}`);
  const logLevel = flags.logLevel ?? env['TOLLGATE_LOG_LEVEL'] ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`--log-level must be debug, info, warn or error, not ${logLevel}`);
  const publicUrl = flags.publicUrl ?? env['TOLLGATE_PUBLIC_URL'];
  const masterKey = env['TOLLGATE_MASTER_KEY'];
  const webhookListen = flags.webhookListen ?? env['TOLLGATE_WEBHOOK_LISTEN'];
  if (webhookListen !== undefined) parseListen(webhookListen);
  const webhookCert = flags.webhookCert ?? env['TOLLGATE_WEBHOOK_CERT'];
  const webhookKey = flags.webhookKey ?? env['TOLLGATE_WEBHOOK_KEY'];
  if ((webhookCert === undefined) !== (webhookKey === undefined)) throw new ConfigError('--webhook-cert and --webhook-key go together');
  const webhookClientCa = flags.webhookClientCa ?? env['TOLLGATE_WEBHOOK_CLIENT_CA'];
  const metricsListen = flags.metricsListen ?? env['TOLLGATE_METRICS_LISTEN'];
  if (metricsListen !== undefined) parseListen(metricsListen);
  const resolveTags = flags.resolveTags ?? /^(1|true|yes)$/i.test(env['TOLLGATE_RESOLVE_TAGS'] ?? '');
  const registryConfig = flags.registryConfig ?? env['TOLLGATE_REGISTRY_CONFIG'];
  const insecureRegistries = flags.insecureRegistry ?? (env['TOLLGATE_INSECURE_REGISTRIES'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const auditLog = flags.auditLog ?? env['TOLLGATE_AUDIT_LOG'] ?? '-';
  const verifyPlacement = flags.verifyPlacement ?? env['TOLLGATE_VERIFY_PLACEMENT'] ?? 'adaptive';
  if (!(VERIFY_PLACEMENTS as readonly string[]).includes(verifyPlacement)) {
    throw new ConfigError(`--verify-placement must be one of ${VERIFY_PLACEMENTS.join(', ')}, not ${verifyPlacement}`);
  }
  const auditRetentionSeconds = parseAuditRetention(flags.auditRetention ?? env['TOLLGATE_AUDIT_RETENTION'] ?? DEFAULT_AUDIT_RETENTION);
  let runRuntime: RuntimeConfig;
  try {
    runRuntime = parseRunRuntimeConfig({ runRuntime: flags.runRuntime, runRuntimeExec: flags.runRuntimeExec, runRuntimeTimeout: flags.runRuntimeTimeout }, env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const optional = { webhookListen, webhookCert, webhookKey, webhookClientCa, metricsListen, registryConfig };
  return {
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    resolveTags,
    insecureRegistries,
    auditLog,
    runRuntime,
    verifyPlacement: verifyPlacement as VerifyPlacementMode,
    ...(auditRetentionSeconds === undefined ? {} : { auditRetentionSeconds }),
    dataDir,
    listenHost: host,
    listenPort: port,
    database,
    maxRequestBytes,
    logLevel: logLevel as ServerConfig['logLevel'],
    ...(tlsCert === undefined ? {} : { tlsCert, tlsKey }),
    ...(publicUrl === undefined ? {} : { publicUrl: publicUrl.replace(/\/+$/, '') }),
    ...(masterKey === undefined || masterKey === '' ? {} : { masterKey }),
  };
}

export class ConfigError extends Error {}

/**
 * `forever` (keep everything), or a duration of at least an hour: shorter would remove entries
 * about as soon as they are written, which no one wants from an audit log.
 */
function parseAuditRetention(value: string): number | undefined {
  if (value.trim().toLowerCase() === 'forever') return undefined;
  const seconds = durationSeconds(value);
  if (seconds === undefined || !(seconds >= 3600)) throw new ConfigError(`--audit-retention must be a duration of at least 1h (such as 400d, 30d or 12h) or forever, not ${value}`);
  return seconds;
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]*):(\d+)$/.exec(value);
  if (m === null) throw new ConfigError(`--listen must be HOST:PORT, not ${value}`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`--listen port out of range: ${value}`);
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}
