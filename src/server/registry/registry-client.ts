/**
 * A small OCI Distribution API client that does one thing: resolve `name:tag` to the digest the
 * registry serves for it, the way a container runtime would pull it. Used by tag resolution for
 * decisions (`--resolve-tags`) and by Cloud Run-style deploys, which pin revisions to a digest.
 *
 * - `HEAD /v2/<repository>/manifests/<tag>` with an Accept header for OCI index/manifest and
 *   Docker v2 manifest list/manifest; the digest is `Docker-Content-Digest`, or, when the
 *   registry sends none (or does not do HEAD), the sha256 of the body of a GET.
 * - For a multi-arch image this is the digest of the index (manifest list), which is what the
 *   tag names; attestations must be made on that digest (docs/registries.md).
 * - Authentication answers the registry's challenge: `Bearer realm=…,service=…,scope=…` → a token
 *   from the realm (anonymous, with basic credentials, or with an identity token as an OAuth2
 *   refresh token), `Basic` → basic credentials. Authorization headers that worked are reused for
 *   the same repository until the token expires.
 * - Docker Hub: `docker.io` is spoken to at `registry-1.docker.io`; the core already adds `library/`.
 * - Every resolution has one deadline covering every request it makes (token calls included) and
 *   the reading of bodies; it is enforced even when the fetch implementation ignores its signal.
 * - Never throws: failures are Problems whose codes are in REGISTRY_PROBLEM and whose messages
 *   start with `registry unreachable`, `manifest unknown`, `unauthorized`, `deadline exceeded
 *   after N ms` or `registry error`. Messages never contain credentials or tokens.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { DOCKER_HUB_REGISTRY, normalizeDigest, type ImageReference } from '../../core/image/reference.js';
import { err, ok, problem, type Problem, type Result } from '../../core/result.js';
import { NO_CREDENTIALS, normalizeCredentialKey, type RegistryAuth, type RegistryCredentials } from './credentials.js';
import { BoundedMap } from '../bounded-map.js';

export type { RegistryAuth, RegistryCredentials } from './credentials.js';

export interface ResolvedDigest {
  /** `sha256:<64 hex>` (or `sha512:…`): the digest of the manifest or index the tag points at. */
  readonly digest: string;
  /** The manifest's media type from Content-Type (`application/vnd.oci.image.index.v1+json`, …); '' when unknown. */
  readonly mediaType: string;
}

export interface RegistryClient {
  /**
   * Resolves `ref.tag` (`latest` when the reference has neither tag nor digest) to a digest. A
   * reference that already has a digest is answered from it with no network call (mediaType '').
   */
  resolveDigest(ref: ImageReference, opts?: { deadlineMs?: number }): Promise<Result<ResolvedDigest, Problem>>;
}

export interface RegistryClientOptions {
  readonly credentials?: RegistryCredentials;
  /** Deadline of one resolution when the caller gives none. Default 5000 ms. */
  readonly defaultDeadlineMs?: number;
  /** `host[:port]` spoken to over plain http (Docker's "insecure registries"). */
  readonly insecureRegistries?: readonly string[];
  /** Replaces the global fetch (tests count calls with it). */
  readonly fetchImpl?: typeof fetch;
  /** PEM file of extra CA certificates trusted for https registries and token services (read once, here; throws if unreadable). */
  readonly caFile?: string;
}

/** Problem codes of registry failures. */
export const REGISTRY_PROBLEM = {
  UNREACHABLE: 'REGISTRY_UNREACHABLE',
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  UNAUTHORIZED: 'REGISTRY_UNAUTHORIZED',
  DEADLINE_EXCEEDED: 'REGISTRY_DEADLINE_EXCEEDED',
  ERROR: 'REGISTRY_ERROR',
} as const;

export const DEFAULT_REGISTRY_DEADLINE_MS = 5000;

/** What the client accepts, most specific first; the registry answers with the tag's own manifest. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Where Docker Hub's registry API is. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
const MAX_AUTH_CACHE = 512;
const DEFAULT_TOKEN_TTL_S = 60;
const USER_AGENT = 'tollgate-registry-client';

/**
 * One client per server: it keeps the Authorization headers that worked (tokens until they
 * expire), so share it between the tag resolver and Cloud Run deploys. Reads `caFile` now.
 */
export function createRegistryClient(opts: RegistryClientOptions = {}): RegistryClient {
  const credentials = opts.credentials ?? NO_CREDENTIALS;
  const defaultDeadlineMs = opts.defaultDeadlineMs ?? DEFAULT_REGISTRY_DEADLINE_MS;
  const insecure = new Set<string>();
  for (const entry of opts.insecureRegistries ?? []) {
    const host = normalizeCredentialKey(entry);
    if (host !== undefined) insecure.add(host);
  }
  const fetchImpl: typeof fetch =
    opts.fetchImpl ?? (opts.caFile !== undefined ? fetchTrusting(readFileSync(opts.caFile, 'utf8')) : globalThis.fetch);
  /** `registry/repository` → an Authorization header that worked, until it expires. */
  const authCache = new BoundedMap<string, { header: string; expiresAt: number }>(MAX_AUTH_CACHE);

  return {
    async resolveDigest(ref, callOpts) {
      if (ref.digest !== undefined) return ok({ digest: ref.digest, mediaType: '' });
      const ms = clampDeadline(callOpts?.deadlineMs ?? defaultDeadlineMs);
      const tag = ref.tag ?? 'latest';
      const shown = `${ref.name}:${tag}`;
      const deadline = new Deadline(ms);
      try {
        return ok(await resolve(ref, tag, shown, deadline));
      } catch (e) {
        if (deadline.expired) {
          return err(problem(REGISTRY_PROBLEM.DEADLINE_EXCEEDED, `deadline exceeded after ${ms} ms resolving ${shown} (${deadline.phase})`));
        }
        if (e instanceof RegistryFailure) return err(problem(e.code, e.message));
        return err(problem(REGISTRY_PROBLEM.ERROR, `registry error resolving ${shown}: ${describe(e)}`));
      } finally {
        deadline.dispose();
      }
    },
  };

  async function resolve(ref: ImageReference, tag: string, shown: string, deadline: Deadline): Promise<ResolvedDigest> {
    const apiHost = ref.registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB_API_HOST : ref.registry;
    const plainHttp = insecure.has(ref.registry) || insecure.has(apiHost);
    const url = `${plainHttp ? 'http' : 'https'}://${apiHost}/v2/${ref.repository}/manifests/${encodeURIComponent(tag)}`;
    const auth = credentials.lookup(ref.registry);
    const cacheKey = `${ref.registry}/${ref.repository}`;
    const ctx: CallContext = { ref, shown, apiHost, plainHttp, auth, deadline };

    let authorization = cachedAuthorization(cacheKey) ?? (auth?.registryToken !== undefined ? `Bearer ${auth.registryToken}` : undefined);
    let method: 'HEAD' | 'GET' = 'HEAD';
    let res = await manifestRequest(ctx, method, url, authorization);
    if (res.status === 401) {
      discard(res);
      authCache.delete(cacheKey);
      const answered = await answerChallenge(ctx, res.headers.get('www-authenticate'));
      authorization = answered.header;
      res = await manifestRequest(ctx, method, url, authorization);
      if (res.status === 401) {
        discard(res);
        throw unauthorized(ctx, `the registry refused ${who(auth)} after authenticating (${describeChallenge(res)})`);
      }
      if (res.ok) authCache.set(cacheKey, answered);
    }
    if (res.status === 405 || res.status === 501) {
      // A registry that does not do HEAD on manifests.
      discard(res);
      method = 'GET';
      res = await manifestRequest(ctx, method, url, authorization);
    }
    if (!res.ok) {
      const detail = method === 'GET' ? await errorDetail(res, deadline) : '';
      discard(res);
      throw statusFailure(ctx, res.status, detail);
    }

    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const header = res.headers.get('docker-content-digest')?.trim();
    if (method === 'HEAD' && header !== undefined && header !== '') {
      return { digest: checkedDigest(ctx, header), mediaType };
    }
    if (method === 'HEAD') {
      // No Docker-Content-Digest: fetch the manifest and hash it.
      method = 'GET';
      res = await manifestRequest(ctx, method, url, authorization);
      if (!res.ok) {
        const detail = await errorDetail(res, deadline);
        throw statusFailure(ctx, res.status, detail);
      }
    }
    deadline.phase = `reading the manifest from ${apiHost}`;
    const body = await readLimited(res, MAX_MANIFEST_BYTES, deadline);
    if (body === undefined) throw new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: the manifest of ${shown} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const sent = res.headers.get('docker-content-digest')?.trim();
    if (sent !== undefined && sent !== '' && sent.startsWith('sha256:') && sent.toLowerCase() !== digest) {
      throw new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: ${apiHost} sent Docker-Content-Digest ${clip(sent)} for ${shown} but the manifest's sha256 is ${digest}`);
    }
    return { digest, mediaType: (res.headers.get('content-type') ?? mediaType).split(';')[0]?.trim() ?? '' };
  }

  async function manifestRequest(ctx: CallContext, method: 'HEAD' | 'GET', url: string, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { accept: MANIFEST_ACCEPT, 'user-agent': USER_AGENT };
    if (authorization !== undefined) headers['authorization'] = authorization;
    ctx.deadline.phase = `waiting for ${ctx.apiHost}`;
    try {
      return await ctx.deadline.race(fetchImpl(url, { method, headers, signal: ctx.deadline.signal, redirect: 'follow' }));
    } catch (e) {
      if (ctx.deadline.expired) throw e;
      throw unreachable(ctx.apiHost, e, ctx.plainHttp);
    }
  }

  async function answerChallenge(ctx: CallContext, header: string | null): Promise<{ header: string; expiresAt: number }> {
    const challenges = header === null ? [] : parseWwwAuthenticate(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer !== undefined) return fetchToken(ctx, bearer);
    if (basic !== undefined) {
      const { auth } = ctx;
      if (auth?.username === undefined || auth.password === undefined) {
        throw unauthorized(ctx, `the registry requires a user name and password (Basic) and none are configured for ${ctx.ref.registry}`);
      }
      return { header: basicHeader(auth.username, auth.password), expiresAt: Number.POSITIVE_INFINITY };
    }
    const shownHeader = header === null ? 'no WWW-Authenticate header' : `WWW-Authenticate ${clip(header)}`;
    throw unauthorized(ctx, `the registry answered 401 with ${shownHeader}, which Tollgate cannot answer`);
  }

  async function fetchToken(ctx: CallContext, challenge: AuthChallenge): Promise<{ header: string; expiresAt: number }> {
    const { auth, deadline } = ctx;
    const realmText = challenge.params['realm'];
    let realm: URL;
    try {
      if (realmText === undefined) throw new Error('missing');
      realm = new URL(realmText);
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new Error('not http(s)');
    } catch {
      throw unauthorized(ctx, `the registry's Bearer challenge has no usable realm (${clip(realmText ?? 'none')})`);
    }
    const hasSecret = auth !== undefined && (auth.password !== undefined || auth.identityToken !== undefined);
    if (hasSecret && realm.protocol === 'http:' && !ctx.plainHttp) {
      throw unauthorized(ctx, `refusing to send the credentials for ${ctx.ref.registry} to the plain-http token service ${realm.host}`);
    }
    const service = challenge.params['service'];
    const scopes = (challenge.params['scope'] ?? `repository:${ctx.ref.repository}:pull`).split(' ').filter((s) => s !== '');
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    let init: RequestInit;
    if (auth?.identityToken !== undefined) {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: auth.identityToken, client_id: USER_AGENT });
      if (service !== undefined) form.set('service', service);
      form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      init = { method: 'POST', headers, body: form.toString() };
    } else {
      if (service !== undefined) realm.searchParams.set('service', service);
      for (const scope of scopes) realm.searchParams.append('scope', scope);
      if (auth?.username !== undefined && auth.password !== undefined) headers['authorization'] = basicHeader(auth.username, auth.password);
      init = { method: 'GET', headers };
    }
    deadline.phase = `waiting for the token service ${realm.host}`;
    let res: Response;
    try {
      res = await deadline.race(fetchImpl(realm.toString(), { ...init, signal: deadline.signal, redirect: 'follow' }));
    } catch (e) {
      if (deadline.expired) throw e;
      throw unreachable(`token service ${realm.host}`, e, realm.protocol === 'http:');
    }
    if (res.status === 401 || res.status === 403) {
      discard(res);
      throw unauthorized(ctx, `the token service ${realm.host} refused ${who(auth)} (HTTP ${res.status})`);
    }
    if (!res.ok) {
      discard(res);
      throw new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: the token service ${realm.host} answered HTTP ${res.status} for ${ctx.shown}`);
    }
    deadline.phase = `reading the token from ${realm.host}`;
    const body = await readLimited(res, MAX_TOKEN_RESPONSE_BYTES, deadline);
    let token: unknown;
    let expiresIn: unknown;
    try {
      const json = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
      token = json['token'] ?? json['access_token'];
      expiresIn = json['expires_in'];
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: the token service ${realm.host} answered without a token`);
    }
    const ttl = typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_TOKEN_TTL_S;
    // Reuse a token for 90% of its life, so it is not sent just as it expires.
    return { header: `Bearer ${token}`, expiresAt: Date.now() + ttl * 900 };
  }

  function cachedAuthorization(key: string): string | undefined {
    const hit = authCache.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt <= Date.now()) {
      authCache.delete(key);
      return undefined;
    }
    return hit.header;
  }
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate

export interface AuthChallenge {
  /** Lower-cased auth scheme: `bearer`, `basic`, … */
  readonly scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a WWW-Authenticate header value (RFC 7235): one or more challenges, each a scheme and
 * comma-separated `name=value` parameters whose values may be quoted strings with `\` escapes
 * (and so contain commas). A token68 after a scheme is skipped. Never throws; malformed input
 * yields the challenges that could be read.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  const s = header;
  let i = 0;
  const skipSpace = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  let current: { scheme: string; params: Record<string, string> } | undefined;
  while (i < s.length) {
    skipSpace();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const token = readToken();
    if (token === '') {
      i++; // an unexpected character: skip it
      continue;
    }
    skipSpace();
    if (s[i] === '=' && current !== undefined && s[i + 1] !== '=') {
      // name=value of the current challenge
      i++;
      skipSpace();
      let value: string;
      if (s[i] === '"') {
        i++;
        value = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++; // closing quote
      } else {
        const vStart = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
        value = s.slice(vStart, i);
      }
      const name = token.toLowerCase();
      if (!(name in current.params)) current.params[name] = value;
      continue;
    }
    // a new challenge: `scheme` followed by params or a token68
    i = start + token.length;
    current = { scheme: token.toLowerCase(), params: {} };
    out.push(current);
    skipSpace();
    const t68 = /^[A-Za-z0-9._~+/-]+=*(?=\s*(,|$))/.exec(s.slice(i));
    if (t68 !== null && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=[^=]/.test(s.slice(i))) i += t68[0].length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Failures

class RegistryFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface CallContext {
  readonly ref: ImageReference;
  readonly shown: string;
  readonly apiHost: string;
  readonly plainHttp: boolean;
  readonly auth: RegistryAuth | undefined;
  readonly deadline: Deadline;
}

function unauthorized(ctx: CallContext, why: string): RegistryFailure {
  return new RegistryFailure(REGISTRY_PROBLEM.UNAUTHORIZED, `unauthorized: cannot read ${ctx.shown}: ${why}`);
}

function statusFailure(ctx: CallContext, status: number, detail: string): RegistryFailure {
  const extra = detail === '' ? '' : `: ${detail}`;
  if (status === 404) {
    return new RegistryFailure(
      REGISTRY_PROBLEM.MANIFEST_UNKNOWN,
      `manifest unknown: ${ctx.apiHost} has no manifest for ${ctx.shown} (HTTP 404: no such tag or repository)${extra}`,
    );
  }
  if (status === 403) return unauthorized(ctx, `access denied for ${who(ctx.auth)} (HTTP 403)${extra}`);
  if (status === 400 && ctx.plainHttp) {
    return new RegistryFailure(
      REGISTRY_PROBLEM.ERROR,
      `registry error: ${ctx.apiHost} answered HTTP 400 to plain http resolving ${ctx.shown}; if it speaks https, do not list it as an insecure registry`,
    );
  }
  if (status === 429) return new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: ${ctx.apiHost} is rate limiting (HTTP 429) resolving ${ctx.shown}`);
  return new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: ${ctx.apiHost} answered HTTP ${status} resolving ${ctx.shown}${extra}`);
}

function unreachable(what: string, e: unknown, plainHttp: boolean): RegistryFailure {
  const cause = (e as { cause?: unknown } | undefined)?.cause ?? e;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const codeText = typeof code === 'string' ? code : '';
  const text = describe(cause);
  let why = codeText === '' || text.includes(codeText) ? text : text === '' ? codeText : `${codeText}: ${text}`;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(codeText)) {
    why = `its TLS certificate is not trusted (${codeText}): give its CA certificate to Tollgate`;
  } else if (!plainHttp && /SSL|EPROTO/.test(codeText)) {
    why = `TLS handshake failed (${codeText}); if it speaks plain http, list it as an insecure registry`;
  }
  return new RegistryFailure(REGISTRY_PROBLEM.UNREACHABLE, `registry unreachable: ${what}: ${clip(why, 200)}`);
}

function checkedDigest(ctx: CallContext, header: string): string {
  const d = normalizeDigest(header);
  if (!d.ok || !/^sha(256|512):/.test(d.value)) {
    throw new RegistryFailure(REGISTRY_PROBLEM.ERROR, `registry error: ${ctx.apiHost} sent an invalid Docker-Content-Digest ${clip(header)} for ${ctx.shown}`);
  }
  return d.value;
}

function describeChallenge(res: Response): string {
  const header = res.headers.get('www-authenticate');
  if (header === null) return 'HTTP 401';
  const error = parseWwwAuthenticate(header)[0]?.params['error'];
  return error === undefined ? 'HTTP 401' : `HTTP 401, ${clip(error, 60)}`;
}

function who(auth: RegistryAuth | undefined): string {
  if (auth === undefined) return 'anonymous access (no credentials are configured for this registry)';
  if (auth.username !== undefined) return `the credentials of user ${clip(auth.username, 64)}`;
  return 'the configured token';
}

async function errorDetail(res: Response, deadline: Deadline): Promise<string> {
  try {
    const body = await readLimited(res, 64 * 1024, deadline);
    if (body === undefined) return '';
    const json = JSON.parse(new TextDecoder().decode(body)) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = json.errors?.[0];
    if (first === undefined) return '';
    return clip([first.code, first.message].filter((x) => typeof x === 'string').join(' '), 200);
  } catch (e) {
    if (deadline.expired) throw e;
    return '';
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Printable ASCII only, at most `max` characters: registry text is untrusted. */
function clip(text: string, max = 120): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

function basicHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

function discard(res: Response): void {
  if (res.body !== null && !res.bodyUsed) res.body.cancel().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// The deadline: one timer for a whole resolution.

class Deadline {
  readonly signal: AbortSignal;
  expired = false;
  /** What the resolution is doing, for the deadline message. */
  phase = 'starting';
  private readonly timer: NodeJS.Timeout;
  private readonly whenExpired: Promise<never>;

  constructor(ms: number) {
    const controller = new AbortController();
    this.signal = controller.signal;
    this.whenExpired = new Promise<never>((_, reject) => {
      this.signal.addEventListener('abort', () => reject(new Error('deadline exceeded')), { once: true });
    });
    this.whenExpired.catch(() => undefined);
    this.timer = setTimeout(() => {
      this.expired = true;
      controller.abort(new DOMException(`deadline of ${ms} ms exceeded`, 'TimeoutError'));
    }, ms);
  }

  /** `p`, or a rejection when the deadline passes first (even if `p` ignores the signal). */
  race<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined);
    return Promise.race([p, this.whenExpired]);
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

function clampDeadline(ms: number): number {
  if (!Number.isFinite(ms) || ms < 1) return 1;
  return Math.min(Math.floor(ms), 2_147_483_647);
}

/** The body, or undefined when it is longer than `max` bytes. Bounded by the deadline. */
async function readLimited(res: Response, max: number, deadline: Deadline): Promise<Uint8Array | undefined> {
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await deadline.race(reader.read());
      if (done) break;
      total += value.byteLength;
      if (total > max) return undefined;
      chunks.push(value);
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A fetch that trusts extra CAs. Node's global fetch takes no CA option, so https goes through
// node:https with the system roots plus the given PEM; plain http goes to the global fetch.

function fetchTrusting(caPem: string): typeof fetch {
  const agent = new Agent({ ca: [...rootCertificates, caPem], keepAlive: true });
  const one = (url: URL, init: RequestInit): Promise<Response> =>
    new Promise<Response>((resolvePromise, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => {
        headers[k] = v;
      });
      const method = init.method ?? 'GET';
      const req = httpsRequest(url, { method, headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
        const out = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string);
        const status = res.statusCode ?? 502;
        const noBody = method === 'HEAD' || status === 204 || status === 304;
        if (noBody) res.resume();
        const body = noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolvePromise(new Response(body, { status, headers: out }));
      });
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      if (typeof init.body === 'string') req.end(init.body);
      else req.end();
    });
  const trustingFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    let url = new URL(input instanceof Request ? input.url : input.toString());
    if (url.protocol !== 'https:') return globalThis.fetch(input, init);
    let current = init;
    for (let hop = 0; ; hop++) {
      const res = await one(url, current);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || location === null || current.redirect === 'manual' || hop >= 5) return res;
      discard(res);
      const next = new URL(location, url);
      const headers = new Headers(current.headers);
      if (next.origin !== url.origin) headers.delete('authorization');
      const method = res.status === 303 ? 'GET' : (current.method ?? 'GET');
      current = { ...current, method, headers };
      url = next;
      if (url.protocol !== 'https:') return globalThis.fetch(url, current);
    }
  };
  return trustingFetch as typeof fetch;
}
