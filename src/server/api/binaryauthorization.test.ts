/**
 * Binary Authorization API: the pure wire helpers (attestor validation and the v1/v1beta1
 * translation), then the REST methods through a real listening `tollgate serve`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64url, occurrenceResource, opensslSign, readFixture, readFixtureText } from '../../../test/support/fixtures.js';
import { startServer, type TestServer } from '../../../test/support/server.js';
import { defaultPkixKeyId, parsePkixPublicKey } from '../../core/attestation/pkix.js';
import { attestorFromRequest, attestorToWire, noteReferenceProblem, problemsError, type AttestorRequestContext } from './binaryauthorization-wire.js';

const ecPem = readFixtureText('pkix', 'ECDSA_P256_SHA256', 'public.pem');
const p384Pem = readFixtureText('pkix', 'ECDSA_P384_SHA384', 'public.pem');
const otherEcPem = readFixtureText('pkix', 'other-ECDSA_P256_SHA256', 'public.pem');
const pgpKey = readFixtureText('pgp', 'signer.pub.asc');
const fpr = readFixtureText('pgp', 'signer.fpr').trim();
const SA = 'service-123456789012@gcp-sa-binaryauthorization.iam.gserviceaccount.com';

function ecDefaultId(pem = ecPem): string {
  const r = parsePkixPublicKey(pem, 'ECDSA_P256_SHA256');
  if (!r.ok) throw new Error(r.error.message);
  return defaultPkixKeyId(r.value.key);
}

const ctx = (over: Partial<AttestorRequestContext> = {}): AttestorRequestContext => ({
  version: 'v1',
  name: 'projects/demo/attestors/a1',
  delegationServiceAccountEmail: SA,
  ...over,
});

async function validate(raw: unknown, over: Partial<AttestorRequestContext> = {}) {
  return attestorFromRequest(raw, ctx(over));
}

async function problemsOf(raw: unknown, over: Partial<AttestorRequestContext> = {}): Promise<{ path: string | undefined; message: string }[]> {
  const r = await validate(raw, over);
  if (r.ok) throw new Error('expected problems');
  return r.error.map((p) => ({ path: p.path, message: p.message }));
}

describe('attestorFromRequest', () => {
  it('fills in ids: ni:///sha-256 for a PEM without one, the fingerprint for PGP; canonical algorithm names', async () => {
    const r = await validate({
      name: 'projects/other/attestors/ignored',
      description: 'build attestor',
      updateTime: '2020-01-01T00:00:00Z',
      userOwnedGrafeasNote: {
        noteReference: 'projects/demo/notes/n1',
        delegationServiceAccountEmail: 'someone-else@example.com',
        publicKeys: [
          { pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'EC_SIGN_P256_SHA256' } },
          { id: 'caller-chosen', comment: 'release', asciiArmoredPgpPublicKey: pgpKey },
          { id: 'urn:example:k3', pkixPublicKey: { publicKeyPem: otherEcPem, signatureAlgorithm: 9, keyId: '' } },
          { pkix_public_key: { public_key_pem: p384Pem, signature_algorithm: 'ECDSA_P384_SHA384', key_id: 'urn:example:k4' } },
        ],
      },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.noteReference).toBe('projects/demo/notes/n1');
    expect(r.value.body).toEqual({
      name: 'projects/demo/attestors/a1',
      description: 'build attestor',
      userOwnedGrafeasNote: {
        noteReference: 'projects/demo/notes/n1',
        delegationServiceAccountEmail: SA,
        publicKeys: [
          { id: ecDefaultId(), pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          { id: fpr, comment: 'release', asciiArmoredPgpPublicKey: pgpKey },
          { id: 'urn:example:k3', pkixPublicKey: { publicKeyPem: otherEcPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          { id: 'urn:example:k4', pkixPublicKey: { publicKeyPem: p384Pem, signatureAlgorithm: 'ECDSA_P384_SHA384', keyId: 'urn:example:k4' } },
        ],
      },
    });
    expect(ecDefaultId()).toMatch(/^ni:\/\/\/sha-256;[A-Za-z0-9_-]{43}$/);
  });

  it('reads v1beta1 userOwnedDrydockNote and points at the v1 name when it is used there', async () => {
    const ok = await validate({ userOwnedDrydockNote: { noteReference: 'projects/demo/notes/n1' } }, { version: 'v1beta1' });
    expect(ok.ok).toBe(true);
    expect(await problemsOf({ userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1' } }, { version: 'v1beta1' })).toEqual([
      { path: 'userOwnedGrafeasNote', message: "userOwnedGrafeasNote: unknown field in an attestor; v1beta1 calls the attestor's note 'userOwnedDrydockNote'" },
      { path: 'userOwnedDrydockNote', message: expect.stringMatching(/^userOwnedDrydockNote: required/) },
    ]);
    expect(await problemsOf({ userOwnedDrydockNote: { noteReference: 'projects/demo/notes/n1' } }, { version: 'v1' })).toContainEqual({
      path: 'userOwnedDrydockNote',
      message: "userOwnedDrydockNote: unknown field in an attestor; v1 calls the attestor's note 'userOwnedGrafeasNote'",
    });
  });

  it('reports every problem with its field path', async () => {
    const problems = await problemsOf({
      bogus: 1,
      userOwnedGrafeasNote: {
        noteReference: 'projects/123456/notes/n1',
        publicKeys: [
          { pkixPublicKey: { publicKeyPem: '-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n', signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          { pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'RSA_PSS_2048_SHA256' } },
          { asciiArmoredPgpPublicKey: 'not a key' },
          { id: 'not a uri', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          { asciiArmoredPgpPublicKey: pgpKey, pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          {},
          { id: 'urn:a', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256', keyId: 'urn:b' } },
          { pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256', extra: true } },
        ],
      },
    });
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual([
      'bogus',
      'userOwnedGrafeasNote.noteReference',
      'userOwnedGrafeasNote.publicKeys[0].pkixPublicKey.publicKeyPem',
      'userOwnedGrafeasNote.publicKeys[1].pkixPublicKey.signatureAlgorithm',
      'userOwnedGrafeasNote.publicKeys[2].asciiArmoredPgpPublicKey',
      'userOwnedGrafeasNote.publicKeys[3].id',
      'userOwnedGrafeasNote.publicKeys[4]',
      'userOwnedGrafeasNote.publicKeys[5]',
      'userOwnedGrafeasNote.publicKeys[6].pkixPublicKey.keyId',
      'userOwnedGrafeasNote.publicKeys[7].pkixPublicKey.extra',
    ]);
    for (const p of problems) expect(p.message.startsWith(`${p.path as string}: `), p.message).toBe(true);
    expect(problems[1]?.message).toMatch(/by number; use its project id/);
    expect(problems[3]?.message).toMatch(/needs an RSA 2048-bit key/);
  });

  it('refuses duplicate key ids, also when the ids are computed', async () => {
    const problems = await problemsOf({
      userOwnedGrafeasNote: {
        noteReference: 'projects/demo/notes/n1',
        publicKeys: [
          { pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          { pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
          { asciiArmoredPgpPublicKey: pgpKey },
          { asciiArmoredPgpPublicKey: pgpKey.replace(/\n/g, '\r\n') },
        ],
      },
    });
    expect(problems.map((p) => p.path)).toEqual(['userOwnedGrafeasNote.publicKeys[1].id', 'userOwnedGrafeasNote.publicKeys[3].id']);
    expect(problems[0]?.message).toMatch(/already used by userOwnedGrafeasNote\.publicKeys\[0\]/);
  });

  it('requires a note and keeps it immutable on update', async () => {
    expect((await problemsOf({})).map((p) => p.path)).toEqual(['userOwnedGrafeasNote']);
    expect((await problemsOf({ userOwnedGrafeasNote: {} })).map((p) => p.path)).toEqual(['userOwnedGrafeasNote.noteReference']);
    const existing = { name: 'projects/demo/attestors/a1', userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1' } };
    expect(await problemsOf({ userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n2' } }, { existing })).toEqual([
      { path: 'userOwnedGrafeasNote.noteReference', message: expect.stringMatching(/cannot be changed/) },
    ]);
    expect((await validate({ userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1' } }, { existing })).ok).toBe(true);
  });

  it('limits an attestor to 1000 keys', async () => {
    const keys = Array.from({ length: 1001 }, (_, i) => ({ id: `urn:k:${i}`, pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }));
    expect(await problemsOf({ userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1', publicKeys: keys } })).toEqual([
      { path: 'userOwnedGrafeasNote.publicKeys', message: expect.stringMatching(/at most 1000/) },
    ]);
  });
});

describe('noteReferenceProblem', () => {
  it('accepts projects/PROJECT_ID/notes/NOTE_ID and explains the usual mistakes', () => {
    expect(noteReferenceProblem('projects/demo/notes/build-note')).toBeUndefined();
    expect(noteReferenceProblem('projects/example.com:proj/notes/n')).toBeUndefined();
    expect(noteReferenceProblem('build-note')).toMatch(/bare note id/);
    expect(noteReferenceProblem('projects/$PROJECT_ID/notes/n')).toMatch(/unexpanded shell variable/);
    expect(noteReferenceProblem('projects/demo/attestors/a')).toMatch(/not a note resource name/);
    expect(noteReferenceProblem('projects/demo/notes/a b')).toMatch(/not a valid note id/);
  });
});

describe('attestorToWire', () => {
  const body = { name: 'projects/demo/attestors/a1', userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1', publicKeys: [], delegationServiceAccountEmail: SA } };
  it('names the note field by version and adds the output-only fields', () => {
    const meta = { updateTime: '2024-05-01T12:00:00.000000Z', etag: 'abc' };
    expect(attestorToWire(body, 'v1', meta)).toEqual({
      name: 'projects/demo/attestors/a1',
      userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1', delegationServiceAccountEmail: SA },
      updateTime: meta.updateTime,
      etag: 'abc',
    });
    expect(attestorToWire(body, 'v1beta1', meta)).toHaveProperty('userOwnedDrydockNote.noteReference', 'projects/demo/notes/n1');
    expect(attestorToWire(body, 'v1alpha2', meta)).not.toHaveProperty('userOwnedGrafeasNote');
  });
});

describe('problemsError', () => {
  it('is one INVALID_ARGUMENT listing every problem, with BadRequest field violations', () => {
    const e = problemsError('policy', [
      { code: 'A', path: 'x', message: 'x: bad' },
      { code: 'B', path: 'y.z', message: 'y.z: worse' },
    ]);
    expect(e.status).toBe('INVALID_ARGUMENT');
    expect(e.message).toBe('Invalid policy (2 problems): x: bad; y.z: worse');
    expect(e.details).toEqual([
      { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'x', description: 'bad' }, { field: 'y.z', description: 'worse' }] },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// REST, through a real server

const P256_DIGEST = 'sha256:200c93eb3c259fe6e57f2bab8de898c965d0f02049e3befa20edd61334f929a8';
const P256_IMAGE = `us-docker.pkg.dev/tollgate-test/fixtures/ecdsa-p256-sha256@${P256_DIGEST}`;
const PGP_IMAGE = 'gcr.io/tollgate-test/pgp-app@sha256:1efcb0667f9eb4361c4d79d076b503e4f0d784e40fbc362e354baa7ff4d40af0';

describe('Binary Authorization REST API', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const req = (method: string, path: string, body?: unknown, token?: string | null) => server.request(method, path, body, token);

  async function createAttestor(project: string, id: string, note: string, keys: unknown[] = [], version = 'v1') {
    const field = version === 'v1' ? 'userOwnedGrafeasNote' : 'userOwnedDrydockNote';
    const r = await req('POST', `/${version}/projects/${project}/attestors?attestorId=${id}`, { name: `projects/${project}/attestors/${id}`, [field]: { noteReference: note, publicKeys: keys } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  }

  describe('policy', () => {
    it('serves the default policy with an etag and updateTime, in every version', async () => {
      for (const v of ['v1', 'v1beta1', 'v1alpha2']) {
        const r = await req('GET', `/${v}/projects/pol-default/policy`);
        expect(r.status).toBe(200);
        expect(r.body).toEqual({
          name: 'projects/pol-default/policy',
          globalPolicyEvaluationMode: 'ENABLE',
          defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
          etag: expect.any(String),
          updateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        });
      }
    });

    it('updates with the default etag, refuses a stale one with 409 ABORTED, and ignores updateTime sent back', async () => {
      const first = (await req('GET', '/v1/projects/pol-update/policy')).body;
      const edited = { ...first, defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY' }, name: 'projects/whatever/policy' };
      const put = await req('PUT', '/v1/projects/pol-update/policy', edited);
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      expect(put.body.name).toBe('projects/pol-update/policy');
      expect(put.body.defaultAdmissionRule).toEqual({ evaluationMode: 'ALWAYS_DENY', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY' });
      expect(put.body.etag).not.toBe(first.etag);
      expect(put.body.updateTime).not.toBe(first.updateTime);

      const stale = await req('PUT', '/v1/projects/pol-update/policy', edited);
      expect(stale.status).toBe(409);
      expect(stale.body.error.status).toBe('ABORTED');

      const got = await req('GET', '/v1beta1/projects/pol-update/policy');
      expect(got.body).toEqual(put.body);

      // No etag: an unconditional write.
      const { etag: _etag, ...noEtag } = got.body;
      const again = await req('PUT', '/v1beta1/projects/pol-update/policy', { ...noEtag, description: 'second' });
      expect(again.status).toBe(200);
      expect(again.body.description).toBe('second');
    });

    it('lets only one of two concurrent writers with the same etag win', async () => {
      const { etag } = (await req('GET', '/v1/projects/pol-race/policy')).body;
      const body = (mode: string) => ({ etag, defaultAdmissionRule: { evaluationMode: mode, enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } });
      const results = await Promise.all([req('PUT', '/v1/projects/pol-race/policy', body('ALWAYS_DENY')), req('PUT', '/v1/projects/pol-race/policy', body('ALWAYS_ALLOW'))]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    });

    it('takes the project number in the policy name', async () => {
      await req('PUT', '/v1/projects/pol-num/policy', { defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } });
      const project = await req('GET', '/v1/projects/pol-num');
      expect(project.status).toBe(200);
      const byNumber = await req('GET', `/v1/projects/${project.body.projectNumber as string}/policy`);
      expect(byNumber.status).toBe(200);
      expect(byNumber.body).toMatchObject({ name: 'projects/pol-num/policy', defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY' } });
      expect((await req('GET', '/v1/projects/999999999999/policy')).status).toBe(404);
      expect((await req('GET', '/v1/projects/Not_An_Id/policy')).status).toBe(400);
    });

    it('answers an invalid policy with one 400 listing every problem with its path', async () => {
      const r = await req('PUT', '/v1/projects/pol-invalid/policy', {
        defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATIONS', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
        admissionWhitelistPatterns: [{ namePattern: 'gcr.io/p/n*x' }],
        clusterAdmissionRules: { prod: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } },
      });
      expect(r.status).toBe(400);
      expect(r.body.error.status).toBe('INVALID_ARGUMENT');
      const message: string = r.body.error.message;
      expect(message).toMatch(/^Invalid policy \(3 problems\): /);
      expect(message).toContain('admissionWhitelistPatterns[0].namePattern: ');
      expect(message).toContain('clusterAdmissionRules["prod"]: ');
      expect(message).toContain('defaultAdmissionRule.evaluationMode: "REQUIRE_ATTESTATIONS" is not a valid value');
      expect(r.body.error.details[0].fieldViolations.map((f: { field: string }) => f.field)).toEqual([
        'admissionWhitelistPatterns[0].namePattern',
        'defaultAdmissionRule.evaluationMode',
        'clusterAdmissionRules["prod"]',
      ]);
      expect((await req('GET', '/v1/projects/pol-invalid/policy')).body.defaultAdmissionRule.evaluationMode).toBe('ALWAYS_ALLOW');
    });

    it('requires every attestor a rule names to exist', async () => {
      await createAttestor('pol-att', 'exists', 'projects/pol-att/notes/n');
      const rule = (attestors: string[]) => ({ evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: attestors });
      const bad = await req('PUT', '/v1/projects/pol-att/policy', {
        defaultAdmissionRule: rule(['projects/pol-att/attestors/exists', 'projects/pol-att/attestors/missing']),
        kubernetesNamespaceAdmissionRules: { prod: rule(['projects/pol-att/attestors/missing']) },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details[0].fieldViolations.map((f: { field: string }) => f.field)).toEqual([
        'defaultAdmissionRule.requireAttestationsBy[1]',
        'kubernetesNamespaceAdmissionRules["prod"].requireAttestationsBy[0]',
      ]);
      expect(bad.body.error.message).toContain('defaultAdmissionRule.requireAttestationsBy[1]: attestor projects/pol-att/attestors/missing does not exist');
      const good = await req('PUT', '/v1/projects/pol-att/policy', { defaultAdmissionRule: rule(['projects/pol-att/attestors/exists']) });
      expect(good.status, JSON.stringify(good.body)).toBe(200);
      expect(good.body.defaultAdmissionRule.requireAttestationsBy).toEqual(['projects/pol-att/attestors/exists']);
    });
  });

  describe('attestors', () => {
    it('creates through v1 and reads the same attestor through v1beta1 and v1alpha2', async () => {
      const created = await createAttestor('att-crud', 'a1', 'projects/att-crud/notes/n1');
      expect(created).toEqual({
        name: 'projects/att-crud/attestors/a1',
        userOwnedGrafeasNote: { noteReference: 'projects/att-crud/notes/n1', delegationServiceAccountEmail: expect.stringMatching(/^service-\d+@gcp-sa-binaryauthorization\.iam\.gserviceaccount\.com$/) },
        updateTime: expect.any(String),
        etag: expect.any(String),
      });
      const beta = await req('GET', '/v1beta1/projects/att-crud/attestors/a1');
      expect(beta.status).toBe(200);
      expect(beta.body.userOwnedDrydockNote).toEqual(created.userOwnedGrafeasNote);
      expect(beta.body).not.toHaveProperty('userOwnedGrafeasNote');
      expect((await req('GET', '/v1alpha2/projects/att-crud/attestors/a1')).body.userOwnedDrydockNote).toEqual(created.userOwnedGrafeasNote);

      // Update through v1beta1 (the whole attestor sent back with output-only fields), read through v1.
      const put = await req('PUT', '/v1beta1/projects/att-crud/attestors/a1', {
        ...beta.body,
        description: 'now with a key',
        userOwnedDrydockNote: { ...beta.body.userOwnedDrydockNote, publicKeys: [{ pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'EC_SIGN_P256_SHA256' } }] },
      });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      const v1 = await req('GET', '/v1/projects/att-crud/attestors/a1');
      expect(v1.body.description).toBe('now with a key');
      expect(v1.body.userOwnedGrafeasNote.publicKeys).toEqual([{ id: ecDefaultId(), pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }]);
      expect(v1.body.etag).toBe(put.body.etag);

      // The etag read before the update is stale now.
      const stale = await req('PUT', '/v1/projects/att-crud/attestors/a1', created);
      expect(stale.status).toBe(409);
      expect(stale.body.error.status).toBe('ABORTED');

      const dup = await req('POST', '/v1/projects/att-crud/attestors?attestorId=a1', { userOwnedGrafeasNote: { noteReference: 'projects/att-crud/notes/n1' } });
      expect(dup.status).toBe(409);
      expect(dup.body.error.status).toBe('ALREADY_EXISTS');

      const del = await req('DELETE', '/v1beta1/projects/att-crud/attestors/a1');
      expect(del).toEqual({ status: 200, body: {} });
      for (const [m, v] of [['GET', 'v1'], ['GET', 'v1beta1'], ['DELETE', 'v1'], ['PUT', 'v1']] as const) {
        const r = await req(m, `/${v}/projects/att-crud/attestors/a1`, m === 'PUT' ? created : undefined);
        expect(r.status, `${m} ${v}`).toBe(404);
        expect(r.body.error.status).toBe('NOT_FOUND');
      }
    });

    it('creates through v1beta1 with userOwnedDrydockNote', async () => {
      const created = await createAttestor('att-beta', 'b1', 'projects/att-beta/notes/n1', [{ asciiArmoredPgpPublicKey: pgpKey, comment: 'gpg' }], 'v1beta1');
      expect(created.userOwnedDrydockNote.publicKeys).toEqual([{ id: fpr, comment: 'gpg', asciiArmoredPgpPublicKey: pgpKey }]);
      expect((await req('GET', '/v1/projects/att-beta/attestors/b1')).body.userOwnedGrafeasNote.publicKeys[0].id).toBe(fpr);
    });

    it('keeps a given PKIX id and refuses one that is not a URI', async () => {
      const created = await createAttestor('att-ids', 'k', 'projects/att-ids/notes/n', [{ id: '//cloudkms.googleapis.com/v1/projects/att-ids/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }]);
      expect(created.userOwnedGrafeasNote.publicKeys[0].id).toBe('//cloudkms.googleapis.com/v1/projects/att-ids/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1');
      const bad = await req('POST', '/v1/projects/att-ids/attestors?attestorId=bad', { userOwnedGrafeasNote: { noteReference: 'projects/att-ids/notes/n', publicKeys: [{ id: 'my key', pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }] } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('userOwnedGrafeasNote.publicKeys[0].id: "my key" is not a valid');
    });

    it('answers a bad PEM with 400 naming the field path', async () => {
      const r = await req('POST', '/v1beta1/projects/att-bad/attestors?attestorId=a', {
        userOwnedDrydockNote: { noteReference: 'projects/att-bad/notes/n', publicKeys: [{ pkixPublicKey: { publicKeyPem: 'garbage', signatureAlgorithm: 'ECDSA_P256_SHA256' } }] },
      });
      expect(r.status).toBe(400);
      expect(r.body.error.status).toBe('INVALID_ARGUMENT');
      expect(r.body.error.message).toMatch(/^Invalid attestor: userOwnedDrydockNote\.publicKeys\[0\]\.pkixPublicKey\.publicKeyPem: /);
      expect((await req('GET', '/v1/projects/att-bad/attestors/a')).status).toBe(404);
    });

    it('validates attestorId and the note reference', async () => {
      const noId = await req('POST', '/v1/projects/att-val/attestors', { userOwnedGrafeasNote: { noteReference: 'projects/att-val/notes/n' } });
      expect(noId.status).toBe(400);
      expect(noId.body.error.message).toMatch(/^attestorId: required/);
      const badId = await req('POST', '/v1/projects/att-val/attestors?attestorId=a.b', { userOwnedGrafeasNote: { noteReference: 'projects/att-val/notes/n' } });
      expect(badId.status).toBe(400);
      const badNote = await req('POST', '/v1/projects/att-val/attestors?attestorId=a', { userOwnedGrafeasNote: { noteReference: 'n' } });
      expect(badNote.status).toBe(400);
      expect(badNote.body.error.message).toContain('userOwnedGrafeasNote.noteReference: "n" is a bare note id');
      const created = await createAttestor('att-val', 'a', 'projects/att-val/notes/n');
      const moved = await req('PUT', '/v1/projects/att-val/attestors/a', { ...created, userOwnedGrafeasNote: { noteReference: 'projects/att-val/notes/other' } });
      expect(moved.status).toBe(400);
      expect(moved.body.error.message).toContain('userOwnedGrafeasNote.noteReference: cannot be changed');
    });

    it('pages through attestors with pageSize and nextPageToken', async () => {
      for (const id of ['p1', 'p2', 'p3', 'p4', 'p5']) await createAttestor('att-page', id, 'projects/att-page/notes/n');
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const r = await req('GET', `/v1/projects/att-page/attestors?pageSize=2${token === undefined ? '' : `&pageToken=${token}`}`);
        expect(r.status).toBe(200);
        seen.push(...r.body.attestors.map((a: { name: string }) => a.name));
        token = r.body.nextPageToken;
        pages++;
      } while (token !== undefined);
      expect(pages).toBe(3);
      expect(seen).toEqual(['p1', 'p2', 'p3', 'p4', 'p5'].map((id) => `projects/att-page/attestors/${id}`));
      const beta = await req('GET', '/v1beta1/projects/att-page/attestors?pageSize=100');
      expect(beta.body.attestors).toHaveLength(5);
      expect(beta.body.attestors[0]).toHaveProperty('userOwnedDrydockNote.noteReference', 'projects/att-page/notes/n');
      expect(beta.body).not.toHaveProperty('nextPageToken');
      expect((await req('GET', '/v1/projects/att-empty/attestors')).body).toEqual({});
    });

    it('answers an unknown attestor with 404', async () => {
      const r = await req('GET', '/v1/projects/att-none/attestors/nope');
      expect(r.status).toBe(404);
      expect(r.body.error).toEqual({ code: 404, status: 'NOT_FOUND', message: 'Attestor projects/att-none/attestors/nope not found' });
    });

    it('serves IAM on attestors (GET getIamPolicy, v1alpha2 too) and forgets it when the attestor is deleted', async () => {
      await createAttestor('att-iam', 'a', 'projects/att-iam/notes/n');
      const got = await req('GET', '/v1alpha2/projects/att-iam/attestors/a:getIamPolicy?options.requestedPolicyVersion=3');
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      const set = await req('POST', '/v1alpha2/projects/att-iam/attestors/a:setIamPolicy', {
        policy: { etag: got.body.etag, version: 3, bindings: [{ role: 'roles/binaryauthorization.attestorsVerifier', members: ['serviceAccount:ci@att-iam.iam.gserviceaccount.com'] }] },
      });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      const v1 = await req('GET', '/v1/projects/att-iam/attestors/a:getIamPolicy');
      expect(v1.body.bindings).toEqual([{ role: 'roles/binaryauthorization.attestorsVerifier', members: ['serviceAccount:ci@att-iam.iam.gserviceaccount.com'] }]);
      const test = await req('POST', '/v1/projects/att-iam/attestors/a:testIamPermissions', { permissions: ['binaryauthorization.attestors.get'] });
      expect(test.body).toEqual({ permissions: ['binaryauthorization.attestors.get'] });
      expect((await req('GET', '/v1/projects/att-iam/policy:getIamPolicy')).status).toBe(200);

      await req('DELETE', '/v1/projects/att-iam/attestors/a');
      expect((await req('GET', '/v1/projects/att-iam/attestors/a:getIamPolicy')).status).toBe(404);
      await createAttestor('att-iam', 'a', 'projects/att-iam/notes/n');
      expect((await req('GET', '/v1/projects/att-iam/attestors/a:getIamPolicy')).body.bindings ?? []).toEqual([]);
    });
  });

  describe('validateAttestationOccurrence', () => {
    const payload = readFixture('pkix', 'ECDSA_P256_SHA256', 'payload.json');
    const signature = readFixture('pkix', 'ECDSA_P256_SHA256', 'signature.bin');
    const note = 'projects/val/notes/n';
    const KEY = 'urn:tollgate-test:p256';
    const attestation = (o: { payload?: Uint8Array; keyId?: string; signature?: Uint8Array }) =>
      occurrenceResource({ name: '', note, resourceUri: P256_IMAGE, payload: o.payload ?? payload, signatures: [{ keyId: o.keyId ?? KEY, signature: o.signature ?? signature }] })['attestation'];
    const validate = (body: unknown, v = 'v1') => req('POST', `/${v}/projects/val/attestors/a:validateAttestationOccurrence`, body);

    beforeAll(async () => {
      await createAttestor('val', 'a', note, [
        { id: KEY, pkixPublicKey: { publicKeyPem: ecPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } },
        { asciiArmoredPgpPublicKey: pgpKey },
      ]);
    });

    it('verifies a good PKIX attestation (v1 and v1beta1)', async () => {
      for (const v of ['v1', 'v1beta1']) {
        const r = await validate({ attestation: attestation({}), occurrenceNote: note, occurrenceResourceUri: P256_IMAGE }, v);
        expect(r, v).toEqual({ status: 200, body: { result: 'VERIFIED' } });
      }
      // The registry path may differ: only the digest counts.
      const mirrored = await validate({ attestation: attestation({}), occurrenceNote: note, occurrenceResourceUri: `mirror.example.com/fixtures/app@${P256_DIGEST}` });
      expect(mirrored.body).toEqual({ result: 'VERIFIED' });
    });

    it('verifies a PGP attestation (key id = fingerprint)', async () => {
      const r = await validate({
        attestation: { serializedPayload: b64url(readFixture('pgp', 'payload.json')), signatures: [{ publicKeyId: fpr, signature: b64url(readFixture('pgp', 'payload.json.asc')) }] },
        occurrenceNote: note,
        occurrenceResourceUri: PGP_IMAGE,
      });
      expect(r.body).toEqual({ result: 'VERIFIED' });
    });

    it('says why an attestation is not verifiable', async () => {
      const cases: [unknown, RegExp][] = [
        [{ attestation: attestation({ signature: opensslSign('other-ECDSA_P256_SHA256', 'ECDSA_P256_SHA256', payload) }), occurrenceNote: note, occurrenceResourceUri: P256_IMAGE }, /signature by key urn:tollgate-test:p256/],
        [{ attestation: attestation({ keyId: 'urn:unknown' }), occurrenceNote: note, occurrenceResourceUri: P256_IMAGE }, /not a key of attestor projects\/val\/attestors\/a/],
        [{ attestation: attestation({}), occurrenceNote: 'projects/val/notes/other', occurrenceResourceUri: P256_IMAGE }, /not to the attestor's note projects\/val\/notes\/n/],
        [{ attestation: attestation({}), occurrenceNote: note, occurrenceResourceUri: `us-docker.pkg.dev/x/y@sha256:${'0'.repeat(64)}` }, /signed payload is for sha256:200c93eb/],
        [{ attestation: attestation({}), occurrenceNote: note, occurrenceResourceUri: 'us-docker.pkg.dev/x/y:latest' }, /names no digest/],
      ];
      for (const [body, reason] of cases) {
        const r = await validate(body);
        expect(r.status).toBe(200);
        expect(r.body.result).toBe('ATTESTATION_NOT_VERIFIABLE');
        expect(r.body.denialReason).toMatch(reason);
      }
    });

    it('refuses a request without its fields and an unknown attestor', async () => {
      const r = await validate({});
      expect(r.status).toBe(400);
      expect(r.body.error.details[0].fieldViolations.map((f: { field: string }) => f.field)).toEqual(['attestation', 'occurrenceNote', 'occurrenceResourceUri']);
      const missing = await req('POST', '/v1/projects/val/attestors/nope:validateAttestationOccurrence', { attestation: attestation({}), occurrenceNote: note, occurrenceResourceUri: P256_IMAGE });
      expect(missing.status).toBe(404);
    });
  });

  describe('system policy', () => {
    it('serves the built-in system policy to any caller and lets a superuser replace its patterns', async () => {
      const got = await req('GET', '/v1/locations/global/policy');
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({
        name: 'locations/global/policy',
        defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
        admissionWhitelistPatterns: expect.arrayContaining([{ namePattern: 'gke.gcr.io/**' }]),
      });
      expect((await req('GET', '/v1/locations/us-central1/policy')).status).toBe(404);

      const bad = await req('PUT', '/v1/locations/global/policy', { admissionWhitelistPatterns: [{ namePattern: 'mirror.example.com/p/n*x' }] });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('admissionWhitelistPatterns[0].namePattern');
      const fixed = await req('PUT', '/v1/locations/global/policy', { ...got.body, defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } });
      expect(fixed.status).toBe(400);
      expect(fixed.body.error.message).toContain('defaultAdmissionRule: cannot be set on the system policy');

      const put = await req('PUT', '/v1/locations/global/policy', { ...got.body, admissionWhitelistPatterns: [{ namePattern: 'mirror.example.com/gke/**' }] });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      expect(put.body.admissionWhitelistPatterns).toEqual([{ namePattern: 'mirror.example.com/gke/**' }]);
      expect((await req('GET', '/v1beta1/locations/global/policy')).body.admissionWhitelistPatterns).toEqual([{ namePattern: 'mirror.example.com/gke/**' }]);
      const stale = await req('PUT', '/v1/locations/global/policy', got.body);
      expect(stale.status).toBe(409);
      expect((await req('PUT', '/v1/locations/global/policy', { admissionWhitelistPatterns: got.body.admissionWhitelistPatterns })).status).toBe(200);
    });

    it('needs a token', async () => {
      expect((await req('GET', '/v1/locations/global/policy', undefined, null)).status).toBe(401);
    });
  });

  describe('permissions of an ordinary principal', () => {
    let token: string;
    beforeAll(async () => {
      expect((await req('POST', '/tollgate/v1/principals', { email: 'bob@example.com', type: 'user' })).status).toBe(200);
      const t = await req('POST', '/tollgate/v1/tokens', { principal: 'bob@example.com' });
      expect(t.status).toBe(200);
      token = t.body.secret;
      // A superuser's first write creates the project.
      await createAttestor('perm', 'hidden', 'projects/perm/notes/n');
    });

    async function grant(resource: string, role: string): Promise<void> {
      // Binary Authorization's getIamPolicy is a GET; Resource Manager's a POST.
      const path = `/v1/${resource}`;
      const isAttestor = resource.includes('/attestors/');
      const got = await req(isAttestor ? 'GET' : 'POST', `${path}:getIamPolicy`, isAttestor ? undefined : {});
      const bindings = [...(got.body.bindings ?? []), { role, members: ['user:bob@example.com'] }];
      const set = await req('POST', `${path}:setIamPolicy`, { policy: { bindings, etag: got.body.etag } });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
    }

    it('reads the system policy but may not change it', async () => {
      expect((await req('GET', '/v1/locations/global/policy', undefined, token)).status).toBe(200);
      const put = await req('PUT', '/v1/locations/global/policy', { admissionWhitelistPatterns: [] }, token);
      expect(put.status).toBe(403);
      expect(put.body.error.status).toBe('PERMISSION_DENIED');
    });

    it('needs the policy and attestor permissions, and read access to every attestor a rule names', async () => {
      expect((await req('GET', '/v1/projects/perm/policy', undefined, token)).status).toBe(403);
      expect((await req('GET', '/v1/projects/perm/attestors/hidden', undefined, token)).status).toBe(403);
      expect((await req('GET', '/v1/projects/perm/attestors/nope', undefined, token)).status).toBe(403);
      await grant('projects/perm', 'roles/binaryauthorization.policyEditor');
      expect((await req('GET', '/v1/projects/perm/policy', undefined, token)).status).toBe(200);

      const policy = { defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/perm/attestors/hidden'] } };
      const refused = await req('PUT', '/v1/projects/perm/policy', policy, token);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toContain('defaultAdmissionRule.requireAttestationsBy[0]: attestor projects/perm/attestors/hidden does not exist or you lack binaryauthorization.attestors.get on it');

      await grant('projects/perm/attestors/hidden', 'roles/binaryauthorization.attestorsViewer');
      const accepted = await req('PUT', '/v1/projects/perm/policy', policy, token);
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
      expect((await req('DELETE', '/v1/projects/perm/attestors/hidden', undefined, token)).status).toBe(403);
    });
  });
});
