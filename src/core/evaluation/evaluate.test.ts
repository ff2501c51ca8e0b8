import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { attestorResource, occurrenceResource, opensslSign, readFixture, readFixtureText, type KeySpec } from '../../../test/support/fixtures.js';
import { parseAttestor } from '../attestation/attestor.js';
import type { Attestor } from '../attestation/model.js';
import { parseAttestationOccurrence } from '../attestation/occurrence.js';
import { createSignaturePayload } from '../attestation/payload.js';
import { parseImageReference } from '../image/reference.js';
import { parsePolicyObject } from '../policy/parse.js';
import type { Decision, ImageDecision } from './decision.js';
import { compilePatterns, compilePolicy, deploymentDecision, evaluate, evaluateImages, requiredEvidence } from './evaluate.js';
import { buildEvidence } from './evidence.js';
import type { DeploymentContext } from './request.js';
import { DEFAULT_SYSTEM_IMAGE_PATTERNS } from './system-policy.js';

const NOW = new Date('2026-11-23T12:00:00Z');
const DIGEST_A = `sha256:${'a1'.repeat(32)}`;
const DIGEST_B = `sha256:${'b2'.repeat(32)}`;
const REPO = 'us-docker.pkg.dev/demo/apps/web';
const IMAGE_A = `${REPO}@${DIGEST_A}`;
const IMAGE_B = `${REPO}@${DIGEST_B}`;
const ATTESTOR = 'projects/demo/attestors/build';
const NOTE = 'projects/demo/notes/build-note';
const OTHER_ATTESTOR = 'projects/demo/attestors/qa';
const OTHER_NOTE = 'projects/demo/notes/qa-note';
const P256 = 'ECDSA_P256_SHA256';
const P256_ID = '//cloudkms.googleapis.com/v1/projects/demo/locations/global/keyRings/r/cryptoKeys/build/cryptoKeyVersions/1';
const OTHER_ID = 'ni:///sha-256;other-key';

function payloadFor(image: string): Buffer {
  const r = createSignaturePayload(image);
  if (!r.ok) throw new Error(r.error.message);
  return Buffer.from(r.value);
}

const GKE: DeploymentContext = { platform: 'gke' };

function policy(doc: Record<string, unknown>) {
  const r = parsePolicyObject(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  const c = compilePolicy(r.value);
  if (!c.ok) throw new Error(JSON.stringify(c.error));
  return c.value;
}

const requireBy = (attestors: string[], enforcementMode = 'ENFORCED_BLOCK_AND_AUDIT_LOG') => ({
  evaluationMode: 'REQUIRE_ATTESTATION',
  enforcementMode,
  requireAttestationsBy: attestors,
});
const SYSTEM = (() => {
  const r = compilePatterns(DEFAULT_SYSTEM_IMAGE_PATTERNS);
  if (!r.ok) throw new Error('system patterns');
  return r.value;
})();

async function attestor(name: string, note: string, keys: KeySpec[]): Promise<Attestor> {
  const r = await parseAttestor(attestorResource(name, note, keys));
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
}

function occurrences(...raw: Record<string, unknown>[]) {
  return raw.map((o, i) => {
    const r = parseAttestationOccurrence(o, `occ${i}`);
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  });
}

async function decide(opts: {
  policy: Record<string, unknown>;
  attestors: Attestor[];
  occurrences: Record<string, unknown>[];
  images: string[];
  context?: DeploymentContext;
}): Promise<Decision> {
  const evidence = await buildEvidence(opts.attestors, occurrences(...opts.occurrences), NOW);
  return evaluate(policy(opts.policy), SYSTEM, { images: opts.images, context: opts.context ?? GKE }, evidence);
}

function only(d: Decision): ImageDecision {
  expect(d.images).toHaveLength(1);
  return d.images[0] as ImageDecision;
}

/** The one attempt recorded for the image's first attestor. */
function attempt(d: Decision) {
  const image = only(d);
  if (!('attestors' in image)) throw new Error('no attestors');
  const a = 'attestors' in image ? image.attestors[0] : undefined;
  return a?.attestations[0];
}

let p256Pem: string;
let otherPem: string;
let build: Attestor;

beforeAll(async () => {
  p256Pem = readFixtureText('pkix', P256, 'public.pem');
  otherPem = readFixtureText('pkix', `other-${P256}`, 'public.pem');
  build = await attestor(ATTESTOR, NOTE, [{ id: P256_ID, pem: p256Pem, algorithm: P256 }]);
});

function signedOccurrence(image: string, opts: { payload?: Buffer; keyDir?: string; keyId?: string; note?: string; signature?: Buffer | string } = {}) {
  const payload = opts.payload ?? payloadFor(image);
  return occurrenceResource({
    name: `projects/demo/occurrences/${Math.abs(hash(image + (opts.keyId ?? '')))}`,
    note: opts.note ?? NOTE,
    resourceUri: image,
    payload,
    signatures: [{ keyId: opts.keyId ?? P256_ID, signature: opts.signature ?? opensslSign(opts.keyDir ?? P256, P256, payload) }],
  });
}

function flip(b: Buffer, i: number): void {
  b.writeUInt8(b.readUInt8(i) ^ 0x01, i);
}

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}

describe('REQUIRE_ATTESTATION with real signatures', () => {
  const pol = { defaultAdmissionRule: requireBy([ATTESTOR]) };

  it('allows an image with a valid attestation, naming the occurrence and key', async () => {
    const d = await decide({ policy: pol, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [IMAGE_A] });
    expect(d.allowed).toBe(true);
    expect(d.verdict).toEqual({ kind: 'ALLOWED' });
    const image = only(d);
    expect(image).toMatchObject({ verdict: 'ALLOWED', reason: 'ATTESTED', digest: DIGEST_A });
    if (image.verdict === 'ALLOWED' && image.reason === 'ATTESTED') {
      expect(image.attestors[0]).toMatchObject({ attestor: ATTESTOR, satisfied: true, verifiedBy: { keyId: P256_ID } });
    }
  });

  it('matches on the digest only: the attestation follows the image to a mirror (reference §3.5)', async () => {
    const mirror = `mirror.example.com:5000/copies/web@${DIGEST_A}`;
    const d = await decide({ policy: pol, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [mirror] });
    expect(d.allowed).toBe(true);
  });

  it('accepts a KMS-style key id whose host differs (gcloud puts its endpoint host there)', async () => {
    const occ = signedOccurrence(IMAGE_A, { keyId: P256_ID.replace('//cloudkms.googleapis.com/', '//127.0.0.1:7420/') });
    const d = await decide({ policy: pol, attestors: [build], occurrences: [occ], images: [IMAGE_A] });
    expect(d.allowed).toBe(true);
  });

  it('denies an image without attestations with Google\'s wording', async () => {
    const d = await decide({ policy: pol, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [IMAGE_B] });
    expect(d.allowed).toBe(false);
    expect(d.verdict).toEqual({ kind: 'DENIED' });
    expect(only(d)).toMatchObject({ verdict: 'DENIED', reason: 'NOT_ATTESTED', dryRun: false });
    expect(d.messages).toEqual([
      `Image ${IMAGE_B} denied by Binary Authorization default admission rule. Image ${IMAGE_B} denied by attestor ${ATTESTOR}: No attestations found`,
    ]);
  });

  it('denies a tag-only image before looking at attestations', async () => {
    const d = await decide({ policy: pol, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [`${REPO}:v1`] });
    expect(only(d)).toMatchObject({ verdict: 'DENIED', reason: 'DIGEST_REQUIRED' });
    expect(d.messages[0]).toContain('Expected digest with sha256 scheme, but got tag or malformed digest');
  });

  it('accepts tag and digest together, judging the digest', async () => {
    const d = await decide({ policy: pol, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [`${REPO}:v1@${DIGEST_A}`] });
    expect(d.allowed).toBe(true);
  });

  it('needs every listed attestor; any one key of an attestor is enough', async () => {
    const qa = await attestor(OTHER_ATTESTOR, OTHER_NOTE, [
      { id: 'ni:///sha-256;unused', pem: p256Pem, algorithm: P256 },
      { id: OTHER_ID, pem: otherPem, algorithm: P256 },
    ]);
    const both = { defaultAdmissionRule: requireBy([ATTESTOR, OTHER_ATTESTOR]) };
    const qaOcc = signedOccurrence(IMAGE_A, { keyDir: `other-${P256}`, keyId: OTHER_ID, note: OTHER_NOTE });
    const one = await decide({ policy: both, attestors: [build, qa], occurrences: [signedOccurrence(IMAGE_A)], images: [IMAGE_A] });
    expect(one.allowed).toBe(false);
    expect(one.messages[0]).toContain(`denied by attestor ${OTHER_ATTESTOR}: No attestations found`);
    expect(one.messages[0]).not.toContain(`denied by attestor ${ATTESTOR}`);
    const two = await decide({ policy: both, attestors: [build, qa], occurrences: [signedOccurrence(IMAGE_A), qaOcc], images: [IMAGE_A] });
    expect(two.allowed).toBe(true);
  });

  it('denies when a required attestor does not exist', async () => {
    const d = await decide({ policy: { defaultAdmissionRule: requireBy(['projects/demo/attestors/missing']) }, attestors: [build], occurrences: [], images: [IMAGE_A] });
    const image = only(d);
    expect(image.verdict === 'DENIED' && 'attestors' in image && image.attestors[0]).toMatchObject({ satisfied: false, reason: 'ATTESTOR_NOT_FOUND' });
  });

  it('an attestor with no keys never verifies', async () => {
    const empty = await attestor(ATTESTOR, NOTE, []);
    const d = await decide({ policy: pol, attestors: [empty], occurrences: [signedOccurrence(IMAGE_A)], images: [IMAGE_A] });
    expect(d.allowed).toBe(false);
    expect(attempt(d)).toMatchObject({ result: 'REJECTED', code: 'NO_MATCHING_KEY' });
  });

  it('one denied image denies the whole deployment', async () => {
    const d = await decide({ policy: pol, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [IMAGE_A, IMAGE_B] });
    expect(d.allowed).toBe(false);
    expect(d.images.map((i) => i.verdict)).toEqual(['ALLOWED', 'DENIED']);
  });
});

describe('tamper matrix: every forgery denies with the reason that names it', () => {
  const pol = { defaultAdmissionRule: requireBy([ATTESTOR]) };
  const run = async (occ: Record<string, unknown>, attestors?: Attestor[]) => {
    const d = await decide({ policy: pol, attestors: attestors ?? [build], occurrences: [occ], images: [IMAGE_A] });
    expect(d.allowed).toBe(false);
    expect(only(d)).toMatchObject({ verdict: 'DENIED', reason: 'NOT_ATTESTED' });
    expect(d.messages[0]).toContain('No attestations found that were valid and signed by a key trusted by the attestor');
    return attempt(d);
  };

  it('signature made over another digest\'s payload', async () => {
    const occ = signedOccurrence(IMAGE_A, { signature: opensslSign(P256, P256, payloadFor(IMAGE_B)) });
    expect(await run(occ)).toMatchObject({ result: 'REJECTED', code: 'BAD_SIGNATURE' });
  });

  it('validly signed payload for another digest, filed under this image', async () => {
    const occ = signedOccurrence(IMAGE_A, { payload: payloadFor(IMAGE_B) });
    const a = await run(occ);
    expect(a).toMatchObject({ result: 'REJECTED', code: 'DIGEST_MISMATCH' });
    expect(a?.result === 'REJECTED' && a.message).toContain(DIGEST_B);
  });

  it('flipped signature byte', async () => {
    const sig = opensslSign(P256, P256, payloadFor(IMAGE_A));
    flip(sig, sig.length - 1);
    expect(await run(signedOccurrence(IMAGE_A, { signature: sig }))).toMatchObject({ result: 'REJECTED', code: 'BAD_SIGNATURE' });
  });

  it('flipped payload byte', async () => {
    const payload = payloadFor(IMAGE_A);
    const sig = opensslSign(P256, P256, payload);
    const tampered = Buffer.from(payload);
    flip(tampered, 20);
    expect(await run(signedOccurrence(IMAGE_A, { payload: tampered, signature: sig }))).toMatchObject({ code: 'BAD_SIGNATURE' });
  });

  it('wrong key id', async () => {
    const a = await run(signedOccurrence(IMAGE_A, { keyId: 'ni:///sha-256;not-this-attestors-key' }));
    expect(a).toMatchObject({ result: 'REJECTED', code: 'NO_MATCHING_KEY' });
  });

  it('the key of another attestor, presented under this attestor\'s key id', async () => {
    const occ = signedOccurrence(IMAGE_A, { keyDir: `other-${P256}` });
    expect(await run(occ)).toMatchObject({ result: 'REJECTED', code: 'BAD_SIGNATURE' });
  });

  it('algorithm mismatch: PKCS#1 signature checked under a PSS key', async () => {
    const alg = 'RSA_PSS_2048_SHA256';
    const pss = await attestor(ATTESTOR, NOTE, [{ id: 'ni:///sha-256;pss', pem: readFixtureText('pkix', alg, 'public.pem'), algorithm: alg }]);
    const payload = payloadFor(IMAGE_A);
    const pkcs1 = opensslSign(alg, alg, payload, { pss: false });
    const occ = signedOccurrence(IMAGE_A, { payload, signature: pkcs1, keyId: 'ni:///sha-256;pss' });
    expect(await run(occ, [pss])).toMatchObject({ result: 'REJECTED', code: 'BAD_SIGNATURE' });
    // …while the same key with a real PSS signature is accepted.
    const good = signedOccurrence(IMAGE_A, { payload, signature: opensslSign(alg, alg, payload), keyId: 'ni:///sha-256;pss' });
    const d = await decide({ policy: pol, attestors: [pss], occurrences: [good], images: [IMAGE_A] });
    expect(d.allowed).toBe(true);
  });

  it('truncated signature', async () => {
    const sig = opensslSign(P256, P256, payloadFor(IMAGE_A)).subarray(0, 20);
    const a = await run(signedOccurrence(IMAGE_A, { signature: sig }));
    expect(a?.result === 'REJECTED' && ['MALFORMED_SIGNATURE', 'BAD_SIGNATURE']).toContain(a?.result === 'REJECTED' ? a.code : '');
  });

  it('non-base64 signature', async () => {
    const a = await run(signedOccurrence(IMAGE_A, { signature: 'this is *not* base64!' }));
    expect(a).toMatchObject({ result: 'REJECTED', code: 'MALFORMED_SIGNATURE' });
  });

  it('non-base64 payload', async () => {
    const occ = occurrenceResource({ name: 'projects/demo/occurrences/x', note: NOTE, resourceUri: IMAGE_A, payload: '%%%', signatures: [{ keyId: P256_ID, signature: 'AAAA' }] });
    expect(await run(occ)).toMatchObject({ result: 'REJECTED', code: 'MALFORMED_PAYLOAD' });
  });

  it('signed payload with a wrong critical.type', async () => {
    const doc = JSON.parse(payloadFor(IMAGE_A).toString()) as { critical: { type: string } };
    doc.critical.type = 'Some other signature';
    const payload = Buffer.from(JSON.stringify(doc));
    expect(await run(signedOccurrence(IMAGE_A, { payload }))).toMatchObject({ result: 'REJECTED', code: 'UNKNOWN_PAYLOAD_TYPE' });
  });

  it('signed bytes that are not a payload at all', async () => {
    const payload = Buffer.from('not json');
    expect(await run(signedOccurrence(IMAGE_A, { payload }))).toMatchObject({ result: 'REJECTED', code: 'MALFORMED_PAYLOAD' });
  });

  it('an occurrence under another attestor\'s note, signed with a key both attestors share', async () => {
    // `qa` trusts the same key as `build`; an attestation filed on qa's note must not count for build.
    const occ = signedOccurrence(IMAGE_A, { note: OTHER_NOTE });
    expect(await run(occ)).toMatchObject({ result: 'REJECTED', code: 'NOTE_MISMATCH' });
  });
});

describe('PGP attestations made by gpg', () => {
  const pgpImage = (digest: string) => `gcr.io/tollgate-test/pgp-app@${digest}`;
  let fpr: string;
  let pgpAttestor: Attestor;
  let payload: Buffer;
  let digest: string;
  const pol = { defaultAdmissionRule: requireBy([ATTESTOR]) };

  beforeAll(async () => {
    fpr = readFixtureText('pgp', 'signer.fpr').trim();
    pgpAttestor = await attestor(ATTESTOR, NOTE, [{ id: 'ignored-the-server-computes-it', pgp: readFixtureText('pgp', 'signer.pub.asc') }]);
    payload = readFixture('pgp', 'payload.json');
    digest = (JSON.parse(payload.toString()) as { critical: { image: { 'docker-manifest-digest': string } } }).critical.image['docker-manifest-digest'];
  });

  const pgpOccurrence = (message: Buffer, serialized?: Buffer) =>
    occurrenceResource({ name: 'projects/demo/occurrences/pgp', note: NOTE, resourceUri: pgpImage(digest), payload: serialized, signatures: [{ keyId: fpr, signature: message }] });

  it('the attestor key id is the fingerprint, whatever id was supplied', () => {
    expect(pgpAttestor.publicKeys[0]?.id).toBe(fpr);
  });

  it('allows an image signed with gpg --armor --sign, as gcloud stores it (payload beside the message)', async () => {
    const d = await decide({ policy: pol, attestors: [pgpAttestor], occurrences: [pgpOccurrence(readFixture('pgp', 'payload.json.asc'), payload)], images: [pgpImage(digest)] });
    expect(d.allowed).toBe(true);
  });

  it('allows the v1beta1 pgpSignedAttestation form', async () => {
    const occ = {
      name: 'projects/demo/occurrences/legacy',
      noteName: NOTE,
      kind: 'ATTESTATION',
      resource: { uri: `https://${pgpImage(digest)}` },
      attestation: { attestation: { pgpSignedAttestation: { signature: readFixtureText('pgp', 'payload.json.asc'), contentType: 'SIMPLE_SIGNING_JSON', pgpKeyId: fpr } } },
    };
    const d = await decide({ policy: pol, attestors: [pgpAttestor], occurrences: [occ], images: [pgpImage(digest)] });
    expect(d.allowed).toBe(true);
  });

  it('denies a message signed by a key the attestor does not trust', async () => {
    const d = await decide({ policy: pol, attestors: [pgpAttestor], occurrences: [pgpOccurrence(readFixture('pgp', 'other-signed.asc'), payload)], images: [pgpImage(digest)] });
    expect(d.allowed).toBe(false);
    expect(attempt(d)).toMatchObject({ result: 'REJECTED', code: 'BAD_SIGNATURE' });
  });

  it('denies when the signed message embeds another payload than serializedPayload', async () => {
    const d = await decide({ policy: pol, attestors: [pgpAttestor], occurrences: [pgpOccurrence(readFixture('pgp', 'different-payload.asc'), payload)], images: [pgpImage(digest)] });
    expect(d.allowed).toBe(false);
    expect(attempt(d)).toMatchObject({ result: 'REJECTED', code: 'PAYLOAD_MISMATCH' });
  });

  it('denies a clearsigned message (only attached --sign messages are accepted)', async () => {
    const d = await decide({ policy: pol, attestors: [pgpAttestor], occurrences: [pgpOccurrence(readFixture('pgp', 'clearsigned.asc'), payload)], images: [pgpImage(digest)] });
    expect(d.allowed).toBe(false);
    expect(attempt(d)).toMatchObject({ result: 'REJECTED', code: 'MALFORMED_SIGNATURE' });
  });
});

describe('exemptions, modes and the deployment verdict', () => {
  it('exempt patterns allow before any rule, and say which pattern', async () => {
    const d = await decide({
      policy: { admissionWhitelistPatterns: [{ namePattern: 'nginx' }], defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } },
      attestors: [], occurrences: [], images: ['docker.io/library/nginx:1.27'],
    });
    expect(only(d)).toMatchObject({ verdict: 'ALLOWED', reason: 'EXEMPT_PATTERN', pattern: 'nginx' });
  });

  it('the system policy applies only when globalPolicyEvaluationMode is ENABLE', async () => {
    const deny = { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' };
    const image = 'gke.gcr.io/kube-proxy:v1.30.0';
    const on = await decide({ policy: { globalPolicyEvaluationMode: 'ENABLE', defaultAdmissionRule: deny }, attestors: [], occurrences: [], images: [image] });
    expect(only(on)).toMatchObject({ verdict: 'ALLOWED', reason: 'SYSTEM_POLICY', pattern: 'gke.gcr.io/**' });
    const off = await decide({ policy: { globalPolicyEvaluationMode: 'DISABLE', defaultAdmissionRule: deny }, attestors: [], occurrences: [], images: [image] });
    expect(only(off)).toMatchObject({ verdict: 'DENIED', reason: 'ALWAYS_DENY' });
    expect(off.messages[0]).toBe(`Image ${image} denied by Binary Authorization default admission rule. Denied by always_deny admission rule`);
  });

  it('dry run: the denial is recorded but the deployment is allowed', async () => {
    const d = await decide({ policy: { defaultAdmissionRule: requireBy([ATTESTOR], 'DRYRUN_AUDIT_LOG_ONLY') }, attestors: [build], occurrences: [], images: [IMAGE_A] });
    expect(d.allowed).toBe(true);
    expect(d.verdict).toEqual({ kind: 'DRY_RUN' });
    expect(only(d)).toMatchObject({ verdict: 'DENIED', dryRun: true });
    expect(d.messages).toHaveLength(1);
  });

  it('an enforced denial beside a dry-run one denies', async () => {
    const d = await decide({
      policy: {
        kubernetesNamespaceAdmissionRules: { prod: requireBy([ATTESTOR]) },
        defaultAdmissionRule: requireBy([ATTESTOR], 'DRYRUN_AUDIT_LOG_ONLY'),
      },
      attestors: [build], occurrences: [], images: [IMAGE_A], context: { platform: 'gke', namespace: 'prod' },
    });
    expect(d.verdict).toEqual({ kind: 'DENIED' });
  });

  it('breakglass allows and is marked, with what the policy alone would have said', async () => {
    const d = await decide({ policy: { defaultAdmissionRule: requireBy([ATTESTOR]) }, attestors: [build], occurrences: [], images: [IMAGE_A], context: { platform: 'gke', breakglass: 'INC-42 outage' } });
    expect(d.allowed).toBe(true);
    expect(d.verdict).toEqual({ kind: 'BREAKGLASS', justification: 'INC-42 outage', wouldHaveBeen: 'DENIED' });
    const ok = await decide({ policy: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } }, attestors: [], occurrences: [], images: [IMAGE_A], context: { platform: 'cloudrun', breakglass: 'x' } });
    expect(ok.verdict).toEqual({ kind: 'BREAKGLASS', justification: 'x', wouldHaveBeen: 'ALLOWED' });
  });

  it('an invalid image reference is denied, never allowed', async () => {
    const d = await decide({ policy: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } }, attestors: [], occurrences: [], images: ['UPPER/Case::bad'] });
    expect(only(d)).toMatchObject({ verdict: 'DENIED', reason: 'INVALID_IMAGE' });
  });
});

describe('an image\'s decision stands alone (the server reuses it in later deployment decisions)', () => {
  it('is the same whatever other images the request names, and the deployment decision is made from the parts', async () => {
    const signedA = signedOccurrence(IMAGE_A);
    const forgedB = signedOccurrence(IMAGE_B, { payload: payloadFor(IMAGE_A) });
    const evidence = await buildEvidence([build], occurrences(signedA, forgedB), NOW);
    const compiled = policy({
      admissionWhitelistPatterns: [{ namePattern: 'docker.io/library/nginx*' }],
      defaultAdmissionRule: requireBy([ATTESTOR]),
      kubernetesNamespaceAdmissionRules: { dev: requireBy([ATTESTOR], 'DRYRUN_AUDIT_LOG_ONLY'), ops: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } },
    });
    const pool = [IMAGE_A, IMAGE_B, `${REPO}:latest`, 'docker.io/library/nginx:1.27', 'UPPER/Case::bad', `gcr.io/other/app@${DIGEST_A}`];
    const contexts: DeploymentContext[] = [GKE, { platform: 'gke', namespace: 'dev' }, { platform: 'gke', namespace: 'ops' }, { platform: 'gke', namespace: 'dev', breakglass: 'INC-7' }];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pool), { minLength: 1, maxLength: 6 }), fc.constantFrom(...contexts), (images, context) => {
        const whole = evaluate(compiled, SYSTEM, { images, context }, evidence);
        // Each image evaluated in a request of its own gives the same image decision…
        const alone = images.map((image) => evaluateImages(compiled, SYSTEM, { images: [image], context }, evidence)[0]);
        expect(whole.images).toEqual(alone);
        // …and the deployment decision made from those parts is the one evaluate makes.
        expect(deploymentDecision({ images, context }, alone as ImageDecision[])).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });
});

describe('rule precedence', () => {
  const allow = { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' };
  const deny = { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' };
  const image = `${REPO}@${DIGEST_A}`;
  const cases: { name: string; policy: Record<string, unknown>; context: DeploymentContext; rule: string; key?: string; allowed: boolean; label: string }[] = [
    { name: 'cluster rule for the matching cluster', policy: { clusterAdmissionRules: { 'us-east1-b.prod': deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', cluster: 'us-east1-b.prod' }, rule: 'cluster', key: 'us-east1-b.prod', allowed: false, label: 'cluster admission rule for us-east1-b.prod' },
    { name: 'default rule for another cluster', policy: { clusterAdmissionRules: { 'us-east1-b.prod': deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', cluster: 'us-east1-b.dev' }, rule: 'default', allowed: true, label: '' },
    { name: 'a specific ALLOW overrides a default DENY', policy: { clusterAdmissionRules: { 'europe-west1.dev': allow }, defaultAdmissionRule: deny }, context: { platform: 'gke', cluster: 'europe-west1.dev' }, rule: 'cluster', key: 'europe-west1.dev', allowed: true, label: '' },
    { name: 'namespace rule', policy: { kubernetesNamespaceAdmissionRules: { payments: deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', namespace: 'payments' }, rule: 'namespace', key: 'payments', allowed: false, label: 'Kubernetes namespace admission rule for payments' },
    { name: 'namespace rule not matching', policy: { kubernetesNamespaceAdmissionRules: { payments: deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', namespace: 'web' }, rule: 'default', allowed: true, label: '' },
    { name: 'service account rule (ns + sa)', policy: { kubernetesServiceAccountAdmissionRules: { 'payments:deployer': deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', namespace: 'payments', serviceAccount: 'deployer' }, rule: 'serviceAccount', key: 'payments:deployer', allowed: false, label: 'Kubernetes service account admission rule for payments:deployer' },
    { name: 'service account rule (ns:sa form)', policy: { kubernetesServiceAccountAdmissionRules: { 'payments:deployer': deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', serviceAccount: 'payments:deployer' }, rule: 'serviceAccount', key: 'payments:deployer', allowed: false, label: '' },
    { name: 'service account in another namespace', policy: { kubernetesServiceAccountAdmissionRules: { 'payments:deployer': deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', namespace: 'web', serviceAccount: 'deployer' }, rule: 'default', allowed: true, label: '' },
    { name: 'istio identity with and without spiffe://', policy: { istioServiceIdentityAdmissionRules: { 'spiffe://example.org/ns/shop/sa/cart': deny }, defaultAdmissionRule: allow }, context: { platform: 'gke', istioIdentity: 'example.org/ns/shop/sa/cart' }, rule: 'istioServiceIdentity', key: 'spiffe://example.org/ns/shop/sa/cart', allowed: false, label: '' },
    { name: 'Cloud Run uses the default rule only', policy: { clusterAdmissionRules: { 'us-central1.run': deny }, defaultAdmissionRule: allow }, context: { platform: 'cloudrun', cluster: 'us-central1.run' }, rule: 'default', allowed: true, label: '' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const d = await decide({ policy: c.policy, attestors: [], occurrences: [], images: [image], context: c.context });
      expect(d.allowed).toBe(c.allowed);
      const i = only(d);
      expect('rule' in i ? i.rule : undefined).toMatchObject({ type: c.rule, ...(c.key === undefined ? {} : { key: c.key }) });
      if (c.label !== '') expect(d.messages[0]).toBe(`Image ${image} denied by Binary Authorization ${c.label}. Denied by always_deny admission rule`);
    });
  }
});

describe('requiredEvidence', () => {
  it('asks only for the digests that need attestations', () => {
    const p = policy({ admissionWhitelistPatterns: [{ namePattern: 'gcr.io/exempt/*' }], defaultAdmissionRule: requireBy([ATTESTOR]) });
    const r = requiredEvidence(p, SYSTEM, { images: [IMAGE_A, `gcr.io/exempt/x@${DIGEST_B}`, `${REPO}:tag`], context: GKE });
    expect(r).toEqual({ attestors: [ATTESTOR], digests: [DIGEST_A] });
  });
});

describe('a caller-supplied image parser', () => {
  it('reads every image through it, and the decision is the one the default parser gives', async () => {
    const p = policy({ admissionWhitelistPatterns: [{ namePattern: 'gcr.io/exempt/*' }], defaultAdmissionRule: requireBy([ATTESTOR]) });
    const images = [IMAGE_A, IMAGE_B, `gcr.io/exempt/x@${DIGEST_B}`, `${REPO}:tag`, 'Not//An:Image'];
    const request = { images, context: GKE };
    const evidence = await buildEvidence([build], occurrences(signedOccurrence(IMAGE_A)), NOW);
    const seen: string[] = [];
    const counting = (image: string) => {
      seen.push(image);
      return parseImageReference(image);
    };
    expect(requiredEvidence(p, SYSTEM, request, counting)).toEqual(requiredEvidence(p, SYSTEM, request));
    expect(seen).toEqual(images);
    seen.length = 0;
    const decision = evaluate(p, SYSTEM, request, evidence, counting);
    expect(seen).toEqual(images);
    expect(decision).toEqual(evaluate(p, SYSTEM, request, evidence));
    expect(decision.images.map((i) => i.reason)).toEqual(['ATTESTED', 'NOT_ATTESTED', 'EXEMPT_PATTERN', 'DIGEST_REQUIRED', 'INVALID_IMAGE']);
  });
});

describe('decision JSON', () => {
  it('round-trips through JSON unchanged and carries the schema version', async () => {
    const d = await decide({ policy: { defaultAdmissionRule: requireBy([ATTESTOR]) }, attestors: [build], occurrences: [signedOccurrence(IMAGE_A)], images: [IMAGE_A, IMAGE_B] });
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(d.schemaVersion).toBe('tollgate.dev/decision/v1');
  });
});
