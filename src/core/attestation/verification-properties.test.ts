/**
 * Property tests: everything that reads attacker-controlled input returns an error value and
 * never throws, whatever it is fed; and mutated signatures never verify.
 */
import fc from 'fast-check';
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readFixture, readFixtureText } from '../../../test/support/fixtures.js';
import { isValidPkixKeyId, keyIdsMatch } from './key-id.js';
import { SIGNATURE_ALGORITHMS, type AttestorKey, type SignatureAlgorithm } from './model.js';
import { parsePgpPublicKey, verifyPgpAttachedMessage } from './pgp.js';
import { defaultPkixKeyId, parsePkixPublicKey, verifyPkixSignature } from './pkix.js';
import { parseAttestorPublicKey } from './public-key.js';

type PkixKey = Extract<AttestorKey, { kind: 'pkix' }>;
const NOW = new Date('2035-06-01T00:00:00Z');

function loadPkix(alg: SignatureAlgorithm): PkixKey {
  const publicKeyPem = readFixtureText('pkix', alg, 'public.pem');
  const r = parsePkixPublicKey(publicKeyPem, alg);
  if (!r.ok) throw new Error(r.error.message);
  return { kind: 'pkix', id: defaultPkixKeyId(r.value.key), algorithm: alg, publicKeyPem, key: r.value.key };
}

function isResult(r: unknown): boolean {
  return typeof r === 'object' && r !== null && typeof (r as { ok: unknown }).ok === 'boolean';
}

/** Strings that look a little like the real thing, plus anything at all. */
const pemish = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.base64String().map((b) => `-----BEGIN PUBLIC KEY-----\n${b}\n-----END PUBLIC KEY-----\n`),
  fc.uint8Array({ maxLength: 300 }).map((b) => `-----BEGIN PUBLIC KEY-----\n${Buffer.from(b).toString('base64')}\n-----END PUBLIC KEY-----\n`),
  fc.constantFrom('PRIVATE KEY', 'CERTIFICATE', 'RSA PUBLIC KEY', 'EC PRIVATE KEY').map((l) => `-----BEGIN ${l}-----\nAAAA\n-----END ${l}-----\n`),
);
const algorithmish = fc.oneof(
  fc.constantFrom<string | number | undefined>(...SIGNATURE_ALGORITHMS, 'EC_SIGN_P256_SHA256', 'SIGNATURE_ALGORITHM_UNSPECIFIED', undefined, 0, 12),
  fc.string(),
  fc.integer(),
  fc.double(),
);

describe('never throws', () => {
  it('parsePkixPublicKey on arbitrary strings and algorithms', () => {
    fc.assert(
      fc.property(pemish, algorithmish, (pem, alg) => {
        expect(isResult(parsePkixPublicKey(pem, alg))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('parsePkixPublicKey on byte-mutated real keys', () => {
    const pems = SIGNATURE_ALGORITHMS.map((a) => [a, readFixtureText('pkix', a, 'public.pem')] as const);
    fc.assert(
      fc.property(fc.constantFrom(...pems), fc.nat(), fc.integer({ min: 0, max: 0xffff }), ([alg, pem], at, ch) => {
        const i = at % pem.length;
        const mutated = pem.slice(0, i) + String.fromCharCode(ch) + pem.slice(i + 1);
        expect(isResult(parsePkixPublicKey(mutated, alg))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('verifyPkixSignature on arbitrary payloads and signatures, for every algorithm', async () => {
    const keys = SIGNATURE_ALGORITHMS.map(loadPkix);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...keys), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 600 }), async (key, payload, sig) => {
        const r = await verifyPkixSignature(key, payload, sig);
        expect(isResult(r)).toBe(true);
        expect(r.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('parsePgpPublicKey on arbitrary strings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.base64String().map((b) => `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${b}\n-----END PGP PUBLIC KEY BLOCK-----\n`),
          fc.uint8Array({ maxLength: 300 }).map((b) => openpgp.armor(openpgp.enums.armor.publicKey, b)),
        ),
        async (s) => {
          expect(isResult(await parsePgpPublicKey(s))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  describe('PGP messages', () => {
    let key: openpgp.PublicKey;
    const good = readFixtureText('pgp', 'payload.json.asc');
    beforeAll(async () => {
      const r = await parsePgpPublicKey(readFixtureText('pgp', 'signer.pub.asc'));
      if (!r.ok) throw new Error(r.error.message);
      key = r.value.key;
    });

    it('verifyPgpAttachedMessage on arbitrary strings', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.string(),
            fc.base64String().map((b) => `-----BEGIN PGP MESSAGE-----\n\n${b}\n-----END PGP MESSAGE-----\n`),
            fc.uint8Array({ maxLength: 300 }).map((b) => openpgp.armor(openpgp.enums.armor.message, b)),
          ),
          async (s) => {
            const r = await verifyPgpAttachedMessage(key, s, NOW);
            expect(isResult(r)).toBe(true);
            expect(r.ok).toBe(false);
          },
        ),
        { numRuns: 200 },
      );
    });

    it('verifyPgpAttachedMessage on byte-mutated real messages never verifies a changed payload', async () => {
      const binary = Buffer.from((await openpgp.unarmor(readFixtureText('pgp', 'payload.uncompressed.asc'))).data as Uint8Array);
      const expected = readFixture('pgp', 'payload.json');
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
          const mutated = Buffer.from(binary);
          const i = at % mutated.length;
          mutated[i] = (mutated[i] as number) ^ xor;
          const r = await verifyPgpAttachedMessage(key, openpgp.armor(openpgp.enums.armor.message, mutated), NOW);
          expect(isResult(r)).toBe(true);
          // Some header bytes (e.g. the literal packet's file name or date) are not signed; the
          // payload must still be exactly what was signed whenever verification succeeds.
          if (r.ok) expect(Buffer.from(r.value.payload).equals(expected)).toBe(true);
        }),
        { numRuns: 200 },
      );
    });

    it('verifyPgpAttachedMessage on character-mutated armor', async () => {
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 0x7f }), async (at, ch) => {
          const i = at % good.length;
          const mutated = good.slice(0, i) + String.fromCharCode(ch) + good.slice(i + 1);
          expect(isResult(await verifyPgpAttachedMessage(key, mutated, NOW))).toBe(true);
        }),
        { numRuns: 200 },
      );
    });
  });

  it('parseAttestorPublicKey on arbitrary values', async () => {
    const pem = readFixtureText('pkix', 'ECDSA_P256_SHA256', 'public.pem');
    const value = fc.oneof(fc.anything(), fc.string(), fc.constant(pem), fc.constantFrom(...SIGNATURE_ALGORITHMS));
    const shaped = fc.record(
      {
        id: value,
        comment: value,
        asciiArmoredPgpPublicKey: fc.oneof(value, fc.constant(readFixtureText('pgp', 'signer.pub.asc'))),
        pkixPublicKey: fc.oneof(
          value,
          fc.record({ publicKeyPem: value, signatureAlgorithm: value, keyId: value }, { requiredKeys: [] }),
        ),
        pkix_public_key: fc.record({ public_key_pem: value, signature_algorithm: value, key_id: value }, { requiredKeys: [] }),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), shaped), async (raw) => {
        const r = await parseAttestorPublicKey(raw, 'publicKeys[0]');
        expect(isResult(r)).toBe(true);
        if (!r.ok) expect(r.error.message.startsWith('publicKeys[0]')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('mutated signatures never verify', () => {
  for (const alg of ['ECDSA_P256_SHA256', 'ECDSA_P521_SHA512', 'RSA_PSS_2048_SHA256', 'RSA_SIGN_PKCS1_2048_SHA256'] as const) {
    it(alg, async () => {
      const key = loadPkix(alg);
      const payload = readFixture('pkix', alg, 'payload.json');
      const sig = readFixture('pkix', alg, 'signature.bin');
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
          const mutated = Buffer.from(sig);
          const i = at % mutated.length;
          mutated[i] = (mutated[i] as number) ^ xor;
          expect((await verifyPkixSignature(key, payload, mutated)).ok).toBe(false);
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('key id properties', () => {
  it('keyIdsMatch is reflexive and symmetric; isValidPkixKeyId never throws', () => {
    const id = fc.oneof(
      fc.string(),
      fc.tuple(fc.constantFrom('cloudkms.googleapis.com', '127.0.0.1:7420', 'h'), fc.nat({ max: 3 })).map(
        ([h, v]) => `//${h}/v1/projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/${v}`,
      ),
    );
    fc.assert(
      fc.property(id, id, (a, b) => {
        expect(keyIdsMatch(a, a)).toBe(true);
        expect(keyIdsMatch(a, b)).toBe(keyIdsMatch(b, a));
        expect(typeof isValidPkixKeyId(a)).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });
});
