/**
 * Two `tollgate serve` replicas on one PostgreSQL database act as one service, and tag-only
 * images are resolved through a real local registry when `--resolve-tags` is on (and denied,
 * fail closed, when the registry is down).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres } from './support/postgres.js';
import { pushTestImage, startRegistry, type TestRegistry } from './support/registry.js';
import { attest, createFixtureAttestor, ok, type FixtureAttestor } from './support/seed.js';
import { readFixtureText } from './support/fixtures.js';
import { startServer, type TestServer } from './support/server.js';

const P = 'demo';
const ATTESTOR = `projects/${P}/attestors/build`;
const BUILD: FixtureAttestor = { project: P, noteId: 'build-note', attestorId: 'build', keyId: 'urn:tollgate:test:build-key' };

async function setUp(server: TestServer) {
  await createFixtureAttestor(server, BUILD, 'build');
  await ok(server, 'PUT', `/v1/projects/${P}/policy`, {
    defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: [ATTESTOR] },
  });
}

const allowed = async (server: TestServer, image: string) => {
  const r = await server.request('POST', `/tollgate/v1/projects/${P}:evaluate`, { images: [image] });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body as { allowed: boolean; messages: string[] };
};

describe('two replicas on one PostgreSQL database', () => {
  let pg: { url: string; stop(): Promise<void> };
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    pg = await startPostgres();
    const env = { TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64') };
    a = await startServer({ database: pg.url, env });
    b = await startServer({ database: pg.url, env, adminToken: a.adminToken });
  }, 120_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await pg?.stop();
  });

  it('only the first replica creates the bootstrap admin; the token works on both', async () => {
    expect(a.output()).toContain('Admin token written');
    expect(b.output()).not.toContain('Admin token written');
    expect((await b.request('GET', `/v1/projects/${P}/policy`)).status).toBe(200);
  });

  it('a write through one is read through the other at once, and decisions agree within a second', async () => {
    const A = a;
    const B = b;
    await setUp(A);
    expect((await B.request('GET', `/v1/${ATTESTOR}`)).status).toBe(200);
    const image = `us-docker.pkg.dev/${P}/apps/web@sha256:${'3e'.repeat(32)}`;
    expect((await allowed(B, image)).allowed).toBe(false);
    const occ = await attest(A, BUILD, image);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await allowed(B, image)).allowed).toBe(true);
    // A deletion through B reaches A's caches within a second.
    expect((await allowed(A, image)).allowed).toBe(true);
    expect((await B.request('DELETE', `/v1/${occ}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await allowed(A, image)).allowed).toBe(false);
    // A key removed through B reaches A within a second, its verified-signature cache included;
    // so does a policy tightened through B.
    const image2 = `us-docker.pkg.dev/${P}/apps/web@sha256:${'4f'.repeat(32)}`;
    await attest(A, BUILD, image2);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await allowed(A, image2)).allowed).toBe(true);
    const attestorBody = (await B.request('GET', `/v1/${ATTESTOR}`)).body as { userOwnedGrafeasNote: { noteReference: string } };
    const rekeyed = await B.request('PUT', `/v1/${ATTESTOR}`, {
      name: ATTESTOR,
      userOwnedGrafeasNote: { noteReference: attestorBody.userOwnedGrafeasNote.noteReference, publicKeys: [{ id: 'other-key', pkixPublicKey: { publicKeyPem: readFixtureText('pkix', 'ECDSA_P384_SHA384', 'public.pem'), signatureAlgorithm: 'ECDSA_P384_SHA384' } }] },
    });
    expect(rekeyed.status, JSON.stringify(rekeyed.body)).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    const afterKey = await allowed(A, image2);
    expect(afterKey.allowed).toBe(false);
    expect(afterKey.messages.join('\n')).toContain(image2);
    // The key back through A: B sees it as well.
    const restored = await A.request('PUT', `/v1/${ATTESTOR}`, {
      name: ATTESTOR,
      userOwnedGrafeasNote: { noteReference: attestorBody.userOwnedGrafeasNote.noteReference, publicKeys: [{ id: BUILD.keyId, pkixPublicKey: { publicKeyPem: readFixtureText('pkix', 'ECDSA_P256_SHA256', 'public.pem'), signatureAlgorithm: 'ECDSA_P256_SHA256' } }] },
    });
    expect(restored.status, JSON.stringify(restored.body)).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await allowed(B, image2)).allowed).toBe(true);
    expect((await allowed(A, image2)).allowed).toBe(true);
    expect((await B.request('PUT', `/v1/projects/${P}/policy`, { defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await allowed(A, image2)).allowed).toBe(false);
    await ok(B, 'PUT', `/v1/projects/${P}/policy`, { defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: [ATTESTOR] } });
    // KMS keys made through one replica sign through the other (same master key).
    expect((await A.request('POST', `/v1/projects/${P}/locations/global/keyRings?keyRingId=r`, {})).status).toBe(200);
    expect((await A.request('POST', `/v1/projects/${P}/locations/global/keyRings/r/cryptoKeys?cryptoKeyId=k`, { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } })).status).toBe(200);
    const signed = await B.request('POST', `/v1/projects/${P}/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1:asymmetricSign`, { digest: { sha256: Buffer.alloc(32, 1).toString('base64') } });
    expect(signed.status).toBe(200);
    // A revoked token stops working on every replica at once.
    const created = await a.tollgate(['iam', 'principals', 'create', 'ci@example.com']);
    expect(created.code).toBe(0);
    const tok = (await a.tollgate(['iam', 'tokens', 'create', 'ci@example.com', '--format', 'json'])).stdout;
    const { token, secret } = JSON.parse(tok) as { token: { name: string }; secret: string };
    expect((await b.request('GET', `/v1/projects/${P}/policy`, undefined, secret)).status).toBe(403);
    expect((await a.tollgate(['iam', 'tokens', 'revoke', token.name.split('/').pop() as string])).code).toBe(0);
    expect((await b.request('GET', `/v1/projects/${P}/policy`, undefined, secret)).status).toBe(401);
  }, 60_000);

  it('a replica with another master key refuses to start', async () => {
    await expect(startServer({ database: pg.url, env: { TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64') } })).rejects.toThrow(/master key/i);
  }, 60_000);
});

describe('--resolve-tags against a real registry', () => {
  let registry: TestRegistry;
  let server: TestServer;
  let digestImage: string;
  let tagImage: string;

  beforeAll(async () => {
    registry = await startRegistry();
    const pushed = await pushTestImage(registry.host, 'team/app', 'v1');
    tagImage = `${registry.host}/team/app:v1`;
    digestImage = `${registry.host}/team/app@${pushed.digest}`;
    server = await startServer({ args: ['--resolve-tags', '--insecure-registry', registry.host] });
    await setUp(server);
    await attest(server, BUILD, digestImage);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await registry?.stop();
  });

  it('evaluates the digest a tag resolves to, and refuses a tag that does not resolve', async () => {
    expect((await allowed(server, tagImage)).allowed).toBe(true);
    expect((await allowed(server, digestImage)).allowed).toBe(true);
    const missing = await allowed(server, `${registry.host}/team/app:no-such-tag`);
    expect(missing.allowed).toBe(false);
    expect(missing.messages[0]).toMatch(/tag resolution failed/);
  }, 60_000);

  it('fails closed when the registry is down; digests need no registry at all', async () => {
    await registry.stop();
    const down = await allowed(server, `${registry.host}/team/app:v2`);
    expect(down.allowed).toBe(false);
    expect(down.messages[0]).toMatch(/tag resolution failed/);
    expect((await allowed(server, digestImage)).allowed).toBe(true);
  }, 60_000);
});
