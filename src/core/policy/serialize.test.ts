import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { defaultPolicy, type AdmissionRule, type Policy, type SpecificRuleMap } from './model.js';
import { parsePolicyText } from './parse-text.js';
import { policyToWire } from './serialize.js';
import { serializePolicy } from './serialize-text.js';

function read(text: string): Policy {
  const r = parsePolicyText(text);
  if (!r.ok) throw new Error(r.error.map((p) => p.message).join('\n'));
  return r.value;
}

/** What `gcloud container binauthz policy export` prints for a new project (reference §1.2). */
const DEFAULT_EXPORT = `defaultAdmissionRule:
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  evaluationMode: ALWAYS_ALLOW
globalPolicyEvaluationMode: ENABLE
name: projects/my-project/policy
`;

/** Seed 000's policy, written in gcloud's export order. */
const SEED_000_EXPORT = `admissionWhitelistPatterns:
- namePattern: gcr.io/google_containers/*
- namePattern: gcr.io/google-containers/*
- namePattern: k8s.gcr.io/*
- namePattern: gke.gcr.io/*
- namePattern: gcr.io/stackdriver-agents/*
defaultAdmissionRule:
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  evaluationMode: REQUIRE_ATTESTATION
  requireAttestationsBy:
  - projects/my-project/attestors/secure-app-attestor
globalPolicyEvaluationMode: ENABLE
name: projects/my-project/policy
`;

/** Seed 001's dry-run policy as its author wrote it: unsorted keys, comments, indented lists. */
const SEED_001_DRY_RUN = `# policy.yaml - Dry run mode for testing
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  # Log violations but do not block
  enforcementMode: DRYRUN_AUDIT_LOG_ONLY
  requireAttestationsBy:
    - projects/my-project/attestors/build-pipeline-attestor
    - projects/my-project/attestors/security-scanner-attestor
`;

const SEED_004_DENY = `admissionWhitelistPatterns:
- namePattern: gcr.io/google_containers/*
- namePattern: gcr.io/google-containers/*
- namePattern: k8s.gcr.io/*
defaultAdmissionRule:
  evaluationMode: ALWAYS_DENY
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
`;

describe('serializePolicy', () => {
  it('prints the default policy exactly as gcloud exports it', () => {
    expect(serializePolicy(defaultPolicy('my-project'), 'yaml')).toBe(DEFAULT_EXPORT);
  });

  it('prints seed 000 exactly as gcloud exports it', () => {
    expect(serializePolicy(read(SEED_000_EXPORT), 'yaml')).toBe(SEED_000_EXPORT);
  });

  it('sorts keys, drops comments and puts list items flush under their key', () => {
    expect(serializePolicy(read(SEED_001_DRY_RUN), 'yaml')).toBe(`defaultAdmissionRule:
  enforcementMode: DRYRUN_AUDIT_LOG_ONLY
  evaluationMode: REQUIRE_ATTESTATION
  requireAttestationsBy:
  - projects/my-project/attestors/build-pipeline-attestor
  - projects/my-project/attestors/security-scanner-attestor
`);
  });

  it('writes JSON with two-space indentation and a trailing newline', () => {
    expect(serializePolicy(defaultPolicy('my-project'), 'json')).toBe(`{
  "defaultAdmissionRule": {
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
    "evaluationMode": "ALWAYS_ALLOW"
  },
  "globalPolicyEvaluationMode": "ENABLE",
  "name": "projects/my-project/policy"
}
`);
  });

  it('sorts map keys and every field, including all optional ones', () => {
    const rule: AdmissionRule = { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY' };
    const policy: Policy = {
      ...defaultPolicy('my-project'),
      description: 'prod: deny by default',
      etag: 'W/"1"',
      updateTime: '2025-01-17T09:30:00Z',
      clusterAdmissionRules: { 'us-east1-b.zeta': rule, 'europe-west4.alpha': rule, 'us-east1-b.alpha': rule },
    };
    const wire = policyToWire(policy);
    expect(Object.keys(wire)).toEqual(['clusterAdmissionRules', 'defaultAdmissionRule', 'description', 'etag', 'globalPolicyEvaluationMode', 'name', 'updateTime']);
    expect(Object.keys(wire.clusterAdmissionRules as object)).toEqual(['europe-west4.alpha', 'us-east1-b.alpha', 'us-east1-b.zeta']);
    const yaml = serializePolicy(policy, 'yaml');
    expect(yaml).toContain('description: "prod: deny by default"\n');
    expect(read(yaml)).toEqual(policy);
  });

  it('omits empty lists and maps, absent optionals and an UNSPECIFIED global mode', () => {
    const policy: Policy = { ...defaultPolicy(), globalPolicyEvaluationMode: 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED' };
    expect(policyToWire(policy)).toEqual({ defaultAdmissionRule: { enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', evaluationMode: 'ALWAYS_ALLOW' } });
    expect(serializePolicy(policy, 'yaml')).toBe('defaultAdmissionRule:\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  evaluationMode: ALWAYS_ALLOW\n');
  });

  it('never writes YAML anchors, even for shared objects', () => {
    const rule: AdmissionRule = { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/my-project/attestors/a'] };
    const policy: Policy = { ...defaultPolicy(), defaultAdmissionRule: rule, kubernetesNamespaceAdmissionRules: { a: rule, b: rule } };
    const yaml = serializePolicy(policy, 'yaml');
    expect(yaml).not.toMatch(/[&*]a\d/);
    expect(read(yaml)).toEqual(policy);
  });

  it('quotes strings that YAML would otherwise read as something else', () => {
    const policy: Policy = { ...defaultPolicy(), description: 'true', etag: '0123' };
    const yaml = serializePolicy(policy, 'yaml');
    expect(parseYaml(yaml)).toMatchObject({ description: 'true', etag: '0123' });
    expect(read(yaml)).toEqual(policy);
  });
});

describe('round trips', () => {
  it.each([
    ['default', DEFAULT_EXPORT],
    ['seed 000', SEED_000_EXPORT],
    ['seed 001 dry run', SEED_001_DRY_RUN],
    ['seed 004', SEED_004_DENY],
  ])('%s: parse → serialize → parse is the identity in YAML and JSON', (_name, text) => {
    const policy = read(text);
    for (const format of ['yaml', 'json'] as const) {
      const out = serializePolicy(policy, format);
      expect(read(out)).toEqual(policy);
      expect(serializePolicy(read(out), format)).toBe(out);
    }
  });

  it('random valid policies round-trip exactly through YAML and JSON', () => {
    fc.assert(
      fc.property(validPolicy, (policy) => {
        for (const format of ['yaml', 'json'] as const) {
          const text = serializePolicy(policy, format);
          const back = parsePolicyText(text);
          if (!back.ok) throw new Error(`${format} did not parse:\n${text}\n${back.error.map((p) => p.message).join('\n')}`);
          expect(back.value).toEqual(policy);
          expect(serializePolicy(back.value, format)).toBe(text);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// A generator of valid policies

const VALID_PATTERNS = [
  'gcr.io/google_containers/*',
  'gcr.io/google-containers/*',
  'k8s.gcr.io/**',
  'gke.gcr.io/*',
  'gcr.io/stackdriver-agents/*',
  'gcr.io/example-project/helloworld',
  'gcr.io/example-project/helloworld:latest',
  'gcr.io/example-project/helloworld:v1.*',
  'gcr.io/example-project/helloworld@*',
  `gcr.io/example-project/helloworld@sha256:${'ab'.repeat(32)}`,
  'us-central1-docker.pkg.dev/my-project/trusted-images/*',
  'gcr.io/cloudrun/hello',
  'loc-ref',
];

const projectId = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/) },
  { weight: 1, arbitrary: fc.constantFrom('example.com:my-project', 'google.com:x1') },
);
const attestorName = fc
  .tuple(projectId, fc.stringMatching(/^[A-Za-z0-9_-]{1,30}$/))
  .map(([p, a]) => `projects/${p}/attestors/${a}`);
const enforcementMode = fc.constantFrom('ENFORCED_BLOCK_AND_AUDIT_LOG', 'DRYRUN_AUDIT_LOG_ONLY' as const);
const rule: fc.Arbitrary<AdmissionRule> = fc.oneof(
  fc.record({ evaluationMode: fc.constantFrom('ALWAYS_ALLOW', 'ALWAYS_DENY' as const), enforcementMode }),
  fc.record({
    evaluationMode: fc.constant('REQUIRE_ATTESTATION' as const),
    enforcementMode,
    requireAttestationsBy: fc.uniqueArray(attestorName, { minLength: 1, maxLength: 4 }).map((l) => l as [string, ...string[]]),
  }),
);

const label = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,10}[a-z0-9])?$/);
const subdomain = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
const keyOf: Record<SpecificRuleMap, fc.Arbitrary<string>> = {
  clusterAdmissionRules: fc
    .tuple(fc.constantFrom('us-central1', 'us-central1-a', 'europe-west4-b', 'asia-southeast1', 'northamerica-northeast1-c'), fc.stringMatching(/^[a-z](?:[-a-z0-9]{0,12}[a-z0-9])?$/))
    .map(([loc, id]) => `${loc}.${id}`),
  kubernetesNamespaceAdmissionRules: subdomain,
  kubernetesServiceAccountAdmissionRules: fc.tuple(label, subdomain).map(([ns, sa]) => `${ns}:${sa}`),
  istioServiceIdentityAdmissionRules: fc
    .tuple(fc.boolean(), fc.constantFrom('my-project.svc.id.goog', 'cluster.local', 'td_1.example'), label, subdomain)
    .map(([spiffe, domain, ns, sa]) => `${spiffe ? 'spiffe://' : ''}${domain}/ns/${ns}/sa/${sa}`),
};

const EMPTY_MAPS = {
  clusterAdmissionRules: {},
  kubernetesNamespaceAdmissionRules: {},
  kubernetesServiceAccountAdmissionRules: {},
  istioServiceIdentityAdmissionRules: {},
};

const specificRules = fc.oneof(
  fc.constant(EMPTY_MAPS),
  fc
    .constantFrom(...(Object.keys(keyOf) as SpecificRuleMap[]))
    .chain((map) => fc.dictionary(keyOf[map], rule, { minKeys: 1, maxKeys: 5 }).map((rules) => ({ ...EMPTY_MAPS, [map]: rules }))),
);

const timestamp = fc.oneof(
  fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2025-01-17T09:30:00.123456789Z', '2024-02-29T23:59:59+05:30', '1970-01-01T00:00:00z'),
);
const text = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), fc.constantFrom('true', '123', 'null', '- x', 'a: b', '#', "'", '"', ' lead', 'trail ', 'two\nlines\n', '*', '&x', '{}', '\r\n', 'a\u0085b', '\u2028', '\t', '\uFEFFbom', '\u0000', '\ud800', 'é ✓ 🚀'));

const validPolicy: fc.Arbitrary<Policy> = fc
  .record(
    {
      name: projectId.map((p) => `projects/${p}/policy`),
      description: text,
      globalPolicyEvaluationMode: fc.constantFrom('GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED', 'ENABLE', 'DISABLE' as const),
      admissionWhitelistPatterns: fc.array(fc.constantFrom(...VALID_PATTERNS).map((namePattern) => ({ namePattern })), { maxLength: 6 }),
      defaultAdmissionRule: rule,
      maps: specificRules,
      updateTime: timestamp,
      etag: text,
    },
    { requiredKeys: ['globalPolicyEvaluationMode', 'admissionWhitelistPatterns', 'defaultAdmissionRule', 'maps'] },
  )
  .map(({ maps, ...rest }) => ({ ...rest, ...maps }));
