/**
 * The master key: the one secret that seals every KMS private key at rest. It comes from
 * TOLLGATE_MASTER_KEY (base64 of 32 bytes; required with PostgreSQL, where replicas must share it)
 * or from DATA_DIR/master.key (made on first start with the embedded SQLite store). The store
 * remembers the key's fingerprint, so a server started with another key refuses to run instead of
 * failing later on every signature.
 *
 * Sealing is AES-256-GCM with a fresh 12-byte IV and the owning resource name as additional
 * authenticated data: sealed material copied onto another key version does not open.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.js';

export interface MasterKey {
  /** Hex of the first 16 bytes of SHA-256(key): identifies the key without revealing it. */
  readonly fingerprint: string;
  /** Seals `plaintext` for the resource named `aad`: `v1.<iv>.<tag>.<ciphertext>` (standard base64). */
  encrypt(plaintext: Buffer, aad: string): string;
  /** Opens what `encrypt` sealed for the same `aad`; throws when the key, the aad or the data differ. */
  decrypt(sealed: string, aad: string): Buffer;
}

export const MASTER_KEY_FILE = 'master.key';
export const MASTER_KEY_ENV = 'TOLLGATE_MASTER_KEY';
export const FINGERPRINT_META_KEY = 'masterKeyFingerprint';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = 'v1';

export interface LoadMasterKeyOptions {
  readonly dataDir: string;
  /** The value of TOLLGATE_MASTER_KEY: base64 of exactly 32 bytes. */
  readonly envKey?: string;
  readonly store: Store;
  /** True on PostgreSQL: the key must come from the environment, never from a local file. */
  readonly requireEnv: boolean;
}

/**
 * Loads (or, with a file on SQLite, creates) the master key and checks it against the fingerprint
 * the store recorded on first use. Every failure is an Error whose message says what to do; no
 * message ever contains key bytes.
 */
export async function loadMasterKey(opts: LoadMasterKeyOptions): Promise<MasterKey> {
  const raw = keyBytes(opts);
  const key = masterKeyFromBytes(raw);
  raw.fill(0);
  await checkFingerprint(opts.store, key.fingerprint);
  return key;
}

/** A MasterKey over 32 key bytes (the bytes are copied into a KeyObject; the caller may wipe its copy). */
export function masterKeyFromBytes(bytes: Uint8Array): MasterKey {
  if (bytes.length !== KEY_BYTES) throw new Error(`a master key is exactly ${KEY_BYTES} bytes, got ${bytes.length}`);
  const secret: KeyObject = createSecretKey(Buffer.from(bytes));
  const fingerprint = createHash('sha256').update(bytes).digest().subarray(0, 16).toString('hex');
  // The key lives only in the closure's KeyObject: the returned object has no property holding it,
  // so logging or serializing a MasterKey cannot print it.
  return Object.freeze({
    fingerprint,
    encrypt(plaintext: Buffer, aad: string): string {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', secret, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [FORMAT, iv.toString('base64'), tag.toString('base64'), ciphertext.toString('base64')].join('.');
    },
    decrypt(sealed: string, aad: string): Buffer {
      const parts = typeof sealed === 'string' ? sealed.split('.') : [];
      if (parts.length !== 4 || parts[0] !== FORMAT) throw new Error(`sealed material for ${aad} is not in the ${FORMAT} format`);
      const iv = Buffer.from(parts[1] as string, 'base64');
      const tag = Buffer.from(parts[2] as string, 'base64');
      const ciphertext = Buffer.from(parts[3] as string, 'base64');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error(`sealed material for ${aad} is malformed`);
      const decipher = createDecipheriv('aes-256-gcm', secret, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      } catch {
        throw new Error(`sealed material for ${aad} does not open with master key ${fingerprint}: it was sealed with another key or for another resource, or it was altered`);
      }
    },
  });
}

function keyBytes(opts: LoadMasterKeyOptions): Buffer {
  if (opts.envKey !== undefined && opts.envKey.trim() !== '') return decodeKey(opts.envKey, MASTER_KEY_ENV);
  if (opts.requireEnv) {
    throw new Error(
      `${MASTER_KEY_ENV} is required with PostgreSQL: every replica must seal and open KMS keys with the same master key, ` +
        `so it cannot come from a local file. Generate one with \`openssl rand -base64 32\`, keep it in your secret manager, ` +
        `and give the same value to every replica.`,
    );
  }
  return readOrCreateKeyFile(opts.dataDir);
}

function readOrCreateKeyFile(dataDir: string): Buffer {
  const file = join(dataDir, MASTER_KEY_FILE);
  mkdirSync(dataDir, { recursive: true });
  const fresh = randomBytes(KEY_BYTES);
  try {
    // `wx`: create only if absent, so two processes starting together never overwrite each other.
    writeFileSync(file, `${fresh.toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    chmodSync(file, 0o600);
    return fresh;
  } catch (e) {
    fresh.fill(0);
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create the master key file ${file}: ${(e as Error).message}`);
  }
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read the master key file ${file}: ${(e as Error).message}`);
  }
  // The file holds the base64 text (what TOLLGATE_MASTER_KEY takes). A file of exactly 32 bytes
  // can only be the raw key (32 bytes of base64 text would decode to 24), so that is accepted too.
  if (content.length === KEY_BYTES) return content;
  return decodeKey(content.toString('utf8'), file);
}

function decodeKey(text: string, source: string): Buffer {
  const s = text.trim();
  const valid = /^[A-Za-z0-9+/]*={0,2}$/.test(s) || /^[A-Za-z0-9_-]*={0,2}$/.test(s);
  const bytes = valid ? Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64') : undefined;
  if (bytes === undefined || bytes.length !== KEY_BYTES) {
    const got = bytes === undefined ? 'text that is not base64' : `${bytes.length} bytes`;
    throw new Error(`${source} must be the base64 encoding of exactly ${KEY_BYTES} bytes (got ${got}); generate one with \`openssl rand -base64 32\``);
  }
  return bytes;
}

async function checkFingerprint(store: Store, fingerprint: string): Promise<void> {
  let expected = await store.getMeta(FINGERPRINT_META_KEY);
  if (expected === undefined) {
    await store.transaction(async (tx) => {
      if ((await tx.getMeta(FINGERPRINT_META_KEY)) === undefined) await tx.setMeta(FINGERPRINT_META_KEY, fingerprint);
    });
    // Read back: with replicas starting together, the first writer's fingerprint is the one that counts.
    expected = await store.getMeta(FINGERPRINT_META_KEY);
  }
  if (expected !== fingerprint) {
    throw new Error(
      `the master key does not match this database: the store's KMS keys were sealed with the master key whose fingerprint is ${expected ?? '(none)'}, ` +
        `but the key given (${MASTER_KEY_ENV} or ${MASTER_KEY_FILE}) has fingerprint ${fingerprint}. Start the server with the original master key; ` +
        `without it the stored KMS private keys cannot be opened.`,
    );
  }
}
