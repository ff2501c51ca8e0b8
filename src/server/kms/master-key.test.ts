import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import { FINGERPRINT_META_KEY, loadMasterKey, masterKeyFromBytes } from './master-key.js';

describe('master key', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-mk-'));
    store = await openStore(join(dir, 'tollgate.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates DATA_DIR/master.key with mode 0600 on first start and reuses it', async () => {
    const dataDir = join(dir, 'data');
    const first = await loadMasterKey({ dataDir, store, requireEnv: false });
    const file = join(dataDir, 'master.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8').trim();
    expect(Buffer.from(text, 'base64')).toHaveLength(32);
    expect(first.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(await store.getMeta(FINGERPRINT_META_KEY)).toBe(first.fingerprint);

    const second = await loadMasterKey({ dataDir, store, requireEnv: false });
    expect(second.fingerprint).toBe(first.fingerprint);
    const sealed = first.encrypt(Buffer.from('secret'), 'projects/p/x');
    expect(second.decrypt(sealed, 'projects/p/x').toString()).toBe('secret');
    // The file's text is exactly what TOLLGATE_MASTER_KEY takes.
    const viaEnv = await loadMasterKey({ dataDir: join(dir, 'elsewhere'), envKey: text, store, requireEnv: true });
    expect(viaEnv.fingerprint).toBe(first.fingerprint);
  });

  it('accepts a file holding the 32 raw bytes', async () => {
    const raw = randomBytes(32);
    writeFileSync(join(dir, 'master.key'), raw, { mode: 0o600 });
    const key = await loadMasterKey({ dataDir: dir, store, requireEnv: false });
    expect(key.fingerprint).toBe(masterKeyFromBytes(raw).fingerprint);
  });

  it('takes TOLLGATE_MASTER_KEY (standard or URL-safe base64) and writes no file', async () => {
    const raw = randomBytes(32);
    const key = await loadMasterKey({ dataDir: join(dir, 'data'), envKey: raw.toString('base64url'), store, requireEnv: true });
    expect(key.fingerprint).toBe(masterKeyFromBytes(raw).fingerprint);
    expect(() => statSync(join(dir, 'data', 'master.key'))).toThrow();
  });

  it('refuses an env key that is not base64 of exactly 32 bytes', async () => {
    await expect(loadMasterKey({ dataDir: dir, envKey: randomBytes(16).toString('base64'), store, requireEnv: false })).rejects.toThrow(
      /TOLLGATE_MASTER_KEY must be the base64 encoding of exactly 32 bytes \(got 16 bytes\)/,
    );
    await expect(loadMasterKey({ dataDir: dir, envKey: 'not base64 at all!', store, requireEnv: false })).rejects.toThrow(/exactly 32 bytes/);
    expect(await store.getMeta(FINGERPRINT_META_KEY)).toBeUndefined();
  });

  it('requires the env key when asked to (PostgreSQL)', async () => {
    await expect(loadMasterKey({ dataDir: dir, store, requireEnv: true })).rejects.toThrow(/TOLLGATE_MASTER_KEY is required with PostgreSQL/);
    expect(() => statSync(join(dir, 'master.key'))).toThrow();
  });

  it('refuses to start with a key other than the one the store was first used with, naming the expected fingerprint only', async () => {
    const good = randomBytes(32);
    const first = await loadMasterKey({ dataDir: dir, envKey: good.toString('base64'), store, requireEnv: false });
    const wrong = randomBytes(32);
    const attempt = loadMasterKey({ dataDir: dir, envKey: wrong.toString('base64'), store, requireEnv: false });
    await expect(attempt).rejects.toThrow(new RegExp(`fingerprint is ${first.fingerprint}.*has fingerprint ${masterKeyFromBytes(wrong).fingerprint}`));
    const message = await attempt.catch((e: Error) => e.message);
    for (const k of [good, wrong]) {
      expect(message).not.toContain(k.toString('base64'));
      expect(message).not.toContain(k.toString('hex'));
    }
    // A key file that does not match is refused just the same.
    await expect(loadMasterKey({ dataDir: join(dir, 'other'), store, requireEnv: false })).rejects.toThrow(/does not match this database/);
  });

  it('seals with AES-256-GCM in the v1 format, fresh IV each time, bound to the resource name', () => {
    const key = masterKeyFromBytes(randomBytes(32));
    const plaintext = randomBytes(100);
    const a = key.encrypt(plaintext, 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1');
    const b = key.encrypt(plaintext, 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1');
    expect(a).toMatch(/^v1\.[A-Za-z0-9+/=]{16}\.[A-Za-z0-9+/=]{24}\.[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(key.decrypt(a, 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1').equals(plaintext)).toBe(true);
    // Another resource name (AAD), another key, or a flipped bit: nothing opens.
    expect(() => key.decrypt(a, 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2')).toThrow(/does not open/);
    expect(() => masterKeyFromBytes(randomBytes(32)).decrypt(a, 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1')).toThrow(/does not open/);
    const parts = a.split('.');
    const ct = Buffer.from(parts[3] as string, 'base64');
    ct[0] = (ct[0] as number) ^ 1;
    const tampered = [parts[0], parts[1], parts[2], ct.toString('base64')].join('.');
    expect(() => key.decrypt(tampered, 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1')).toThrow(/does not open/);
    expect(() => key.decrypt('v2.a.b.c', 'x')).toThrow(/not in the v1 format/);
  });

  it('never exposes the key bytes through the object', () => {
    const raw = randomBytes(32);
    const key = masterKeyFromBytes(raw);
    const shown = `${JSON.stringify(key)} ${inspect(key, { depth: 5, showHidden: true })}`;
    expect(shown).not.toContain(raw.toString('base64'));
    expect(shown).not.toContain(raw.toString('hex'));
    expect(Object.keys(key)).toEqual(['fingerprint', 'encrypt', 'decrypt']);
  });
});
