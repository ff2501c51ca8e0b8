import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { opensslSign, readFixture, readFixtureText } from '../../../test/support/fixtures.js';
import { SIGNATURE_ALGORITHMS, type AttestorKey, type SignatureAlgorithm } from './model.js';
import { defaultPkixKeyId, parsePkixPublicKey, verifyPkixSignature } from './pkix.js';

type PkixKey = Extract<AttestorKey, { kind: 'pkix' }>;

function pem(dir: string): string {
  return readFixtureText('pkix', dir, 'public.pem');
}

function load(alg: SignatureAlgorithm, dir: string = alg): PkixKey {
  const publicKeyPem = pem(dir);
  const r = parsePkixPublicKey(publicKeyPem, alg);
  if (!r.ok) throw new Error(r.error.message);
  return { kind: 'pkix', id: defaultPkixKeyId(r.value.key), algorithm: r.value.algorithm, publicKeyPem, key: r.value.key };
}

function fixture(alg: SignatureAlgorithm): { key: PkixKey; payload: Buffer; signature: Buffer } {
  return { key: load(alg), payload: readFixture('pkix', alg, 'payload.json'), signature: readFixture('pkix', alg, 'signature.bin') };
}

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  const i = index < 0 ? copy.length + index : index;
  copy[i] = (copy[i] as number) ^ 0x01;
  return copy;
}

function expectCode(r: Awaited<ReturnType<typeof verifyPkixSignature>>, code: 'BAD_SIGNATURE' | 'MALFORMED_SIGNATURE'): void {
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.error.code).toBe(code);
    expect(r.error.message.length).toBeGreaterThan(0);
  }
}

describe('parsePkixPublicKey', () => {
  for (const alg of SIGNATURE_ALGORITHMS) {
    it(`parses the ${alg} fixture key`, () => {
      const r = parsePkixPublicKey(pem(alg), alg);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.algorithm).toBe(alg);
        expect(r.value.key.type).toBe('public');
      }
    });
  }

  it('accepts aliases and enum numbers and returns the canonical name', () => {
    const a = parsePkixPublicKey(pem('ECDSA_P256_SHA256'), 'EC_SIGN_P256_SHA256');
    expect(a.ok && a.value.algorithm).toBe('ECDSA_P256_SHA256');
    const b = parsePkixPublicKey(pem('ECDSA_P256_SHA256'), 9);
    expect(b.ok && b.value.algorithm).toBe('ECDSA_P256_SHA256');
    const c = parsePkixPublicKey(pem('RSA_PSS_2048_SHA256'), 'RSA_SIGN_PSS_2048_SHA256');
    expect(c.ok && c.value.algorithm).toBe('RSA_PSS_2048_SHA256');
  });

  it('accepts CRLF line endings and surrounding whitespace', () => {
    const text = `\n  ${pem('ECDSA_P384_SHA384').replace(/\n/g, '\r\n')}\r\n\r\n`;
    expect(parsePkixPublicKey(text, 'ECDSA_P384_SHA384').ok).toBe(true);
  });

  it('requires an algorithm', () => {
    for (const alg of [undefined, '', 'SIGNATURE_ALGORITHM_UNSPECIFIED', 0]) {
      const r = parsePkixPublicKey(pem('ECDSA_P256_SHA256'), alg);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.path).toBe('signatureAlgorithm');
        expect(r.error.message).toMatch(/^signatureAlgorithm: .*required/);
      }
    }
  });

  it('refuses unknown algorithms', () => {
    const r = parsePkixPublicKey(pem('ECDSA_P256_SHA256'), 'ECDSA_P256_SHA1');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('unknown signature algorithm');
  });

  it('says which curve mismatched (P-256 key declared as P-384)', () => {
    const r = parsePkixPublicKey(pem('ECDSA_P256_SHA256'), 'ECDSA_P384_SHA384');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('KEY_ALGORITHM_MISMATCH');
      expect(r.error.message).toContain('P-384');
      expect(r.error.message).toContain('P-256');
    }
  });

  it('says which modulus size mismatched (RSA 2048 declared as 4096)', () => {
    const r = parsePkixPublicKey(pem('RSA_SIGN_PKCS1_2048_SHA256'), 'RSA_SIGN_PKCS1_4096_SHA256');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('KEY_ALGORITHM_MISMATCH');
      expect(r.error.message).toContain('4096');
      expect(r.error.message).toContain('2048');
    }
  });

  it('refuses an RSA key declared as ECDSA and an EC key declared as RSA', () => {
    const a = parsePkixPublicKey(pem('RSA_PSS_2048_SHA256'), 'ECDSA_P256_SHA256');
    expect(!a.ok && a.error.message).toMatch(/EC key.*RSA 2048-bit/);
    const b = parsePkixPublicKey(pem('ECDSA_P521_SHA512'), 'RSA_PSS_4096_SHA512');
    expect(!b.ok && b.error.message).toMatch(/RSA 4096-bit.*EC key on P-521/);
  });

  it('refuses an Ed25519 key', () => {
    const ed = createPublicKey({ key: Buffer.from('302a300506032b6570032100' + '11'.repeat(32), 'hex'), format: 'der', type: 'spki' });
    const text = ed.export({ type: 'spki', format: 'pem' }).toString();
    const r = parsePkixPublicKey(text, 'ECDSA_P256_SHA256');
    expect(!r.ok && r.error.message).toContain('ed25519');
  });

  it('refuses private keys, certificates, PKCS#1 keys and garbage with error values', () => {
    const priv = readFixtureText('pkix', 'ECDSA_P256_SHA256', 'private.pem');
    const sec1 = createPrivateKey(priv).export({ type: 'sec1', format: 'pem' }).toString();
    const pkcs1 = createPublicKey(pem('RSA_SIGN_PKCS1_2048_SHA256')).export({ type: 'pkcs1', format: 'pem' }).toString();
    const body = pem('ECDSA_P256_SHA256').split('\n').slice(1, -2).join('\n');
    const cases: [string, RegExp][] = [
      [priv, /private key/],
      [sec1, /private key/],
      [`-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`, /certificate/],
      [pkcs1, /PKCS#1/],
      ['', /empty/],
      ['   \n', /empty/],
      ['hello world', /not PEM/],
      [body, /not PEM/],
      ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', /not a DER SubjectPublicKeyInfo/],
      ['-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n', /base64/],
      ['-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----\n', /base64/],
      [`-----BEGIN PUBLIC KEY-----\n${body}\n-----END PRIVATE KEY-----\n`, /does not match/],
      [pem('ECDSA_P256_SHA256') + pem('ECDSA_P256_SHA256'), /more than one PEM block/],
      ['-----BEGIN PUBLIC KEY-----\nAAAA\n', /no PEM END line/],
      ['-----BEGIN public key-----\nAAAA\n-----END public key-----\n', /malformed PEM BEGIN/],
      [`junk before\n${pem('ECDSA_P256_SHA256')}`, /outside/],
      [`-----BEGIN PUBLIC KEY-----\nMAMCAQE=\n-----END PUBLIC KEY-----\n`, /not a usable SubjectPublicKeyInfo/],
    ];
    for (const [text, why] of cases) {
      const r = parsePkixPublicKey(text, 'ECDSA_P256_SHA256');
      expect(r.ok, text).toBe(false);
      if (!r.ok) {
        expect(r.error.message, text).toMatch(why);
        expect(r.error.path).toBe('publicKeyPem');
        expect(r.error.message.startsWith('publicKeyPem: ')).toBe(true);
      }
    }
  });

  it('refuses a key with bytes after the SubjectPublicKeyInfo', () => {
    const der = createPublicKey(pem('ECDSA_P256_SHA256')).export({ type: 'spki', format: 'der' });
    const padded = Buffer.concat([der, Buffer.from([0, 0])]).toString('base64');
    const r = parsePkixPublicKey(`-----BEGIN PUBLIC KEY-----\n${padded}\n-----END PUBLIC KEY-----\n`, 'ECDSA_P256_SHA256');
    expect(r.ok).toBe(false);
  });
});

describe('defaultPkixKeyId', () => {
  it('is ni:///sha-256; + base64url(SHA-256(DER SPKI)) without padding', () => {
    const key = load('ECDSA_P256_SHA256').key;
    const der = Buffer.from(pem('ECDSA_P256_SHA256').split('\n').slice(1, -2).join(''), 'base64');
    const expected = `ni:///sha-256;${createHash('sha256').update(der).digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
    expect(defaultPkixKeyId(key)).toBe(expected);
    expect(defaultPkixKeyId(key)).toMatch(/^ni:\/\/\/sha-256;[A-Za-z0-9_-]{43}$/);
  });

  it('differs between keys', () => {
    expect(defaultPkixKeyId(load('ECDSA_P256_SHA256').key)).not.toBe(defaultPkixKeyId(load('ECDSA_P256_SHA256', 'other-ECDSA_P256_SHA256').key));
  });
});

describe('verifyPkixSignature', () => {
  for (const alg of SIGNATURE_ALGORITHMS) {
    describe(alg, () => {
      const { key, payload, signature } = fixture(alg);

      it('verifies the openssl-made signature over the gcloud payload', async () => {
        expect(await verifyPkixSignature(key, payload, signature)).toEqual({ ok: true, value: true });
      });

      it('rejects a flipped signature byte as BAD_SIGNATURE', async () => {
        expectCode(await verifyPkixSignature(key, payload, flip(signature, -1)), 'BAD_SIGNATURE');
      });

      it('rejects a flipped payload byte as BAD_SIGNATURE', async () => {
        expectCode(await verifyPkixSignature(key, flip(payload, 40), signature), 'BAD_SIGNATURE');
      });

      it('rejects a signature over another payload as BAD_SIGNATURE', async () => {
        const other = readFixture('pgp', 'payload.json');
        expectCode(await verifyPkixSignature(key, other, signature), 'BAD_SIGNATURE');
      });

      it('rejects a truncated signature as MALFORMED_SIGNATURE', async () => {
        expectCode(await verifyPkixSignature(key, payload, signature.subarray(0, signature.length - 1)), 'MALFORMED_SIGNATURE');
        expectCode(await verifyPkixSignature(key, payload, signature.subarray(0, 8)), 'MALFORMED_SIGNATURE');
      });

      it('rejects an empty signature as MALFORMED_SIGNATURE', async () => {
        expectCode(await verifyPkixSignature(key, payload, new Uint8Array(0)), 'MALFORMED_SIGNATURE');
      });

      it('verifies a fresh openssl signature over different bytes', async () => {
        const data = Buffer.from('any bytes at all may be signed\n');
        expect((await verifyPkixSignature(key, data, opensslSign(alg, alg, data))).ok).toBe(true);
      });

      it('gives the same results on the thread pool as in place', async () => {
        for (const [p, s] of [[payload, signature], [payload, flip(signature, -1)], [flip(payload, 40), signature], [payload, signature.subarray(0, 8)]] as const) {
          expect(await verifyPkixSignature(key, p, s, true)).toEqual(await verifyPkixSignature(key, p, s, false));
        }
        expect(await verifyPkixSignature(key, payload, signature, true)).toEqual({ ok: true, value: true });
      });
    });
  }

  it('rejects a signature by another key of the same algorithm (EC P-256)', async () => {
    const { key, payload } = fixture('ECDSA_P256_SHA256');
    const sig = opensslSign('other-ECDSA_P256_SHA256', 'ECDSA_P256_SHA256', payload);
    expectCode(await verifyPkixSignature(key, payload, sig), 'BAD_SIGNATURE');
    // …while the other key does verify it.
    expect((await verifyPkixSignature(load('ECDSA_P256_SHA256', 'other-ECDSA_P256_SHA256'), payload, sig)).ok).toBe(true);
  });

  it('rejects a signature by another key of the same algorithm (RSA-PSS 4096)', async () => {
    const { key, payload } = fixture('RSA_PSS_4096_SHA256');
    const sig = opensslSign('RSA_SIGN_PKCS1_4096_SHA256', 'RSA_PSS_4096_SHA256', payload, { pss: true });
    expectCode(await verifyPkixSignature(key, payload, sig), 'BAD_SIGNATURE');
  });

  it('rejects a PSS signature checked as PKCS#1 v1.5, and the other way round', async () => {
    const pss = fixture('RSA_PSS_2048_SHA256');
    const asPkcs1: PkixKey = { ...pss.key, algorithm: 'RSA_SIGN_PKCS1_2048_SHA256' };
    expectCode(await verifyPkixSignature(asPkcs1, pss.payload, pss.signature), 'BAD_SIGNATURE');
    const pkcs1 = fixture('RSA_SIGN_PKCS1_2048_SHA256');
    const asPss: PkixKey = { ...pkcs1.key, algorithm: 'RSA_PSS_2048_SHA256' };
    expectCode(await verifyPkixSignature(asPss, pkcs1.payload, pkcs1.signature), 'BAD_SIGNATURE');
  });

  it('rejects a signature made with another hash', async () => {
    const { key, payload } = fixture('RSA_PSS_4096_SHA512');
    const sha256 = opensslSign('RSA_PSS_4096_SHA512', 'RSA_PSS_4096_SHA256', payload);
    expectCode(await verifyPkixSignature(key, payload, sha256), 'BAD_SIGNATURE');
  });

  for (const alg of SIGNATURE_ALGORITHMS.filter((a) => a.startsWith('RSA_PSS'))) {
    it(`${alg}: accepts PSS with the maximum salt length too (automatic salt length)`, async () => {
      const { key, payload } = fixture(alg);
      const sig = readFixture('pkix', alg, 'signature-saltmax.bin');
      expect((await verifyPkixSignature(key, payload, sig)).ok).toBe(true);
    });
  }

  describe('ECDSA signatures must be strict DER SEQUENCE{r,s}', () => {
    const { key, payload, signature } = fixture('ECDSA_P256_SHA256');
    const der = Buffer.from(signature);

    it('rejects a raw r||s (IEEE P1363) signature as MALFORMED_SIGNATURE', async () => {
      const p1363 = convertDerToP1363(der, 32);
      expectCode(await verifyPkixSignature(key, payload, p1363), 'MALFORMED_SIGNATURE');
    });

    it('rejects trailing bytes, a wrong tag and a broken length as MALFORMED_SIGNATURE', async () => {
      expectCode(await verifyPkixSignature(key, payload, Buffer.concat([der, Buffer.from([0])])), 'MALFORMED_SIGNATURE');
      expectCode(await verifyPkixSignature(key, payload, Buffer.concat([Buffer.from([0x31]), der.subarray(1)])), 'MALFORMED_SIGNATURE');
      const longer = Buffer.from(der);
      longer[1] = (longer[1] as number) + 1;
      expectCode(await verifyPkixSignature(key, payload, longer), 'MALFORMED_SIGNATURE');
      expectCode(await verifyPkixSignature(key, payload, Buffer.from([0x30, 0x00])), 'MALFORMED_SIGNATURE');
      expectCode(await verifyPkixSignature(key, payload, Buffer.from([0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00])), 'MALFORMED_SIGNATURE');
    });

    it('rejects non-minimal and negative integers as MALFORMED_SIGNATURE', async () => {
      expectCode(await verifyPkixSignature(key, payload, Buffer.from([0x30, 0x08, 0x02, 0x02, 0x00, 0x01, 0x02, 0x02, 0x00, 0x01])), 'MALFORMED_SIGNATURE');
      expectCode(await verifyPkixSignature(key, payload, Buffer.from([0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01])), 'MALFORMED_SIGNATURE');
    });

    it('treats well-formed DER with wrong values as BAD_SIGNATURE', async () => {
      expectCode(await verifyPkixSignature(key, payload, Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])), 'BAD_SIGNATURE');
      expectCode(await verifyPkixSignature(key, payload, Buffer.from([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00])), 'BAD_SIGNATURE');
    });
  });

  it('rejects an RSA signature of the wrong length as MALFORMED_SIGNATURE', async () => {
    const { key, payload, signature } = fixture('RSA_SIGN_PKCS1_3072_SHA256');
    expectCode(await verifyPkixSignature(key, payload, Buffer.concat([signature, Buffer.from([0])])), 'MALFORMED_SIGNATURE');
    expectCode(await verifyPkixSignature(key, payload, Buffer.concat([Buffer.from([0]), signature])), 'MALFORMED_SIGNATURE');
  });

  it('treats an RSA signature value >= the modulus as BAD_SIGNATURE', async () => {
    const { key, payload, signature } = fixture('RSA_SIGN_PKCS1_2048_SHA256');
    expectCode(await verifyPkixSignature(key, payload, Buffer.alloc(signature.length, 0xff)), 'BAD_SIGNATURE');
  });

  it('never throws on a broken key object', async () => {
    const { key, payload, signature } = fixture('ECDSA_P256_SHA256');
    const broken = { ...key, key: undefined } as unknown as PkixKey;
    expectCode(await verifyPkixSignature(broken, payload, signature), 'BAD_SIGNATURE');
    const unknownAlg = { ...key, algorithm: 'NOPE' } as unknown as PkixKey;
    expectCode(await verifyPkixSignature(unknownAlg, payload, signature), 'BAD_SIGNATURE');
  });
});

/** DER ECDSA-Sig-Value → fixed-width r||s. */
function convertDerToP1363(der: Buffer, width: number): Buffer {
  let at = 2;
  const parts: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    const len = der[at + 1] as number;
    let int = der.subarray(at + 2, at + 2 + len);
    while (int.length > width && int[0] === 0) int = int.subarray(1);
    parts.push(Buffer.concat([Buffer.alloc(width - int.length), int]));
    at += 2 + len;
  }
  return Buffer.concat(parts);
}
