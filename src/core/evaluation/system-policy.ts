/**
 * The system policy: exempt patterns for the platform's own images, evaluated before the project
 * policy when `globalPolicyEvaluationMode: ENABLE` (reference §2.2). Kept as data so a server can
 * replace it (mirrors, air-gapped sites) and serve it at `locations/global/policy`.
 */
import type { Policy } from '../policy/model.js';

export const SYSTEM_POLICY_NAME = 'locations/global/policy';

/** Google-maintained GKE system image locations, as the reference documents them. */
export const DEFAULT_SYSTEM_IMAGE_PATTERNS: readonly string[] = [
  'gcr.io/google_containers/*',
  'gcr.io/google-containers/*',
  'k8s.gcr.io/**',
  'gke.gcr.io/**',
  'gcr.io/gke-release/**',
  'gcr.io/stackdriver-agents/*',
];

/** The system policy as the API returns it: its patterns, and everything else denied. */
export function systemPolicyResource(patterns: readonly string[] = DEFAULT_SYSTEM_IMAGE_PATTERNS): Policy {
  return {
    name: SYSTEM_POLICY_NAME,
    globalPolicyEvaluationMode: 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED',
    admissionWhitelistPatterns: patterns.map((namePattern) => ({ namePattern })),
    defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
    clusterAdmissionRules: {},
    kubernetesNamespaceAdmissionRules: {},
    kubernetesServiceAccountAdmissionRules: {},
    istioServiceIdentityAdmissionRules: {},
  };
}
