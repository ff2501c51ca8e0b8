import { test } from 'vitest';
import { parseExemptPattern } from './pattern.js';
import { parsePolicyText } from './parse.js';
import { serializePolicy } from './serialize.js';
test('x', () => {
  for (const p of ['gcr.io/p/n*x', 'gcr.i*', '', 'gcr.io/google_containers/*', 'k8s.gcr.io/**', 'loc-ref', 'gcr.io/x/y:v1.*', 'gcr.io/x/y@*', '*', 'gcr.io/x/y:*'])
    console.log(JSON.stringify(p), JSON.stringify(parseExemptPattern(p)).slice(0, 300));
  const r = parsePolicyText(`globalPolicyEvaluationMode: ENABLE
defaultAdmissionRule:
evaluationMode: REQUIRE_ATTESTATION
enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
requireAttestationsBy:
- projects/my-project/attestors/my-binauthz-attestor
`);
  console.log(JSON.stringify(r, null, 1));
  const r2 = parsePolicyText(`admissionWhitelistPatterns:
- namePattern: gcr.io/google_containers/*
defaultAdmissionRule:
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  evaluationMode: REQUIRE_ATTESTATION
  requireAttestationsBy:
  - projects/my-project/attestors/secure-app-attestor
globalPolicyEvaluationMode: ENABLE
name: projects/my-project/policy
`);
  console.log(JSON.stringify(r2));
  if (r2.ok) console.log(serializePolicy(r2.value, 'yaml'), serializePolicy(r2.value, 'json'));
});
