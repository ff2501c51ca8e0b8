import { describe, expect, it } from 'vitest';
import { SIGNATURE_ALGORITHMS } from './model.js';
import {
  algorithmSpec,
  canonicalSignatureAlgorithm,
  kmsAlgorithmToSignatureAlgorithm,
  signatureAlgorithmNumber,
} from './signature-algorithm.js';

describe('canonicalSignatureAlgorithm', () => {
  it('accepts every canonical name as itself', () => {
    for (const alg of SIGNATURE_ALGORITHMS) expect(canonicalSignatureAlgorithm(alg)).toBe(alg);
  });

  it('maps the aliases onto the first-defined names', () => {
    expect(canonicalSignatureAlgorithm('EC_SIGN_P256_SHA256')).toBe('ECDSA_P256_SHA256');
    expect(canonicalSignatureAlgorithm('EC_SIGN_P384_SHA384')).toBe('ECDSA_P384_SHA384');
    expect(canonicalSignatureAlgorithm('EC_SIGN_P521_SHA512')).toBe('ECDSA_P521_SHA512');
    expect(canonicalSignatureAlgorithm('RSA_SIGN_PSS_2048_SHA256')).toBe('RSA_PSS_2048_SHA256');
    expect(canonicalSignatureAlgorithm('RSA_SIGN_PSS_3072_SHA256')).toBe('RSA_PSS_3072_SHA256');
    expect(canonicalSignatureAlgorithm('RSA_SIGN_PSS_4096_SHA256')).toBe('RSA_PSS_4096_SHA256');
    expect(canonicalSignatureAlgorithm('RSA_SIGN_PSS_4096_SHA512')).toBe('RSA_PSS_4096_SHA512');
  });

  it('accepts the proto enum numbers 1..11 in declaration order', () => {
    expect(canonicalSignatureAlgorithm(1)).toBe('RSA_PSS_2048_SHA256');
    expect(canonicalSignatureAlgorithm(5)).toBe('RSA_SIGN_PKCS1_2048_SHA256');
    expect(canonicalSignatureAlgorithm(9)).toBe('ECDSA_P256_SHA256');
    expect(canonicalSignatureAlgorithm(11)).toBe('ECDSA_P521_SHA512');
    for (const alg of SIGNATURE_ALGORITHMS) {
      expect(canonicalSignatureAlgorithm(signatureAlgorithmNumber(alg))).toBe(alg);
    }
  });

  it('refuses unspecified, unknown, wrong-case and out-of-range values', () => {
    for (const v of ['SIGNATURE_ALGORITHM_UNSPECIFIED', '', 'ecdsa_p256_sha256', 'ECDSA_P256', 'toString', '__proto__', '9', 0, 12, -1, 1.5, Number.NaN]) {
      expect(canonicalSignatureAlgorithm(v), String(v)).toBeUndefined();
    }
  });
});

describe('algorithmSpec', () => {
  it('gives hash, key type and size for each algorithm', () => {
    expect(algorithmSpec('ECDSA_P256_SHA256')).toEqual({ hash: 'sha256', keyType: 'ec', namedCurve: 'prime256v1' });
    expect(algorithmSpec('ECDSA_P384_SHA384')).toEqual({ hash: 'sha384', keyType: 'ec', namedCurve: 'secp384r1' });
    expect(algorithmSpec('ECDSA_P521_SHA512')).toEqual({ hash: 'sha512', keyType: 'ec', namedCurve: 'secp521r1' });
    expect(algorithmSpec('RSA_PSS_4096_SHA512')).toEqual({ hash: 'sha512', keyType: 'rsa', modulusLength: 4096, padding: 'pss' });
    expect(algorithmSpec('RSA_SIGN_PKCS1_3072_SHA256')).toEqual({ hash: 'sha256', keyType: 'rsa', modulusLength: 3072, padding: 'pkcs1' });
    for (const alg of SIGNATURE_ALGORITHMS) {
      const spec = algorithmSpec(alg);
      expect(alg.endsWith(spec.hash.toUpperCase())).toBe(true);
      if (spec.keyType === 'rsa') expect(alg).toContain(String(spec.modulusLength));
    }
  });
});

describe('kmsAlgorithmToSignatureAlgorithm', () => {
  it('maps KMS names the way gcloud does', () => {
    expect(kmsAlgorithmToSignatureAlgorithm('EC_SIGN_P256_SHA256')).toBe('ECDSA_P256_SHA256');
    expect(kmsAlgorithmToSignatureAlgorithm('EC_SIGN_P384_SHA384')).toBe('ECDSA_P384_SHA384');
    expect(kmsAlgorithmToSignatureAlgorithm('RSA_SIGN_PSS_2048_SHA256')).toBe('RSA_PSS_2048_SHA256');
    expect(kmsAlgorithmToSignatureAlgorithm('RSA_SIGN_PSS_4096_SHA512')).toBe('RSA_PSS_4096_SHA512');
    expect(kmsAlgorithmToSignatureAlgorithm('RSA_SIGN_PKCS1_4096_SHA512')).toBe('RSA_SIGN_PKCS1_4096_SHA512');
  });

  it('has no mapping for KMS algorithms Binary Authorization cannot use', () => {
    for (const v of ['EC_SIGN_SECP256K1_SHA256', 'EC_SIGN_ED25519', 'RSA_DECRYPT_OAEP_2048_SHA256', 'GOOGLE_SYMMETRIC_ENCRYPTION', 'ECDSA_P256_SHA256', 'EC_SIGN_P521_SHA512', '']) {
      expect(kmsAlgorithmToSignatureAlgorithm(v), v).toBeUndefined();
    }
  });
});
