/**
 * Tollgate's key service: the Cloud KMS v1 resources Binary Authorization uses (reference §5) kept
 * in the store, with asymmetric signing done here by node:crypto.
 *
 *   keyRing           projects/P/locations/L/keyRings/R                 parent projects/P/locations/L
 *   cryptoKey         …/keyRings/R/cryptoKeys/K                         parent the key ring
 *   cryptoKeyVersion  …/cryptoKeys/K/cryptoKeyVersions/N (N = 1, 2, …)  parent the crypto key, k1 = state
 *
 * Private keys are generated in the server (PKCS#8 DER), sealed with the master key for the
 * version's name, kept only inside the version document (`sealedPrivateKey`) and opened only to
 * sign. No method returns them, and nothing here logs. A version scheduled for destruction becomes
 * DESTROYED when its destroyTime has passed: on the first read after that (or on a sweep with
 * `destroyDueVersions`), which also drops the sealed material from the store.
 *
 * IAM and audit are the API layer's (api/cloudkms.ts); write methods take an `after` hook that runs
 * inside the same transaction, so the audit entry commits together with the change.
 */
import {
  createHash,
  createPrivateKey,
  constants as cryptoConstants,
  generateKeyPair,
  privateEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { decodeBase64Bytes } from '../../core/encoding/base64.js';
import { aborted, ApiError, failedPrecondition, invalidArgument, notFound } from '../errors.js';
import {
  StoreAlreadyExists,
  StoreVersionConflict,
  type JsonObject,
  type ResourceKind,
  type Store,
  type StoreOps,
  type StoredResource,
} from '../store/store.js';
import { crc32c, crc32cString, parseCrc32cField } from './crc32c.js';
import type { MasterKey } from './master-key.js';
import { isJsonObject } from '../../core/json.js';

// ---------------------------------------------------------------------------------------------
// Algorithms

export type HashName = 'sha256' | 'sha384' | 'sha512';

export interface KmsAlgorithm {
  /** The proto enum number (`CryptoKeyVersionAlgorithm`). */
  readonly number: number;
  readonly hash: HashName;
  readonly keyType: 'ec' | 'rsa';
  readonly namedCurve?: 'prime256v1' | 'secp384r1';
  readonly modulusLength?: 2048 | 3072 | 4096;
  readonly padding?: 'pss' | 'pkcs1';
}

/** The signing algorithms Tollgate's KMS generates keys for (every one Binary Authorization accepts). */
export const KMS_ALGORITHM_NAMES = [
  'EC_SIGN_P256_SHA256',
  'EC_SIGN_P384_SHA384',
  'RSA_SIGN_PSS_2048_SHA256',
  'RSA_SIGN_PSS_3072_SHA256',
  'RSA_SIGN_PSS_4096_SHA256',
  'RSA_SIGN_PSS_4096_SHA512',
  'RSA_SIGN_PKCS1_2048_SHA256',
  'RSA_SIGN_PKCS1_3072_SHA256',
  'RSA_SIGN_PKCS1_4096_SHA256',
  'RSA_SIGN_PKCS1_4096_SHA512',
] as const;
export type KmsAlgorithmName = (typeof KMS_ALGORITHM_NAMES)[number];

export const KMS_ALGORITHMS: Readonly<Record<KmsAlgorithmName, KmsAlgorithm>> = {
  EC_SIGN_P256_SHA256: { number: 12, hash: 'sha256', keyType: 'ec', namedCurve: 'prime256v1' },
  EC_SIGN_P384_SHA384: { number: 13, hash: 'sha384', keyType: 'ec', namedCurve: 'secp384r1' },
  RSA_SIGN_PSS_2048_SHA256: { number: 2, hash: 'sha256', keyType: 'rsa', modulusLength: 2048, padding: 'pss' },
  RSA_SIGN_PSS_3072_SHA256: { number: 3, hash: 'sha256', keyType: 'rsa', modulusLength: 3072, padding: 'pss' },
  RSA_SIGN_PSS_4096_SHA256: { number: 4, hash: 'sha256', keyType: 'rsa', modulusLength: 4096, padding: 'pss' },
  RSA_SIGN_PSS_4096_SHA512: { number: 15, hash: 'sha512', keyType: 'rsa', modulusLength: 4096, padding: 'pss' },
  RSA_SIGN_PKCS1_2048_SHA256: { number: 5, hash: 'sha256', keyType: 'rsa', modulusLength: 2048, padding: 'pkcs1' },
  RSA_SIGN_PKCS1_3072_SHA256: { number: 6, hash: 'sha256', keyType: 'rsa', modulusLength: 3072, padding: 'pkcs1' },
  RSA_SIGN_PKCS1_4096_SHA256: { number: 7, hash: 'sha256', keyType: 'rsa', modulusLength: 4096, padding: 'pkcs1' },
  RSA_SIGN_PKCS1_4096_SHA512: { number: 16, hash: 'sha512', keyType: 'rsa', modulusLength: 4096, padding: 'pkcs1' },
};

const ALGORITHM_NAMES: readonly KmsAlgorithmName[] = KMS_ALGORITHM_NAMES;

/** Other `CryptoKeyVersionAlgorithm` values KMS has, so the error says "not supported" rather than "unknown". */
const OTHER_KMS_ALGORITHMS: Readonly<Record<string, number>> = {
  GOOGLE_SYMMETRIC_ENCRYPTION: 1, RSA_DECRYPT_OAEP_2048_SHA256: 8, RSA_DECRYPT_OAEP_3072_SHA256: 9, RSA_DECRYPT_OAEP_4096_SHA256: 10,
  RSA_DECRYPT_OAEP_4096_SHA512: 17, RSA_DECRYPT_OAEP_2048_SHA1: 37, RSA_DECRYPT_OAEP_3072_SHA1: 38, RSA_DECRYPT_OAEP_4096_SHA1: 39,
  RSA_SIGN_RAW_PKCS1_2048: 28, RSA_SIGN_RAW_PKCS1_3072: 29, RSA_SIGN_RAW_PKCS1_4096: 30, EC_SIGN_SECP256K1_SHA256: 31,
  EC_SIGN_ED25519: 40, HMAC_SHA256: 32, HMAC_SHA1: 33, HMAC_SHA384: 34, HMAC_SHA512: 35, HMAC_SHA224: 36, EXTERNAL_SYMMETRIC_ENCRYPTION: 18,
  PQ_SIGN_ML_DSA_65: 56, PQ_SIGN_SLH_DSA_SHA2_128S: 57,
};

export function isKmsAlgorithmName(name: string): name is KmsAlgorithmName {
  return Object.prototype.hasOwnProperty.call(KMS_ALGORITHMS, name);
}

const DIGEST_BYTES: Readonly<Record<HashName, number>> = { sha256: 32, sha384: 48, sha512: 64 };

// ---------------------------------------------------------------------------------------------
// Signing over a digest
//
// node:crypto's sign() always hashes its input (a null algorithm means the key's default digest,
// not "prehashed"), and KMS signs digests the client computed. RSA uses OpenSSL's private
// operation (privateEncrypt, with blinding) over a PKCS#1 v1.5 DigestInfo or an EMSA-PSS
// encoding; ECDSA uses the audited @noble/curves implementation, which signs a given digest.

/** DER DigestInfo prefixes (RFC 8017 §9.2, note 1). */
const DIGEST_INFO_PREFIX: Readonly<Record<HashName, Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};


/** Signs a precomputed digest the way Cloud KMS does for `algorithm` (ECDSA signatures are DER). */
export async function signDigest(algorithm: KmsAlgorithmName, privateKey: KeyObject, digest: Uint8Array): Promise<Buffer> {
  const spec = KMS_ALGORITHMS[algorithm];
  if (digest.length !== DIGEST_BYTES[spec.hash]) throw new Error(`${algorithm} signs a ${spec.hash} digest of ${DIGEST_BYTES[spec.hash]} bytes`);
  if (spec.keyType === 'ec') return ecdsaSignDigest(privateKey, spec.namedCurve as 'prime256v1' | 'secp384r1', digest);
  if (spec.padding === 'pkcs1') {
    return privateEncrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO_PREFIX[spec.hash], digest]));
  }
  return rsaPssSignDigest(privateKey, spec.hash, digest);
}

function rsaPssSignDigest(privateKey: KeyObject, hash: HashName, mHash: Uint8Array): Buffer {
  const modBits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (modBits === undefined) throw new Error('not an RSA key');
  const hLen = DIGEST_BYTES[hash];
  const sLen = hLen; // Cloud KMS: the salt is as long as the digest
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + sLen + 2) throw new Error('RSA key too small for PSS with this digest');
  // EMSA-PSS-ENCODE, RFC 8017 §9.1.1.
  const salt = randomBytes(sLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - sLen - hLen - 2] = 0x01;
  salt.copy(db, db.length - sLen);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & (0xff >>> (8 * emLen - emBits));
  const em = Buffer.concat([db, h, Buffer.from([0xbc])]);
  const k = Math.ceil(modBits / 8);
  const input = em.length === k ? em : Buffer.concat([Buffer.alloc(k - em.length), em]);
  return privateEncrypt({ key: privateKey, padding: cryptoConstants.RSA_NO_PADDING }, input);
}

function mgf1(hash: HashName, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 0; produced < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

async function ecdsaSignDigest(privateKey: KeyObject, curve: 'prime256v1' | 'secp384r1', digest: Uint8Array): Promise<Buffer> {
  const jwk = privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new Error('not an EC private key');
  const secret = Buffer.from(jwk.d, 'base64url');
  // Node's sign() always hashes its input, and KMS signs a digest the client computed. An audited
  // implementation does the signing (RFC 6979 nonces hedged with fresh entropy) rather than
  // hand-written curve arithmetic; signatures are DER, as Cloud KMS returns them.
  // Loaded on first use: the curve library costs about 10 MB of memory, and a server that only
  // verifies (most of them) never signs.
  const { p256, p384 } = await import('@noble/curves/nist.js');
  const ecdsa = curve === 'prime256v1' ? p256 : p384;
  return Buffer.from(ecdsa.sign(digest, secret, { prehash: false, lowS: false, format: 'der', extraEntropy: true }));
}

interface KeyMaterial {
  readonly publicKeyPem: string;
  readonly privateKeyDer: Buffer;
}

/** A fresh key pair for `algorithm`, made off the event loop (RSA 4096 takes a while). */
export function generateKeyMaterial(algorithm: KmsAlgorithmName): Promise<KeyMaterial> {
  const spec = KMS_ALGORITHMS[algorithm];
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'der' } as const;
  return new Promise((resolve, reject) => {
    const done = (e: Error | null, publicKeyPem: string, privateKeyDer: Buffer) => (e === null ? resolve({ publicKeyPem, privateKeyDer }) : reject(e));
    if (spec.keyType === 'ec') {
      generateKeyPair('ec', { namedCurve: spec.namedCurve as string, publicKeyEncoding, privateKeyEncoding }, done);
    } else {
      generateKeyPair('rsa', { modulusLength: spec.modulusLength as number, publicExponent: 0x10001, publicKeyEncoding, privateKeyEncoding }, done);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Requests

export type CryptoKeyVersionState = 'ENABLED' | 'DISABLED' | 'DESTROY_SCHEDULED' | 'DESTROYED';

/** 30 days: Cloud KMS's default for `destroyScheduledDuration`. */
export const DEFAULT_DESTROY_SCHEDULED_DURATION = '2592000s';
const MIN_DESTROY_SECONDS = 24 * 3600;
const MAX_DESTROY_SECONDS = 120 * 24 * 3600;
/** The largest `data` asymmetricSign takes (as Cloud KMS: 64 KiB). */
const MAX_SIGN_DATA_BYTES = 64 * 1024;

export interface AsymmetricSignRequest {
  readonly digest?: { readonly algorithm: HashName; readonly bytes: Buffer };
  readonly digestCrc32c?: number;
  readonly data?: Buffer;
  readonly dataCrc32c?: number;
}

/** Reads a field given in lowerCamelCase or proto snake_case. */
function get(obj: Record<string, unknown>, camel: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, camel)) return obj[camel];
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return Object.prototype.hasOwnProperty.call(obj, snake) ? obj[snake] : undefined;
}

function bytesField(value: unknown, path: string): Buffer {
  if (typeof value !== 'string') throw invalidArgument(`${path}: must be a base64 string`);
  const r = decodeBase64Bytes(value, path);
  if (!r.ok) throw invalidArgument(r.error.message);
  return Buffer.from(r.value);
}

function crcField(value: unknown, path: string): number | undefined {
  try {
    return parseCrc32cField(value);
  } catch (e) {
    throw invalidArgument(`${path}: ${(e as Error).message}`);
  }
}

/** Parses an AsymmetricSignRequest body (`digest` xor `data`, optional CRC32C of each). */
export function parseAsymmetricSignRequest(body: Record<string, unknown>): AsymmetricSignRequest {
  const rawDigest = get(body, 'digest');
  const rawData = get(body, 'data');
  const hasDigest = rawDigest !== undefined && rawDigest !== null;
  const hasData = rawData !== undefined && rawData !== null && rawData !== '';
  if (hasDigest && hasData) throw invalidArgument('digest: digest and data are mutually exclusive; send one of them');
  const digestCrc32c = crcField(get(body, 'digestCrc32c'), 'digest_crc32c');
  const dataCrc32c = crcField(get(body, 'dataCrc32c'), 'data_crc32c');
  if (hasDigest) {
    if (!isJsonObject(rawDigest)) throw invalidArgument('digest: must be an object with one of sha256, sha384 or sha512');
    const present = (['sha256', 'sha384', 'sha512'] as const).filter((h) => rawDigest[h] !== undefined && rawDigest[h] !== null);
    const unknown = Object.keys(rawDigest).filter((k) => k !== 'sha256' && k !== 'sha384' && k !== 'sha512');
    if (unknown.length > 0) throw invalidArgument(`digest.${unknown[0] as string}: not a digest Tollgate's KMS signs (sha256, sha384 or sha512)`);
    if (present.length !== 1) throw invalidArgument('digest: exactly one of sha256, sha384 or sha512 is required');
    const algorithm = present[0] as HashName;
    const bytes = bytesField(rawDigest[algorithm], `digest.${algorithm}`);
    if (bytes.length !== DIGEST_BYTES[algorithm]) {
      throw invalidArgument(`digest.${algorithm}: a ${algorithm} digest is ${DIGEST_BYTES[algorithm]} bytes, got ${bytes.length}`);
    }
    if (dataCrc32c !== undefined) throw invalidArgument('data_crc32c: given without data');
    return { digest: { algorithm, bytes }, ...(digestCrc32c === undefined ? {} : { digestCrc32c }) };
  }
  if (hasData) {
    const data = bytesField(rawData, 'data');
    if (data.length > MAX_SIGN_DATA_BYTES) throw invalidArgument(`data: at most ${MAX_SIGN_DATA_BYTES} bytes can be signed, got ${data.length}`);
    if (digestCrc32c !== undefined) throw invalidArgument('digest_crc32c: given without digest');
    return { data, ...(dataCrc32c === undefined ? {} : { dataCrc32c }) };
  }
  throw invalidArgument('digest: one of digest or data is required');
}

export interface AsymmetricSignResponse {
  readonly signature: string;
  readonly signatureCrc32c: string;
  readonly verifiedDigestCrc32c: boolean;
  readonly verifiedDataCrc32c: boolean;
  readonly name: string;
  readonly protectionLevel: 'SOFTWARE';
}

export interface PublicKeyResponse {
  readonly pem: string;
  readonly algorithm: KmsAlgorithmName;
  readonly pemCrc32c: string;
  readonly name: string;
  readonly protectionLevel: 'SOFTWARE';
  readonly publicKeyFormat: 'PEM';
  readonly publicKey?: { readonly data: string; readonly crc32cChecksum: string };
}

export interface ListResult {
  readonly items: JsonObject[];
  readonly nextPageToken?: string;
  readonly totalSize: number;
}

export interface PageRequest {
  readonly limit: number;
  /** The last name of the previous page (decoded page token). */
  readonly after?: string | undefined;
}

/** Runs inside the write's transaction with the resource written (audit entries go here). */
export type AfterWrite = (tx: StoreOps, result: JsonObject) => Promise<void>;

/** Location ids: `global`, multi-regions (`us`, `europe`, `nam4`) and regions (`us-central1`). */
export function isValidLocationId(id: string): boolean {
  return /^(?:global|[a-z]+(?:-[a-z]+)*[0-9]*)$/.test(id) && id.length <= 63;
}

const RESOURCE_ID = /^[A-Za-z0-9_-]{1,63}$/;

/** A `keyRingId` / `cryptoKeyId` query parameter: 1-63 letters, digits, `-` or `_`. */
export function requireKmsId(value: string | null, param: string): string {
  if (value === null || value === '') throw invalidArgument(`${param}: required`);
  if (!RESOURCE_ID.test(value)) throw invalidArgument(`${param}: "${value}" is not a valid id (1-63 letters, digits, '-' or '_')`);
  return value;
}

/** Reads a `google.protobuf.Duration` JSON value (`"86400s"`, `"1.5s"`) as seconds. */
function durationSeconds(value: unknown, path: string): number {
  if (typeof value !== 'string' || !/^\d{1,12}(?:\.\d{1,9})?s$/.test(value)) throw invalidArgument(`${path}: must be a duration such as "86400s", got ${JSON.stringify(value)}`);
  return Number(value.slice(0, -1));
}

function algorithmField(value: unknown, path: string): KmsAlgorithmName {
  if (value === undefined || value === null || value === '' || value === 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED' || value === 0) {
    throw invalidArgument(`${path}: required for ASYMMETRIC_SIGN keys (one of ${ALGORITHM_NAMES.join(', ')})`);
  }
  const name = typeof value === 'number' ? ALGORITHM_NAMES.find((a) => KMS_ALGORITHMS[a].number === value) ?? Object.keys(OTHER_KMS_ALGORITHMS).find((a) => OTHER_KMS_ALGORITHMS[a] === value) : value;
  if (typeof name === 'string' && isKmsAlgorithmName(name)) return name;
  if (typeof name === 'string' && Object.prototype.hasOwnProperty.call(OTHER_KMS_ALGORITHMS, name)) {
    throw invalidArgument(`${path}: ${name} is not supported by Tollgate's KMS; supported: ${ALGORITHM_NAMES.join(', ')}`);
  }
  throw invalidArgument(`${path}: unknown algorithm ${JSON.stringify(value)}; supported: ${ALGORITHM_NAMES.join(', ')}`);
}

const PURPOSES: Readonly<Record<string, number>> = {
  CRYPTO_KEY_PURPOSE_UNSPECIFIED: 0, ENCRYPT_DECRYPT: 1, ASYMMETRIC_SIGN: 5, ASYMMETRIC_DECRYPT: 6, RAW_ENCRYPT_DECRYPT: 7, MAC: 9,
};

function purposeField(value: unknown): 'ASYMMETRIC_SIGN' {
  const name = typeof value === 'number' ? Object.keys(PURPOSES).find((p) => PURPOSES[p] === value) : value;
  if (name === undefined || name === null || name === '' || name === 'CRYPTO_KEY_PURPOSE_UNSPECIFIED') throw invalidArgument('cryptoKey.purpose: required (Tollgate\'s KMS supports only ASYMMETRIC_SIGN keys)');
  if (name === 'ASYMMETRIC_SIGN') return name;
  if (typeof name === 'string' && Object.prototype.hasOwnProperty.call(PURPOSES, name)) {
    throw invalidArgument(`cryptoKey.purpose: Tollgate's KMS supports only ASYMMETRIC_SIGN keys, not ${name}`);
  }
  throw invalidArgument(`cryptoKey.purpose: unknown purpose ${JSON.stringify(value)} (Tollgate's KMS supports only ASYMMETRIC_SIGN keys)`);
}

function protectionLevelField(value: unknown, path: string): void {
  if (value === undefined || value === null || value === '' || value === 'SOFTWARE' || value === 1 || value === 'PROTECTION_LEVEL_UNSPECIFIED' || value === 0) return;
  throw invalidArgument(`${path}: Tollgate's KMS keeps keys in software only (SOFTWARE), not ${JSON.stringify(value)}`);
}

const LABEL_KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;

function labelsField(value: unknown, path: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isJsonObject(value)) throw invalidArgument(`${path}: must be a map of strings`);
  const out: Record<string, string> = {};
  const entries = Object.entries(value);
  if (entries.length > 64) throw invalidArgument(`${path}: at most 64 labels, got ${entries.length}`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) throw invalidArgument(`${path}: invalid label key "${k}" (lowercase letter first, then up to 62 lowercase letters, digits, '_' or '-')`);
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) throw invalidArgument(`${path}.${k}: invalid label value (up to 63 lowercase letters, digits, '_' or '-')`);
    out[k] = v;
  }
  return out;
}

interface CryptoKeySpec {
  readonly algorithm: KmsAlgorithmName;
  readonly labels: Record<string, string>;
  readonly destroyScheduledDuration: string;
}

function parseCryptoKey(body: Record<string, unknown>): CryptoKeySpec {
  purposeField(get(body, 'purpose'));
  const template = get(body, 'versionTemplate');
  if (template !== undefined && template !== null && !isJsonObject(template)) throw invalidArgument('cryptoKey.versionTemplate: must be an object');
  const t = (template ?? {}) as Record<string, unknown>;
  protectionLevelField(get(t, 'protectionLevel'), 'cryptoKey.versionTemplate.protectionLevel');
  const algorithm = algorithmField(get(t, 'algorithm'), 'cryptoKey.versionTemplate.algorithm');
  const importOnly = get(body, 'importOnly');
  if (importOnly === true) throw invalidArgument('cryptoKey.importOnly: Tollgate\'s KMS generates every key itself; importing is not supported');
  for (const f of ['rotationPeriod', 'nextRotationTime'] as const) {
    const v = get(body, f);
    if (v !== undefined && v !== null && v !== '') throw invalidArgument(`cryptoKey.${f}: automatic rotation is only for symmetric keys; ASYMMETRIC_SIGN keys cannot have a rotation schedule`);
  }
  const backend = get(body, 'cryptoKeyBackend');
  if (backend !== undefined && backend !== null && backend !== '') throw invalidArgument('cryptoKey.cryptoKeyBackend: not supported by Tollgate\'s KMS');
  const rawDuration = get(body, 'destroyScheduledDuration');
  let destroyScheduledDuration = DEFAULT_DESTROY_SCHEDULED_DURATION;
  if (rawDuration !== undefined && rawDuration !== null && rawDuration !== '') {
    const secs = durationSeconds(rawDuration, 'cryptoKey.destroyScheduledDuration');
    if (secs < MIN_DESTROY_SECONDS || secs > MAX_DESTROY_SECONDS) {
      throw invalidArgument(`cryptoKey.destroyScheduledDuration: must be between 24 hours ("86400s") and 120 days ("10368000s"), got "${String(rawDuration)}"`);
    }
    destroyScheduledDuration = rawDuration as string;
  }
  return { algorithm, labels: labelsField(get(body, 'labels'), 'cryptoKey.labels'), destroyScheduledDuration };
}

// ---------------------------------------------------------------------------------------------
// Names, times, views

/** RFC 3339 with microseconds, as the store writes createTime. */
function timestamp(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

/** Name order, with the numeric last segment of versions compared as a number (1, 2, …, 10). */
function compareNames(a: string, b: string): number {
  const ia = a.lastIndexOf('/');
  const ib = b.lastIndexOf('/');
  if (ia === ib && a.slice(0, ia) === b.slice(0, ib)) {
    const na = a.slice(ia + 1);
    const nb = b.slice(ib + 1);
    if (/^\d+$/.test(na) && /^\d+$/.test(nb) && na !== nb) return Number(na) - Number(nb);
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function str(body: JsonObject, key: string): string | undefined {
  const v = body[key];
  return typeof v === 'string' ? v : undefined;
}

function keyRingView(r: StoredResource): JsonObject {
  return { name: r.name, createTime: r.createTime };
}

function cryptoKeyView(r: StoredResource): JsonObject {
  const b = r.body;
  const labels = b['labels'];
  return {
    name: r.name,
    purpose: 'ASYMMETRIC_SIGN',
    createTime: r.createTime,
    versionTemplate: { protectionLevel: 'SOFTWARE', algorithm: str(b, 'algorithm') ?? null },
    ...(isJsonObject(labels) && Object.keys(labels).length > 0 ? { labels } : {}),
    destroyScheduledDuration: str(b, 'destroyScheduledDuration') ?? DEFAULT_DESTROY_SCHEDULED_DURATION,
  };
}

function versionView(r: StoredResource): JsonObject {
  const b = r.body;
  const out: JsonObject = {
    name: r.name,
    state: str(b, 'state') ?? 'ENABLED',
    protectionLevel: 'SOFTWARE',
    algorithm: str(b, 'algorithm') ?? null,
    createTime: r.createTime,
  };
  for (const f of ['generateTime', 'destroyTime', 'destroyEventTime'] as const) {
    const v = str(b, f);
    if (v !== undefined) out[f] = v;
  }
  return out;
}

function stateOf(r: StoredResource): CryptoKeyVersionState {
  return (str(r.body, 'state') ?? 'ENABLED') as CryptoKeyVersionState;
}

const LIST_BATCH = 500;

// ---------------------------------------------------------------------------------------------
// The service

export class LocalKms {
  constructor(
    private readonly store: Store,
    private readonly masterKey: MasterKey,
    /** The clock (tests move it forward to pass a destroyTime). */
    private readonly now: () => Date = () => new Date(),
  ) {}

  // --- key rings ------------------------------------------------------------------------------

  async createKeyRing(parent: string, keyRingIdParam: string | null, after?: AfterWrite): Promise<JsonObject> {
    const keyRingId = requireKmsId(keyRingIdParam, 'keyRingId');
    const location = parent.split('/')[3] ?? '';
    if (!isValidLocationId(location)) throw invalidArgument(`parent: "${location}" is not a valid location (use global or a region such as us-central1)`);
    const name = `${parent}/keyRings/${keyRingId}`;
    return this.store.transaction(async (tx) => {
      let created: StoredResource;
      try {
        created = await tx.create({ kind: 'keyRing', name, parent, body: {} });
      } catch (e) {
        if (e instanceof StoreAlreadyExists) throw new ApiError('ALREADY_EXISTS', `KeyRing ${name} already exists.`);
        throw e;
      }
      const view = keyRingView(created);
      await after?.(tx, view);
      return view;
    });
  }

  async getKeyRing(name: string): Promise<JsonObject> {
    return keyRingView(await this.require('keyRing', name, 'KeyRing'));
  }

  async listKeyRings(parent: string, page: PageRequest): Promise<ListResult> {
    const rows = await this.listAll('keyRing', parent);
    return paged(rows.map(keyRingView), page);
  }

  // --- crypto keys ----------------------------------------------------------------------------

  /**
   * Creates an ASYMMETRIC_SIGN key and, unless `skipInitialVersionCreation`, its version 1 in the
   * same transaction. `after` receives the CryptoKey.
   */
  async createCryptoKey(
    parent: string,
    cryptoKeyIdParam: string | null,
    body: Record<string, unknown>,
    opts: { skipInitialVersionCreation?: boolean } = {},
    after?: AfterWrite,
  ): Promise<JsonObject> {
    const cryptoKeyId = requireKmsId(cryptoKeyIdParam, 'cryptoKeyId');
    const spec = parseCryptoKey(body);
    const name = `${parent}/cryptoKeys/${cryptoKeyId}`;
    await this.require('keyRing', parent, 'KeyRing');
    if ((await this.store.get('cryptoKey', name)) !== undefined) throw new ApiError('ALREADY_EXISTS', `CryptoKey ${name} already exists.`);
    const material = opts.skipInitialVersionCreation === true ? undefined : await generateKeyMaterial(spec.algorithm);
    try {
      return await this.store.transaction(async (tx) => {
        if ((await tx.get('keyRing', parent)) === undefined) throw notFound(`KeyRing ${parent} not found.`);
        let key: StoredResource;
        try {
          key = await tx.create({
            kind: 'cryptoKey',
            name,
            parent,
            body: {
              algorithm: spec.algorithm,
              labels: spec.labels,
              destroyScheduledDuration: spec.destroyScheduledDuration,
              lastVersionId: material === undefined ? 0 : 1,
            },
          });
        } catch (e) {
          if (e instanceof StoreAlreadyExists) throw new ApiError('ALREADY_EXISTS', `CryptoKey ${name} already exists.`);
          throw e;
        }
        if (material !== undefined) await this.insertVersion(tx, name, 1, spec.algorithm, material);
        const view = cryptoKeyView(key);
        await after?.(tx, view);
        return view;
      });
    } finally {
      material?.privateKeyDer.fill(0);
    }
  }

  async getCryptoKey(name: string): Promise<JsonObject> {
    return cryptoKeyView(await this.require('cryptoKey', name, 'CryptoKey'));
  }

  async listCryptoKeys(parent: string, page: PageRequest): Promise<ListResult> {
    const rows = await this.listAll('cryptoKey', parent);
    return paged(rows.map(cryptoKeyView), page);
  }

  /** Updates `labels` and/or `versionTemplate.algorithm` (the algorithm of versions made from now on). */
  async updateCryptoKey(name: string, body: Record<string, unknown>, updateMask: string | null, after?: AfterWrite): Promise<JsonObject> {
    const paths = maskPaths(updateMask);
    let labels: Record<string, string> | undefined;
    let algorithm: KmsAlgorithmName | undefined;
    for (const p of paths) {
      if (p === 'labels') labels = labelsField(get(body, 'labels'), 'cryptoKey.labels');
      else if (p === 'versionTemplate' || p === 'versionTemplate.algorithm' || p === 'version_template' || p === 'version_template.algorithm') {
        const t = get(body, 'versionTemplate');
        if (!isJsonObject(t)) throw invalidArgument('cryptoKey.versionTemplate: required by the updateMask');
        protectionLevelField(get(t, 'protectionLevel'), 'cryptoKey.versionTemplate.protectionLevel');
        algorithm = algorithmField(get(t, 'algorithm'), 'cryptoKey.versionTemplate.algorithm');
      } else if (p === 'destroyScheduledDuration' || p === 'destroy_scheduled_duration' || p === 'purpose' || p === 'importOnly' || p === 'import_only') {
        throw invalidArgument(`updateMask: cryptoKey.${p} cannot be changed after the key is created`);
      } else {
        throw invalidArgument(`updateMask: cryptoKey.${p} cannot be updated by Tollgate's KMS (labels, versionTemplate.algorithm)`);
      }
    }
    return this.withRetry(() =>
      this.store.transaction(async (tx) => {
        const current = await tx.get('cryptoKey', name);
        if (current === undefined) throw notFound(`CryptoKey ${name} not found.`);
        const next: JsonObject = { ...current.body, ...(labels === undefined ? {} : { labels }), ...(algorithm === undefined ? {} : { algorithm }) };
        const updated = await tx.update('cryptoKey', name, { body: next, expectVersion: current.version });
        const view = cryptoKeyView(updated);
        await after?.(tx, view);
        return view;
      }),
    );
  }

  // --- versions -------------------------------------------------------------------------------

  /** Generates a new version with the key's algorithm; ids are 1, 2, … in creation order. */
  async createCryptoKeyVersion(parent: string, body: Record<string, unknown>, after?: AfterWrite): Promise<JsonObject> {
    for (const f of ['importJob', 'externalProtectionLevelOptions'] as const) {
      const v = get(body, f);
      if (v !== undefined && v !== null && v !== '') throw invalidArgument(`cryptoKeyVersion.${f}: not supported by Tollgate's KMS`);
    }
    const key = await this.require('cryptoKey', parent, 'CryptoKey');
    const algorithm = str(key.body, 'algorithm');
    if (algorithm === undefined || !isKmsAlgorithmName(algorithm)) throw new Error(`crypto key ${parent} has no usable algorithm`);
    const material = await generateKeyMaterial(algorithm);
    try {
      return await this.withRetry(() =>
        this.store.transaction(async (tx) => {
          const current = await tx.get('cryptoKey', parent);
          if (current === undefined) throw notFound(`CryptoKey ${parent} not found.`);
          const id = Number(current.body['lastVersionId'] ?? 0) + 1;
          await tx.update('cryptoKey', parent, { body: { ...current.body, lastVersionId: id }, expectVersion: current.version });
          const view = versionView(await this.insertVersion(tx, parent, id, algorithm, material));
          await after?.(tx, view);
          return view;
        }),
      );
    } finally {
      material.privateKeyDer.fill(0);
    }
  }

  async getCryptoKeyVersion(name: string): Promise<JsonObject> {
    return versionView(await this.requireVersion(name));
  }

  /** Versions in id order; `filter` may be `state=STATE` (or `state:STATE`). */
  async listCryptoKeyVersions(parent: string, page: PageRequest, filter?: string | null): Promise<ListResult> {
    let state: string | undefined;
    if (filter !== undefined && filter !== null && filter.trim() !== '') {
      const m = /^\s*state\s*[=:]\s*"?([A-Z_]+)"?\s*$/.exec(filter);
      if (m === null) throw invalidArgument(`filter: Tollgate's KMS supports only filters of the form state=STATE, got ${JSON.stringify(filter)}`);
      state = m[1];
    }
    const rows = await Promise.all((await this.listAll('cryptoKeyVersion', parent)).map((r) => this.settle(r)));
    const views = rows.filter((r) => state === undefined || stateOf(r) === state).map(versionView);
    return paged(views, page);
  }

  /** `updateMask=state`: ENABLED ↔ DISABLED. */
  async updateCryptoKeyVersion(name: string, body: Record<string, unknown>, updateMask: string | null, after?: AfterWrite): Promise<JsonObject> {
    const paths = maskPaths(updateMask);
    for (const p of paths) {
      if (p !== 'state') throw invalidArgument(`updateMask: cryptoKeyVersion.${p} cannot be updated; Tollgate's KMS updates only state`);
    }
    const target = get(body, 'state');
    const wanted = target === 1 ? 'ENABLED' : target === 2 ? 'DISABLED' : target;
    if (wanted !== 'ENABLED' && wanted !== 'DISABLED') {
      throw invalidArgument(`cryptoKeyVersion.state: must be ENABLED or DISABLED, got ${JSON.stringify(target ?? null)}`);
    }
    return this.transition(name, after, (state) => {
      if (state !== 'ENABLED' && state !== 'DISABLED') {
        throw failedPrecondition(`${name} is ${state}: only an ENABLED or DISABLED version can be enabled or disabled${state === 'DESTROY_SCHEDULED' ? ' (restore it first)' : ''}.`);
      }
      return { state: wanted };
    });
  }

  /** Schedules destruction: DESTROY_SCHEDULED until now + the key's destroyScheduledDuration. */
  async destroyCryptoKeyVersion(name: string, after?: AfterWrite): Promise<JsonObject> {
    const keyName = name.slice(0, name.lastIndexOf('/cryptoKeyVersions/'));
    const key = await this.store.get('cryptoKey', keyName);
    const duration = durationSeconds(str(key?.body ?? {}, 'destroyScheduledDuration') ?? DEFAULT_DESTROY_SCHEDULED_DURATION, 'destroyScheduledDuration');
    return this.transition(name, after, (state) => {
      if (state !== 'ENABLED' && state !== 'DISABLED') throw failedPrecondition(`${name} is ${state}: only an ENABLED or DISABLED version can be destroyed.`);
      return { state: 'DESTROY_SCHEDULED', destroyTime: timestamp(new Date(this.now().getTime() + duration * 1000)) };
    });
  }

  /** Cancels a scheduled destruction: the version comes back DISABLED. */
  async restoreCryptoKeyVersion(name: string, after?: AfterWrite): Promise<JsonObject> {
    return this.transition(name, after, (state) => {
      if (state !== 'DESTROY_SCHEDULED') throw failedPrecondition(`${name} is ${state}: only a DESTROY_SCHEDULED version can be restored.`);
      return { state: 'DISABLED', destroyTime: undefined };
    });
  }

  async getPublicKey(name: string, publicKeyFormat?: string | null): Promise<PublicKeyResponse> {
    const format = publicKeyFormat ?? '';
    if (format !== '' && format !== 'PEM' && format !== 'PUBLIC_KEY_FORMAT_UNSPECIFIED') {
      throw invalidArgument(`publicKeyFormat: Tollgate's KMS serves public keys as PEM only, not ${format}`);
    }
    const r = await this.requireVersion(name);
    const state = stateOf(r);
    if (state === 'DESTROYED' || state === 'DESTROY_SCHEDULED') {
      throw failedPrecondition(`${name} is ${state}: the public key of a destroyed or scheduled-for-destruction version is not available.`);
    }
    const pem = str(r.body, 'publicKeyPem');
    const algorithm = str(r.body, 'algorithm');
    if (pem === undefined || algorithm === undefined || !isKmsAlgorithmName(algorithm)) throw new Error(`key version ${name} has no public key`);
    const pemBytes = Buffer.from(pem, 'utf8');
    return {
      pem,
      algorithm,
      pemCrc32c: crc32cString(pemBytes),
      name,
      protectionLevel: 'SOFTWARE',
      publicKeyFormat: 'PEM',
      ...(format === 'PEM' ? { publicKey: { data: pemBytes.toString('base64'), crc32cChecksum: crc32cString(pemBytes) } } : {}),
    };
  }

  /** Signs with an ENABLED version. Checks the request's CRC32C fields (INVALID_ARGUMENT on a mismatch). */
  async asymmetricSign(name: string, req: AsymmetricSignRequest): Promise<AsymmetricSignResponse> {
    if (req.digest !== undefined && req.digestCrc32c !== undefined && crc32c(req.digest.bytes) !== req.digestCrc32c) {
      throw invalidArgument('The checksum in field digest_crc32c did not match the data in field digest.');
    }
    if (req.data !== undefined && req.dataCrc32c !== undefined && crc32c(req.data) !== req.dataCrc32c) {
      throw invalidArgument('The checksum in field data_crc32c did not match the data in field data.');
    }
    const r = await this.requireVersion(name);
    const state = stateOf(r);
    if (state !== 'ENABLED') throw failedPrecondition(`${name} is ${state}: only an ENABLED key version can sign.`);
    const algorithm = str(r.body, 'algorithm');
    if (algorithm === undefined || !isKmsAlgorithmName(algorithm)) throw new Error(`key version ${name} has no usable algorithm`);
    const spec = KMS_ALGORITHMS[algorithm];
    let digest: Buffer;
    if (req.digest !== undefined) {
      if (req.digest.algorithm !== spec.hash) {
        throw invalidArgument(`digest: ${name} uses ${algorithm}, which signs a ${spec.hash} digest; got ${req.digest.algorithm}`);
      }
      digest = req.digest.bytes;
    } else if (req.data !== undefined) {
      digest = createHash(spec.hash).update(req.data).digest();
    } else {
      throw invalidArgument('digest: one of digest or data is required');
    }
    const sealed = str(r.body, 'sealedPrivateKey');
    if (sealed === undefined) throw new Error(`key version ${name} has no key material`);
    const der = this.masterKey.decrypt(sealed, name);
    let signature: Buffer;
    try {
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      signature = await signDigest(algorithm, key, digest);
    } finally {
      der.fill(0);
    }
    return {
      signature: signature.toString('base64'),
      signatureCrc32c: crc32cString(signature),
      verifiedDigestCrc32c: req.digest !== undefined && req.digestCrc32c !== undefined,
      verifiedDataCrc32c: req.data !== undefined && req.dataCrc32c !== undefined,
      name,
      protectionLevel: 'SOFTWARE',
    };
  }

  /**
   * Makes every DESTROY_SCHEDULED version whose destroyTime has passed DESTROYED and drops its
   * material. Reads do this lazily; a periodic sweep makes it prompt. Returns how many changed.
   */
  async destroyDueVersions(): Promise<number> {
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const rows = await this.store.list('cryptoKeyVersion', { k1: 'DESTROY_SCHEDULED', limit: LIST_BATCH, ...(after === undefined ? {} : { after }) });
      for (const r of rows) if (stateOf(await this.settle(r)) === 'DESTROYED') count++;
      if (rows.length < LIST_BATCH) return count;
      after = (rows[rows.length - 1] as StoredResource).name;
    }
  }

  /** Whether a key ring or crypto key exists (for the IAM methods). */
  async exists(kind: 'keyRing' | 'cryptoKey', name: string): Promise<boolean> {
    return (await this.store.get(kind, name)) !== undefined;
  }

  // --- internals ------------------------------------------------------------------------------

  private async insertVersion(tx: StoreOps, keyName: string, id: number, algorithm: KmsAlgorithmName, material: KeyMaterial): Promise<StoredResource> {
    const name = `${keyName}/cryptoKeyVersions/${id}`;
    return tx.create({
      kind: 'cryptoKeyVersion',
      name,
      parent: keyName,
      k1: 'ENABLED',
      body: {
        state: 'ENABLED',
        algorithm,
        generateTime: timestamp(this.now()),
        publicKeyPem: material.publicKeyPem,
        sealedPrivateKey: this.masterKey.encrypt(material.privateKeyDer, name),
      },
    });
  }

  private async require(kind: ResourceKind, name: string, what: string): Promise<StoredResource> {
    const r = await this.store.get(kind, name);
    if (r === undefined) throw notFound(`${what} ${name} not found.`);
    return r;
  }

  private async requireVersion(name: string): Promise<StoredResource> {
    return this.settle(await this.require('cryptoKeyVersion', name, 'CryptoKeyVersion'));
  }

  /** Applies a passed destroyTime: DESTROYED, destroyEventTime set, material dropped. */
  private async settle(r: StoredResource): Promise<StoredResource> {
    let current = r;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (stateOf(current) !== 'DESTROY_SCHEDULED') return current;
      const due = str(current.body, 'destroyTime');
      if (due === undefined || Date.parse(due) > this.now().getTime()) return current;
      const { publicKeyPem: _pem, sealedPrivateKey: _sealed, ...rest } = current.body;
      try {
        return await this.store.update('cryptoKeyVersion', current.name, {
          body: { ...rest, state: 'DESTROYED', destroyEventTime: due },
          k1: 'DESTROYED',
          expectVersion: current.version,
        });
      } catch (e) {
        if (!(e instanceof StoreVersionConflict)) throw e;
        const again = await this.store.get('cryptoKeyVersion', current.name);
        if (again === undefined) throw notFound(`CryptoKeyVersion ${current.name} not found.`);
        current = again;
      }
    }
    return current;
  }

  /** A state change under compare-and-set, with the lazy DESTROYED rule applied first. */
  private async transition(
    name: string,
    after: AfterWrite | undefined,
    change: (state: CryptoKeyVersionState) => { state: CryptoKeyVersionState; destroyTime?: string | undefined },
  ): Promise<JsonObject> {
    return this.withRetry(async () => {
      const current = await this.requireVersion(name);
      const next = change(stateOf(current));
      const body: JsonObject = { ...current.body, state: next.state };
      if ('destroyTime' in next) {
        if (next.destroyTime === undefined) delete body['destroyTime'];
        else body['destroyTime'] = next.destroyTime;
      }
      return this.store.transaction(async (tx) => {
        const updated = await tx.update('cryptoKeyVersion', name, { body, k1: next.state, expectVersion: current.version });
        const view = versionView(updated);
        await after?.(tx, view);
        return view;
      });
    });
  }

  /** Retries a compare-and-set write that lost a race; ABORTED if it keeps losing. */
  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof StoreVersionConflict || e instanceof StoreAlreadyExists) || attempt >= 4) {
          if (e instanceof StoreVersionConflict || e instanceof StoreAlreadyExists) throw aborted('The resource was modified concurrently; retry the request.');
          throw e;
        }
      }
    }
  }

  private async listAll(kind: ResourceKind, parent: string): Promise<StoredResource[]> {
    const out: StoredResource[] = [];
    let after: string | undefined;
    for (;;) {
      const rows = await this.store.list(kind, { parent, limit: LIST_BATCH, ...(after === undefined ? {} : { after }) });
      out.push(...rows);
      if (rows.length < LIST_BATCH) break;
      after = (rows[rows.length - 1] as StoredResource).name;
    }
    return out.sort((a, b) => compareNames(a.name, b.name));
  }
}

function maskPaths(updateMask: string | null): string[] {
  const paths = (updateMask ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (paths.length === 0) throw invalidArgument('updateMask: required (the fields to update, e.g. updateMask=state)');
  return paths;
}

/** One page of `items` (already in order) after `page.after`, with the total count. */
function paged(items: JsonObject[], page: PageRequest): ListResult {
  const after = page.after;
  const rest = after === undefined ? items : items.filter((i) => compareNames(String(i['name']), after) > 0);
  const slice = rest.slice(0, page.limit);
  const more = rest.length > page.limit;
  return {
    items: slice,
    totalSize: items.length,
    ...(more ? { nextPageToken: Buffer.from(String((slice[slice.length - 1] as JsonObject)['name']), 'utf8').toString('base64url') } : {}),
  };
}
