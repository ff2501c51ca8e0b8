/**
 * Picks the admission rule for a deployment (reference §2.2): the one applicable specific rule,
 * else the default rule. Cloud Run has no specific rules.
 */
import type { AdmissionRule, Policy } from '../policy/model.js';
import type { AppliedRule, RuleType } from './decision.js';
import { serviceAccountKey, type DeploymentContext } from './request.js';

export interface SelectedRule {
  readonly rule: AdmissionRule;
  readonly applied: AppliedRule;
  /** How Google's messages name it: `default admission rule`, `cluster admission rule for L.C`, … */
  readonly label: string;
}

export function selectRule(policy: Policy, ctx: DeploymentContext): SelectedRule {
  if (ctx.platform === 'gke') {
    const specific = specificRule(policy, ctx);
    if (specific !== undefined) return specific;
  }
  return build('default', undefined, policy.defaultAdmissionRule, 'default admission rule');
}

function specificRule(policy: Policy, ctx: DeploymentContext): SelectedRule | undefined {
  // A valid policy populates at most one map, so the order here only matters for invalid input.
  const candidates: [RuleType, Readonly<Record<string, AdmissionRule>>, string | undefined, string][] = [
    ['cluster', policy.clusterAdmissionRules, ctx.cluster, 'cluster admission rule for'],
    ['serviceAccount', policy.kubernetesServiceAccountAdmissionRules, serviceAccountKey(ctx), 'Kubernetes service account admission rule for'],
    ['namespace', policy.kubernetesNamespaceAdmissionRules, ctx.namespace, 'Kubernetes namespace admission rule for'],
  ];
  for (const [type, map, key, label] of candidates) {
    if (key === undefined || key === '') continue;
    const rule = own(map, key);
    if (rule !== undefined) return build(type, key, rule, `${label} ${key}`);
  }
  if (ctx.istioIdentity !== undefined && ctx.istioIdentity !== '') {
    const want = stripSpiffe(ctx.istioIdentity);
    for (const [key, rule] of Object.entries(policy.istioServiceIdentityAdmissionRules)) {
      if (stripSpiffe(key) === want) return build('istioServiceIdentity', key, rule, `Istio service identity admission rule for ${key}`);
    }
  }
  return undefined;
}

function build(type: RuleType, key: string | undefined, rule: AdmissionRule, label: string): SelectedRule {
  const applied: AppliedRule = {
    type,
    ...(key === undefined ? {} : { key }),
    evaluationMode: rule.evaluationMode,
    enforcementMode: rule.enforcementMode,
  };
  return { rule, applied, label };
}

function own<T>(map: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

function stripSpiffe(id: string): string {
  return id.startsWith('spiffe://') ? id.slice('spiffe://'.length) : id;
}
