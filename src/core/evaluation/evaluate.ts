/**
 * The decision: for each image, the system policy, then exempt patterns, then the selected rule
 * (reference §2.2); then the verdict for the whole deployment. Pure and synchronous: all
 * verification happened while the evidence was built.
 */
import { formatImageReference, isSha256Digest, parseImageReference, type ImageReference } from '../image/reference.js';
import type { AdmissionRule, Policy } from '../policy/model.js';
import { systemPolicyEnabled } from '../policy/model.js';
import { exemptPatternMatches, parseExemptPattern, type ExemptPattern } from '../policy/pattern.js';
import { err, ok, type Problem, type Result } from '../result.js';
import {
  DECISION_SCHEMA_VERSION,
  type AttestationAttempt,
  type AttestorResult,
  type Decision,
  type DeploymentVerdict,
  type ImageDecision,
} from './decision.js';
import type { Evidence } from './evidence.js';
import type { EvaluationRequest } from './request.js';
import { selectRule, type SelectedRule } from './select.js';

export interface CompiledPatterns {
  readonly patterns: readonly ExemptPattern[];
}

/** A policy with its exempt patterns parsed once, so the hot path never re-parses them. */
export interface CompiledPolicy extends CompiledPatterns {
  readonly policy: Policy;
}

export function compilePatterns(raw: readonly string[]): Result<CompiledPatterns, Problem[]> {
  const patterns: ExemptPattern[] = [];
  const problems: Problem[] = [];
  for (const [i, p] of raw.entries()) {
    const r = parseExemptPattern(p);
    if (r.ok) patterns.push(r.value);
    else problems.push({ ...r.error, path: `admissionWhitelistPatterns[${i}].namePattern` });
  }
  return problems.length > 0 ? err(problems) : ok({ patterns });
}

export function compilePolicy(policy: Policy): Result<CompiledPolicy, Problem[]> {
  const r = compilePatterns(policy.admissionWhitelistPatterns.map((p) => p.namePattern));
  return r.ok ? ok({ policy, patterns: r.value.patterns }) : r;
}

/**
 * How an evaluation reads image references: parseImageReference by default. A caller deciding
 * many times over may pass a memoizing one (references are immutable values), so an image seen
 * before, or named twice in one request, is parsed once.
 */
export type ImageParser = (image: string) => ReturnType<typeof parseImageReference>;

const TAG_MESSAGE = 'Expected digest with sha256 scheme, but got tag or malformed digest';

export function evaluate(
  compiled: CompiledPolicy,
  systemPolicy: CompiledPatterns,
  request: EvaluationRequest,
  evidence: Evidence,
  parse: ImageParser = parseImageReference,
): Decision {
  return deploymentDecision(request, evaluateImages(compiled, systemPolicy, request, evidence, parse));
}

/**
 * Each image's decision, in request order. An image's decision depends on the image, the policy,
 * the context's rule and the evidence, never on the other images, so a caller may keep one and
 * put it in a later deployment decision made against the same policy, context and evidence.
 */
export function evaluateImages(
  compiled: CompiledPolicy,
  systemPolicy: CompiledPatterns,
  request: EvaluationRequest,
  evidence: Evidence,
  parse: ImageParser = parseImageReference,
): ImageDecision[] {
  const selected = selectRule(compiled.policy, request.context);
  const useSystem = systemPolicyEnabled(compiled.policy);
  return request.images.map((image) => evaluateImage(image, parse(image), compiled, useSystem ? systemPolicy : undefined, selected, evidence));
}

/**
 * The deployment's decision from its images' decisions (one per image of the request, in its
 * order): one enforced denial denies all, breakglass on top.
 */
export function deploymentDecision(request: EvaluationRequest, images: readonly ImageDecision[]): Decision {
  const denied = images.filter((i) => i.verdict === 'DENIED');
  const enforcedDenial = denied.some((i) => i.verdict === 'DENIED' && !i.dryRun);
  const natural: DeploymentVerdict = enforcedDenial ? { kind: 'DENIED' } : denied.length > 0 ? { kind: 'DRY_RUN' } : { kind: 'ALLOWED' };
  const breakglass = request.context.breakglass;
  const verdict: DeploymentVerdict = breakglass !== undefined
    ? { kind: 'BREAKGLASS', justification: breakglass, wouldHaveBeen: natural.kind as 'ALLOWED' | 'DRY_RUN' | 'DENIED' }
    : natural;
  return {
    schemaVersion: DECISION_SCHEMA_VERSION,
    allowed: verdict.kind !== 'DENIED',
    verdict,
    context: request.context,
    images,
    messages: denied.map((i) => (i.verdict === 'DENIED' ? i.message : '')),
  };
}

function evaluateImage(
  image: string,
  parsed: ReturnType<ImageParser>,
  compiled: CompiledPolicy,
  system: CompiledPatterns | undefined,
  selected: SelectedRule,
  evidence: Evidence,
): ImageDecision {
  const deny = (
    reason: 'ALWAYS_DENY' | 'NOT_ATTESTED' | 'DIGEST_REQUIRED' | 'INVALID_IMAGE',
    detail: string,
    base: { normalized?: string; digest?: string },
    attestors: readonly AttestorResult[] = [],
  ): ImageDecision => ({
    image,
    ...base,
    verdict: 'DENIED',
    reason,
    rule: selected.applied,
    dryRun: selected.rule.enforcementMode === 'DRYRUN_AUDIT_LOG_ONLY',
    attestors,
    message: `Image ${image} denied by Binary Authorization ${selected.label}. ${detail}`,
  });

  if (!parsed.ok) return deny('INVALID_IMAGE', `Invalid image reference: ${parsed.error.message}`, {});
  const ref = parsed.value;
  const base = { normalized: formatImageReference(ref), ...(ref.digest === undefined ? {} : { digest: ref.digest }) };

  const systemMatch = system?.patterns.find((p) => exemptPatternMatches(p, ref));
  if (systemMatch !== undefined) return { image, ...base, verdict: 'ALLOWED', reason: 'SYSTEM_POLICY', pattern: systemMatch.raw };
  const exempt = compiled.patterns.find((p) => exemptPatternMatches(p, ref));
  if (exempt !== undefined) return { image, ...base, verdict: 'ALLOWED', reason: 'EXEMPT_PATTERN', pattern: exempt.raw };

  const rule: AdmissionRule = selected.rule;
  switch (rule.evaluationMode) {
    case 'ALWAYS_ALLOW':
      return { image, ...base, verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW', rule: selected.applied };
    case 'ALWAYS_DENY':
      return deny('ALWAYS_DENY', 'Denied by always_deny admission rule', base);
    case 'REQUIRE_ATTESTATION': {
      if (!isSha256Digest(ref.digest)) return deny('DIGEST_REQUIRED', TAG_MESSAGE, base);
      const results = rule.requireAttestationsBy.map((a) => checkAttestor(a, ref, image, evidence));
      if (results.every((r) => r.satisfied)) {
        return { image, ...base, verdict: 'ALLOWED', reason: 'ATTESTED', rule: selected.applied, attestors: results };
      }
      const detail = results.filter((r) => !r.satisfied).map((r) => (r.satisfied ? '' : r.message)).join(' ');
      return deny('NOT_ATTESTED', detail, base, results);
    }
  }
}

function checkAttestor(name: string, ref: ImageReference, image: string, evidence: Evidence): AttestorResult {
  const digest = ref.digest as string;
  const lookup = evidence.attestor(name);
  if (!lookup.found) {
    return { attestor: name, satisfied: false, reason: lookup.code, message: `Image ${image} denied by attestor ${name}: ${lookup.message}`, attestations: [] };
  }
  const attempts: AttestationAttempt[] = [];
  let satisfiedBy: { occurrence: string; keyId: string } | undefined;
  for (const check of evidence.checks(name, digest)) {
    if (check.kind === 'rejected') {
      attempts.push({ result: 'REJECTED', occurrence: check.occurrence, resourceUri: check.resourceUri, code: check.code, message: check.message });
    } else if (check.payloadDigest !== digest) {
      attempts.push({
        result: 'REJECTED',
        occurrence: check.occurrence,
        resourceUri: check.resourceUri,
        code: 'DIGEST_MISMATCH',
        message: `signature by key ${check.keyId} verifies, but the signed payload is for ${check.payloadDigest}, not ${digest}`,
      });
    } else {
      attempts.push({ result: 'VERIFIED', occurrence: check.occurrence, resourceUri: check.resourceUri, keyId: check.keyId });
      satisfiedBy ??= { occurrence: check.occurrence, keyId: check.keyId };
    }
  }
  if (satisfiedBy !== undefined) return { attestor: name, satisfied: true, verifiedBy: satisfiedBy, attestations: attempts };
  return attempts.length === 0
    ? { attestor: name, satisfied: false, reason: 'NO_ATTESTATIONS', message: `Image ${image} denied by attestor ${name}: No attestations found`, attestations: attempts }
    : {
        attestor: name,
        satisfied: false,
        reason: 'NO_VALID_ATTESTATIONS',
        message: `Image ${image} denied by attestor ${name}: No attestations found that were valid and signed by a key trusted by the attestor`,
        attestations: attempts,
      };
}

/**
 * The decision when none could be made: every image denied with the reason that names what
 * failed. Breakglass still allows (it is meant for exactly the moment the system is broken).
 */
export function failedDecision(request: EvaluationRequest, message: string): Decision {
  return deploymentDecision(request, request.images.map((image) => ({ image, verdict: 'DENIED', reason: 'EVALUATION_FAILED', dryRun: false, message: `Image ${image} denied: ${message}` })));
}

/** Which attestors and digests an evaluation will ask evidence about, so loaders fetch only those. */
export function requiredEvidence(
  compiled: CompiledPolicy,
  system: CompiledPatterns,
  request: EvaluationRequest,
  parse: ImageParser = parseImageReference,
): { attestors: string[]; digests: string[] } {
  const selected = selectRule(compiled.policy, request.context);
  if (selected.rule.evaluationMode !== 'REQUIRE_ATTESTATION') return { attestors: [], digests: [] };
  const useSystem = systemPolicyEnabled(compiled.policy);
  const digests = new Set<string>();
  for (const image of request.images) {
    const r = parse(image);
    if (!r.ok || !isSha256Digest(r.value.digest)) continue;
    const ref = r.value;
    if (useSystem && system.patterns.some((p) => exemptPatternMatches(p, ref))) continue;
    if (compiled.patterns.some((p) => exemptPatternMatches(p, ref))) continue;
    digests.add(ref.digest as string);
  }
  return { attestors: digests.size > 0 ? [...selected.rule.requireAttestationsBy] : [], digests: [...digests] };
}
