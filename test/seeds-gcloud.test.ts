/**
 * The seed walkthroughs' command sequences, run with the real gcloud and curl against a real
 * listening server (config from `tollgate gcloud-config`), then cross-checked by evaluating the
 * exported policy and attestations offline with the decision core.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFixtureText, TESTDATA } from './support/fixtures.js';
import { run, startServer, type CommandResult, type TestServer } from './support/server.js';

let server: TestServer;
let work: string;

beforeAll(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'tollgate-seed-'));
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const P = 'demo';
const digest = (seed: string) => `sha256:${Buffer.from(seed.padEnd(32, '.')).toString('hex').slice(0, 64)}`;

function ok(r: CommandResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}\n--- server ---\n${server.output().slice(-3000)}`);
  return r.stdout;
}

async function g(args: string[], what = args.slice(0, 4).join(' ')): Promise<string> {
  return ok(await server.gcloud(args), what);
}

/** The tutorials' curl calls, with `$(gcloud auth print-access-token)` as they write it. */
async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const token = (await g(['auth', 'print-access-token'])).trim();
  const r = await run('curl', ['-sS', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${token}`, ...args], {});
  ok(r, `curl ${args.join(' ')}`);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: lines.join('\n') };
}

async function offlineEvaluate(attestor: string, images: string[]): Promise<CommandResult> {
  const dir = mkdtempSync(join(work, 'evidence-'));
  mkdirSync(join(dir, 'attestors'));
  mkdirSync(join(dir, 'occurrences'));
  writeFileSync(join(dir, 'policy.yaml'), await g(['container', 'binauthz', 'policy', 'export'], 'policy export'));
  writeFileSync(join(dir, 'attestors', 'a.json'), await g(['container', 'binauthz', 'attestors', 'describe', attestor, '--format=json']));
  writeFileSync(join(dir, 'occurrences', 'o.json'), await g(['container', 'binauthz', 'attestations', 'list', `--attestor=${attestor}`, `--attestor-project=${P}`, '--format=json']));
  return server.tollgate(['evaluate', '--offline', '--policy', join(dir, 'policy.yaml'), '--evidence', dir, '--format', 'json', ...images]);
}

describe('seed 000: KMS key, note by curl, attestor, policy, kms asymmetric-sign + attestations create', () => {
  const IMAGE = `us-central1-docker.pkg.dev/${P}/secure-docker-repo/python-flask-secure-app@${digest('flask-app')}`;
  const UNSIGNED = `us-central1-docker.pkg.dev/${P}/secure-docker-repo/python-flask-secure-app@${digest('other')}`;
  const KEY = ['--keyring=binauthz-keyring', '--location=us-central1'];

  it('runs end to end', async () => {
    for (const api of ['containeranalysis', 'binaryauthorization', 'cloudkms']) await g(['services', 'enable', `${api}.googleapis.com`]);
    await g(['kms', 'keyrings', 'create', 'binauthz-keyring', '--location=us-central1']);
    await g(['kms', 'keys', 'create', 'binauthz-signing-key', ...KEY, '--purpose=asymmetric-signing', '--default-algorithm=ec-sign-p256-sha256']);
    const version = (await g(['kms', 'keys', 'versions', 'list', '--key=binauthz-signing-key', ...KEY, "--format=value(name)", '--limit=1'])).trim();
    expect(version).toBe(`projects/${P}/locations/us-central1/keyRings/binauthz-keyring/cryptoKeys/binauthz-signing-key/cryptoKeyVersions/1`);

    writeFileSync(join(work, 'note_payload.json'), JSON.stringify({
      name: `projects/${P}/notes/secure-app-attestor-note`,
      attestation: { hint: { human_readable_name: 'Attestor for secure Flask app' } },
    }));
    const note = await curl(['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', `@${join(work, 'note_payload.json')}`, `${server.url}/v1/projects/${P}/notes/?noteId=secure-app-attestor-note`]);
    expect(note.status).toBe(200);

    await g(['container', 'binauthz', 'attestors', 'create', 'secure-app-attestor', '--attestation-authority-note=secure-app-attestor-note', `--attestation-authority-note-project=${P}`]);
    const pem = join(work, 'public_key.pem');
    await g(['kms', 'keys', 'versions', 'get-public-key', '1', '--key=binauthz-signing-key', ...KEY, `--output-file=${pem}`]);
    expect(readFileSync(pem, 'utf8')).toContain('BEGIN PUBLIC KEY');
    await g(['container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=secure-app-attestor', '--pkix-public-key-algorithm=ecdsa-p256-sha256', `--pkix-public-key-file=${pem}`, `--public-key-id-override=${version}`]);

    const number = (await g(['projects', 'describe', P, '--format=value(projectNumber)'])).trim();
    expect(number).toMatch(/^\d{12}$/);
    await g(['container', 'binauthz', 'attestors', 'add-iam-policy-binding', 'secure-app-attestor', `--member=serviceAccount:${number}-compute@developer.gserviceaccount.com`, '--role=roles/binaryauthorization.attestorsVerifier']);

    const exported = await g(['container', 'binauthz', 'policy', 'export']);
    expect(exported).toContain('evaluationMode: ALWAYS_ALLOW');
    const policy = join(work, 'policy.yaml');
    writeFileSync(policy, [
      'admissionWhitelistPatterns:',
      '- namePattern: gcr.io/google_containers/*',
      '- namePattern: gcr.io/google-containers/*',
      '- namePattern: k8s.gcr.io/*',
      '- namePattern: gke.gcr.io/*',
      '- namePattern: gcr.io/stackdriver-agents/*',
      'defaultAdmissionRule:',
      '  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG',
      '  evaluationMode: REQUIRE_ATTESTATION',
      '  requireAttestationsBy:',
      `  - projects/${P}/attestors/secure-app-attestor`,
      'globalPolicyEvaluationMode: ENABLE',
      `name: projects/${P}/policy`,
      '',
    ].join('\n'));
    await g(['container', 'binauthz', 'policy', 'import', policy]);

    const payload = join(work, 'generated_payload.json');
    writeFileSync(payload, await g(['container', 'binauthz', 'create-signature-payload', `--artifact-url=${IMAGE}`]));
    const sig = join(work, 'ec_signature');
    await g(['kms', 'asymmetric-sign', '--location=us-central1', '--keyring=binauthz-keyring', '--key=binauthz-signing-key', '--version=1', '--digest-algorithm=sha256', `--input-file=${payload}`, `--signature-file=${sig}`]);
    // The signature verifies with openssl against the exported public key: KMS really signed.
    ok(await run('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', sig, payload], {}), 'openssl verify');

    await g(['container', 'binauthz', 'attestations', 'create', `--artifact-url=${IMAGE}`, `--attestor=projects/${P}/attestors/secure-app-attestor`, `--signature-file=${sig}`, `--public-key-id=${version}`, `--payload-file=${payload}`, '--validate']);
    const listed = await g(['container', 'binauthz', 'attestations', 'list', `--attestor=projects/${P}/attestors/secure-app-attestor`, `--artifact-url=${IMAGE}`, '--format=json']);
    expect(JSON.parse(listed)).toHaveLength(1);
    const none = await g(['container', 'binauthz', 'attestations', 'list', `--attestor=projects/${P}/attestors/secure-app-attestor`, `--artifact-url=${UNSIGNED}`, '--format=json']);
    expect(JSON.parse(none)).toHaveLength(0);

    // What Tollgate stored is what the decision core accepts: signed allowed, unsigned denied.
    const decision = await offlineEvaluate('secure-app-attestor', [IMAGE, UNSIGNED]);
    const d = JSON.parse(decision.stdout) as { allowed: boolean; images: { verdict: string; reason: string }[] };
    expect(d.images.map((i) => `${i.verdict}:${i.reason}`)).toEqual(['ALLOWED:ATTESTED', 'DENIED:NOT_ATTESTED']);
    expect(decision.code).toBe(1);

    // Cleanup, as the seed does it.
    await g(['container', 'binauthz', 'attestors', 'delete', 'secure-app-attestor', '--quiet']);
    const del = await curl(['-X', 'DELETE', `${server.url}/v1/projects/${P}/notes/secure-app-attestor-note`]);
    expect(del.status).toBe(200);
    const destroyed = await g(['kms', 'keys', 'versions', 'destroy', '1', '--key=binauthz-signing-key', ...KEY, '--format=json']);
    expect(JSON.parse(destroyed)).toMatchObject({ state: 'DESTROY_SCHEDULED' });
    writeFileSync(policy, ['defaultAdmissionRule:', '  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG', '  evaluationMode: ALWAYS_ALLOW', 'globalPolicyEvaluationMode: ENABLE', `name: projects/${P}/policy`, ''].join('\n'));
    await g(['container', 'binauthz', 'policy', 'import', policy]);
    expect(await g(['container', 'binauthz', 'policy', 'export'])).toContain('evaluationMode: ALWAYS_ALLOW');
  }, 180_000);
});

describe('seed 001/003: beta attestations sign-and-create with a KMS key', () => {
  const IMAGE = `gcr.io/${P}/hello-app@${digest('hello')}`;

  it('signs and creates through v1beta1, and the attestation verifies', async () => {
    await g(['kms', 'keyrings', 'create', 'attestor-keyring', '--location=global']);
    await g(['kms', 'keys', 'create', 'attestor-key', '--keyring=attestor-keyring', '--location=global', '--purpose=asymmetric-signing', '--default-algorithm=ec-sign-p256-sha256']);
    await g(['beta', 'container', 'binauthz', 'attestors', 'create', 'build-pipeline-attestor', '--attestation-authority-note=build-note', `--attestation-authority-note-project=${P}`]);
    expect((await server.request('POST', `/v1/projects/${P}/notes?noteId=build-note`, { attestation: { hint: { humanReadableName: 'build' } } })).status).toBe(200);
    await g(['beta', 'container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=build-pipeline-attestor', `--keyversion-project=${P}`, '--keyversion-location=global', '--keyversion-keyring=attestor-keyring', '--keyversion-key=attestor-key', '--keyversion=1']);
    const described = JSON.parse(await g(['beta', 'container', 'binauthz', 'attestors', 'describe', 'build-pipeline-attestor', '--format=json'])) as { userOwnedDrydockNote: { publicKeys: { id: string }[] } };
    expect(described.userOwnedDrydockNote.publicKeys[0]?.id).toMatch(/^\/\/127\.0\.0\.1:\d+\/v1\/projects\/demo\/locations\/global\/keyRings\/attestor-keyring\/cryptoKeys\/attestor-key\/cryptoKeyVersions\/1$/);
    await g(['container', 'binauthz', 'policy', 'import', writePolicy('build-pipeline-attestor')]);

    await g(['beta', 'container', 'binauthz', 'attestations', 'sign-and-create', `--artifact-url=${IMAGE}`, '--attestor=build-pipeline-attestor', `--attestor-project=${P}`, `--keyversion-project=${P}`, '--keyversion-location=global', '--keyversion-keyring=attestor-keyring', '--keyversion-key=attestor-key', '--keyversion=1', '--validate']);
    const d = await offlineEvaluate('build-pipeline-attestor', [IMAGE]);
    expect(d.code, d.stdout).toBe(0);
  }, 180_000);
});

describe('the PKIX-PEM flow (openssl key, --public-key-id-override) and the PGP flow (gpg)', () => {
  it('PEM key with an id override; attestation by openssl', async () => {
    const IMAGE = `gcr.io/${P}/pem-app@${digest('pem')}`;
    expect((await server.request('POST', `/v1/projects/${P}/notes?noteId=pem-note`, { attestation: { hint: { humanReadableName: 'pem' } } })).status).toBe(200);
    await g(['container', 'binauthz', 'attestors', 'create', 'pem-attestor', '--attestation-authority-note=pem-note', `--attestation-authority-note-project=${P}`]);
    const pub = join(TESTDATA, 'pkix', 'ECDSA_P256_SHA256', 'public.pem');
    const id = 'urn:tollgate:test:pem-key-1';
    await g(['container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=pem-attestor', '--pkix-public-key-algorithm=ecdsa-p256-sha256', `--pkix-public-key-file=${pub}`, `--public-key-id-override=${id}`]);
    await g(['container', 'binauthz', 'policy', 'import', writePolicy('pem-attestor')]);
    const payload = join(work, 'pem-payload.json');
    writeFileSync(payload, await g(['container', 'binauthz', 'create-signature-payload', `--artifact-url=${IMAGE}`]));
    const sig = join(work, 'pem.sig');
    ok(await run('openssl', ['dgst', '-sha256', '-sign', join(TESTDATA, 'pkix', 'ECDSA_P256_SHA256', 'private.pem'), '-out', sig, payload], {}), 'openssl sign');
    await g(['container', 'binauthz', 'attestations', 'create', `--artifact-url=${IMAGE}`, `--attestor=projects/${P}/attestors/pem-attestor`, `--signature-file=${sig}`, `--public-key-id=${id}`, `--payload-file=${payload}`]);
    const d = await offlineEvaluate('pem-attestor', [IMAGE]);
    expect(d.code, d.stdout).toBe(0);
  }, 120_000);

  it('PGP key added by fingerprint; attached signature by gpg', async () => {
    const payloadJson = readFixtureText('pgp', 'payload.json');
    const dig = (JSON.parse(payloadJson) as { critical: { image: { 'docker-manifest-digest': string } } }).critical.image['docker-manifest-digest'];
    const IMAGE = `gcr.io/tollgate-test/pgp-app@${dig}`;
    expect((await server.request('POST', `/v1/projects/${P}/notes?noteId=pgp-note`, { attestation: { hint: { humanReadableName: 'pgp' } } })).status).toBe(200);
    await g(['container', 'binauthz', 'attestors', 'create', 'pgp-attestor', '--attestation-authority-note=pgp-note', `--attestation-authority-note-project=${P}`]);
    const added = await g(['container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=pgp-attestor', `--pgp-public-key-file=${join(TESTDATA, 'pgp', 'signer.pub.asc')}`]);
    const fpr = readFixtureText('pgp', 'signer.fpr').trim();
    expect(added).toContain(fpr);
    await g(['container', 'binauthz', 'policy', 'import', writePolicy('pgp-attestor')]);
    await g(['container', 'binauthz', 'attestations', 'create', `--artifact-url=${IMAGE}`, `--attestor=projects/${P}/attestors/pgp-attestor`, `--signature-file=${join(TESTDATA, 'pgp', 'payload.json.asc')}`, `--public-key-id=${fpr}`]);
    const d = await offlineEvaluate('pgp-attestor', [IMAGE]);
    expect(d.code, d.stdout).toBe(0);
  }, 120_000);
});

describe('bad input through gcloud', () => {
  it('gets gcloud\'s clean error, not a stack trace', async () => {
    const bad = join(work, 'bad-policy.yaml');
    writeFileSync(bad, 'defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n');
    const r = await server.gcloud(['container', 'binauthz', 'policy', 'import', bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: \(gcloud\.container\.binauthz\.policy\.import\) INVALID_ARGUMENT: .*requireAttestationsBy/);
    expect(r.stderr).not.toMatch(/Traceback/);
    const missing = await server.gcloud(['container', 'binauthz', 'attestors', 'describe', 'no-such-attestor']);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  }, 60_000);
});

function writePolicy(attestor: string): string {
  const file = join(work, `policy-${attestor}.yaml`);
  writeFileSync(file, ['defaultAdmissionRule:', '  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG', '  evaluationMode: REQUIRE_ATTESTATION', '  requireAttestationsBy:', `  - projects/${P}/attestors/${attestor}`, 'globalPolicyEvaluationMode: ENABLE', ''].join('\n'));
  return file;
}
