/**
 * The real gcloud (GA and beta tracks) against a real `tollgate serve`: policy export/import,
 * attestors and their public keys, IAM on attestors, and clean errors. gcloud-compat.md §3 lists
 * what each command sends and reads.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { TESTDATA, readFixtureText } from './support/fixtures.js';
import { startServer, type CommandResult, type TestServer } from './support/server.js';

const EC_PEM = join(TESTDATA, 'pkix', 'ECDSA_P256_SHA256', 'public.pem');
const P384_PEM = join(TESTDATA, 'pkix', 'ECDSA_P384_SHA384', 'public.pem');
const PGP_KEY = join(TESTDATA, 'pgp', 'signer.pub.asc');
const FINGERPRINT = readFixtureText('pgp', 'signer.fpr').trim();

describe('gcloud container binauthz against Tollgate', () => {
  let server: TestServer;
  let work: string;
  beforeAll(async () => {
    server = await startServer();
    work = mkdtempSync(join(tmpdir(), 'tollgate-binauthz-'));
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function gcloud(...args: string[]): Promise<CommandResult> {
    return server.gcloud(args);
  }

  async function ok(...args: string[]): Promise<string> {
    const r = await gcloud(...args);
    expect(r.code, `gcloud ${args.join(' ')}\n${r.stderr}`).toBe(0);
    return r.stdout;
  }

  /** gcloud's table without its box-drawing frame: one row per line, cells separated by spaces. */
  async function table(...args: string[]): Promise<string> {
    return (await ok(...args)).replace(/[│┌┐└┘├┤┬┴┼─]/g, ' ').replace(/^ +| +$/gm, '');
  }

  /** gcloud's one-line error for a Google status, with no traceback or raw HTTP dump. */
  function expectCleanError(r: CommandResult, command: string, status: string): void {
    expect(r.code).not.toBe(0);
    // gcloud words a 409 itself: "Resource in projects [demo] is the subject of a conflict: MESSAGE".
    const prefix = status === 'ABORTED' ? `ERROR: (gcloud.${command}) Resource in projects [demo] is the subject of a conflict: ` : `ERROR: (gcloud.${command}) ${status}: `;
    expect(r.stderr).toContain(prefix);
    expect(r.stderr).not.toMatch(/Traceback|HttpError accessing|crashed/);
  }

  it('exports the default policy, imports an edited one, and refuses a stale etag', async () => {
    const exported = parseYaml(await ok('container', 'binauthz', 'policy', 'export'));
    expect(exported).toMatchObject({
      name: 'projects/demo/policy',
      globalPolicyEvaluationMode: 'ENABLE',
      defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
    });
    expect(exported.etag).toEqual(expect.any(String));

    await ok('container', 'binauthz', 'attestors', 'create', 'policy-attestor', '--attestation-authority-note=policy-note', '--attestation-authority-note-project=demo');
    const edited = {
      ...exported,
      defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/policy-attestor'] },
    };
    const file = join(work, 'policy.yaml');
    // Quoted as gcloud writes them: gcloud's YAML 1.1 reader would turn a bare timestamp into a datetime.
    writeFileSync(file, toYaml(edited, { defaultStringType: 'QUOTE_DOUBLE' }));
    const imported = parseYaml(await ok('container', 'binauthz', 'policy', 'import', file));
    expect(imported.defaultAdmissionRule).toEqual(edited.defaultAdmissionRule);
    expect(imported.etag).not.toBe(exported.etag);

    const again = parseYaml(await ok('beta', 'container', 'binauthz', 'policy', 'export'));
    expect(again.defaultAdmissionRule.requireAttestationsBy).toEqual(['projects/demo/attestors/policy-attestor']);

    // The file still carries the etag of the policy it was exported from.
    expectCleanError(await gcloud('container', 'binauthz', 'policy', 'import', file), 'container.binauthz.policy.import', 'ABORTED');

    // The re-exported file imports fine (round trip), through beta (v1beta1) too.
    const roundTrip = join(work, 'round-trip.yaml');
    writeFileSync(roundTrip, await ok('container', 'binauthz', 'policy', 'export'));
    await ok('beta', 'container', 'binauthz', 'policy', 'import', roundTrip);
  });

  it('refuses an invalid policy with a clean INVALID_ARGUMENT', async () => {
    const file = join(work, 'bad-policy.yaml');
    writeFileSync(file, toYaml({
      defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/x'] },
      admissionWhitelistPatterns: [{ namePattern: 'gcr.io/p/n*x' }],
    }));
    const r = await gcloud('container', 'binauthz', 'policy', 'import', file);
    expectCleanError(r, 'container.binauthz.policy.import', 'INVALID_ARGUMENT');
    expect(r.stderr).toContain('admissionWhitelistPatterns[0].namePattern');
    expect(r.stderr).toContain('defaultAdmissionRule.requireAttestationsBy');
  });

  it('creates, lists and describes attestors in the GA and beta tracks', async () => {
    await ok('container', 'binauthz', 'attestors', 'create', 'ga-attestor', '--attestation-authority-note=ga-note', '--attestation-authority-note-project=demo', '--description=made by GA');
    await ok('beta', 'container', 'binauthz', 'attestors', 'create', 'beta-attestor', '--attestation-authority-note=beta-note', '--attestation-authority-note-project=demo');

    const list = await table('container', 'binauthz', 'attestors', 'list');
    expect(list).toMatch(/^NAME\s+NOTE\s+NUM_PUBLIC_KEYS/m);
    expect(list).toMatch(/^ga-attestor\s+projects\/demo\/notes\/ga-note\s+0$/m);
    expect(list).toMatch(/^beta-attestor\s+projects\/demo\/notes\/beta-note\s+0$/m);
    expect(await table('beta', 'container', 'binauthz', 'attestors', 'list')).toMatch(/^ga-attestor\s+projects\/demo\/notes\/ga-note\s+0$/m);

    const ga = parseYaml(await ok('container', 'binauthz', 'attestors', 'describe', 'beta-attestor'));
    expect(ga.userOwnedGrafeasNote.noteReference).toBe('projects/demo/notes/beta-note');
    expect(ga.userOwnedGrafeasNote.delegationServiceAccountEmail).toMatch(/^service-\d+@gcp-sa-binaryauthorization\.iam\.gserviceaccount\.com$/);
    const beta = parseYaml(await ok('beta', 'container', 'binauthz', 'attestors', 'describe', 'ga-attestor'));
    expect(beta).toMatchObject({ name: 'projects/demo/attestors/ga-attestor', description: 'made by GA', userOwnedDrydockNote: { noteReference: 'projects/demo/notes/ga-note' } });
  });

  it('adds PKIX keys with and without an id override, a PGP key, and removes one', async () => {
    await ok('container', 'binauthz', 'attestors', 'create', 'keys', '--attestation-authority-note=keys-note', '--attestation-authority-note-project=demo');

    const generated = parseYaml(await ok('container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=keys', `--pkix-public-key-file=${EC_PEM}`, '--pkix-public-key-algorithm=ecdsa-p256-sha256'));
    expect(generated.id).toMatch(/^ni:\/\/\/sha-256;[A-Za-z0-9_-]{43}$/);
    expect(generated.pkixPublicKey.signatureAlgorithm).toBe('ECDSA_P256_SHA256');

    const overridden = parseYaml(await ok('beta', 'container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=keys', `--pkix-public-key-file=${EC_PEM}`, '--pkix-public-key-algorithm=ecdsa-p256-sha256', '--public-key-id-override=urn:tollgate:keys:1', '--comment=overridden'));
    expect(overridden).toMatchObject({ id: 'urn:tollgate:keys:1', comment: 'overridden' });

    const pgp = parseYaml(await ok('container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=keys', `--pgp-public-key-file=${PGP_KEY}`));
    expect(pgp.id).toBe(FINGERPRINT);

    await ok('container', 'binauthz', 'attestors', 'public-keys', 'remove', generated.id, '--attestor=keys');
    const after = parseYaml(await ok('container', 'binauthz', 'attestors', 'describe', 'keys'));
    expect(after.userOwnedGrafeasNote.publicKeys.map((k: { id: string }) => k.id)).toEqual(['urn:tollgate:keys:1', FINGERPRINT]);
    expect(await table('container', 'binauthz', 'attestors', 'list')).toMatch(/^keys\s+projects\/demo\/notes\/keys-note\s+2$/m);
  });

  it('reports a key that does not fit its algorithm as a clean INVALID_ARGUMENT', async () => {
    await ok('container', 'binauthz', 'attestors', 'create', 'bad-keys', '--attestation-authority-note=n', '--attestation-authority-note-project=demo');
    const mismatch = await gcloud('container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=bad-keys', `--pkix-public-key-file=${P384_PEM}`, '--pkix-public-key-algorithm=ecdsa-p256-sha256');
    expectCleanError(mismatch, 'container.binauthz.attestors.public-keys.add', 'INVALID_ARGUMENT');
    expect(mismatch.stderr).toContain('userOwnedGrafeasNote.publicKeys[0].pkixPublicKey.signatureAlgorithm: ECDSA_P256_SHA256 needs an EC key on P-256');

    const garbage = join(work, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    const bad = await gcloud('beta', 'container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=bad-keys', `--pkix-public-key-file=${garbage}`, '--pkix-public-key-algorithm=ecdsa-p256-sha256');
    expectCleanError(bad, 'beta.container.binauthz.attestors.public-keys.add', 'INVALID_ARGUMENT');
    expect(bad.stderr).toContain('userOwnedDrydockNote.publicKeys[0].pkixPublicKey.publicKeyPem: ');
  });

  it('grants a role on an attestor with add-iam-policy-binding (v1alpha2) and deletes attestors', async () => {
    await ok('container', 'binauthz', 'attestors', 'create', 'iam-attestor', '--attestation-authority-note=iam-note', '--attestation-authority-note-project=demo');
    const member = 'serviceAccount:deployer@demo.iam.gserviceaccount.com';
    for (const track of [[], ['beta']]) {
      const r = await gcloud(...track, 'container', 'binauthz', 'attestors', 'add-iam-policy-binding', 'iam-attestor', `--member=${member}`, '--role=roles/binaryauthorization.attestorsVerifier');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('Updated IAM policy for attestor [iam-attestor].');
      expect(parseYaml(r.stdout).bindings).toEqual([{ role: 'roles/binaryauthorization.attestorsVerifier', members: [member] }]);
    }
    const policy = parseYaml(await ok('container', 'binauthz', 'attestors', 'get-iam-policy', 'iam-attestor'));
    expect(policy.bindings).toEqual([{ role: 'roles/binaryauthorization.attestorsVerifier', members: [member] }]);

    await ok('container', 'binauthz', 'attestors', 'delete', 'iam-attestor');
    expectCleanError(await gcloud('container', 'binauthz', 'attestors', 'describe', 'iam-attestor'), 'container.binauthz.attestors.describe', 'NOT_FOUND');
    await ok('beta', 'container', 'binauthz', 'attestors', 'delete', 'beta-attestor');
    expect(await table('container', 'binauthz', 'attestors', 'list')).not.toMatch(/^beta-attestor\s/m);
  });
});
