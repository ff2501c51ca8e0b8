/**
 * The real `gcloud kms …` against a real `tollgate serve` (gcloud-compat §4): key rings, an EC and
 * an RSA signing key, the version list the tutorials read, public keys, asymmetric-sign with
 * gcloud's integrity checks on, disable/enable, destroy/restore, and clean errors. Every
 * signature is checked by the openssl binary over the original file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type CommandResult, type TestServer } from './support/server.js';

const LOCATION = '--location=us-central1';
const KEYRING = '--keyring=tg-ring';
const VERSION_PREFIX = 'projects/demo/locations/us-central1/keyRings/tg-ring/cryptoKeys';

function opensslVerify(pem: string, data: string, signature: string, opts: { hash: string; pss?: boolean }): { ok: boolean; output: string } {
  const args = ['dgst', `-${opts.hash}`, '-verify', pem, '-signature', signature];
  if (opts.pss === true) args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest');
  args.push(data);
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0 && r.stdout.includes('Verified OK'), output: `${r.stdout}${r.stderr}` };
}

describe('gcloud kms against Tollgate', () => {
  let server: TestServer;
  let work: string;
  let payload: string;
  beforeAll(async () => {
    server = await startServer();
    work = mkdtempSync(join(tmpdir(), 'tollgate-kms-gcloud-'));
    payload = join(work, 'payload.json');
    writeFileSync(payload, '{"critical":{"identity":{"docker-reference":"us-docker.pkg.dev/demo/apps/web"}}}\n');
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function ok(...args: string[]): Promise<string> {
    const r = await server.gcloud(args);
    expect(r.code, `gcloud ${args.join(' ')}\n${r.stderr}\n${server.output().slice(-2000)}`).toBe(0);
    return r.stdout;
  }

  function expectCleanError(r: CommandResult, command: string, status: string): void {
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toContain(`ERROR: (gcloud.${command}) ${status}: `);
    expect(r.stderr).not.toMatch(/Traceback|HttpError accessing|corrupted in-transit/);
  }

  it('creates a key ring and an EC P-256 signing key, and lists the version the tutorials read', async () => {
    await ok('kms', 'keyrings', 'create', 'tg-ring', LOCATION);
    await ok('kms', 'keys', 'create', 'ec-key', KEYRING, LOCATION, '--purpose=asymmetric-signing', '--default-algorithm=ec-sign-p256-sha256');
    const name = await ok('kms', 'keys', 'versions', 'list', '--key=ec-key', KEYRING, LOCATION, '--format=value(name)', '--limit=1');
    expect(name.trim()).toBe(`${VERSION_PREFIX}/ec-key/cryptoKeyVersions/1`);
    const rings = await ok('kms', 'keyrings', 'list', LOCATION, '--format=value(name)');
    expect(rings.trim()).toBe('projects/demo/locations/us-central1/keyRings/tg-ring');
    const key = JSON.parse(await ok('kms', 'keys', 'describe', 'ec-key', KEYRING, LOCATION, '--format=json'));
    expect(key).toMatchObject({ purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256', protectionLevel: 'SOFTWARE' } });
  });

  it('exports the public key and signs a file; openssl verifies the signature', async () => {
    const pem = join(work, 'ec.pem');
    await ok('kms', 'keys', 'versions', 'get-public-key', '1', '--key=ec-key', KEYRING, LOCATION, `--output-file=${pem}`);
    expect(readFileSync(pem, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);

    const sig = join(work, 'ec.sig');
    await ok('kms', 'asymmetric-sign', '--version=1', '--key=ec-key', KEYRING, LOCATION, '--digest-algorithm=sha256', `--input-file=${payload}`, `--signature-file=${sig}`);
    const verdict = opensslVerify(pem, payload, sig, { hash: 'sha256' });
    expect(verdict.ok, verdict.output).toBe(true);

    // Without --digest-algorithm gcloud sends the data itself (with dataCrc32c) and checks verifiedDataCrc32c.
    const sig2 = join(work, 'ec-data.sig');
    await ok('kms', 'asymmetric-sign', '--version=1', '--key=ec-key', KEYRING, LOCATION, `--input-file=${payload}`, `--signature-file=${sig2}`);
    expect(opensslVerify(pem, payload, sig2, { hash: 'sha256' }).ok).toBe(true);

    // A digest that does not fit the key is refused cleanly.
    const wrong = await server.gcloud(['kms', 'asymmetric-sign', '--version=1', '--key=ec-key', KEYRING, LOCATION, '--digest-algorithm=sha384', `--input-file=${payload}`, `--signature-file=${join(work, 'x.sig')}`]);
    expectCleanError(wrong, 'kms.asymmetric-sign', 'INVALID_ARGUMENT');
  });

  it('refuses to sign with a disabled version, and signs again once enabled', async () => {
    await ok('kms', 'keys', 'versions', 'disable', '1', '--key=ec-key', KEYRING, LOCATION);
    const args = ['kms', 'asymmetric-sign', '--version=1', '--key=ec-key', KEYRING, LOCATION, '--digest-algorithm=sha256', `--input-file=${payload}`, `--signature-file=${join(work, 'disabled.sig')}`];
    const refused = await server.gcloud(args);
    expectCleanError(refused, 'kms.asymmetric-sign', 'FAILED_PRECONDITION');
    expect(refused.stderr).toContain('is DISABLED');
    await ok('kms', 'keys', 'versions', 'enable', '1', '--key=ec-key', KEYRING, LOCATION);
    await ok(...args);
  });

  it('schedules destruction and restores a version', async () => {
    const destroyed = JSON.parse(await ok('kms', 'keys', 'versions', 'destroy', '1', '--key=ec-key', KEYRING, LOCATION, '--quiet', '--format=json'));
    expect(destroyed).toMatchObject({ name: `${VERSION_PREFIX}/ec-key/cryptoKeyVersions/1`, state: 'DESTROY_SCHEDULED' });
    expect(Date.parse(destroyed.destroyTime)).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    const refused = await server.gcloud(['kms', 'asymmetric-sign', '--version=1', '--key=ec-key', KEYRING, LOCATION, '--digest-algorithm=sha256', `--input-file=${payload}`, `--signature-file=${join(work, 'gone.sig')}`]);
    expectCleanError(refused, 'kms.asymmetric-sign', 'FAILED_PRECONDITION');
    const listed = await ok('kms', 'keys', 'versions', 'list', '--key=ec-key', KEYRING, LOCATION, '--format=value(name,state)');
    expect(listed).toContain('DESTROY_SCHEDULED');

    const restored = JSON.parse(await ok('kms', 'keys', 'versions', 'restore', '1', '--key=ec-key', KEYRING, LOCATION, '--format=json'));
    expect(restored).toMatchObject({ state: 'DISABLED' });
    expect(restored.destroyTime).toBeUndefined();
  });

  it('makes and uses an RSA-PSS key; openssl verifies with salt = digest length', async () => {
    await ok('kms', 'keys', 'create', 'rsa-key', KEYRING, LOCATION, '--purpose=asymmetric-signing', '--default-algorithm=rsa-sign-pss-2048-sha256');
    const pem = join(work, 'rsa.pem');
    await ok('kms', 'keys', 'versions', 'get-public-key', '1', '--key=rsa-key', KEYRING, LOCATION, `--output-file=${pem}`);
    const sig = join(work, 'rsa.sig');
    await ok('kms', 'asymmetric-sign', '--version=1', '--key=rsa-key', KEYRING, LOCATION, '--digest-algorithm=sha256', `--input-file=${payload}`, `--signature-file=${sig}`);
    expect(readFileSync(sig)).toHaveLength(256);
    const verdict = opensslVerify(pem, payload, sig, { hash: 'sha256', pss: true });
    expect(verdict.ok, verdict.output).toBe(true);
    // A second version gets id 2.
    const created = JSON.parse(await ok('kms', 'keys', 'versions', 'create', '--key=rsa-key', KEYRING, LOCATION, '--format=json'));
    expect(created).toMatchObject({ name: `${VERSION_PREFIX}/rsa-key/cryptoKeyVersions/2`, state: 'ENABLED', algorithm: 'RSA_SIGN_PSS_2048_SHA256' });
  });

  it('refuses what it does not support with clean errors', async () => {
    const symmetric = await server.gcloud(['kms', 'keys', 'create', 'sym', KEYRING, LOCATION, '--purpose=encryption']);
    expectCleanError(symmetric, 'kms.keys.create', 'INVALID_ARGUMENT');
    expect(symmetric.stderr).toContain("Tollgate's KMS supports only ASYMMETRIC_SIGN keys");
    const again = await server.gcloud(['kms', 'keyrings', 'create', 'tg-ring', LOCATION]);
    expectCleanError(again, 'kms.keyrings.create', 'ALREADY_EXISTS');
    const missing = await server.gcloud(['kms', 'keys', 'versions', 'get-public-key', '7', '--key=ec-key', KEYRING, LOCATION]);
    expectCleanError(missing, 'kms.keys.versions.get-public-key', 'NOT_FOUND');
  });
});
