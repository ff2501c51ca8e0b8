/**
 * The Cloud KMS REST API behind a real HTTP listener, a real SQLite store and the real IAM
 * service: request shapes as gcloud sends them (gcloud-compat §4), permissions checked before
 * existence is revealed, and audit entries that never hold digests or key material.
 */
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudKmsRouter } from '../api/cloudkms.js';
import type { AppDeps } from '../app-deps.js';
import { createRequestListener } from '../http/http-server.js';
import { createIam, createPrincipal, issueToken } from '../iam/iam-service.js';
import type { Iam } from '../iam/iam.js';
import { jsonLogger } from '../log.js';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import { crc32c } from './crc32c.js';
import { masterKeyFromBytes } from './master-key.js';

let dir: string;
let store: Store;
let iam: Iam;
let server: Server;
let base: string;
let admin: string;
let alice: string;
let signer: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-kms-api-'));
  store = await openStore(join(dir, 'tollgate.db'));
  iam = createIam(store);
  const logger = jsonLogger('error', () => undefined);
  const deps: AppDeps = { store, iam, logger, settings: { publicUrl: 'http://127.0.0.1', dataDir: dir } };
  const router = cloudKmsRouter(deps, masterKeyFromBytes(randomBytes(32)));
  server = createServer(createRequestListener({ routers: [router], authenticate: (t) => iam.authenticate(t), maxBodyBytes: 1 << 20, logger }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await createPrincipal(store, { email: 'root@tollgate.local', type: 'user', superuser: true });
  await createPrincipal(store, { email: 'alice@example.com', type: 'user' });
  await createPrincipal(store, { email: 'ci@demo.iam.gserviceaccount.com', type: 'serviceAccount' });
  admin = (await issueToken(store, { principal: 'root@tollgate.local' })).secret;
  alice = (await issueToken(store, { principal: 'alice@example.com' })).secret;
  signer = (await issueToken(store, { principal: 'ci@demo.iam.gserviceaccount.com' })).secret;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

const LOC = '/v1/projects/demo/locations/us-central1';
const RING = 'projects/demo/locations/us-central1/keyRings/ring';
const KEY = `${RING}/cryptoKeys/key`;
const V1 = `${KEY}/cryptoKeyVersions/1`;

describe('Cloud KMS REST API', () => {
  it('creates a key ring, a key with its first version, and lists versions as gcloud does', async () => {
    const ring = await call('POST', `${LOC}/keyRings?keyRingId=ring&alt=json`, admin, {});
    expect(ring.status).toBe(200);
    expect(ring.body).toEqual({ name: RING, createTime: expect.any(String) });

    const key = await call('POST', `/v1/${RING}/cryptoKeys?cryptoKeyId=key&alt=json`, admin, {
      purpose: 'ASYMMETRIC_SIGN',
      versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256', protectionLevel: 'SOFTWARE' },
    });
    expect(key.status).toBe(200);
    expect(key.body).toMatchObject({ name: KEY, purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256', protectionLevel: 'SOFTWARE' } });

    const versions = await call('GET', `/v1/${KEY}/cryptoKeyVersions?pageSize=1&alt=json`, admin);
    expect(versions.body).toEqual({
      cryptoKeyVersions: [{ name: V1, state: 'ENABLED', protectionLevel: 'SOFTWARE', algorithm: 'EC_SIGN_P256_SHA256', createTime: expect.any(String), generateTime: expect.any(String) }],
      totalSize: 1,
    });
    expect((await call('GET', `${LOC}/keyRings`, admin)).body).toEqual({ keyRings: [ring.body], totalSize: 1 });
    expect((await call('GET', `/v1/${RING}/cryptoKeys`, admin)).body).toEqual({ cryptoKeys: [key.body], totalSize: 1 });
    expect((await call('GET', `/v1/projects/demo/locations/europe-west1/keyRings`, admin)).body).toEqual({});
    expect((await call('GET', `/v1/${KEY}`, admin)).body).toEqual(key.body);
    expect((await call('GET', `/v1/${RING}`, admin)).body).toEqual(ring.body);

    // Admin Activity entries, with Google's method names.
    const audit = await store.queryAudit({ projects: ['demo'], limit: 10 });
    const methods = audit.map((a) => (a.entry['protoPayload'] as Record<string, unknown>)['methodName']);
    expect(methods).toEqual(['google.cloud.kms.v1.KeyManagementService.CreateCryptoKey', 'google.cloud.kms.v1.KeyManagementService.CreateKeyRing']);
  });

  it('serves the public key and signs a digest with the integrity fields gcloud checks', async () => {
    const pub = await call('GET', `/v1/${V1}/publicKey?alt=json`, admin);
    expect(pub.body).toMatchObject({ algorithm: 'EC_SIGN_P256_SHA256', name: V1, protectionLevel: 'SOFTWARE', publicKeyFormat: 'PEM' });
    expect(pub.body.pemCrc32c).toBe(String(crc32c(Buffer.from(pub.body.pem))));

    const data = Buffer.from('{"critical":{}}\n');
    const digest = createHash('sha256').update(data).digest();
    const signed = await call('POST', `/v1/${V1}:asymmetricSign?alt=json`, admin, { digest: { sha256: digest.toString('base64url') }, digestCrc32c: String(crc32c(digest)) });
    expect(signed.status).toBe(200);
    expect(signed.body).toMatchObject({ name: V1, verifiedDigestCrc32c: true, protectionLevel: 'SOFTWARE' });
    const signature = Buffer.from(signed.body.signature, 'base64');
    expect(signed.body.signatureCrc32c).toBe(String(crc32c(signature)));
    expect(cryptoVerify('sha256', data, createPublicKey(pub.body.pem), signature)).toBe(true);

    const bad = await call('POST', `/v1/${V1}:asymmetricSign`, admin, { digest: { sha256: digest.toString('base64') }, digestCrc32c: '1' });
    expect(bad).toEqual({ status: 400, body: { error: { code: 400, status: 'INVALID_ARGUMENT', message: 'The checksum in field digest_crc32c did not match the data in field digest.' } } });

    // The audit entry names the key version and the digest algorithm, never the digest.
    const [entry] = await store.queryAudit({ projects: ['demo'], limit: 1 });
    const text = JSON.stringify(entry);
    expect(text).toContain('google.cloud.kms.v1.KeyManagementService.AsymmetricSign');
    expect(text).toContain('"digestAlgorithm":"sha256"');
    expect(text).not.toContain(digest.toString('base64url'));
    expect(text).not.toContain(digest.toString('base64'));
    expect(text).not.toContain(digest.toString('hex'));
  });

  it('checks permissions before saying whether anything exists', async () => {
    for (const path of [`/v1/${RING}`, `/v1/${LOC.slice(4)}/keyRings/missing`]) {
      const r = await call('GET', path, alice);
      expect(r.status).toBe(403);
      expect(r.body.error.status).toBe('PERMISSION_DENIED');
      expect(r.body.error.message).toContain('cloudkms.keyRings.get');
    }
    const sign = await call('POST', `/v1/${RING}/cryptoKeys/missing/cryptoKeyVersions/1:asymmetricSign`, alice, { digest: { sha256: Buffer.alloc(32).toString('base64') } });
    expect(sign.status).toBe(403);
    expect(sign.body.error.message).toContain('cloudkms.cryptoKeyVersions.useToSign');
    expect((await call('POST', `${LOC}/keyRings?keyRingId=x`, alice, {})).status).toBe(403);

    // roles/cloudkms.signerVerifier on the key: sign and read the public key, nothing else.
    await iam.setPolicy(KEY, { bindings: [{ role: 'roles/cloudkms.signerVerifier', members: ['serviceAccount:ci@demo.iam.gserviceaccount.com'] }] });
    const digest = createHash('sha256').update('x').digest().toString('base64');
    expect((await call('POST', `/v1/${V1}:asymmetricSign`, signer, { digest: { sha256: digest } })).status).toBe(200);
    expect((await call('GET', `/v1/${V1}/publicKey`, signer)).status).toBe(200);
    expect((await call('GET', `/v1/${KEY}/cryptoKeyVersions/9/publicKey`, signer)).status).toBe(404);
    expect((await call('GET', `/v1/${V1}`, signer)).status).toBe(403);
    expect((await call('POST', `/v1/${V1}:destroy`, signer, {})).status).toBe(403);
    expect((await call('GET', `/v1/${RING}`, signer)).status).toBe(403);
  });

  it('refuses writes to a project that does not exist for anyone but a superuser', async () => {
    await iam.setPolicy('projects/elsewhere', { bindings: [{ role: 'roles/cloudkms.admin', members: ['user:alice@example.com'] }] });
    const r = await call('POST', '/v1/projects/elsewhere/locations/global/keyRings?keyRingId=r', alice, {});
    expect(r.status).toBe(404);
    expect(r.body.error.message).toContain('Project elsewhere not found');
    // A bad location is refused before a superuser's write creates the project.
    const bad = await call('POST', '/v1/projects/fresh/locations/Nowhere/keyRings?keyRingId=r', admin, {});
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^parent: "Nowhere" is not a valid location/);
    expect(await store.get('project', 'projects/fresh')).toBeUndefined();
    expect((await call('POST', `${LOC}/keyRings?keyRingId=bad.id`, admin, {})).body.error.message).toMatch(/^keyRingId: /);
    expect((await call('POST', `${LOC}/keyRings`, admin, {})).body.error.message).toBe('keyRingId: required');
  });

  it('disables, destroys and restores versions with gcloud\'s request shapes', async () => {
    const key = await call('POST', `/v1/${RING}/cryptoKeys?cryptoKeyId=rsa&skipInitialVersionCreation=true`, admin, {
      purpose: 'ASYMMETRIC_SIGN',
      versionTemplate: { algorithm: 'RSA_SIGN_PSS_2048_SHA256' },
    });
    expect(key.status).toBe(200);
    expect((await call('GET', `/v1/${RING}/cryptoKeys/rsa/cryptoKeyVersions`, admin)).body).toEqual({});
    const created = await call('POST', `/v1/${RING}/cryptoKeys/rsa/cryptoKeyVersions`, admin, {});
    const v = `${RING}/cryptoKeys/rsa/cryptoKeyVersions/1`;
    expect(created.body).toMatchObject({ name: v, state: 'ENABLED', algorithm: 'RSA_SIGN_PSS_2048_SHA256' });

    expect((await call('PATCH', `/v1/${v}?updateMask=state`, admin, { state: 'DISABLED' })).body).toMatchObject({ state: 'DISABLED' });
    const refused = await call('POST', `/v1/${v}:asymmetricSign`, admin, { digest: { sha256: Buffer.alloc(32).toString('base64') } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ status: 'FAILED_PRECONDITION', message: expect.stringContaining('is DISABLED') });

    const destroyed = await call('POST', `/v1/${v}:destroy`, admin, {});
    expect(destroyed.body).toMatchObject({ name: v, state: 'DESTROY_SCHEDULED', destroyTime: expect.any(String) });
    const days = (Date.parse(destroyed.body.destroyTime) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
    expect((await call('GET', `/v1/${v}/publicKey`, admin)).body.error.status).toBe('FAILED_PRECONDITION');
    const restored = await call('POST', `/v1/${v}:restore`, admin, {});
    expect(restored.body).toMatchObject({ name: v, state: 'DISABLED' });
    expect(restored.body.destroyTime).toBeUndefined();

    const patched = await call('PATCH', `/v1/${RING}/cryptoKeys/rsa?updateMask=labels`, admin, { labels: { env: 'prod' } });
    expect(patched.body).toMatchObject({ labels: { env: 'prod' } });

    const methods = (await store.queryAudit({ projects: ['demo'], limit: 6 })).map((a) => String((a.entry['protoPayload'] as Record<string, unknown>)['methodName']).split('.').pop());
    expect(methods).toEqual(['UpdateCryptoKey', 'RestoreCryptoKeyVersion', 'DestroyCryptoKeyVersion', 'UpdateCryptoKeyVersion', 'CreateCryptoKeyVersion', 'CreateCryptoKey']);
    // No audit entry anywhere holds key material.
    const all = JSON.stringify(await store.queryAudit({ limit: 1000 }));
    expect(all).not.toContain('sealedPrivateKey');
    expect(all).not.toContain('PRIVATE KEY');
  });

  it('serves IAM policies on key rings and keys (GET and POST getIamPolicy)', async () => {
    const got = await call('GET', `/v1/${KEY}:getIamPolicy?options.requestedPolicyVersion=3`, admin);
    expect(got.body.bindings).toEqual([{ role: 'roles/cloudkms.signerVerifier', members: ['serviceAccount:ci@demo.iam.gserviceaccount.com'] }]);
    const posted = await call('POST', `/v1/${KEY}:getIamPolicy`, admin, { options: { requestedPolicyVersion: 3 } });
    expect(posted.body).toEqual(got.body);
    const set = await call('POST', `/v1/${RING}:setIamPolicy`, admin, { policy: { bindings: [{ role: 'roles/cloudkms.viewer', members: ['user:alice@example.com'] }] } });
    expect(set.status).toBe(200);
    expect((await call('GET', `/v1/${RING}`, alice)).status).toBe(200);
    expect((await call('GET', `/v1/${KEY}`, alice)).status).toBe(200);
    const tested = await call('POST', `/v1/${KEY}:testIamPermissions`, alice, { permissions: ['cloudkms.cryptoKeys.get', 'cloudkms.cryptoKeyVersions.useToSign'] });
    expect(tested.body).toEqual({ permissions: ['cloudkms.cryptoKeys.get'] });
    expect((await call('GET', `/v1/${RING}/cryptoKeys/nope:getIamPolicy`, admin)).status).toBe(404);
  });

  it('answers the locations gcloud may ask for', async () => {
    const list = await call('GET', '/v1/projects/demo/locations', admin);
    expect(list.body.locations).toContainEqual(expect.objectContaining({ name: 'projects/demo/locations/global', locationId: 'global' }));
    expect((await call('GET', '/v1/projects/demo/locations/us-central1', admin)).body).toMatchObject({ name: 'projects/demo/locations/us-central1', locationId: 'us-central1' });
    expect((await call('GET', '/v1/projects/demo/locations/asia-south2', admin)).body).toMatchObject({ locationId: 'asia-south2' });
    expect((await call('GET', '/v1/projects/demo/locations/NOPE', admin)).status).toBe(404);
  });
});
