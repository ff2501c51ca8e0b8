/**
 * The typed result of an evaluation. Its JSON form is Tollgate's documented, versioned decision
 * schema (docs/decision-schema.md): `tollgate evaluate --format json`, the evaluate API and the
 * audit log all emit exactly this, so CI scripts can rely on it.
 */
import type { AttestationRejectionCode } from '../attestation/model.js';
import type { EnforcementMode, EvaluationMode } from '../policy/model.js';
import type { DeploymentContext } from './request.js';

export const DECISION_SCHEMA_VERSION = 'tollgate.dev/decision/v1';

export type RuleType = 'default' | 'cluster' | 'namespace' | 'serviceAccount' | 'istioServiceIdentity';

/** The admission rule that applied to an image. */
export interface AppliedRule {
  readonly type: RuleType;
  /** The map key for specific rules (`us-east1-b.prod`, `ns`, `ns:sa`, an Istio identity). */
  readonly key?: string;
  readonly evaluationMode: EvaluationMode;
  readonly enforcementMode: EnforcementMode;
}

/** Why one occurrence did or did not count for an attestor and image. */
export type AttestationAttempt =
  | { readonly result: 'VERIFIED'; readonly occurrence: string; readonly resourceUri: string; readonly keyId: string }
  | {
      readonly result: 'REJECTED';
      readonly occurrence: string;
      readonly resourceUri: string;
      /** DIGEST_MISMATCH: the signature verifies but the signed payload names another digest. */
      readonly code: AttestationRejectionCode | 'DIGEST_MISMATCH';
      readonly message: string;
    };

export type AttestorUnavailableCode = 'ATTESTOR_NOT_FOUND' | 'ATTESTOR_NOT_ACCESSIBLE' | 'EVIDENCE_UNAVAILABLE';

export type AttestorResult =
  | {
      readonly attestor: string;
      readonly satisfied: true;
      /** The attestation and key that satisfied the attestor. */
      readonly verifiedBy: { readonly occurrence: string; readonly keyId: string };
      readonly attestations: readonly AttestationAttempt[];
    }
  | {
      readonly attestor: string;
      readonly satisfied: false;
      readonly reason: 'NO_ATTESTATIONS' | 'NO_VALID_ATTESTATIONS' | AttestorUnavailableCode;
      readonly message: string;
      readonly attestations: readonly AttestationAttempt[];
    };

interface ImageBase {
  /** The image as written in the request. */
  readonly image: string;
  /** Normalized `registry/repository[:tag][@digest]`, when the reference parses. */
  readonly normalized?: string;
  readonly digest?: string;
}

export type ImageDecision =
  | (ImageBase & { readonly verdict: 'ALLOWED'; readonly reason: 'SYSTEM_POLICY' | 'EXEMPT_PATTERN'; readonly pattern: string })
  | (ImageBase & { readonly verdict: 'ALLOWED'; readonly reason: 'ALWAYS_ALLOW'; readonly rule: AppliedRule })
  | (ImageBase & {
      readonly verdict: 'ALLOWED';
      readonly reason: 'ATTESTED';
      readonly rule: AppliedRule;
      readonly attestors: readonly AttestorResult[];
    })
  | (ImageBase & {
      readonly verdict: 'DENIED';
      readonly reason: 'ALWAYS_DENY' | 'NOT_ATTESTED' | 'DIGEST_REQUIRED' | 'INVALID_IMAGE';
      readonly rule: AppliedRule;
      /** True when the rule is DRYRUN_AUDIT_LOG_ONLY: logged as a denial, not enforced. */
      readonly dryRun: boolean;
      readonly attestors: readonly AttestorResult[];
      /** Google's wording, e.g. `Image X denied by Binary Authorization default admission rule. …` */
      readonly message: string;
    })
  /**
   * No decision could be made (the store failed, the project does not exist, the deadline
   * passed): the image is denied, fail closed, and `message` says what failed.
   */
  | (ImageBase & { readonly verdict: 'DENIED'; readonly reason: 'EVALUATION_FAILED'; readonly dryRun: false; readonly message: string });

export type DeploymentVerdict =
  /** Every image allowed. */
  | { readonly kind: 'ALLOWED' }
  /** Some image denied, but only by dry-run rules: allowed, and the would-be denial is logged. */
  | { readonly kind: 'DRY_RUN' }
  /** Breakglass requested: allowed whatever the images' verdicts, and always logged. */
  | { readonly kind: 'BREAKGLASS'; readonly justification: string; readonly wouldHaveBeen: 'ALLOWED' | 'DRY_RUN' | 'DENIED' }
  /** At least one image denied by an enforced rule. */
  | { readonly kind: 'DENIED' };

export interface Decision {
  readonly schemaVersion: typeof DECISION_SCHEMA_VERSION;
  /** Whether the deployment may go ahead (true for ALLOWED, DRY_RUN and BREAKGLASS). */
  readonly allowed: boolean;
  readonly verdict: DeploymentVerdict;
  readonly context: DeploymentContext;
  readonly images: readonly ImageDecision[];
  /** Google-worded denial messages of the denied images (enforced and dry-run), in image order. */
  readonly messages: readonly string[];
}
