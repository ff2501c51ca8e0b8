/**
 * The Binary Authorization project policy, as Google's v1 API defines it (reference §1.2–1.3).
 * Field names and enum values are Google's, exactly.
 */

export const GLOBAL_POLICY_EVALUATION_MODES = [
  'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED',
  'ENABLE',
  'DISABLE',
] as const;
export type GlobalPolicyEvaluationMode = (typeof GLOBAL_POLICY_EVALUATION_MODES)[number];

export const EVALUATION_MODES = [
  'EVALUATION_MODE_UNSPECIFIED',
  'ALWAYS_ALLOW',
  'REQUIRE_ATTESTATION',
  'ALWAYS_DENY',
] as const;
/** UNSPECIFIED is a wire value only; a validated rule never carries it. */
export type EvaluationMode = Exclude<(typeof EVALUATION_MODES)[number], 'EVALUATION_MODE_UNSPECIFIED'>;

export const ENFORCEMENT_MODES = [
  'ENFORCEMENT_MODE_UNSPECIFIED',
  'ENFORCED_BLOCK_AND_AUDIT_LOG',
  'DRYRUN_AUDIT_LOG_ONLY',
] as const;
export type EnforcementMode = Exclude<(typeof ENFORCEMENT_MODES)[number], 'ENFORCEMENT_MODE_UNSPECIFIED'>;

/**
 * A validated admission rule. The union makes "REQUIRE_ATTESTATION with no attestor" and
 * "ALWAYS_ALLOW with attestors" unrepresentable.
 */
export type AdmissionRule =
  | {
      readonly evaluationMode: 'ALWAYS_ALLOW' | 'ALWAYS_DENY';
      readonly enforcementMode: EnforcementMode;
    }
  | {
      readonly evaluationMode: 'REQUIRE_ATTESTATION';
      readonly enforcementMode: EnforcementMode;
      /** Non-empty; each `projects/P/attestors/A`. */
      readonly requireAttestationsBy: readonly [string, ...string[]];
    };

export interface AdmissionWhitelistPattern {
  readonly namePattern: string;
}

/** The four kinds of specific rule; a valid policy populates at most one of them. */
export const SPECIFIC_RULE_MAPS = [
  'clusterAdmissionRules',
  'kubernetesNamespaceAdmissionRules',
  'kubernetesServiceAccountAdmissionRules',
  'istioServiceIdentityAdmissionRules',
] as const;
export type SpecificRuleMap = (typeof SPECIFIC_RULE_MAPS)[number];

export interface Policy {
  /** `projects/P/policy`; output only on the API (overwritten from the URL). */
  readonly name?: string;
  readonly description?: string;
  readonly globalPolicyEvaluationMode: GlobalPolicyEvaluationMode;
  readonly admissionWhitelistPatterns: readonly AdmissionWhitelistPattern[];
  readonly defaultAdmissionRule: AdmissionRule;
  /** Keyed `location.clusterId`. */
  readonly clusterAdmissionRules: Readonly<Record<string, AdmissionRule>>;
  /** Keyed by namespace. */
  readonly kubernetesNamespaceAdmissionRules: Readonly<Record<string, AdmissionRule>>;
  /** Keyed `namespace:serviceaccount`. */
  readonly kubernetesServiceAccountAdmissionRules: Readonly<Record<string, AdmissionRule>>;
  /** Keyed `spiffe://DOMAIN/ns/NS/sa/SA` or `DOMAIN/ns/NS/sa/SA`. */
  readonly istioServiceIdentityAdmissionRules: Readonly<Record<string, AdmissionRule>>;
  readonly updateTime?: string;
  readonly etag?: string;
}

/** The policy a new project has (reference §1.2): allow everything, Google's system policy on. */
export function defaultPolicy(projectId?: string): Policy {
  return {
    ...(projectId === undefined ? {} : { name: `projects/${projectId}/policy` }),
    globalPolicyEvaluationMode: 'ENABLE',
    admissionWhitelistPatterns: [],
    defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
    clusterAdmissionRules: {},
    kubernetesNamespaceAdmissionRules: {},
    kubernetesServiceAccountAdmissionRules: {},
    istioServiceIdentityAdmissionRules: {},
  };
}

/** `globalPolicyEvaluationMode` UNSPECIFIED means DISABLE (reference §1.2). */
export function systemPolicyEnabled(policy: Policy): boolean {
  return policy.globalPolicyEvaluationMode === 'ENABLE';
}
