/**
 * Tag resolution against real registries (Debian's docker-registry, started here) holding images
 * built from scratch and copied in with skopeo: anonymous, basic auth, Bearer-token auth and TLS;
 * a stopped registry and a registry that never answers fail closed within the deadline; digested
 * images never touch the network.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseImageReference, type ImageReference } from '../src/core/image/reference.js';
import { loadDockerConfig } from '../src/server/registry/credentials.js';
import { createRegistryClient, REGISTRY_PROBLEM, type RegistryClientOptions } from '../src/server/registry/registry-client.js';
import { createTagResolver } from '../src/server/registry/tag-resolver.js';
import { pushTestImage, startRegistry, startSilentServer, type PushedImage, type SilentServer, type TestRegistry } from './support/registry.js';

const USER = { user: 'ci-bot', password: 'correct horse battery staple' };
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-registry-test-'));
let open: TestRegistry;
let basic: TestRegistry;
let token: TestRegistry;
let tls: TestRegistry;
let silent: SilentServer;
let app: PushedImage;
let multi: PushedImage;
let basicImage: PushedImage;
let tokenImage: PushedImage;
let tlsImage: PushedImage;

function ref(text: string): ImageReference {
  const r = parseImageReference(text);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

/** A global fetch that counts the calls it passes on. */
function countingFetch(): { fetchImpl: typeof fetch; count: () => number } {
  let n = 0;
  const fetchImpl = ((input: string | URL | Request, init?: RequestInit) => {
    n++;
    return fetch(input, init);
  }) as typeof fetch;
  return { fetchImpl, count: () => n };
}

/** A Docker config file as `docker login` writes it. */
function dockerConfig(name: string, auths: Record<string, { user: string; password: string }>): string {
  const file = join(dir, name);
  const entries = Object.fromEntries(Object.entries(auths).map(([host, c]) => [host, { auth: Buffer.from(`${c.user}:${c.password}`).toString('base64') }]));
  writeFileSync(file, JSON.stringify({ auths: entries }));
  return file;
}

beforeAll(async () => {
  [open, basic, token, tls, silent] = await Promise.all([
    startRegistry(),
    startRegistry({ htpasswd: USER }),
    startRegistry({ tokenAuth: { users: { [USER.user]: USER.password } } }),
    startRegistry({ tls: true }),
    startSilentServer(),
  ]);
  [app, multi, basicImage, tokenImage, tlsImage] = await Promise.all([
    pushTestImage(open.host, 'team/app', 'v1'),
    pushTestImage(open.host, 'team/multi', 'v1', { multiArch: true }),
    pushTestImage(basic.host, 'private/app', 'v1', { credentials: USER }),
    pushTestImage(token.host, 'private/app', 'v1', { credentials: USER }),
    pushTestImage(tls.host, 'team/app', 'v1'),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([open?.stop(), basic?.stop(), token?.stop(), tls?.stop(), silent?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('resolving tags against a real registry', () => {
  it('resolves a pushed tag to the digest skopeo reports', async () => {
    const client = createRegistryClient({ insecureRegistries: [open.host] });
    expect(app.digest).toBe(app.builtDigest);
    expect(await client.resolveDigest(ref(`${open.host}/team/app:v1`))).toEqual({ ok: true, value: { digest: app.digest, mediaType: MANIFEST } });
  });

  it('resolves a multi-arch tag to the index digest', async () => {
    const client = createRegistryClient({ insecureRegistries: [open.host] });
    expect(multi.mediaType).toBe(INDEX);
    expect(multi.digest).toBe(multi.builtDigest);
    expect(await client.resolveDigest(ref(`${open.host}/team/multi:v1`))).toEqual({ ok: true, value: { digest: multi.digest, mediaType: INDEX } });
  });

  it('reports an unknown tag or repository as manifest unknown', async () => {
    const client = createRegistryClient({ insecureRegistries: [open.host] });
    for (const image of [`${open.host}/team/app:nope`, `${open.host}/no/such-repo:v1`]) {
      const r = await client.resolveDigest(ref(image));
      expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.MANIFEST_UNKNOWN } });
      if (!r.ok) expect(r.error.message).toBe(`manifest unknown: ${open.host} has no manifest for ${image} (HTTP 404: no such tag or repository)`);
    }
  });

  it('says to list a plain-http registry as insecure', async () => {
    const r = await createRegistryClient().resolveDigest(ref(`${open.host}/team/app:v1`));
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNREACHABLE } });
    if (!r.ok) expect(r.error.message).toMatch(new RegExp(`^registry unreachable: ${open.host}: .*insecure registry`));
  });
});

describe('registry authentication', () => {
  it('basic auth: with credentials from a Docker config file, without, and with a wrong password', async () => {
    const image = ref(`${basic.host}/private/app:v1`);
    const good = await loadDockerConfig(dockerConfig('basic-good.json', { [`http://${basic.host}/v2/`]: USER }));
    expect(await createRegistryClient({ credentials: good, insecureRegistries: [basic.host] }).resolveDigest(image)).toEqual({
      ok: true,
      value: { digest: basicImage.digest, mediaType: MANIFEST },
    });

    const none = await createRegistryClient({ insecureRegistries: [basic.host] }).resolveDigest(image);
    expect(none).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNAUTHORIZED } });
    if (!none.ok) expect(none.error.message).toContain(`requires a user name and password (Basic) and none are configured for ${basic.host}`);

    const bad = await loadDockerConfig(dockerConfig('basic-bad.json', { [basic.host]: { user: USER.user, password: 'wrong-password' } }));
    const wrong = await createRegistryClient({ credentials: bad, insecureRegistries: [basic.host] }).resolveDigest(image);
    expect(wrong).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNAUTHORIZED } });
    if (!wrong.ok) {
      expect(wrong.error.message).toContain(`refused the credentials of user ${USER.user}`);
      expect(wrong.error.message).not.toContain('wrong-password');
    }
  });

  it('bearer tokens: credentials go to the token service, the token to the registry', async () => {
    const image = ref(`${token.host}/private/app:v1`);
    const creds = await loadDockerConfig(dockerConfig('token.json', { [token.host]: USER }));
    const before = token.tokenRequests?.length ?? 0;
    const client = createRegistryClient({ credentials: creds, insecureRegistries: [token.host] });
    expect(await client.resolveDigest(image)).toEqual({ ok: true, value: { digest: tokenImage.digest, mediaType: MANIFEST } });
    expect(token.tokenRequests?.slice(before)).toEqual([{ user: USER.user, scopes: ['repository:private/app:pull'] }]);
    // The token is reused for the next tag of the same repository.
    expect(await client.resolveDigest(ref(`${token.host}/private/app:v2`))).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.MANIFEST_UNKNOWN } });
    expect(token.tokenRequests?.length).toBe(before + 1);
  });

  it('bearer tokens: anonymous and wrong credentials are unauthorized', async () => {
    const image = ref(`${token.host}/private/app:v1`);
    const anonymous = await createRegistryClient({ insecureRegistries: [token.host] }).resolveDigest(image);
    expect(anonymous).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNAUTHORIZED } });
    if (!anonymous.ok) expect(anonymous.error.message).toMatch(/refused anonymous access .*insufficient_scope/);

    const bad = await loadDockerConfig(dockerConfig('token-bad.json', { [token.host]: { user: USER.user, password: 'nope' } }));
    const wrong = await createRegistryClient({ credentials: bad, insecureRegistries: [token.host] }).resolveDigest(image);
    expect(wrong).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNAUTHORIZED } });
    if (!wrong.ok) expect(wrong.error.message).toMatch(/token service 127\.0\.0\.1:\d+ refused the credentials of user ci-bot \(HTTP 401\)/);
  });

  it('TLS: a registry CA file makes its certificate trusted', async () => {
    const image = ref(`${tls.host}/team/app:v1`);
    const trusted = createRegistryClient({ caFile: tls.caFile as string });
    expect(await trusted.resolveDigest(image)).toEqual({ ok: true, value: { digest: tlsImage.digest, mediaType: MANIFEST } });
    const untrusted = await createRegistryClient().resolveDigest(image);
    expect(untrusted).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNREACHABLE } });
    if (!untrusted.ok) expect(untrusted.error.message).toMatch(/TLS certificate is not trusted/);
  });
});

describe('failing closed within the deadline', () => {
  it('a stopped registry: unreachable, fast; the resolver leaves the image as it was', async () => {
    const doomed = await startRegistry();
    await pushTestImage(doomed.host, 'team/app', 'v1');
    await doomed.stop();
    const opts: RegistryClientOptions = { insecureRegistries: [doomed.host] };
    const started = Date.now();
    const r = await createRegistryClient(opts).resolveDigest(ref(`${doomed.host}/team/app:v1`), { deadlineMs: 2000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r).toMatchObject({ ok: false, error: { code: REGISTRY_PROBLEM.UNREACHABLE } });
    if (!r.ok) expect(r.error.message).toBe(`registry unreachable: ${doomed.host}: connect ECONNREFUSED ${doomed.host}`);

    const resolver = createTagResolver({ client: createRegistryClient(opts) });
    const image = `${doomed.host}/team/app:v1`;
    const out = await resolver.resolve([image], 2000);
    expect(out.images).toEqual([image]);
    expect(out.resolved).toEqual([]);
    expect(out.failures).toEqual([{ image, reason: `registry unreachable: ${doomed.host}: connect ECONNREFUSED ${doomed.host}` }]);
  });

  it('a registry that accepts the connection and never answers: deadline exceeded, on time', async () => {
    const client = createRegistryClient({ insecureRegistries: [silent.host] });
    const started = Date.now();
    const r = await client.resolveDigest(ref(`${silent.host}/team/app:v1`), { deadlineMs: 300 });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1300);
    expect(r).toEqual({
      ok: false,
      error: { code: REGISTRY_PROBLEM.DEADLINE_EXCEEDED, message: `deadline exceeded after 300 ms resolving ${silent.host}/team/app:v1 (waiting for ${silent.host})` },
    });
    expect(silent.connections()).toBeGreaterThan(0);

    // One deadline for a whole decision's images, hung and healthy registries mixed.
    const resolver = createTagResolver({ client: createRegistryClient({ insecureRegistries: [silent.host, open.host] }) });
    const images = [`${silent.host}/a:v1`, `${silent.host}/b:v1`, `${open.host}/team/app:v1`];
    const t0 = Date.now();
    const out = await resolver.resolve(images, 400);
    expect(Date.now() - t0).toBeLessThan(1400);
    expect(out.images).toEqual([`${silent.host}/a:v1`, `${silent.host}/b:v1`, `${open.host}/team/app:v1@${app.digest}`]);
    expect(out.failures.map((f) => f.image)).toEqual([`${silent.host}/a:v1`, `${silent.host}/b:v1`]);
    for (const f of out.failures) expect(f.reason).toMatch(/^deadline exceeded after \d+ ms resolving/);
  });
});

describe('TagResolver against the registry', () => {
  it('digested images never touch the network', async () => {
    const { fetchImpl, count } = countingFetch();
    const resolver = createTagResolver({ client: createRegistryClient({ fetchImpl, insecureRegistries: [open.host, silent.host] }) });
    const images = [`${open.host}/team/app@${app.digest}`, `${silent.host}/team/app:v1@${app.digest}`, `nginx@${multi.digest}`];
    expect(await resolver.resolve(images, 1000)).toEqual({ images, resolved: [], failures: [] });
    expect(count()).toBe(0);
  });

  it('resolves, caches, and sees a moved tag once the cache entry expires', async () => {
    let clock = 0;
    const { fetchImpl, count } = countingFetch();
    const resolver = createTagResolver({ client: createRegistryClient({ fetchImpl, insecureRegistries: [open.host] }), cacheTtlMs: 30_000, now: () => Date.now() + clock });
    const image = `${open.host}/team/moving:latest`;
    const first = await pushTestImage(open.host, 'team/moving', 'latest');
    const a = await resolver.resolve([image, `${open.host}/team/moving`], 2000);
    expect(a.images).toEqual([`${image}@${first.digest}`, `${image}@${first.digest}`]);
    expect(a.resolved).toEqual([
      { from: image, to: `${image}@${first.digest}` },
      { from: `${open.host}/team/moving`, to: `${image}@${first.digest}` },
    ]);
    expect(count()).toBe(1);

    const second = await pushTestImage(open.host, 'team/moving', 'latest');
    expect(second.digest).not.toBe(first.digest);
    expect((await resolver.resolve([image], 2000)).images).toEqual([`${image}@${first.digest}`]);
    expect(count()).toBe(1);
    clock += 30_000;
    expect((await resolver.resolve([image], 2000)).images).toEqual([`${image}@${second.digest}`]);
    expect(count()).toBe(2);
  });
});
