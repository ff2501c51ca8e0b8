/**
 * AdmissionReview responses. A denial reads as GKE's does: `status.reason` `VIOLATES_POLICY`
 * (kubectl prints `Error from server (VIOLATES_POLICY): admission webhook
 * "imagepolicywebhook.image-policy.k8s.io" denied the request: <message>`) with Google's
 * per-image messages as the message (reference §6.1). A decision that could not be made (every
 * denial `EVALUATION_FAILED`: the store failed, the deadline passed) is denied with 503
 * `ServiceUnavailable` instead, fail closed.
 *
 * `auditAnnotations` keys are prefixed by the API server with the webhook's name, so with the
 * webhook named `imagepolicywebhook.image-policy.k8s.io` (as `tollgate k8s manifests` names it)
 * the cluster's own audit log gets Google's labels: `imagepolicywebhook.image-policy.k8s.io/dry-run`,
 * `…/break-glass` and `…/overridden-verification-result`.
 */
import type { Decision, ImageDecision } from '../../core/evaluation/decision.js';
import { ADMISSION_REVIEW_API_VERSION } from './decode.js';

/** GKE's `status.reason` for a policy denial (Kubernetes ≥ 1.18.15; `Forbidden` before). */
export const VIOLATES_POLICY = 'VIOLATES_POLICY';

/** A Kubernetes `metav1.Status`, as far as an admission response uses it. */
export interface AdmissionStatus {
  readonly status: 'Failure';
  /** HTTP code the API server answers the client with. */
  readonly code: number;
  /** A StatusReason: kubectl prints it in `Error from server (REASON): …`. */
  readonly reason: string;
  readonly message: string;
  readonly details?: { readonly causes: readonly { readonly reason: string; readonly message: string; readonly field?: string }[] };
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  /** Shown by kubectl as `Warning: …` lines. */
  readonly warnings?: readonly string[];
  /** Keys are prefixed by the API server with `WEBHOOK_NAME/` in the cluster's audit log. */
  readonly auditAnnotations?: Readonly<Record<string, string>>;
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof ADMISSION_REVIEW_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

export const AUDIT_DRY_RUN = 'dry-run';
export const AUDIT_BREAK_GLASS = 'break-glass';
export const AUDIT_OVERRIDDEN = 'overridden-verification-result';

export function review(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_REVIEW_API_VERSION, kind: 'AdmissionReview', response };
}

/**
 * The API server's budget for a request's warnings, in characters (Unicode code points). Past it,
 * it cuts every warning to its first 256 characters, which for an image's message (its name with
 * a digest, the rule, then the reason) drops the reason (k8s.io/apiserver's warning recorder).
 */
export const WARNING_BUDGET = 4096;

/**
 * Warnings as the API server will pass them on: no control characters (it silently drops a
 * warning that has one, a line break included), no repeats (it drops them too), and within
 * WARNING_BUDGET so that none is cut short: the first ones whole, then one line saying how many
 * more there were.
 */
export function fitWarnings(warnings: readonly string[], uid: string): string[] {
  // eslint-disable-next-line no-control-regex -- the control characters are what is replaced
  const lines = [...new Set(warnings.map((w) => w.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')))];
  // A string never has more code points than UTF-16 units, so most answers need no counting.
  if (lines.reduce((sum, l) => sum + l.length, 0) <= WARNING_BUDGET) return lines;
  const chars = (s: string): number => Array.from(s).length;
  if (lines.reduce((sum, l) => sum + chars(l), 0) <= WARNING_BUDGET) return lines;
  const more = (n: number): string =>
    `Binary Authorization: ${n} more warning${n === 1 ? '' : 's'} not shown (Kubernetes passes on ${WARNING_BUDGET} characters of warnings; admission uid ${uid}).`;
  const kept: string[] = [];
  let used = chars(more(lines.length));
  for (const l of lines) {
    const n = chars(l);
    if (used + n > WARNING_BUDGET) break;
    kept.push(l);
    used += n;
  }
  return [...kept, more(lines.length - kept.length)];
}

export function allowResponse(uid: string): AdmissionReviewResponse {
  return review({ uid, allowed: true });
}

/** A denial that is not the policy's: the decision could not be made (fail closed) or the object is malformed. */
export function failClosedResponse(uid: string, status: { code: number; reason: string; message: string }): AdmissionReviewResponse {
  return review({ uid, allowed: false, status: { status: 'Failure', ...status } });
}

/**
 * The answer for a decision. `paths` maps each image (as written) to the fields that name it,
 * for the `details.causes` of a denial.
 */
export function decisionResponse(
  uid: string,
  decision: Decision,
  paths: ReadonlyMap<string, readonly string[]> = new Map(),
  /** Why a breakglass decision's audit entry is not committed (the decision failed or is late); the warning then says so. */
  unrecorded?: string,
): AdmissionReviewResponse {
  const denied = decision.images.filter((i): i is Extract<ImageDecision, { verdict: 'DENIED' }> => i.verdict === 'DENIED');
  const enforced = denied.filter((i) => !i.dryRun);
  const dryRun = denied.filter((i) => i.dryRun);
  const allMessages = denied.length > 0 ? denied.map((i) => i.message) : [...decision.messages];
  const dryRunWarnings = dryRun.map((i) => `Binary Authorization dry run (not enforced): ${i.message}`);

  switch (decision.verdict.kind) {
    case 'ALLOWED':
      return review({ uid, allowed: true });
    case 'DRY_RUN':
      return review({
        uid,
        allowed: true,
        warnings: fitWarnings(dryRunWarnings.length > 0 ? dryRunWarnings : allMessages.map((m) => `Binary Authorization dry run (not enforced): ${m}`), uid),
        auditAnnotations: { [AUDIT_DRY_RUN]: 'true', [AUDIT_OVERRIDDEN]: allMessages.join('\n') },
      });
    case 'BREAKGLASS': {
      const { justification, wouldHaveBeen } = decision.verdict;
      const without = wouldHaveBeen === 'ALLOWED' ? 'it would have been allowed anyway' : wouldHaveBeen === 'DRY_RUN' ? 'it would have been allowed by dry-run rules' : 'it would have been DENIED';
      return review({
        uid,
        allowed: true,
        warnings: fitWarnings([
          `Binary Authorization breakglass: allowed without policy enforcement (${justification}); ${without}.${unrecorded === undefined ? ' This deployment is audited.' : ''}`,
          ...(unrecorded === undefined ? [] : [`This deployment is NOT in Tollgate's audit log yet (${unrecorded}); the server logged it as an error.`]),
          ...allMessages.map((m) => `Binary Authorization breakglass overrode: ${m}`),
        ], uid),
        auditAnnotations: {
          [AUDIT_BREAK_GLASS]: 'true',
          ...(allMessages.length > 0 ? { [AUDIT_OVERRIDDEN]: allMessages.join('\n') } : {}),
        },
      });
    }
    case 'DENIED': {
      const messages = enforced.length > 0 ? enforced.map((i) => i.message) : decision.messages.length > 0 ? [...decision.messages] : ['denied by Binary Authorization'];
      const causes = enforced.flatMap((i) => {
        const fields = paths.get(i.image) ?? [];
        return fields.length === 0
          ? [{ reason: 'FieldValueForbidden', message: i.message }]
          : fields.map((field) => ({ reason: 'FieldValueForbidden', message: i.message, field }));
      });
      // A decision that could not be made (store down, deadline passed) is not a policy
      // violation: say so, so nobody goes looking for a missing attestation.
      const failed = enforced.length > 0 && enforced.every((i) => i.reason === 'EVALUATION_FAILED');
      return review({
        uid,
        allowed: false,
        status: {
          status: 'Failure',
          code: failed ? 503 : 403,
          reason: failed ? 'ServiceUnavailable' : VIOLATES_POLICY,
          message: messages.join('\n'),
          ...(causes.length > 0 ? { details: { causes } } : {}),
        },
        ...(dryRunWarnings.length > 0 ? { warnings: fitWarnings(dryRunWarnings, uid) } : {}),
      });
    }
  }
}
