import { describe, expect, it } from 'vitest';
import { readFixtureText } from '../../../test/support/fixtures.js';
import { defaultPkixKeyId, parsePkixPublicKey } from './pkix.js';
import { parseAttestorPublicKey } from './public-key.js';

const P = 'userOwnedGrafeasNote.publicKeys[1]';
const ecPem = readFixtureText('pkix', 'ECDSA_P256_SHA256', 'public.pem');
const pgpKey = readFixtureText('pgp', 'signer.pub.asc');
const fpr = readFixtureText('pgp', 'signer.fpr').trim();
const KMS_ID = '//cloudkms.googleapis.com/v1/projects/demo/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1';

function defaultId(): string {
  const r = parsePkixPublicKey(ecPem, 'ECDSA_P256_SHA256');
  if (!r.ok) throw new Error(r.error.message);
  return defaultPkixKeyId(r.value.key);
}

async function expectProblem(raw: unknown, path: string, message: RegExp): Promise<void> {
  const r = await parseAttestorPublicKey(raw, P);
  expect(r.ok, path).toBe(false);
  if (!r.ok) {
    expect(r.error.path).toBe(path);
    expect(r.error.message.startsWith(`${path}: `), r.error.message).toBe(true);
    expect(r.error.message).toMatch(message);
  }
}

describe('parseAttestorPublicKey: PGP', () => {
  it('computes the id from the key and ignores a supplied id', async () => {
    const r = await parseAttestorPublicKey({ id: 'whatever', comment: 'release signer', asciiArmoredPgpPublicKey: pgpKey }, P);
    expect(r.ok).toBe(true);
    if (r.ok && r.value.kind === 'pgp') {
      expect(r.value.id).toBe(fpr);
      expect(r.value.comment).toBe('release signer');
      expect(r.value.asciiArmoredPgpPublicKey).toBe(pgpKey);
    } else {
      throw new Error('expected a pgp key');
    }
  });

  it('accepts the snake_case field name and CRLF armor', async () => {
    const r = await parseAttestorPublicKey({ ascii_armored_pgp_public_key: pgpKey.replace(/\n/g, '\r\n') }, P);
    expect(r.ok && r.value.id).toBe(fpr);
    if (r.ok) expect(r.value.comment).toBeUndefined();
  });

  it('reports key problems under the field path', async () => {
    await expectProblem({ asciiArmoredPgpPublicKey: 'nope' }, `${P}.asciiArmoredPgpPublicKey`, /not ASCII-armored/);
    await expectProblem({ asciiArmoredPgpPublicKey: readFixtureText('pgp', 'other.sec.asc') }, `${P}.asciiArmoredPgpPublicKey`, /private key/);
    await expectProblem({ asciiArmoredPgpPublicKey: 42 }, `${P}.asciiArmoredPgpPublicKey`, /string/);
  });
});

describe('parseAttestorPublicKey: PKIX', () => {
  it('uses the supplied id', async () => {
    const r = await parseAttestorPublicKey({ id: KMS_ID, pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'EC_SIGN_P256_SHA256' } }, P);
    expect(r.ok).toBe(true);
    if (r.ok && r.value.kind === 'pkix') {
      expect(r.value.id).toBe(KMS_ID);
      expect(r.value.algorithm).toBe('ECDSA_P256_SHA256');
      expect(r.value.publicKeyPem).toBe(ecPem);
      expect(r.value.key.type).toBe('public');
    } else {
      throw new Error('expected a pkix key');
    }
  });

  it('falls back to pkixPublicKey.keyId, then to the ni:/// default', async () => {
    const a = await parseAttestorPublicKey({ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256', keyId: 'urn:tollgate:k1' } }, P);
    expect(a.ok && a.value.id).toBe('urn:tollgate:k1');
    const b = await parseAttestorPublicKey({ id: '', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }, P);
    expect(b.ok && b.value.id).toBe(defaultId());
    expect(defaultId()).toMatch(/^ni:\/\/\/sha-256;/);
  });

  it('accepts id and keyId when they are equal, refuses them when they differ', async () => {
    const same = await parseAttestorPublicKey({ id: 'urn:x:1', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 9, keyId: 'urn:x:1' } }, P);
    expect(same.ok && same.value.id).toBe('urn:x:1');
    await expectProblem(
      { id: 'urn:x:1', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 9, keyId: 'urn:x:2' } },
      `${P}.pkixPublicKey.keyId`,
      /must equal/,
    );
  });

  it('accepts the proto snake_case names', async () => {
    const r = await parseAttestorPublicKey({ pkix_public_key: { public_key_pem: ecPem, signature_algorithm: 'ECDSA_P256_SHA256', key_id: 'urn:x:3' } }, P);
    expect(r.ok && r.value.id).toBe('urn:x:3');
  });

  it('refuses an id that is not a URI', async () => {
    await expectProblem({ id: 'my key', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }, `${P}.id`, /RFC 3986/);
    await expectProblem({ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256', keyId: '1abc:def' } }, `${P}.pkixPublicKey.keyId`, /RFC 3986/);
  });

  it('reports algorithm problems at pkixPublicKey.signatureAlgorithm', async () => {
    const at = `${P}.pkixPublicKey.signatureAlgorithm`;
    await expectProblem({ pkixPublicKey: { publicKeyPem: ecPem } }, at, /required/);
    await expectProblem({ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'SIGNATURE_ALGORITHM_UNSPECIFIED' } }, at, /required/);
    await expectProblem({ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'BOGUS' } }, at, /unknown/);
    await expectProblem({ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P384_SHA384' } }, at, /P-384.*P-256/);
    await expectProblem({ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: true } }, at, /algorithm name/);
  });

  it('reports PEM problems at pkixPublicKey.publicKeyPem', async () => {
    const at = `${P}.pkixPublicKey.publicKeyPem`;
    await expectProblem({ pkixPublicKey: { signatureAlgorithm: 'ECDSA_P256_SHA256' } }, at, /required/);
    await expectProblem({ pkixPublicKey: { publicKeyPem: 'garbage', signatureAlgorithm: 'ECDSA_P256_SHA256' } }, at, /not PEM/);
    await expectProblem(
      { pkixPublicKey: { publicKeyPem: readFixtureText('pkix', 'ECDSA_P256_SHA256', 'private.pem'), signatureAlgorithm: 'ECDSA_P256_SHA256' } },
      at,
      /private key/,
    );
    await expectProblem({ pkixPublicKey: { publicKeyPem: ['x'], signatureAlgorithm: 'ECDSA_P256_SHA256' } }, at, /string/);
  });
});

describe('parseAttestorPublicKey: shape', () => {
  it('needs exactly one kind of key', async () => {
    await expectProblem({}, P, /one of asciiArmoredPgpPublicKey or pkixPublicKey is required/);
    await expectProblem({ id: 'x', comment: 'c' }, P, /required/);
    await expectProblem(
      { asciiArmoredPgpPublicKey: pgpKey, pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
      P,
      /only one/,
    );
  });

  it('refuses non-objects and wrongly typed fields', async () => {
    for (const raw of [null, undefined, 'key', 42, [], [{}]]) await expectProblem(raw, P, /must be an object/);
    await expectProblem({ pkixPublicKey: 'pem' }, `${P}.pkixPublicKey`, /must be an object/);
    await expectProblem({ comment: 5, asciiArmoredPgpPublicKey: pgpKey }, `${P}.comment`, /string/);
    await expectProblem({ id: {}, asciiArmoredPgpPublicKey: pgpKey }, `${P}.id`, /string/);
  });

  it('refuses a field given under both spellings with different values', async () => {
    await expectProblem(
      { pkixPublicKey: { publicKeyPem: ecPem, public_key_pem: 'other', signatureAlgorithm: 'ECDSA_P256_SHA256' } },
      `${P}.pkixPublicKey.publicKeyPem`,
      /given twice/,
    );
  });

  it('treats null fields as absent', async () => {
    const r = await parseAttestorPublicKey({ id: null, comment: null, asciiArmoredPgpPublicKey: pgpKey, pkixPublicKey: null }, P);
    expect(r.ok && r.value.id).toBe(fpr);
  });

  it('never throws on hostile objects', async () => {
    const hostile = Object.defineProperty({}, 'pkixPublicKey', { enumerable: true, get: () => { throw new Error('boom'); } });
    await expectProblem(hostile, P, /boom/);
  });
});
