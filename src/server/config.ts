/**
 * Server configuration: every flag also has an environment variable (flag wins). Parsed into a
 * plain object so the rest of the server never reads the environment itself.
 */
import { resolve } from 'node:path';

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
}

export const DEFAULT_DATA_DIR = './tollgate-data';
export const DEFAULT_LISTEN = '127.0.0.1:7420';

export interface ServeFlags {
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
  return {
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

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]*):(\d+)$/.exec(value);
  if (m === null) throw new ConfigError(`--listen must be HOST:PORT, not ${value}`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`--listen port out of range: ${value}`);
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}
