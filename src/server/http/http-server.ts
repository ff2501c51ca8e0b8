/**
 * The HTTP edge: one listener for every Google API. It accepts absolute-form request targets
 * (gcloud sends them when its proxy points here), authenticates the bearer token, routes, and
 * turns every failure into Google's JSON error envelope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../errors.js';
import { yamlOnUse } from '../yaml-on-use.js';
import type { Principal } from '../iam/principal.js';
import type { Logger } from '../log.js';
import type { HttpMethod, RequestContext, Router } from './router.js';

export interface HttpDeps {
  readonly routers: readonly Router[];
  /** Resolves a bearer token to its principal; undefined when unknown, expired or revoked. */
  authenticate(token: string): Promise<Principal | undefined>;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  /** Called once per answered request (metrics). */
  observe?(info: { method: string; route: string; status: number; seconds: number }): void;
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

export function createRequestListener(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = process.hrtime.bigint();
    let route = 'unmatched';
    handle(req, deps, (r) => { route = r; })
      .then(
        (result) => send(res, result.status ?? 200, result),
        (e: unknown) => {
          const error = e instanceof ApiError ? e : internal(e, deps.logger, req);
          send(res, error.httpStatus, { body: error.toBody() });
        },
      )
      .finally(() => {
        deps.observe?.({ method: req.method ?? '', route, status: res.statusCode, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
      });
  };
}

async function handle(req: IncomingMessage, deps: HttpDeps, setRoute: (r: string) => void) {
  const target = parseTarget(req);
  const method = (req.method ?? 'GET').toUpperCase();
  if (!METHODS.has(method)) throw new ApiError('INVALID_ARGUMENT', `HTTP method ${method} is not supported`);
  for (const router of deps.routers) {
    const m = router.match(method, target.path);
    if (m.kind === 'none') continue;
    if (m.kind === 'method-not-allowed') {
      throw new ApiError('NOT_FOUND', `${method} is not a method of ${target.path} (allowed: ${m.allowed.join(', ')})`);
    }
    setRoute(`${router.api} ${m.template}`);
    const principal = m.options.public === true ? undefined : await authenticate(req, deps);
    const ctx = context(req, method as HttpMethod, target, m.params, principal, deps.maxBodyBytes);
    return m.handler(ctx);
  }
  throw new ApiError('NOT_FOUND', `Tollgate serves no method at ${method} ${target.path}`);
}

async function authenticate(req: IncomingMessage, deps: HttpDeps): Promise<Principal> {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (m === null) {
    throw new ApiError('UNAUTHENTICATED', 'Request is missing required authentication credential. Expected an OAuth 2 access token (Authorization: Bearer TOKEN); `tollgate gcloud-config` sets one up for gcloud.');
  }
  const principal = await deps.authenticate(m[1] as string);
  if (principal === undefined) throw new ApiError('UNAUTHENTICATED', 'Request had invalid authentication credentials: the access token is unknown, expired or revoked.');
  return principal;
}

interface Target { path: string; query: URLSearchParams; host: string }

/** Origin-form (`/v1/…`) or absolute-form (`http://host/v1/…`, what an HTTP proxy receives). */
function parseTarget(req: IncomingMessage): Target {
  const raw = req.url ?? '/';
  // Split the authority off by hand: WHATWG URL parsing rejects Cloud Run's regional hosts such
  // as `us-central1-127.0.0.1` (a last label that is a number must be an IPv4 address).
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)(.*)$/i.exec(raw);
  const host = absolute !== null ? (absolute[1] as string) : (req.headers.host ?? '');
  const rest = absolute !== null ? (absolute[2] as string) : raw;
  let url: URL;
  try {
    url = new URL(rest.startsWith('/') ? rest : `/${rest}`, 'http://tollgate.invalid');
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'malformed request target');
  }
  let path: string;
  try {
    path = url.pathname.split('/').map((s) => decodeURIComponent(s)).join('/');
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'malformed percent-encoding in the request path');
  }
  // Google's front end accepts a trailing slash before the query (`…/notes/?noteId=`).
  if (path.length > 1 && path.endsWith('/')) path = path.replace(/\/+$/, '');
  return { path, query: url.searchParams, host };
}

function context(req: IncomingMessage, method: HttpMethod, target: Target, params: Record<string, string>, principal: Principal | undefined, max: number): RequestContext {
  let body: Promise<Buffer> | undefined;
  const rawBody = () => (body ??= readBody(req, max));
  return {
    method,
    path: target.path,
    query: target.query,
    params,
    headers: req.headers,
    host: target.host,
    principal,
    rawBody,
    async json() {
      const buf = await rawBody();
      return parseJsonBody(buf.toString('utf8'));
    },
  };
}

/** JSON, leniently: Google's front end also takes single-quoted strings (the codelab's IAM request). */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (jsonError) {
    if (text.includes("'")) {
      const { parse: parseYaml } = yamlOnUse();
      try {
        const v = parseYaml(text, { schema: 'json', maxAliasCount: 0 }) as unknown;
        if (typeof v === 'object' && v !== null) return v;
      } catch {
        // fall through to the JSON error, which is the clearer one
      }
    }
    throw new ApiError('INVALID_ARGUMENT', `Invalid JSON payload received. ${(jsonError as Error).message}`);
  }
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new ApiError('INVALID_ARGUMENT', `Request payload size exceeds the limit: ${max} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, result: { body?: unknown; raw?: { contentType: string; data: string | Buffer }; headers?: Readonly<Record<string, string>> }): void {
  if (res.headersSent) return;
  for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
  if (result.raw !== undefined) {
    res.writeHead(status, { 'content-type': result.raw.contentType, 'content-length': Buffer.byteLength(result.raw.data) });
    res.end(result.raw.data);
    return;
  }
  const text = `${JSON.stringify(result.body ?? {})}\n`;
  // With its length stated, the answer goes out in one write instead of as chunks.
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function internal(e: unknown, logger: Logger, req: IncomingMessage): ApiError {
  // Detail goes to the log only; the client gets a generic message (it may hold internals).
  logger.error('internal error', { method: req.method, path: req.url?.split('?')[0], error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  return new ApiError('INTERNAL', 'Internal error encountered.');
}
