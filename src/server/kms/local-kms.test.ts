import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify, constants as cryptoConstants } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePkixPublicKey, verifyPkixSignature } from '../../core/attestation/pkix.js';
import { kmsAlgorithmToSignatureAlgorithm } from '../../core/attestation/signature-algorithm.js';
import { ApiError } from '../errors.js';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import { crc32c } from './crc32c.js';
import { KMS_ALGORITHMS, LocalKms, parseAsymmetricSignRequest, type KmsAlgorithmName } from './local-kms.js';
import { masterKeyFromBytes, type MasterKey } from './master-key.js';

// ---------------------------------------------------------------------------------------------
// Test helpers: the openssl binary is the judge of every signature.

const HASH_OF: Record<string, 'sha256' | 'sha384' | 'sha512'> = Object.fromEntries(Object.entries(KMS_ALGORITHMS).map(([k, v]) => [k, v.hash]));

/** `openssl dgst -<hash> -verify pub.pem -signature sig data` (PSS with salt = digest length). */
function opensslVerify(algorithm: string, publicKeyPem: string, data: Uint8Array, signature: Uint8Array): { ok: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-kms-verify-'));
  try {
    writeFileSync(join(dir, 'pub.pem'), publicKeyPem);
    writeFileSync(join(dir, 'data'), data);
    writeFileSync(join(dir, 'sig'), signature);
    const args = ['dgst', `-${HASH_OF[algorithm] as string}`, '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig')];
    if (algorithm.startsWith('RSA_SIGN_PSS')) args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest');
    args.push(join(dir, 'data'));
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    return { ok: r.status === 0 && r.stdout.includes('Verified OK'), output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function digestRequest(hash: 'sha256' | 'sha384' | 'sha512', data: Uint8Array, withCrc = true): Record<string, unknown> {
  const digest = createHash(hash).update(data).digest();
  return { digest: { [hash]: digest.toString('base64url') }, ...(withCrc ? { digestCrc32c: String(crc32c(digest)) } : {}) };
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

const LOCATION = 'projects/demo/locations/us-central1';
const RING = `${LOCATION}/keyRings/ring`;

describe('LocalKms', () => {
  let dir: string;
  let dbFile: string;
  let store: Store;
  let masterKey: MasterKey;
  let clock: Date;
  let kms: LocalKms;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-kms-'));
    dbFile = join(dir, 'tollgate.db');
    store = await openStore(dbFile);
    masterKey = masterKeyFromBytes(randomBytes(32));
    clock = new Date('2030-01-01T00:00:00Z');
    kms = new LocalKms(store, masterKey, () => clock);
    await kms.createKeyRing(LOCATION, 'ring');
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function newKey(id: string, algorithm: KmsAlgorithmName, extra: Record<string, unknown> = {}) {
    return kms.createCryptoKey(RING, id, { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm, protectionLevel: 'SOFTWARE' }, ...extra });
  }

  it('creates, gets and lists key rings', async () => {
    expect(await kms.getKeyRing(RING)).toEqual({ name: RING, createTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) });
    expect((await apiError(kms.createKeyRing(LOCATION, 'ring'))).status).toBe('ALREADY_EXISTS');
    expect((await apiError(kms.getKeyRing(`${LOCATION}/keyRings/nope`))).status).toBe('NOT_FOUND');
    expect((await apiError(kms.createKeyRing(LOCATION, 'bad id'))).message).toMatch(/^keyRingId: /);
    expect((await apiError(kms.createKeyRing('projects/demo/locations/Not_A_Region', 'r'))).message).toMatch(/not a valid location/);
    await kms.createKeyRing('projects/demo/locations/global', 'g');
    const list = await kms.listKeyRings(LOCATION, { limit: 10 });
    expect(list.items.map((r) => r.name)).toEqual([RING]);
    expect(list.totalSize).toBe(1);
  });

  it.each(Object.keys(KMS_ALGORITHMS) as KmsAlgorithmName[])('%s: generates a key, and its signatures over a digest verify with openssl', async (algorithm) => {
    const id = algorithm.toLowerCase().replace(/_/g, '-');
    const key = await newKey(id, algorithm);
    expect(key).toMatchObject({ name: `${RING}/cryptoKeys/${id}`, purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm, protectionLevel: 'SOFTWARE' }, destroyScheduledDuration: '2592000s' });
    const version = `${RING}/cryptoKeys/${id}/cryptoKeyVersions/1`;
    expect(await kms.getCryptoKeyVersion(version)).toMatchObject({ name: version, state: 'ENABLED', algorithm, protectionLevel: 'SOFTWARE' });

    const pub = await kms.getPublicKey(version);
    expect(pub).toMatchObject({ algorithm, name: version, protectionLevel: 'SOFTWARE', publicKeyFormat: 'PEM' });
    expect(pub.pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    expect(pub.pemCrc32c).toBe(String(crc32c(Buffer.from(pub.pem))));
    const spec = KMS_ALGORITHMS[algorithm];
    const details = createPublicKey(pub.pem).asymmetricKeyDetails;
    if (spec.keyType === 'ec') expect(details?.namedCurve).toBe(spec.namedCurve);
    else expect(details?.modulusLength).toBe(spec.modulusLength);

    const data = Buffer.from(`payload for ${algorithm}\n`);
    const res = await kms.asymmetricSign(version, parseAsymmetricSignRequest(digestRequest(spec.hash, data)));
    const signature = Buffer.from(res.signature, 'base64');
    expect(res).toMatchObject({ name: version, verifiedDigestCrc32c: true, verifiedDataCrc32c: false, protectionLevel: 'SOFTWARE' });
    expect(res.signatureCrc32c).toBe(String(crc32c(signature)));
    const verdict = opensslVerify(algorithm, pub.pem, data, signature);
    expect(verdict.ok, verdict.output).toBe(true);
    // A signature over other data does not verify (the check above is not vacuous).
    expect(opensslVerify(algorithm, pub.pem, Buffer.from('other'), signature).ok).toBe(false);
    // node:crypto agrees too; PSS signatures are randomized, PKCS#1 v1.5 ones deterministic.
    const padding = spec.padding === 'pss' ? { padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: createHash(spec.hash).digest().length } : {};
    expect(cryptoVerify(spec.hash, data, { key: createPublicKey(pub.pem), ...padding }, signature)).toBe(true);
    // And so does Tollgate's attestation verifier, with the key as gcloud adds it to an attestor.
    const parsed = parsePkixPublicKey(pub.pem, kmsAlgorithmToSignatureAlgorithm(algorithm));
    if (!parsed.ok) throw new Error(parsed.error.message);
    const attestorKey = { kind: 'pkix' as const, id: `//cloudkms/v1/${version}`, algorithm: parsed.value.algorithm, publicKeyPem: pub.pem, key: parsed.value.key };
    expect(await verifyPkixSignature(attestorKey, data, signature)).toEqual({ ok: true, value: true });
    if (spec.padding === 'pss') {
      const sig2 = Buffer.from((await kms.asymmetricSign(version, parseAsymmetricSignRequest(digestRequest(spec.hash, data)))).signature, 'base64');
      expect(sig2.equals(signature)).toBe(false);
    }
    if (spec.keyType === 'ec') {
      // DER SEQUENCE of two INTEGERs.
      expect(signature[0]).toBe(0x30);
      expect(execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: signature }).toString()).toMatch(/INTEGER[\s\S]+INTEGER/);
    }

    // `data` instead of a digest: the server hashes it with the key's hash.
    const viaData = await kms.asymmetricSign(version, parseAsymmetricSignRequest({ data: data.toString('base64'), dataCrc32c: String(crc32c(data)) }));
    expect(viaData).toMatchObject({ verifiedDataCrc32c: true, verifiedDigestCrc32c: false });
    expect(opensslVerify(algorithm, pub.pem, data, Buffer.from(viaData.signature, 'base64')).ok).toBe(true);
  });

  it('signs many ECDSA digests that all verify (no rare-case failures in r, s or DER lengths)', async () => {
    const version = `${RING}/cryptoKeys/ec-sign-p256-sha256/cryptoKeyVersions/1`;
    const pem = (await kms.getPublicKey(version)).pem;
    for (let i = 0; i < 200; i++) {
      const data = randomBytes(20);
      const res = await kms.asymmetricSign(version, parseAsymmetricSignRequest(digestRequest('sha256', data, false)));
      expect(cryptoVerify('sha256', data, pem, Buffer.from(res.signature, 'base64'))).toBe(true);
      expect(res.verifiedDigestCrc32c).toBe(false);
    }
  });

  it('refuses a digest of the wrong algorithm or length, a bad checksum, and digest with data', async () => {
    const version = `${RING}/cryptoKeys/ec-sign-p256-sha256/cryptoKeyVersions/1`;
    const wrongHash = await apiError(kms.asymmetricSign(version, parseAsymmetricSignRequest(digestRequest('sha384', Buffer.from('x')))));
    expect(wrongHash.status).toBe('INVALID_ARGUMENT');
    expect(wrongHash.message).toMatch(/^digest: .*EC_SIGN_P256_SHA256.*sha256.*got sha384/);

    const good = digestRequest('sha256', Buffer.from('x'));
    const badCrc = await apiError(kms.asymmetricSign(version, parseAsymmetricSignRequest({ ...good, digestCrc32c: String((Number(good['digestCrc32c']) + 1) % 2 ** 32) })));
    expect(badCrc.status).toBe('INVALID_ARGUMENT');
    // gcloud recognises exactly this wording and reports in-transit corruption.
    expect(badCrc.message).toMatch(/The checksum in field .* did not match the data in field .*\./);

    const badDataCrc = await apiError(kms.asymmetricSign(version, parseAsymmetricSignRequest({ data: 'eA==', dataCrc32c: '1' })));
    expect(badDataCrc.message).toBe('The checksum in field data_crc32c did not match the data in field data.');

    expect(() => parseAsymmetricSignRequest({ digest: { sha256: Buffer.alloc(31).toString('base64') } })).toThrow(/^digest.sha256: a sha256 digest is 32 bytes, got 31/);
    expect(() => parseAsymmetricSignRequest({ ...good, data: 'eA==' })).toThrow(/mutually exclusive/);
    expect(() => parseAsymmetricSignRequest({})).toThrow(/one of digest or data is required/);
    expect(() => parseAsymmetricSignRequest({ digest: { sha256: 'a', sha512: 'b' } })).toThrow(/exactly one of/);
    expect(() => parseAsymmetricSignRequest({ digest: { md5: 'AAAA' } })).toThrow(/^digest.md5: /);
    expect(() => parseAsymmetricSignRequest({ digest: { sha256: '!!!' } })).toThrow(/^digest.sha256: not valid base64/);
    expect(() => parseAsymmetricSignRequest({ ...good, digestCrc32c: 'x' })).toThrow(/^digest_crc32c: /);
    // Standard and URL-safe base64 both decode; snake_case field names are read too.
    const digest = createHash('sha256').update('y').digest();
    const std = parseAsymmetricSignRequest({ digest: { sha256: digest.toString('base64') }, digest_crc32c: crc32c(digest) });
    expect(std.digest?.bytes.equals(digest)).toBe(true);
    expect(std.digestCrc32c).toBe(crc32c(digest));
  });

  it('validates crypto keys and names the offending field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /^cryptoKey\.purpose: required/],
      [{ purpose: 'ENCRYPT_DECRYPT' }, /^cryptoKey\.purpose: Tollgate's KMS supports only ASYMMETRIC_SIGN keys/],
      [{ purpose: 'MAGIC' }, /^cryptoKey\.purpose: unknown purpose/],
      [{ purpose: 'ASYMMETRIC_SIGN' }, /^cryptoKey\.versionTemplate\.algorithm: required/],
      [{ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_ED25519' } }, /^cryptoKey\.versionTemplate\.algorithm: EC_SIGN_ED25519 is not supported/],
      [{ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'NOPE' } }, /^cryptoKey\.versionTemplate\.algorithm: unknown algorithm/],
      [{ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256', protectionLevel: 'HSM' } }, /^cryptoKey\.versionTemplate\.protectionLevel: /],
      [{ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' }, rotationPeriod: '86400s' }, /^cryptoKey\.rotationPeriod: /],
      [{ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' }, destroyScheduledDuration: '60s' }, /^cryptoKey\.destroyScheduledDuration: must be between 24 hours/],
      [{ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' }, labels: { Bad: 'x' } }, /^cryptoKey\.labels: invalid label key "Bad"/],
    ];
    for (const [body, message] of cases) {
      const e = await apiError(kms.createCryptoKey(RING, 'invalid', body));
      expect(e.status, JSON.stringify(body)).toBe('INVALID_ARGUMENT');
      expect(e.message, JSON.stringify(body)).toMatch(message);
    }
    expect((await apiError(kms.createCryptoKey(`${LOCATION}/keyRings/missing`, 'k', { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } }))).status).toBe('NOT_FOUND');
    expect((await apiError(newKey('ec-sign-p256-sha256', 'EC_SIGN_P256_SHA256'))).status).toBe('ALREADY_EXISTS');
    // Enum numbers work as the proto JSON mapping allows.
    expect(await kms.createCryptoKey(RING, 'numeric', { purpose: 5, versionTemplate: { algorithm: 12 } }, { skipInitialVersionCreation: true })).toMatchObject({
      versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' },
    });
  });

  it('skips the first version when asked, numbers versions 1, 2, … and lists them in number order with paging', async () => {
    const key = `${RING}/cryptoKeys/many`;
    await kms.createCryptoKey(RING, 'many', { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' }, labels: { team: 'ci' } }, { skipInitialVersionCreation: true });
    expect((await kms.listCryptoKeyVersions(key, { limit: 10 })).items).toEqual([]);
    const created = await Promise.all(Array.from({ length: 11 }, () => kms.createCryptoKeyVersion(key, {})));
    expect(created.map((v) => Number(String(v['name']).split('/').pop())).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const first = await kms.listCryptoKeyVersions(key, { limit: 1 });
    expect(first.items.map((v) => v['name'])).toEqual([`${key}/cryptoKeyVersions/1`]);
    expect(first.totalSize).toBe(11);
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await kms.listCryptoKeyVersions(key, { limit: 4, after });
      names.push(...page.items.map((v) => String(v['name'])));
      if (page.nextPageToken === undefined) break;
      after = Buffer.from(page.nextPageToken, 'base64url').toString('utf8');
    }
    expect(names).toEqual(Array.from({ length: 11 }, (_, i) => `${key}/cryptoKeyVersions/${i + 1}`));
    expect((await kms.getCryptoKey(key))['labels']).toEqual({ team: 'ci' });
    expect(Object.keys(await kms.getCryptoKey(key)).sort()).toEqual(['createTime', 'destroyScheduledDuration', 'labels', 'name', 'purpose', 'versionTemplate']);
    expect((await kms.listCryptoKeys(RING, { limit: 100 })).items.map((k) => k['name'])).toContain(key);

    const updated = await kms.updateCryptoKey(key, { labels: { team: 'release' }, versionTemplate: { algorithm: 'EC_SIGN_P384_SHA384' } }, 'labels,versionTemplate.algorithm');
    expect(updated).toMatchObject({ labels: { team: 'release' }, versionTemplate: { algorithm: 'EC_SIGN_P384_SHA384' } });
    expect(await kms.createCryptoKeyVersion(key, {})).toMatchObject({ name: `${key}/cryptoKeyVersions/12`, algorithm: 'EC_SIGN_P384_SHA384' });
    expect((await apiError(kms.updateCryptoKey(key, { destroyScheduledDuration: '86400s' }, 'destroyScheduledDuration'))).message).toMatch(/cannot be changed/);
    expect((await apiError(kms.updateCryptoKey(key, {}, null))).message).toMatch(/^updateMask: required/);
  });

  it('disables, enables, destroys and restores; only ENABLED signs', async () => {
    await newKey('lifecycle', 'EC_SIGN_P256_SHA256');
    const v = `${RING}/cryptoKeys/lifecycle/cryptoKeyVersions/1`;
    const req = parseAsymmetricSignRequest(digestRequest('sha256', Buffer.from('x')));

    expect(await kms.updateCryptoKeyVersion(v, { state: 'DISABLED' }, 'state')).toMatchObject({ state: 'DISABLED' });
    const disabled = await apiError(kms.asymmetricSign(v, req));
    expect(disabled.status).toBe('FAILED_PRECONDITION');
    expect(disabled.message).toContain('is DISABLED');
    expect((await kms.getPublicKey(v)).pem).toContain('BEGIN PUBLIC KEY');
    expect(await kms.updateCryptoKeyVersion(v, { state: 'ENABLED' }, 'state')).toMatchObject({ state: 'ENABLED' });
    await kms.asymmetricSign(v, req);
    expect((await apiError(kms.updateCryptoKeyVersion(v, { state: 'DESTROYED' }, 'state'))).message).toMatch(/^cryptoKeyVersion\.state: must be ENABLED or DISABLED/);
    expect((await apiError(kms.updateCryptoKeyVersion(v, { state: 'DISABLED' }, 'algorithm'))).message).toMatch(/^updateMask: /);

    const destroyed = await kms.destroyCryptoKeyVersion(v);
    expect(destroyed).toMatchObject({ state: 'DESTROY_SCHEDULED', destroyTime: '2030-01-31T00:00:00.000000Z' });
    expect((await apiError(kms.asymmetricSign(v, req))).message).toContain('is DESTROY_SCHEDULED');
    expect((await apiError(kms.getPublicKey(v))).status).toBe('FAILED_PRECONDITION');
    expect((await apiError(kms.destroyCryptoKeyVersion(v))).status).toBe('FAILED_PRECONDITION');
    expect((await apiError(kms.updateCryptoKeyVersion(v, { state: 'ENABLED' }, 'state'))).status).toBe('FAILED_PRECONDITION');

    const restored = await kms.restoreCryptoKeyVersion(v);
    expect(restored).toMatchObject({ state: 'DISABLED' });
    expect(restored).not.toHaveProperty('destroyTime');
    expect((await apiError(kms.restoreCryptoKeyVersion(v))).status).toBe('FAILED_PRECONDITION');
    await kms.updateCryptoKeyVersion(v, { state: 'ENABLED' }, 'state');
    await kms.asymmetricSign(v, req);
  });

  it('becomes DESTROYED once destroyTime passes, dropping the key material (lazily and by sweep)', async () => {
    await newKey('doomed', 'EC_SIGN_P256_SHA256', { destroyScheduledDuration: '86400s' });
    await kms.createCryptoKeyVersion(`${RING}/cryptoKeys/doomed`, {});
    const v1 = `${RING}/cryptoKeys/doomed/cryptoKeyVersions/1`;
    const v2 = `${RING}/cryptoKeys/doomed/cryptoKeyVersions/2`;
    const saved = clock;
    try {
      expect(await kms.destroyCryptoKeyVersion(v1)).toMatchObject({ destroyTime: '2030-01-02T00:00:00.000000Z' });
      await kms.destroyCryptoKeyVersion(v2);
      clock = new Date('2030-01-01T23:59:59Z');
      expect(await kms.getCryptoKeyVersion(v1)).toMatchObject({ state: 'DESTROY_SCHEDULED' });
      expect(await kms.destroyDueVersions()).toBe(0);
      clock = new Date('2030-01-02T00:00:01Z');
      expect(await kms.getCryptoKeyVersion(v1)).toMatchObject({ state: 'DESTROYED', destroyEventTime: '2030-01-02T00:00:00.000000Z' });
      const stored = await store.get('cryptoKeyVersion', v1);
      expect(stored?.body).not.toHaveProperty('sealedPrivateKey');
      expect(stored?.body).not.toHaveProperty('publicKeyPem');
      expect(stored?.k1).toBe('DESTROYED');
      expect((await apiError(kms.restoreCryptoKeyVersion(v1))).message).toContain('is DESTROYED');
      expect((await apiError(kms.getPublicKey(v1))).status).toBe('FAILED_PRECONDITION');
      // v2 was not read: the sweep settles it.
      expect((await store.get('cryptoKeyVersion', v2))?.body).toHaveProperty('sealedPrivateKey');
      expect(await kms.destroyDueVersions()).toBe(1);
      expect((await store.get('cryptoKeyVersion', v2))?.body).not.toHaveProperty('sealedPrivateKey');
      const listed = await kms.listCryptoKeyVersions(`${RING}/cryptoKeys/doomed`, { limit: 10 }, 'state=DESTROYED');
      expect(listed.items.map((v) => v['state'])).toEqual(['DESTROYED', 'DESTROYED']);
      expect((await apiError(kms.listCryptoKeyVersions(`${RING}/cryptoKeys/doomed`, { limit: 10 }, 'name:foo'))).message).toMatch(/^filter: /);
    } finally {
      clock = saved;
    }
  });

  it('keeps private keys sealed at rest: the database holds no PKCS#8 bytes, only the sealed form', async () => {
    await newKey('at-rest-ec', 'EC_SIGN_P256_SHA256');
    await newKey('at-rest-rsa', 'RSA_SIGN_PKCS1_2048_SHA256');
    for (const id of ['at-rest-ec', 'at-rest-rsa']) {
      const name = `${RING}/cryptoKeys/${id}/cryptoKeyVersions/1`;
      const body = (await store.get('cryptoKeyVersion', name))?.body ?? {};
      const sealed = String(body['sealedPrivateKey']);
      expect(sealed).toMatch(/^v1\./);
      const der = masterKey.decrypt(sealed, name);
      expect(der[0]).toBe(0x30); // a DER SEQUENCE: the PKCS#8 PrivateKeyInfo
      // The database (main file and WAL) as bytes.
      const files = readdirSync(dir).filter((f) => f.startsWith('tollgate.db')).map((f) => readFileSync(join(dir, f)));
      const everything = Buffer.concat(files);
      expect(everything.includes(Buffer.from(sealed))).toBe(true); // the search does find what is there
      expect(everything.includes(der)).toBe(false);
      expect(everything.includes(der.subarray(der.length - 48))).toBe(false);
      expect(everything.includes(Buffer.from(der.toString('base64').slice(0, 64)))).toBe(false);
      // No method returns the material.
      const views = JSON.stringify([await kms.getCryptoKeyVersion(name), await kms.listCryptoKeyVersions(`${RING}/cryptoKeys/${id}`, { limit: 10 }), await kms.getPublicKey(name)]);
      expect(views).not.toContain('sealedPrivateKey');
      expect(views).not.toContain(sealed.slice(3, 40));
      expect(views).not.toContain(der.toString('base64').slice(0, 40));
    }
  });

  it('binds sealed material to its version: copied onto another version it does not open', async () => {
    await newKey('moved', 'EC_SIGN_P256_SHA256');
    await kms.createCryptoKeyVersion(`${RING}/cryptoKeys/moved`, {});
    const v1 = `${RING}/cryptoKeys/moved/cryptoKeyVersions/1`;
    const v2 = `${RING}/cryptoKeys/moved/cryptoKeyVersions/2`;
    const one = await store.get('cryptoKeyVersion', v1);
    const two = await store.get('cryptoKeyVersion', v2);
    if (one === undefined || two === undefined) throw new Error('missing versions');
    await store.update('cryptoKeyVersion', v2, { body: { ...two.body, sealedPrivateKey: one.body['sealedPrivateKey'] ?? null, publicKeyPem: one.body['publicKeyPem'] ?? null } });
    const req = parseAsymmetricSignRequest(digestRequest('sha256', Buffer.from('x')));
    await expect(kms.asymmetricSign(v2, req)).rejects.toThrow(/does not open/);
    await kms.asymmetricSign(v1, req);
    // Another master key opens nothing either.
    const other = new LocalKms(store, masterKeyFromBytes(randomBytes(32)), () => clock);
    await expect(other.asymmetricSign(v1, req)).rejects.toThrow(/does not open/);
  });
});
