/**
 * Test helpers around the real fixtures in testdata/ (made by openssl, gpg and gcloud; see
 * testdata/generate.sh). New signatures in tests are made by the openssl binary too, never by the
 * code under test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TESTDATA = join(ROOT, 'testdata');

export function readFixture(...parts: string[]): Buffer {
  return readFileSync(join(TESTDATA, ...parts));
}

export function readFixtureText(...parts: string[]): string {
  return readFixture(...parts).toString('utf8');
}

const HASH: Record<string, string> = {
  ECDSA_P256_SHA256: 'sha256', ECDSA_P384_SHA384: 'sha384', ECDSA_P521_SHA512: 'sha512',
  RSA_PSS_2048_SHA256: 'sha256', RSA_PSS_3072_SHA256: 'sha256', RSA_PSS_4096_SHA256: 'sha256', RSA_PSS_4096_SHA512: 'sha512',
  RSA_SIGN_PKCS1_2048_SHA256: 'sha256', RSA_SIGN_PKCS1_3072_SHA256: 'sha256', RSA_SIGN_PKCS1_4096_SHA256: 'sha256', RSA_SIGN_PKCS1_4096_SHA512: 'sha512',
};

/** Signs bytes with a fixture key using the openssl binary (`openssl dgst -<hash> -sign`). */
export function opensslSign(keyDir: string, algorithm: string, data: Uint8Array, opts: { pss?: boolean } = {}): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-sign-'));
  const input = join(dir, 'payload');
  writeFileSync(input, data);
  const hash = HASH[algorithm];
  if (hash === undefined) throw new Error(`unknown algorithm ${algorithm}`);
  const pss = opts.pss ?? algorithm.startsWith('RSA_PSS');
  const args = ['dgst', `-${hash}`, '-sign', join(TESTDATA, 'pkix', keyDir, 'private.pem')];
  if (pss) args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest');
  args.push(input);
  return execFileSync('openssl', args);
}

export function b64url(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString('base64url');
}

export interface KeySpec {
  readonly id: string;
  readonly pem?: string;
  readonly algorithm?: string;
  readonly pgp?: string;
}

/** An Attestor resource as the v1 API returns it. */
export function attestorResource(name: string, note: string, keys: readonly KeySpec[]): Record<string, unknown> {
  return {
    name,
    userOwnedGrafeasNote: {
      noteReference: note,
      publicKeys: keys.map((k) =>
        k.pgp !== undefined
          ? { id: k.id, asciiArmoredPgpPublicKey: k.pgp }
          : { id: k.id, pkixPublicKey: { publicKeyPem: k.pem, signatureAlgorithm: k.algorithm } },
      ),
    },
  };
}

/** A Grafeas v1 ATTESTATION occurrence as Container Analysis returns it. */
export function occurrenceResource(o: {
  name: string;
  note: string;
  resourceUri: string;
  payload?: Uint8Array | string;
  signatures: { keyId: string; signature: Uint8Array | string }[];
}): Record<string, unknown> {
  return {
    name: o.name,
    kind: 'ATTESTATION',
    noteName: o.note,
    resourceUri: o.resourceUri,
    attestation: {
      ...(o.payload === undefined ? {} : { serializedPayload: typeof o.payload === 'string' ? o.payload : b64url(o.payload) }),
      signatures: o.signatures.map((s) => ({ publicKeyId: s.keyId, signature: typeof s.signature === 'string' ? s.signature : b64url(s.signature) })),
    },
  };
}

/** True when the gcloud CLI is installed (it is on every Tollgate development and CI machine). */
export function hasGcloud(): boolean {
  try {
    execFileSync('gcloud', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs gcloud in a private, throwaway configuration with credentials disabled (gcloud refuses to
 * run even offline commands without an account otherwise) and returns its stdout.
 */
export function runGcloud(args: readonly string[]): string {
  const config = mkdtempSync(join(tmpdir(), 'tollgate-gcloud-'));
  const env = {
    ...process.env,
    CLOUDSDK_CONFIG: config,
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
  };
  return execFileSync('gcloud', [...args], { env, encoding: 'utf8' });
}

export function readRepoFile(...parts: string[]): string {
  return readFileSync(join(ROOT, ...parts), 'utf8');
}

/**
 * A PGP key made by the gpg binary in a throwaway home, whose primary key expires `expire` after
 * now, or after `at` (gpg's syntax: `1d`, `2w`, `never`), with `sign(bytes)` making an attached armored
 * signature (`gpg --armor --sign`, expiring `sigExpire` after now if given) and the public key as
 * `gpg --export --armor` prints it.
 */
export function gpgSigner(expire: string, at?: Date): { publicKey: string; fingerprint: string; sign(data: Uint8Array, sigExpire?: string): string } {
  const home = mkdtempSync(join(tmpdir(), 'tollgate-gpg-'));
  gpgHomes.push(home);
  // `at`: gpg's clock stands still there (`--faked-system-time EPOCH!`), for the key and every signature.
  const clock = at === undefined ? [] : ['--faked-system-time', `${Math.floor(at.getTime() / 1000)}!`];
  const gpg = (...args: string[]) => execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...clock, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  gpg('--quick-gen-key', 'Tollgate Test Signer <expiring@tollgate.test>', 'ed25519', 'sign', expire);
  const fingerprint = gpg('--with-colons', '--fingerprint', 'expiring@tollgate.test').toString().split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] ?? '';
  let n = 0;
  return {
    publicKey: gpg('--armor', '--export', fingerprint).toString(),
    fingerprint,
    sign(data, sigExpire) {
      const input = join(home, `payload-${n++}`);
      writeFileSync(input, data);
      return gpg(...(sigExpire === undefined ? [] : ['--default-sig-expire', sigExpire]), '--armor', '--local-user', fingerprint, '--output', '-', '--sign', input).toString();
    },
  };
}

/**
 * gpg starts an agent per home, a daemon that outlives the test process (vitest's workers are
 * killed, so an exit hook never runs): a test file that makes signers calls this in afterAll,
 * which stops each agent and removes its home.
 */
const gpgHomes: string[] = [];
export function removeGpgSigners(): void {
  for (const home of gpgHomes.splice(0)) {
    try {
      execFileSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    } catch {
      // no agent was started (or it is gone already)
    }
    rmSync(home, { recursive: true, force: true });
  }
}
