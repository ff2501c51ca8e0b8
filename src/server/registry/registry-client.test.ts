import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseImageReference, type ImageReference } from '../../core/image/reference.js';
import { staticCredentials } from './credentials.js';
import { createRegistryClient, MANIFEST_ACCEPT, parseWwwAuthenticate, REGISTRY_PROBLEM } from './registry-client.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function ref(text: string): ImageReference {
  const r = parseImageReference(text);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

interface Call {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

type Handler = (call: Call) => Response | Promise<Response>;

/** A fetch that answers from `handler` and records every call. */
function fakeFetch(handler: Handler): { fetchImpl: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetchImpl = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const call: Call = { method: init.method ?? 'GET', url: String(input), headers, body: typeof init.body === 'string' ? init.body : undefined };
    calls.push(call);
    return handler(call);
  }) as typeof fetch;
  return { fetchImpl, calls };
}

const manifestOk = (digest = DIGEST, mediaType = OCI_MANIFEST): Response =>
  new Response(null, { status: 200, headers: { 'docker-content-digest': digest, 'content-type': mediaType } });

describe('parseWwwAuthenticate', () => {
  it("reads Docker Hub's Bearer challenge", () => {
    expect(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'),
    ).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' } },
    ]);
  });

  it('reads Basic, unquoted values, spaces and case', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseWwwAuthenticate('BEARER Realm=https://x/token , Service = reg')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://x/token', service: 'reg' } },
    ]);
  });

  it('reads quoted commas, escapes and an error parameter', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://a/t",service="s",scope="repository:a/b:pull,push",error="insufficient_scope",note="say \\"hi\\", ok"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://a/t', service: 's', scope: 'repository:a/b:pull,push', error: 'insufficient_scope', note: 'say "hi", ok' },
      },
    ]);
  });

  it('splits several challenges, token68 included', () => {
    expect(parseWwwAuthenticate('Negotiate abc123==, Basic realm="r", Bearer realm="https://t",service="s"')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'r' } },
      { scheme: 'bearer', params: { realm: 'https://t', service: 's' } },
    ]);
  });

  it('returns nothing for empty text and never throws', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        expect(Array.isArray(parseWwwAuthenticate(s))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('resolveDigest', () => {
  it('answers a digested reference with no network call', async () => {
    const { fetchImpl, calls } = fakeFetch(() => manifestOk());
    const client = createRegistryClient({ fetchImpl });
    const r = await client.resolveDigest(ref(`example.com/app@${DIGEST}`));
    expect(r).toEqual({ ok: true, value: { digest: DIGEST, mediaType: '' } });
    expect(calls).toHaveLength(0);
  });

  it('HEADs the manifest with every manifest media type accepted; Docker Hub is registry-1.docker.io', async () => {
    const { fetchImpl, calls } = fakeFetch(() => manifestOk(DIGEST, 'application/vnd.oci.image.index.v1+json; charset=x'));
    const client = createRegistryClient({ fetchImpl });
    const r = await client.resolveDigest(ref('nginx:1.25'));
    expect(r).toEqual({ ok: true, value: { digest: DIGEST, mediaType: 'application/vnd.oci.image.index.v1+json' } });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.method).toBe('HEAD');
    expect(calls[0]?.url).toBe('https://registry-1.docker.io/v2/library/nginx/manifests/1.25');
    for (const type of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ]) {
      expect(calls[0]?.headers['accept']).toContain(type);
    }
    expect(calls[0]?.headers['accept']).toBe(MANIFEST_ACCEPT);
  });

  it('uses plain http only for insecure registries, and `latest` for a bare name', async () => {
    const { fetchImpl, calls } = fakeFetch(() => manifestOk());
    const client = createRegistryClient({ fetchImpl, insecureRegistries: ['Localhost:5000', 'http://reg.internal/'] });
    await client.resolveDigest(ref('localhost:5000/team/app'));
    await client.resolveDigest(ref('reg.internal/app:v1'));
    await client.resolveDigest(ref('reg.internal:5000/app:v1'));
    expect(calls.map((c) => c.url)).toEqual([
      'http://localhost:5000/v2/team/app/manifests/latest',
      'http://reg.internal/v2/app/manifests/v1',
      'https://reg.internal:5000/v2/app/manifests/v1',
    ]);
  });

  it('follows the anonymous Bearer flow and reuses the token for the repository', async () => {
    const { fetchImpl, calls } = fakeFetch((c) => {
      if (c.url.startsWith('https://auth.example/token')) return Response.json({ token: 'tok-1', expires_in: 300 });
      if (c.headers['authorization'] === 'Bearer tok-1') return manifestOk();
      return new Response(null, {
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:team/app:pull"' },
      });
    });
    const client = createRegistryClient({ fetchImpl });
    expect((await client.resolveDigest(ref('reg.example/team/app:v1'))).ok).toBe(true);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'HEAD https://reg.example/v2/team/app/manifests/v1',
      'GET https://auth.example/token?service=reg.example&scope=repository%3Ateam%2Fapp%3Apull',
      'HEAD https://reg.example/v2/team/app/manifests/v1',
    ]);
    expect(calls[1]?.headers['authorization']).toBeUndefined();
    // The second resolution of the same repository sends the token straight away.
    expect((await client.resolveDigest(ref('reg.example/team/app:v2'))).ok).toBe(true);
    expect(calls).toHaveLength(4);
    expect(calls[3]?.headers['authorization']).toBe('Bearer tok-1');
  });

  it('sends basic credentials to the token realm, and asks for a pull scope when the challenge has none', async () => {
    const { fetchImpl, calls } = fakeFetch((c) => {
      if (c.url.startsWith('https://auth.example/')) {
        return c.headers['authorization'] === `Basic ${Buffer.from('ci:s3cret').toString('base64')}`
          ? Response.json({ access_token: 'tok-2' })
          : new Response('no', { status: 401 });
      }
      if (c.headers['authorization'] === 'Bearer tok-2') return manifestOk();
      return new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg"' } });
    });
    const creds = staticCredentials({ 'https://reg.example/v1/': { username: 'ci', password: 's3cret' } });
    const ok = await createRegistryClient({ fetchImpl, credentials: creds }).resolveDigest(ref('reg.example/a/b:v1'));
    expect(ok.ok).toBe(true);
    expect(calls[1]?.url).toBe('https://auth.example/token?service=reg&scope=repository%3Aa%2Fb%3Apull');

    const wrong = staticCredentials({ 'reg.example': { username: 'ci', password: 'wrong-secret' } });
    const denied = await createRegistryClient({ fetchImpl, credentials: wrong }).resolveDigest(ref('reg.example/a/b:v1'));
    expect(denied.ok).toBe(false);
    if (denied.ok) return;
    expect(denied.error.code).toBe(REGISTRY_PROBLEM.UNAUTHORIZED);
    expect(denied.error.message).toMatch(/^unauthorized: .*token service auth\.example refused the credentials of user ci \(HTTP 401\)/);
    expect(denied.error.message).not.toContain('wrong-secret');
  });

  it('exchanges an identity token as an OAuth2 refresh token', async () => {
    const { fetchImpl, calls } = fakeFetch((c) => {
      if (c.url === 'https://auth.example/token') return Response.json({ access_token: 'tok-3' });
      if (c.headers['authorization'] === 'Bearer tok-3') return manifestOk();
      return new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"' } });
    });
    const creds = staticCredentials({ 'reg.example': { username: '<token>', identityToken: 'refresh-me' } });
    expect((await createRegistryClient({ fetchImpl, credentials: creds }).resolveDigest(ref('reg.example/a:v1'))).ok).toBe(true);
    expect(calls[1]?.method).toBe('POST');
    const form = new URLSearchParams(calls[1]?.body);
    expect(Object.fromEntries(form)).toMatchObject({ grant_type: 'refresh_token', refresh_token: 'refresh-me', service: 'reg', scope: 'repository:a:pull' });
  });

  it('does not send credentials to a plain-http token realm of an https registry', async () => {
    const { fetchImpl, calls } = fakeFetch(
      () => new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer realm="http://auth.example/token",service="reg"' } }),
    );
    const creds = staticCredentials({ 'reg.example': { username: 'u', password: 'p' } });
    const r = await createRegistryClient({ fetchImpl, credentials: creds }).resolveDigest(ref('reg.example/a:v1'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(REGISTRY_PROBLEM.UNAUTHORIZED);
    expect(r.error.message).toContain('refusing to send the credentials');
    expect(calls).toHaveLength(1);
  });

  it('answers a Basic challenge with credentials, and says when there are none', async () => {
    const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const handler: Handler = (c) =>
      c.headers['authorization'] === basic ? manifestOk() : new Response(null, { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } });
    const withCreds = fakeFetch(handler);
    const creds = staticCredentials({ 'reg.example': { username: 'u', password: 'p' } });
    expect((await createRegistryClient({ fetchImpl: withCreds.fetchImpl, credentials: creds }).resolveDigest(ref('reg.example/a:v1'))).ok).toBe(true);
    expect(withCreds.calls).toHaveLength(2);

    const r = await createRegistryClient({ fetchImpl: fakeFetch(handler).fetchImpl }).resolveDigest(ref('reg.example/a:v1'));
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNAUTHORIZED } });
    if (!r.ok) expect(r.error.message).toContain('none are configured for reg.example');
  });

  it('sends a configured registry token as a bearer token', async () => {
    const { fetchImpl, calls } = fakeFetch((c) => (c.headers['authorization'] === 'Bearer rt' ? manifestOk() : new Response(null, { status: 401 })));
    const creds = staticCredentials({ 'reg.example': { registryToken: 'rt' } });
    expect((await createRegistryClient({ fetchImpl, credentials: creds }).resolveDigest(ref('reg.example/a:v1'))).ok).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it.each([
    [404, REGISTRY_PROBLEM.MANIFEST_UNKNOWN, /^manifest unknown: reg\.example has no manifest for reg\.example\/a:v1/],
    [403, REGISTRY_PROBLEM.UNAUTHORIZED, /^unauthorized: .*HTTP 403/],
    [429, REGISTRY_PROBLEM.ERROR, /rate limiting/],
    [500, REGISTRY_PROBLEM.ERROR, /^registry error: reg\.example answered HTTP 500/],
  ])('HTTP %i → %s', async (status, code, message) => {
    const { fetchImpl } = fakeFetch(() => new Response(null, { status }));
    const r = await createRegistryClient({ fetchImpl }).resolveDigest(ref('reg.example/a:v1'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(code);
    expect(r.error.message).toMatch(message);
  });

  it('hashes the manifest from a GET when the registry sends no Docker-Content-Digest', async () => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] });
    const sha = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const { fetchImpl, calls } = fakeFetch((c) =>
      c.method === 'HEAD' ? new Response(null, { status: 200, headers: { 'content-type': OCI_MANIFEST } }) : new Response(body, { headers: { 'content-type': OCI_MANIFEST } }),
    );
    const r = await createRegistryClient({ fetchImpl }).resolveDigest(ref('reg.example/a:v1'));
    expect(r).toEqual({ ok: true, value: { digest: sha, mediaType: OCI_MANIFEST } });
    expect(calls.map((c) => c.method)).toEqual(['HEAD', 'GET']);
  });

  it('falls back to GET when HEAD is not allowed, and rejects a digest header that does not match the body', async () => {
    const { fetchImpl, calls } = fakeFetch((c) =>
      c.method === 'HEAD' ? new Response(null, { status: 405 }) : new Response('{}', { headers: { 'docker-content-digest': DIGEST } }),
    );
    const r = await createRegistryClient({ fetchImpl }).resolveDigest(ref('reg.example/a:v1'));
    expect(calls.map((c) => c.method)).toEqual(['HEAD', 'GET']);
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.ERROR } });
    if (!r.ok) expect(r.error.message).toContain("but the manifest's sha256 is");
  });

  it('rejects an invalid Docker-Content-Digest', async () => {
    const { fetchImpl } = fakeFetch(() => new Response(null, { status: 200, headers: { 'docker-content-digest': 'md5:abc' } }));
    const r = await createRegistryClient({ fetchImpl }).resolveDigest(ref('reg.example/a:v1'));
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.ERROR } });
    if (!r.ok) expect(r.error.message).toContain('invalid Docker-Content-Digest');
  });

  it('reports a connection failure as registry unreachable, never throwing', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const fetchImpl = (() => Promise.reject(new TypeError('fetch failed', { cause: refused }))) as unknown as typeof fetch;
    const r = await createRegistryClient({ fetchImpl }).resolveDigest(ref('reg.example/a:v1'));
    expect(r).toEqual({
      ok: false,
      error: { code: REGISTRY_PROBLEM.UNREACHABLE, message: 'registry unreachable: reg.example: connect ECONNREFUSED 127.0.0.1:1' },
    });
    const throwing = (() => {
      throw new Error('synchronous boom');
    }) as unknown as typeof fetch;
    expect(await createRegistryClient({ fetchImpl: throwing }).resolveDigest(ref('reg.example/a:v1'))).toMatchObject({
      ok: false,
      error: { code: REGISTRY_PROBLEM.UNREACHABLE },
    });
  });

  it('gives up at the deadline even when fetch ignores its signal', async () => {
    const fetchImpl = (() => new Promise<Response>(() => undefined)) as unknown as typeof fetch;
    const started = Date.now();
    const r = await createRegistryClient({ fetchImpl, defaultDeadlineMs: 10_000 }).resolveDigest(ref('reg.example/a:v1'), { deadlineMs: 150 });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);
    expect(r).toEqual({
      ok: false,
      error: { code: REGISTRY_PROBLEM.DEADLINE_EXCEEDED, message: 'deadline exceeded after 150 ms resolving reg.example/a:v1 (waiting for reg.example)' },
    });
  });

  it('counts the token call inside the one deadline', async () => {
    const { fetchImpl } = fakeFetch(async (c) => {
      if (c.url.startsWith('https://auth.example/')) return new Promise<Response>(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token"' } });
    });
    const started = Date.now();
    const r = await createRegistryClient({ fetchImpl, defaultDeadlineMs: 250 }).resolveDigest(ref('reg.example/a:v1'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.DEADLINE_EXCEEDED } });
    if (!r.ok) expect(r.error.message).toBe('deadline exceeded after 250 ms resolving reg.example/a:v1 (waiting for the token service auth.example)');
  });

  it('bounds reading a body that never ends', async () => {
    const { fetchImpl } = fakeFetch((c) =>
      c.method === 'HEAD'
        ? new Response(null, { status: 200 })
        : new Response(new ReadableStream({ start: (controller) => controller.enqueue(new TextEncoder().encode('{')) }), { status: 200 }),
    );
    const r = await createRegistryClient({ fetchImpl }).resolveDigest(ref('reg.example/a:v1'), { deadlineMs: 100 });
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.DEADLINE_EXCEEDED } });
    if (!r.ok) expect(r.error.message).toContain('reading the manifest');
  });
});
