import { beforeAll, describe, expect, it } from 'vitest';
import { coreDecisionService, EXEMPT_IMAGE, SIGNED_IMAGE, TEST_POLICIES, UNSIGNED_IMAGE, type RecordingDecisionService } from '../../../test/support/k8s.js';
import type { Decision } from '../../core/evaluation/decision.js';
import { failedDecision } from '../../core/evaluation/evaluate.js';
import type { DeploymentContext } from '../../core/evaluation/request.js';
import { decisionResponse, failClosedResponse, fitWarnings, VIOLATES_POLICY, WARNING_BUDGET } from './respond.js';

let service: RecordingDecisionService;
beforeAll(async () => {
  service = await coreDecisionService(TEST_POLICIES);
});

const ctx: DeploymentContext = { platform: 'gke', cluster: 'us-central1-a.prod', namespace: 'shop', serviceAccount: 'web' };
const decide = async (project: string, images: string[], context: DeploymentContext = ctx): Promise<Decision> =>
  service.decide({ project, images, context, source: { kind: 'admission', cluster: 'us-central1-a.prod', uid: 'u', methodName: 'io.k8s.core.v1.pods.create', resourceName: 'core/v1/namespaces/shop/pods/x', dryRun: false } });
const UID = '705ab4f5-6393-11e8-b7cc-42010a800002';
const unsignedMessage = `Image ${UNSIGNED_IMAGE} denied by Binary Authorization default admission rule. Image ${UNSIGNED_IMAGE} denied by attestor projects/demo/attestors/build-attestor: No attestations found`;

describe('decisionResponse', () => {
  it('allowed: the uid echoed, nothing else', async () => {
    const r = decisionResponse(UID, await decide('demo', [SIGNED_IMAGE, EXEMPT_IMAGE]));
    expect(r).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: UID, allowed: true } });
  });

  it('denied: 403 VIOLATES_POLICY with Google\'s message, and each field as a cause', async () => {
    const paths = new Map([[UNSIGNED_IMAGE, ['spec.containers[1].image', 'spec.initContainers[0].image']]]);
    const r = decisionResponse(UID, await decide('demo', [SIGNED_IMAGE, UNSIGNED_IMAGE]), paths);
    expect(r.response).toEqual({
      uid: UID,
      allowed: false,
      status: {
        status: 'Failure',
        code: 403,
        reason: VIOLATES_POLICY,
        message: unsignedMessage,
        details: {
          causes: [
            { reason: 'FieldValueForbidden', message: unsignedMessage, field: 'spec.containers[1].image' },
            { reason: 'FieldValueForbidden', message: unsignedMessage, field: 'spec.initContainers[0].image' },
          ],
        },
      },
    });
  });

  it('denied: one line per denied image, in image order', async () => {
    const tag = 'us-docker.pkg.dev/demo/apps/web:v1';
    const r = decisionResponse(UID, await decide('demo', [UNSIGNED_IMAGE, tag]));
    const lines = r.response.status?.message.split('\n') ?? [];
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(unsignedMessage);
    expect(lines[1]).toContain(`Image ${tag} denied by Binary Authorization default admission rule`);
    expect(lines[1]).toContain('Expected digest with sha256 scheme, but got tag or malformed digest');
  });

  it('dry run: allowed, each would-be denial a warning, and the dry-run audit annotations', async () => {
    const r = decisionResponse(UID, await decide('dryrun', [UNSIGNED_IMAGE, SIGNED_IMAGE]));
    expect(r.response).toEqual({
      uid: UID,
      allowed: true,
      warnings: [`Binary Authorization dry run (not enforced): ${unsignedMessage}`],
      auditAnnotations: { 'dry-run': 'true', 'overridden-verification-result': unsignedMessage },
    });
  });

  it('breakglass over a denial: allowed, warned, annotated with what it overrode', async () => {
    const d = await decide('demo', [UNSIGNED_IMAGE], { ...ctx, breakglass: 'Kubernetes breakglass: label image-policy.k8s.io/break-glass="true" on Pod metadata' });
    expect(d.verdict).toMatchObject({ kind: 'BREAKGLASS', wouldHaveBeen: 'DENIED' });
    const r = decisionResponse(UID, d).response;
    expect(r.allowed).toBe(true);
    expect(r.status).toBeUndefined();
    expect(r.warnings?.[0]).toMatch(/^Binary Authorization breakglass: allowed without policy enforcement \(Kubernetes breakglass: label .*\); it would have been DENIED\. This deployment is audited\.$/);
    expect(r.warnings?.[1]).toBe(`Binary Authorization breakglass overrode: ${unsignedMessage}`);
    expect(r.auditAnnotations).toEqual({ 'break-glass': 'true', 'overridden-verification-result': unsignedMessage });
  });

  it('breakglass that was not needed: allowed, still marked', async () => {
    const r = decisionResponse(UID, await decide('demo', [SIGNED_IMAGE], { ...ctx, breakglass: 'b' })).response;
    expect(r.allowed).toBe(true);
    expect(r.warnings).toEqual(['Binary Authorization breakglass: allowed without policy enforcement (b); it would have been allowed anyway. This deployment is audited.']);
    expect(r.auditAnnotations).toEqual({ 'break-glass': 'true' });
  });

  it('breakglass whose audit entry is not committed: a warning says so instead of claiming it is audited', async () => {
    const d = failedDecision({ images: [UNSIGNED_IMAGE], context: { ...ctx, breakglass: 'INC-42' } }, 'the store is unavailable');
    const r = decisionResponse(UID, d, new Map(), 'the store failed').response;
    expect(r.allowed).toBe(true);
    expect(r.warnings).toEqual([
      'Binary Authorization breakglass: allowed without policy enforcement (INC-42); it would have been DENIED.',
      "This deployment is NOT in Tollgate's audit log yet (the store failed); the server logged it as an error.",
      `Binary Authorization breakglass overrode: Image ${UNSIGNED_IMAGE} denied: the store is unavailable`,
    ]);
  });

  it('a decision that could not be made: 503 ServiceUnavailable, not a policy violation', () => {
    const r = decisionResponse(UID, failedDecision({ images: [SIGNED_IMAGE], context: ctx }, 'the policy store is unavailable'));
    expect(r.response.allowed).toBe(false);
    expect(r.response.status).toMatchObject({ code: 503, reason: 'ServiceUnavailable', message: `Image ${SIGNED_IMAGE} denied: the policy store is unavailable` });
  });

  it('a DENIED verdict without image details still says why', () => {
    const d: Decision = { schemaVersion: 'tollgate.dev/decision/v1', allowed: false, verdict: { kind: 'DENIED' }, context: ctx, images: [], messages: ['project nope does not exist'] };
    expect(decisionResponse(UID, d).response.status).toMatchObject({ code: 403, reason: VIOLATES_POLICY, message: 'project nope does not exist' });
  });
});

describe('warnings the API server passes on whole', () => {
  const codePoints = (s: string) => Array.from(s).length;

  it('twenty unsigned images in dry run: whole warnings within 4 096 characters, then how many were left out', async () => {
    const images = Array.from({ length: 20 }, (_, i) => `us-docker.pkg.dev/demo/apps/svc-${i}@sha256:${i.toString(16).padStart(2, '0').repeat(32)}`);
    const d = await decide('dryrun', images);
    expect(d.verdict.kind).toBe('DRY_RUN');
    const warnings = decisionResponse(UID, d).response.warnings ?? [];
    const shown = warnings.slice(0, -1);
    // Without fitting, the API server would cut every one of the 20 to 256 characters, reason and all.
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.length).toBeLessThan(20);
    const messages = d.images.flatMap((i) => (i.verdict === 'DENIED' ? [i.message] : []));
    expect(messages).toHaveLength(20);
    expect(shown).toEqual(messages.slice(0, shown.length).map((m) => `Binary Authorization dry run (not enforced): ${m}`));
    for (const w of shown) expect(w).toContain('No attestations found');
    expect(warnings.at(-1)).toBe(`Binary Authorization: ${20 - shown.length} more warnings not shown (Kubernetes passes on 4096 characters of warnings; admission uid ${UID}).`);
    expect(warnings.reduce((n, w) => n + codePoints(w), 0)).toBeLessThanOrEqual(WARNING_BUDGET);
    // The audit annotation (not a header) keeps every message.
    expect(decisionResponse(UID, d).response.auditAnnotations?.['overridden-verification-result']?.split('\n')).toHaveLength(20);
  });

  it('counts characters, not UTF-16 units, as the API server does', () => {
    const wide = '😀'.repeat(1000); // 1 000 characters, 2 000 UTF-16 units
    expect(fitWarnings([wide, wide.replace(/^./u, 'a'), wide.replace(/^./u, 'b'), wide.replace(/^./u, 'c')], 'u')).toHaveLength(4);
    const five = ['a', 'b', 'c', 'd', 'e'].map((c) => c + '😀'.repeat(999));
    const fitted = fitWarnings(five, 'u');
    // 3 × 1 000 characters and the closing line fit; a fourth would not.
    expect(fitted.slice(0, -1)).toEqual(five.slice(0, 3));
    expect(fitted.at(-1)).toMatch(/^Binary Authorization: 2 more warnings not shown/);
    expect(fitted.reduce((n, w) => n + codePoints(w), 0)).toBeLessThanOrEqual(WARNING_BUDGET);
  });

  it('drops repeats and replaces control characters, which would make the API server drop the warning', () => {
    expect(fitWarnings(['one\nline', 'one\nline', 'tab\there\u0085', 'plain'], 'u')).toEqual(['one line', 'tab here ', 'plain']);
  });
});

describe('failClosedResponse', () => {
  it('denies with the given status', () => {
    expect(failClosedResponse(UID, { code: 504, reason: 'Timeout', message: 'too slow' })).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: UID, allowed: false, status: { status: 'Failure', code: 504, reason: 'Timeout', message: 'too slow' } },
    });
  });
});
