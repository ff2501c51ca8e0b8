/**
 * A Policy in the shape `gcloud container binauthz policy export` shows it in: Google's
 * camelCase JSON, keys sorted, fields at their proto3 default (empty lists and maps, empty
 * strings, GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED) left out, enums as names. This is the
 * value the server answers with; writing it out as a YAML or JSON file is in serialize-text.ts,
 * kept apart so the server does not load the yaml library.
 */
import type { AdmissionRule, Policy } from './model.js';
import { SPECIFIC_RULE_MAPS } from './model.js';

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function ruleToWire(rule: AdmissionRule): Record<string, unknown> {
  return rule.evaluationMode === 'REQUIRE_ATTESTATION'
    ? {
        enforcementMode: rule.enforcementMode,
        evaluationMode: rule.evaluationMode,
        requireAttestationsBy: [...rule.requireAttestationsBy],
      }
    : { enforcementMode: rule.enforcementMode, evaluationMode: rule.evaluationMode };
}

/** Google's JSON shape of `policy`, every mapping's keys in sorted order. */
export function policyToWire(policy: Policy): Record<string, unknown> {
  const out: [string, unknown][] = [];
  if (policy.admissionWhitelistPatterns.length > 0) {
    out.push(['admissionWhitelistPatterns', policy.admissionWhitelistPatterns.map((p) => ({ namePattern: p.namePattern }))]);
  }
  for (const map of SPECIFIC_RULE_MAPS) {
    const keys = Object.keys(policy[map]).sort(byCodePoint);
    if (keys.length === 0) continue;
    // fromEntries defines own properties, so no key (not even "__proto__") can touch a prototype.
    out.push([map, Object.fromEntries(keys.map((k) => [k, ruleToWire(policy[map][k] as AdmissionRule)]))]);
  }
  out.push(['defaultAdmissionRule', ruleToWire(policy.defaultAdmissionRule)]);
  if (policy.description) out.push(['description', policy.description]);
  if (policy.etag) out.push(['etag', policy.etag]);
  if (policy.globalPolicyEvaluationMode !== 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED') {
    out.push(['globalPolicyEvaluationMode', policy.globalPolicyEvaluationMode]);
  }
  if (policy.name) out.push(['name', policy.name]);
  if (policy.updateTime) out.push(['updateTime', policy.updateTime]);
  out.sort(([a], [b]) => byCodePoint(a, b));
  return Object.fromEntries(out);
}
