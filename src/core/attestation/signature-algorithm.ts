/**
 * Binary Authorization signature algorithms: names, aliases, proto numbers, what each one means
 * cryptographically, and how Cloud KMS algorithm names map onto them.
 */
import { SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from './model.js';

export type HashName = 'sha256' | 'sha384' | 'sha512';

export interface AlgorithmSpec {
  readonly hash: HashName;
  readonly keyType: 'ec' | 'rsa';
  /** OpenSSL / Node.js curve name, for EC algorithms. */
  readonly namedCurve?: 'prime256v1' | 'secp384r1' | 'secp521r1';
  /** Exact RSA modulus size in bits, for RSA algorithms. */
  readonly modulusLength?: 2048 | 3072 | 4096;
  /** RSA signature scheme, for RSA algorithms. */
  readonly padding?: 'pss' | 'pkcs1';
}

const SPECS: Readonly<Record<SignatureAlgorithm, AlgorithmSpec>> = {
  RSA_PSS_2048_SHA256: { hash: 'sha256', keyType: 'rsa', modulusLength: 2048, padding: 'pss' },
  RSA_PSS_3072_SHA256: { hash: 'sha256', keyType: 'rsa', modulusLength: 3072, padding: 'pss' },
  RSA_PSS_4096_SHA256: { hash: 'sha256', keyType: 'rsa', modulusLength: 4096, padding: 'pss' },
  RSA_PSS_4096_SHA512: { hash: 'sha512', keyType: 'rsa', modulusLength: 4096, padding: 'pss' },
  RSA_SIGN_PKCS1_2048_SHA256: { hash: 'sha256', keyType: 'rsa', modulusLength: 2048, padding: 'pkcs1' },
  RSA_SIGN_PKCS1_3072_SHA256: { hash: 'sha256', keyType: 'rsa', modulusLength: 3072, padding: 'pkcs1' },
  RSA_SIGN_PKCS1_4096_SHA256: { hash: 'sha256', keyType: 'rsa', modulusLength: 4096, padding: 'pkcs1' },
  RSA_SIGN_PKCS1_4096_SHA512: { hash: 'sha512', keyType: 'rsa', modulusLength: 4096, padding: 'pkcs1' },
  ECDSA_P256_SHA256: { hash: 'sha256', keyType: 'ec', namedCurve: 'prime256v1' },
  ECDSA_P384_SHA384: { hash: 'sha384', keyType: 'ec', namedCurve: 'secp384r1' },
  ECDSA_P521_SHA512: { hash: 'sha512', keyType: 'ec', namedCurve: 'secp521r1' },
};

/** Second names the API accepts for the same enum numbers (`allow_alias`). */
const ALIASES: Readonly<Record<string, SignatureAlgorithm>> = {
  RSA_SIGN_PSS_2048_SHA256: 'RSA_PSS_2048_SHA256',
  RSA_SIGN_PSS_3072_SHA256: 'RSA_PSS_3072_SHA256',
  RSA_SIGN_PSS_4096_SHA256: 'RSA_PSS_4096_SHA256',
  RSA_SIGN_PSS_4096_SHA512: 'RSA_PSS_4096_SHA512',
  EC_SIGN_P256_SHA256: 'ECDSA_P256_SHA256',
  EC_SIGN_P384_SHA384: 'ECDSA_P384_SHA384',
  EC_SIGN_P521_SHA512: 'ECDSA_P521_SHA512',
};

/**
 * Cloud KMS `CryptoKeyVersionAlgorithm` names that gcloud maps to a Binary Authorization
 * algorithm. KMS has no P-521 signing algorithm, so nothing maps to ECDSA_P521_SHA512.
 */
const KMS_ALGORITHMS: Readonly<Record<string, SignatureAlgorithm>> = {
  RSA_SIGN_PSS_2048_SHA256: 'RSA_PSS_2048_SHA256',
  RSA_SIGN_PSS_3072_SHA256: 'RSA_PSS_3072_SHA256',
  RSA_SIGN_PSS_4096_SHA256: 'RSA_PSS_4096_SHA256',
  RSA_SIGN_PSS_4096_SHA512: 'RSA_PSS_4096_SHA512',
  RSA_SIGN_PKCS1_2048_SHA256: 'RSA_SIGN_PKCS1_2048_SHA256',
  RSA_SIGN_PKCS1_3072_SHA256: 'RSA_SIGN_PKCS1_3072_SHA256',
  RSA_SIGN_PKCS1_4096_SHA256: 'RSA_SIGN_PKCS1_4096_SHA256',
  RSA_SIGN_PKCS1_4096_SHA512: 'RSA_SIGN_PKCS1_4096_SHA512',
  EC_SIGN_P256_SHA256: 'ECDSA_P256_SHA256',
  EC_SIGN_P384_SHA384: 'ECDSA_P384_SHA384',
};

function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/**
 * The canonical (first-defined) name for a wire value: a canonical name, an alias, or the proto
 * enum number 1..11. `SIGNATURE_ALGORITHM_UNSPECIFIED` / 0 and anything else give `undefined`.
 * Names are case-sensitive, as in the proto JSON mapping.
 */
export function canonicalSignatureAlgorithm(name: string | number): SignatureAlgorithm | undefined {
  if (typeof name === 'number') {
    if (!Number.isInteger(name) || name < 1 || name > SIGNATURE_ALGORITHMS.length) return undefined;
    return SIGNATURE_ALGORITHMS[name - 1];
  }
  if (typeof name !== 'string') return undefined;
  if ((SIGNATURE_ALGORITHMS as readonly string[]).includes(name)) return name as SignatureAlgorithm;
  return own(ALIASES, name);
}

/** The proto enum number of a canonical algorithm (1..11). */
export function signatureAlgorithmNumber(alg: SignatureAlgorithm): number {
  return SIGNATURE_ALGORITHMS.indexOf(alg) + 1;
}

/** Hash, key type and key size that an algorithm requires. */
export function algorithmSpec(alg: SignatureAlgorithm): AlgorithmSpec {
  return SPECS[alg];
}

/** Maps a Cloud KMS algorithm name (e.g. `EC_SIGN_P256_SHA256`) the way gcloud does. */
export function kmsAlgorithmToSignatureAlgorithm(kmsName: string): SignatureAlgorithm | undefined {
  if (typeof kmsName !== 'string') return undefined;
  return own(KMS_ALGORITHMS, kmsName);
}
