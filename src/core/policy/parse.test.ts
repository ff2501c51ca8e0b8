import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Problem } from '../result.js';
import { defaultPolicy, type Policy } from './model.js';
import { MAX_PROBLEMS, POLICY_PROBLEM_CODES, isValidAttestorName, parsePolicyObject } from './parse.js';
import { parsePolicyText } from './parse-text.js';

// ---------------------------------------------------------------------------------------------
// helpers

function valid(text: string): Policy {
  const r = parsePolicyText(text);
  if (!r.ok) throw new Error(`expected a valid policy, got:\n${r.error.map((p) => p.message).join('\n')}`);
  return r.value;
}

function problemsOf(input: string | Record<string, unknown>): Problem[] {
  const r = typeof input === 'string' ? parsePolicyText(input) : parsePolicyObject(input);
  if (r.ok) throw new Error('expected problems, but the policy is valid');
  return r.error;
}

/** Every problem names its path first, and every code is a documented one. */
function expectWellFormed(problems: readonly Problem[]): void {
  for (const p of problems) {
    expect(POLICY_PROBLEM_CODES).toContain(p.code);
    if (p.path !== undefined) expect(p.message.startsWith(`${p.path}: `)).toBe(true);
  }
}

const ATT = 'projects/my-project/attestors/build-attestor';
const ATT2 = 'projects/my-project/attestors/security-scanner';
const allow = { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' };
const requireAtt = { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: [ATT] };

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { defaultAdmissionRule: { ...allow }, ...extra };
}

// ---------------------------------------------------------------------------------------------
// seeds (shell variables replaced by concrete values)

const SEED_000_POLICY = `admissionWhitelistPatterns:
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

const SEED_000_DEFAULT = `defaultAdmissionRule:
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  evaluationMode: ALWAYS_ALLOW
globalPolicyEvaluationMode: ENABLE
name: projects/my-project/policy
`;

const SEED_001_POLICY = `# /tmp/policy.yaml - Binary Authorization policy
admissionWhitelistPatterns:
  # Allow specific system images if needed
  - namePattern: "gcr.io/google-samples/*"

defaultAdmissionRule:
  # Require attestation for all other images
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy:
    - projects/my-project/attestors/build-pipeline-attestor

globalPolicyEvaluationMode: ENABLE
`;

const SEED_001_DRY_RUN = `# policy.yaml - Dry run mode for testing
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  # Log violations but do not block
  enforcementMode: DRYRUN_AUDIT_LOG_ONLY
  requireAttestationsBy:
    - projects/my-project/attestors/build-pipeline-attestor
`;

const SEED_001_EXEMPTIONS = `# policy.yaml with exemptions
admissionWhitelistPatterns:
  # Allow all images from your trusted registry path
  - namePattern: "us-central1-docker.pkg.dev/my-project/trusted-images/*"
  # Allow specific system images
  - namePattern: "gcr.io/cloudrun/hello"

defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy:
    - projects/my-project/attestors/build-pipeline-attestor
`;

const SEED_001_MULTIPLE = `# policy.yaml with multiple required attestors
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy:
    # Both attestors must sign the image
    - projects/my-project/attestors/build-pipeline-attestor
    - projects/my-project/attestors/security-scanner-attestor
`;

/** Seed 003 as written: the rule's fields are not indented under defaultAdmissionRule. */
const SEED_003_BROKEN = `globalPolicyEvaluationMode: ENABLE
defaultAdmissionRule:
evaluationMode: REQUIRE_ATTESTATION
enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
requireAttestationsBy:
- projects/my-project/attestors/my-binauthz-attestor
`;

/** Seed 004 (GKE codelab) policies; the seed's copy lost lines, these are the codelab's originals. */
const SEED_004_DENY = `admissionWhitelistPatterns:
- namePattern: gcr.io/google_containers/*
- namePattern: gcr.io/google-containers/*
- namePattern: k8s.gcr.io/*
defaultAdmissionRule:
  evaluationMode: ALWAYS_DENY
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
`;

const SEED_004_ATTEST = `admissionWhitelistPatterns:
- namePattern: gcr.io/google_containers/*
- namePattern: k8s.gcr.io/*
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy:
  - projects/my-project/attestors/my-binauthz-attestor
`;

/** Seed 004's text exactly as the seed shows it (lines lost in the copy). */
const SEED_004_AS_PRINTED = `    - namePattern: gcr.io/google_containers/*
    - namePattern: gcr.io/google-containers/*
    - namePattern: k8s.gcr.io/*
      evaluationMode: ALWAYS_DENY
      enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
`;

describe('seed policies', () => {
  it('000: exempt patterns and REQUIRE_ATTESTATION', () => {
    const p = valid(SEED_000_POLICY);
    expect(p).toEqual({
      name: 'projects/my-project/policy',
      globalPolicyEvaluationMode: 'ENABLE',
      admissionWhitelistPatterns: [
        { namePattern: 'gcr.io/google_containers/*' },
        { namePattern: 'gcr.io/google-containers/*' },
        { namePattern: 'k8s.gcr.io/*' },
        { namePattern: 'gke.gcr.io/*' },
        { namePattern: 'gcr.io/stackdriver-agents/*' },
      ],
      defaultAdmissionRule: {
        evaluationMode: 'REQUIRE_ATTESTATION',
        enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG',
        requireAttestationsBy: ['projects/my-project/attestors/secure-app-attestor'],
      },
      clusterAdmissionRules: {},
      kubernetesNamespaceAdmissionRules: {},
      kubernetesServiceAccountAdmissionRules: {},
      istioServiceIdentityAdmissionRules: {},
    });
  });

  it('000: the reset-to-default policy is the default policy', () => {
    expect(valid(SEED_000_DEFAULT)).toEqual(defaultPolicy('my-project'));
  });

  it('001: exemption, dry run and multiple attestors', () => {
    expect(valid(SEED_001_POLICY).admissionWhitelistPatterns).toEqual([{ namePattern: 'gcr.io/google-samples/*' }]);
    const dry = valid(SEED_001_DRY_RUN);
    expect(dry.defaultAdmissionRule.enforcementMode).toBe('DRYRUN_AUDIT_LOG_ONLY');
    expect(dry.globalPolicyEvaluationMode).toBe('GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED');
    expect(valid(SEED_001_EXEMPTIONS).admissionWhitelistPatterns).toHaveLength(2);
    expect(valid(SEED_001_MULTIPLE).defaultAdmissionRule).toEqual({
      evaluationMode: 'REQUIRE_ATTESTATION',
      enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG',
      requireAttestationsBy: [
        'projects/my-project/attestors/build-pipeline-attestor',
        'projects/my-project/attestors/security-scanner-attestor',
      ],
    });
  });

  it('001 verbatim: the MY_PROJECT placeholder is not a project id', () => {
    const problems = problemsOf(SEED_001_MULTIPLE.replaceAll('my-project', 'MY_PROJECT'));
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['INVALID_ATTESTOR_NAME', 'defaultAdmissionRule.requireAttestationsBy[0]'],
      ['INVALID_ATTESTOR_NAME', 'defaultAdmissionRule.requireAttestationsBy[1]'],
    ]);
    expect(problems[0]?.message).toContain('"MY_PROJECT" is not a valid project id');
  });

  it('003: the mis-indented policy says what is wrong', () => {
    const problems = problemsOf(SEED_003_BROKEN);
    expectWellFormed(problems);
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['UNKNOWN_FIELD', 'evaluationMode'],
      ['UNKNOWN_FIELD', 'enforcementMode'],
      ['UNKNOWN_FIELD', 'requireAttestationsBy'],
      ['REQUIRED', 'defaultAdmissionRule'],
    ]);
    expect(problems[0]?.message).toMatch(/^evaluationMode: unknown field.*indent it under defaultAdmissionRule/);
    expect(problems[3]?.message).toMatch(/^defaultAdmissionRule: required.*indented under it/);
  });

  it('003: with the indentation fixed it is valid', () => {
    const fixed = SEED_003_BROKEN.replace(/^(evaluationMode|enforcementMode|requireAttestationsBy|- )/gm, '  $1');
    expect(valid(fixed).defaultAdmissionRule).toEqual({
      evaluationMode: 'REQUIRE_ATTESTATION',
      enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG',
      requireAttestationsBy: ['projects/my-project/attestors/my-binauthz-attestor'],
    });
  });

  it('004: deny-all but system images, then require the attestor', () => {
    const deny = valid(SEED_004_DENY);
    expect(deny.defaultAdmissionRule).toEqual({ evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' });
    expect(deny.admissionWhitelistPatterns).toHaveLength(3);
    expect(valid(SEED_004_ATTEST).defaultAdmissionRule.evaluationMode).toBe('REQUIRE_ATTESTATION');
  });

  it('004 as printed in the seed: a list, not a policy', () => {
    const problems = problemsOf(SEED_004_AS_PRINTED);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.code).toBe('TYPE');
    expect(problems[0]?.message).toMatch(/^policy: expected a mapping.*got a list/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('accepted input forms', () => {
  it('the default policy', () => {
    expect(parsePolicyObject({
      name: 'projects/my-project/policy',
      globalPolicyEvaluationMode: 'ENABLE',
      defaultAdmissionRule: allow,
    })).toEqual({ ok: true, value: defaultPolicy('my-project') });
  });

  it('JSON text, with a BOM and leading blank lines', () => {
    const json = `\uFEFF\n  {"defaultAdmissionRule": {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "DRYRUN_AUDIT_LOG_ONLY"},
      "etag": "abc", "description": "line\\nbreak \\u00e9"}`;
    const p = valid(json);
    expect(p.defaultAdmissionRule).toEqual({ evaluationMode: 'ALWAYS_DENY', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY' });
    expect(p.etag).toBe('abc');
    expect(p.description).toBe('line\nbreak é');
  });

  it('YAML flow style and JSON-in-YAML after a comment', () => {
    expect(valid('# c\n{"defaultAdmissionRule": {"evaluationMode": "ALWAYS_ALLOW", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}}').defaultAdmissionRule.evaluationMode).toBe('ALWAYS_ALLOW');
  });

  it('snake_case field names, with map keys left alone', () => {
    const snake = {
      name: 'projects/my-project/policy',
      global_policy_evaluation_mode: 'DISABLE',
      admission_whitelist_patterns: [{ name_pattern: 'gcr.io/my-project/*' }],
      default_admission_rule: { evaluation_mode: 'REQUIRE_ATTESTATION', enforcement_mode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', require_attestations_by: [ATT] },
      istio_service_identity_admission_rules: {
        'spiffe://my_trust_domain/ns/prod/sa/deploy-bot': { evaluation_mode: 'ALWAYS_DENY', enforcement_mode: 'DRYRUN_AUDIT_LOG_ONLY' },
      },
      update_time: '2024-05-01T12:00:00.5Z',
      etag: 'e1',
    };
    const r = parsePolicyObject(snake);
    expect(r).toEqual({
      ok: true,
      value: {
        name: 'projects/my-project/policy',
        globalPolicyEvaluationMode: 'DISABLE',
        admissionWhitelistPatterns: [{ namePattern: 'gcr.io/my-project/*' }],
        defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: [ATT] },
        clusterAdmissionRules: {},
        kubernetesNamespaceAdmissionRules: {},
        kubernetesServiceAccountAdmissionRules: {},
        istioServiceIdentityAdmissionRules: { 'spiffe://my_trust_domain/ns/prod/sa/deploy-bot': { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY' } },
        updateTime: '2024-05-01T12:00:00.5Z',
        etag: 'e1',
      },
    });
    // The four maps in snake_case too.
    for (const [snakeName, camel] of [
      ['cluster_admission_rules', 'clusterAdmissionRules'],
      ['kubernetes_namespace_admission_rules', 'kubernetesNamespaceAdmissionRules'],
      ['kubernetes_service_account_admission_rules', 'kubernetesServiceAccountAdmissionRules'],
    ] as const) {
      const key = { clusterAdmissionRules: 'us-east1-b.prod', kubernetesNamespaceAdmissionRules: 'team.prod', kubernetesServiceAccountAdmissionRules: 'prod:deploy-bot' }[camel];
      const r2 = parsePolicyObject(base({ [snakeName]: { [key]: allow } }));
      expect(r2.ok && r2.value[camel]).toEqual({ [key]: allow });
    }
  });

  it('enums as proto numbers (GAPIC numericEnums)', () => {
    const r = parsePolicyObject({
      globalPolicyEvaluationMode: 2,
      defaultAdmissionRule: { evaluationMode: 2, enforcementMode: 2, requireAttestationsBy: [ATT] },
      clusterAdmissionRules: { 'us-central1.a-cluster': { evaluationMode: 3, enforcementMode: 1 } },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.globalPolicyEvaluationMode).toBe('DISABLE');
    expect(r.value.defaultAdmissionRule).toEqual({ evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY', requireAttestationsBy: [ATT] });
    expect(r.value.clusterAdmissionRules['us-central1.a-cluster']).toEqual({ evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' });
    expect(valid('defaultAdmissionRule: {evaluationMode: 1, enforcementMode: 1}\nglobalPolicyEvaluationMode: 1\n').globalPolicyEvaluationMode).toBe('ENABLE');
  });

  it('globalPolicyEvaluationMode: UNSPECIFIED is kept, omitted means UNSPECIFIED', () => {
    for (const v of [0, 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED', null, undefined]) {
      const r = parsePolicyObject(base(v === undefined ? {} : { globalPolicyEvaluationMode: v }));
      expect(r.ok && r.value.globalPolicyEvaluationMode).toBe('GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED');
    }
  });

  it('null and empty strings mean "not set" (proto3 JSON)', () => {
    const r = parsePolicyObject(base({ name: '', description: null, etag: '', admissionWhitelistPatterns: null, clusterAdmissionRules: null, updateTime: null }));
    expect(r).toEqual({ ok: true, value: defaultPolicyWithout() });
  });

  it('output-only fields sent back by read-modify-write are accepted', () => {
    const p = valid(`${SEED_000_DEFAULT}etag: "BwYX3k1"\nupdateTime: "2025-01-17T09:30:00.123456789Z"\n`);
    expect(p.updateTime).toBe('2025-01-17T09:30:00.123456789Z');
    expect(p.etag).toBe('BwYX3k1');
  });

  it('policy names with a project number or a legacy domain-scoped project', () => {
    for (const name of ['projects/123456789012/policy', 'projects/example.com:my-project/policy']) {
      expect(parsePolicyObject(base({ name })).ok).toBe(true);
    }
  });

  it('all four kinds of map key', () => {
    const keys = {
      clusterAdmissionRules: ['us-central1.prod', 'us-central1-a.prod-cluster', 'northamerica-northeast1-b.c1', 'europe-west10.x'],
      kubernetesNamespaceAdmissionRules: ['default', 'kube-system', 'team1', 'a.b-c'],
      kubernetesServiceAccountAdmissionRules: ['default:default', 'prod:deployer.bot', 'ns-1:sa-1'],
      istioServiceIdentityAdmissionRules: ['spiffe://my-project.svc.id.goog/ns/prod/sa/api', 'my-project.svc.id.goog/ns/default/sa/default', 'cluster.local/ns/a/sa/b'],
    };
    for (const [map, list] of Object.entries(keys)) {
      const r = parsePolicyObject(base({ [map]: Object.fromEntries(list.map((k) => [k, requireAtt])) }));
      expect(r.ok, `${map}: ${r.ok ? '' : r.error.map((p) => p.message).join('; ')}`).toBe(true);
    }
  });

  it('exactly 200 attestor references is allowed', () => {
    const names = Array.from({ length: 100 }, (_, i) => `projects/my-project/attestors/a${i}`);
    const rule = { ...requireAtt, requireAttestationsBy: names };
    expect(parsePolicyObject({ defaultAdmissionRule: rule, kubernetesNamespaceAdmissionRules: { prod: rule } }).ok).toBe(true);
  });
});

function defaultPolicyWithout(): Policy {
  const { name: _name, ...rest } = defaultPolicy();
  return { ...rest, globalPolicyEvaluationMode: 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED' };
}

// ---------------------------------------------------------------------------------------------

describe('isValidAttestorName', () => {
  it.each([
    'projects/my-project/attestors/build-attestor',
    'projects/my-project/attestors/Build_Attestor-2',
    'projects/example.com:my-project/attestors/a',
    'projects/abcdef/attestors/x',
    `projects/a${'b'.repeat(28)}c/attestors/${'z'.repeat(100)}`,
  ])('accepts %s', (name) => expect(isValidAttestorName(name)).toBe(true));

  it.each([
    '',
    'build-attestor',
    'projects/my-project/attestors/',
    'projects/my-project/attestors/a/b',
    'projects/my-project/attestor/a',
    'project/my-project/attestors/a',
    'projects/-demo/attestors/a', // project id must start with a letter
    'projects/My-Project/attestors/a',
    'projects/my-project-/attestors/a',
    'projects/1my-project/attestors/a',
    `projects/a${'b'.repeat(29)}c/attestors/x`,
    `projects/my-project/attestors/${'z'.repeat(101)}`,
    'projects/my-project/attestors/a.b',
    'projects/$PROJECT_ID/attestors/a',
    'projects/${PROJECT_ID}/attestors/${ATTESTOR_ID}',
    ' projects/my-project/attestors/a',
    'projects/my-project/attestors/a\n',
  ])('rejects %j', (name) => expect(isValidAttestorName(name)).toBe(false));
});

// ---------------------------------------------------------------------------------------------

interface Rejection {
  readonly what: string;
  readonly input: string | Record<string, unknown>;
  readonly code: string;
  readonly path: string | undefined;
  readonly message?: RegExp;
}

const cluster = (rule: unknown): Record<string, unknown> => base({ clusterAdmissionRules: { 'us-east1-b.prod': rule } });

const REJECTIONS: readonly Rejection[] = [
  // unknown fields, with hints
  { what: 'unknown top-level field', input: base({ bogusField: 1 }), code: 'UNKNOWN_FIELD', path: 'bogusField', message: /^bogusField: unknown field in the policy; known fields: / },
  { what: 'near miss', input: base({ descripton: 'x' }), code: 'UNKNOWN_FIELD', path: 'descripton', message: /did you mean 'description'\?/ },
  { what: 'kebab-case', input: base({ 'global-policy-evaluation-mode': 'ENABLE' }), code: 'UNKNOWN_FIELD', path: 'global-policy-evaluation-mode', message: /did you mean 'globalPolicyEvaluationMode'\?/ },
  { what: 'PascalCase in a rule', input: { defaultAdmissionRule: { ...allow, EvaluationMode: 'ALWAYS_ALLOW' } }, code: 'UNKNOWN_FIELD', path: 'defaultAdmissionRule.EvaluationMode', message: /did you mean 'evaluationMode'\?/ },
  { what: 'requireAttestationBy (seed 003 notes)', input: { defaultAdmissionRule: { ...requireAtt, requireAttestationBy: [ATT] } }, code: 'UNKNOWN_FIELD', path: 'defaultAdmissionRule.requireAttestationBy', message: /did you mean 'requireAttestationsBy'\?/ },
  { what: 'allowlist wording', input: base({ admissionAllowlistPatterns: [] }), code: 'UNKNOWN_FIELD', path: 'admissionAllowlistPatterns', message: /did you mean 'admissionWhitelistPatterns'\?/ },
  { what: 'policy field inside a rule', input: { defaultAdmissionRule: { ...allow, globalPolicyEvaluationMode: 'ENABLE' } }, code: 'UNKNOWN_FIELD', path: 'defaultAdmissionRule.globalPolicyEvaluationMode', message: /belongs at the top level/ },
  { what: 'unknown field in a pattern', input: base({ admissionWhitelistPatterns: [{ namePattern: 'gcr.io/a/b', comment: 'x' }] }), code: 'UNKNOWN_FIELD', path: 'admissionWhitelistPatterns[0].comment' },
  { what: 'unknown field in a map rule', input: cluster({ ...allow, x: 1 }), code: 'UNKNOWN_FIELD', path: 'clusterAdmissionRules["us-east1-b.prod"].x' },
  // both spellings
  { what: 'a field in both spellings', input: base({ default_admission_rule: allow }), code: 'DUPLICATE_FIELD', path: 'defaultAdmissionRule', message: /given twice, as 'defaultAdmissionRule' and as 'default_admission_rule'/ },
  { what: 'both spellings in a rule', input: { defaultAdmissionRule: { ...allow, evaluation_mode: 'ALWAYS_DENY' } }, code: 'DUPLICATE_FIELD', path: 'defaultAdmissionRule.evaluationMode' },
  // JSON types
  { what: 'policy is a string', input: 'just text', code: 'TYPE', path: undefined, message: /^policy: expected a mapping.*got a string/ },
  { what: 'empty document', input: '# nothing\n', code: 'TYPE', path: undefined, message: /^policy: the document is empty/ },
  { what: 'patterns not a list', input: base({ admissionWhitelistPatterns: 'gcr.io/a/*' }), code: 'TYPE', path: 'admissionWhitelistPatterns' },
  { what: 'pattern as a bare string', input: base({ admissionWhitelistPatterns: ['gcr.io/a/*'] }), code: 'TYPE', path: 'admissionWhitelistPatterns[0]', message: /got a bare string/ },
  { what: 'namePattern not a string', input: base({ admissionWhitelistPatterns: [{ namePattern: 5 }] }), code: 'TYPE', path: 'admissionWhitelistPatterns[0].namePattern' },
  { what: 'rule not a mapping', input: { defaultAdmissionRule: 'ALWAYS_ALLOW' }, code: 'TYPE', path: 'defaultAdmissionRule' },
  { what: 'attestors not a list', input: { defaultAdmissionRule: { ...requireAtt, requireAttestationsBy: ATT } }, code: 'TYPE', path: 'defaultAdmissionRule.requireAttestationsBy' },
  { what: 'attestor not a string', input: { defaultAdmissionRule: { ...requireAtt, requireAttestationsBy: [ATT, 7] } }, code: 'TYPE', path: 'defaultAdmissionRule.requireAttestationsBy[1]' },
  { what: 'enum as a boolean', input: { defaultAdmissionRule: { ...allow, enforcementMode: true } }, code: 'TYPE', path: 'defaultAdmissionRule.enforcementMode' },
  { what: 'map as a list', input: base({ clusterAdmissionRules: [] }), code: 'TYPE', path: 'clusterAdmissionRules' },
  { what: 'description as a number', input: base({ description: 5 }), code: 'TYPE', path: 'description' },
  { what: 'etag as a number', input: 'defaultAdmissionRule: {evaluationMode: ALWAYS_ALLOW, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}\netag: 123\n', code: 'TYPE', path: 'etag' },
  // enums
  { what: 'unknown evaluation mode', input: { defaultAdmissionRule: { ...requireAtt, evaluationMode: 'REQUIRE_ATTESTATIONS' } }, code: 'INVALID_ENUM', path: 'defaultAdmissionRule.evaluationMode', message: /did you mean REQUIRE_ATTESTATION\?/ },
  { what: 'lower-case enum', input: { defaultAdmissionRule: { ...allow, enforcementMode: 'dryrun_audit_log_only' } }, code: 'INVALID_ENUM', path: 'defaultAdmissionRule.enforcementMode', message: /did you mean DRYRUN_AUDIT_LOG_ONLY\?/ },
  { what: 'unknown global mode', input: base({ globalPolicyEvaluationMode: 'ON' }), code: 'INVALID_ENUM', path: 'globalPolicyEvaluationMode', message: /expected one of ENABLE, DISABLE$/ },
  { what: 'enum number out of range', input: { defaultAdmissionRule: { ...allow, enforcementMode: 9 } }, code: 'INVALID_ENUM', path: 'defaultAdmissionRule.enforcementMode' },
  { what: 'enum number not an integer', input: base({ globalPolicyEvaluationMode: 1.5 }), code: 'INVALID_ENUM', path: 'globalPolicyEvaluationMode' },
  { what: 'enum number as a string', input: base({ globalPolicyEvaluationMode: '1' }), code: 'INVALID_ENUM', path: 'globalPolicyEvaluationMode' },
  // required
  { what: 'no default rule', input: { globalPolicyEvaluationMode: 'ENABLE' }, code: 'REQUIRED', path: 'defaultAdmissionRule', message: /^defaultAdmissionRule: required/ },
  { what: 'no evaluation mode', input: { defaultAdmissionRule: { enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } }, code: 'REQUIRED', path: 'defaultAdmissionRule.evaluationMode' },
  { what: 'UNSPECIFIED evaluation mode', input: { defaultAdmissionRule: { ...allow, evaluationMode: 'EVALUATION_MODE_UNSPECIFIED' } }, code: 'REQUIRED', path: 'defaultAdmissionRule.evaluationMode' },
  { what: 'evaluation mode 0', input: cluster({ ...allow, evaluationMode: 0 }), code: 'REQUIRED', path: 'clusterAdmissionRules["us-east1-b.prod"].evaluationMode' },
  { what: 'no enforcement mode', input: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY' } }, code: 'REQUIRED', path: 'defaultAdmissionRule.enforcementMode' },
  { what: 'UNSPECIFIED enforcement mode', input: cluster({ ...allow, enforcementMode: 'ENFORCEMENT_MODE_UNSPECIFIED' }), code: 'REQUIRED', path: 'clusterAdmissionRules["us-east1-b.prod"].enforcementMode' },
  { what: 'pattern without namePattern', input: base({ admissionWhitelistPatterns: [{}] }), code: 'REQUIRED', path: 'admissionWhitelistPatterns[0].namePattern' },
  // attestors
  { what: 'REQUIRE_ATTESTATION without attestors', input: { defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } }, code: 'REQUIRED', path: 'defaultAdmissionRule.requireAttestationsBy', message: /needs at least one attestor/ },
  { what: 'REQUIRE_ATTESTATION with an empty list', input: cluster({ ...requireAtt, requireAttestationsBy: [] }), code: 'REQUIRED', path: 'clusterAdmissionRules["us-east1-b.prod"].requireAttestationsBy' },
  { what: 'attestors under ALWAYS_ALLOW', input: { defaultAdmissionRule: { ...allow, requireAttestationsBy: [ATT] } }, code: 'ATTESTORS_NOT_ALLOWED', path: 'defaultAdmissionRule.requireAttestationsBy' },
  { what: 'attestors under ALWAYS_DENY', input: cluster({ ...allow, evaluationMode: 'ALWAYS_DENY', requireAttestationsBy: [ATT] }), code: 'ATTESTORS_NOT_ALLOWED', path: 'clusterAdmissionRules["us-east1-b.prod"].requireAttestationsBy' },
  { what: 'malformed attestor name', input: cluster({ ...requireAtt, requireAttestationsBy: ['secure-app-attestor'] }), code: 'INVALID_ATTESTOR_NAME', path: 'clusterAdmissionRules["us-east1-b.prod"].requireAttestationsBy[0]', message: /is a bare attestor id; expected projects\/PROJECT_ID\/attestors\/ATTESTOR_ID/ },
  { what: 'unexpanded shell variable', input: { defaultAdmissionRule: { ...requireAtt, requireAttestationsBy: ['projects/${PROJECT_ID}/attestors/a'] } }, code: 'INVALID_ATTESTOR_NAME', path: 'defaultAdmissionRule.requireAttestationsBy[0]', message: /unexpanded shell variable/ },
  { what: 'bad attestor id', input: { defaultAdmissionRule: { ...requireAtt, requireAttestationsBy: ['projects/my-project/attestors/a b'] } }, code: 'INVALID_ATTESTOR_NAME', path: 'defaultAdmissionRule.requireAttestationsBy[0]', message: /not a valid attestor id/ },
  { what: 'duplicate attestor in one rule', input: { defaultAdmissionRule: { ...requireAtt, requireAttestationsBy: [ATT, ATT2, ATT] } }, code: 'DUPLICATE_ATTESTOR', path: 'defaultAdmissionRule.requireAttestationsBy[2]', message: /already listed at defaultAdmissionRule\.requireAttestationsBy\[0\]/ },
  {
    what: 'more than 200 attestor references',
    input: {
      defaultAdmissionRule: { ...requireAtt, requireAttestationsBy: Array.from({ length: 150 }, (_, i) => `projects/my-project/attestors/d${i}`) },
      clusterAdmissionRules: { 'us-east1-b.prod': { ...requireAtt, requireAttestationsBy: Array.from({ length: 51 }, (_, i) => `projects/my-project/attestors/c${i}`) } },
    },
    code: 'TOO_MANY_ATTESTORS',
    path: 'clusterAdmissionRules["us-east1-b.prod"].requireAttestationsBy[50]',
    message: /references 201 attestors; at most 200/,
  },
  // patterns
  { what: 'wildcard in the middle', input: base({ admissionWhitelistPatterns: [{ namePattern: 'gcr.io/a/*' }, { namePattern: 'k8s.gcr.io/**' }, { namePattern: 'gcr.io/p/n*x' }] }), code: 'INVALID_PATTERN', path: 'admissionWhitelistPatterns[2].namePattern', message: /^admissionWhitelistPatterns\[2\]\.namePattern: invalid exempt-image pattern "gcr\.io\/p\/n\*x"/ },
  { what: 'wildcard in the registry', input: base({ admissionWhitelistPatterns: [{ namePattern: 'gcr.i*' }] }), code: 'INVALID_PATTERN', path: 'admissionWhitelistPatterns[0].namePattern' },
  // map keys
  { what: 'cluster key without a location', input: base({ clusterAdmissionRules: { prod: allow } }), code: 'INVALID_KEY', path: 'clusterAdmissionRules["prod"]', message: /expected LOCATION\.CLUSTER_ID/ },
  { what: 'cluster key with a bad location', input: base({ clusterAdmissionRules: { 'us_central1.prod': allow } }), code: 'INVALID_KEY', path: 'clusterAdmissionRules["us_central1.prod"]', message: /not a region or zone/ },
  { what: 'cluster key with a bad cluster id', input: base({ clusterAdmissionRules: { 'us-central1-a.Prod_1': allow } }), code: 'INVALID_KEY', path: 'clusterAdmissionRules["us-central1-a.Prod_1"]', message: /not a GKE cluster name/ },
  { what: 'namespace key with capitals', input: base({ kubernetesNamespaceAdmissionRules: { Prod: allow } }), code: 'INVALID_KEY', path: 'kubernetesNamespaceAdmissionRules["Prod"]' },
  { what: 'empty namespace key', input: base({ kubernetesNamespaceAdmissionRules: { '': allow } }), code: 'INVALID_KEY', path: 'kubernetesNamespaceAdmissionRules[""]' },
  { what: 'service account key without a namespace', input: base({ kubernetesServiceAccountAdmissionRules: { deployer: allow } }), code: 'INVALID_KEY', path: 'kubernetesServiceAccountAdmissionRules["deployer"]', message: /NAMESPACE:SERVICE_ACCOUNT/ },
  { what: 'istio key of the wrong shape', input: base({ istioServiceIdentityAdmissionRules: { 'spiffe://d.goog/namespace/a/sa/b': allow } }), code: 'INVALID_KEY', path: 'istioServiceIdentityAdmissionRules["spiffe://d.goog/namespace/a/sa/b"]' },
  { what: 'more than one kind of rule map', input: base({ clusterAdmissionRules: { 'us-east1-b.prod': allow }, kubernetesNamespaceAdmissionRules: { prod: allow } }), code: 'MULTIPLE_RULE_MAPS', path: 'kubernetesNamespaceAdmissionRules', message: /clusterAdmissionRules, kubernetesNamespaceAdmissionRules are all non-empty/ },
  // other fields
  { what: 'name of another resource', input: base({ name: 'projects/my-project/attestors/a' }), code: 'INVALID_NAME', path: 'name', message: /expected projects\/PROJECT_ID\/policy/ },
  { what: 'name with a shell variable', input: base({ name: 'projects/$PROJECT_ID/policy' }), code: 'INVALID_NAME', path: 'name', message: /unexpanded shell variable/ },
  { what: 'updateTime not RFC 3339', input: base({ updateTime: '2024-05-01 12:00:00' }), code: 'INVALID_TIMESTAMP', path: 'updateTime' },
  { what: 'updateTime on a day that does not exist', input: base({ updateTime: '2023-02-29T00:00:00Z' }), code: 'INVALID_TIMESTAMP', path: 'updateTime' },
  // text
  { what: 'YAML syntax error', input: 'defaultAdmissionRule:\n  evaluationMode: [ALWAYS_ALLOW\n', code: 'SYNTAX', path: undefined, message: /^YAML syntax error at \d+:\d+: / },
  { what: 'YAML tab indentation', input: 'defaultAdmissionRule:\n\tevaluationMode: ALWAYS_ALLOW\n', code: 'SYNTAX', path: undefined, message: /at 2:1/ },
  { what: 'YAML duplicate key', input: 'defaultAdmissionRule:\n  evaluationMode: ALWAYS_ALLOW\n  evaluationMode: ALWAYS_DENY\n  enforcementMode: DRYRUN_AUDIT_LOG_ONLY\n', code: 'DUPLICATE_KEY', path: undefined, message: /^duplicate key at 3:3: / },
  { what: 'two YAML documents', input: `${SEED_000_DEFAULT}---\n${SEED_000_DEFAULT}`, code: 'SYNTAX', path: undefined },
  { what: 'JSON syntax error', input: '{"defaultAdmissionRule": {"evaluationMode": "ALWAYS_ALLOW",}}', code: 'SYNTAX', path: undefined, message: /^JSON syntax error at 1:60: / },
  { what: 'JSON duplicate key', input: '{\n  "etag": "a",\n  "etag": "b"\n}', code: 'DUPLICATE_KEY', path: undefined, message: /^duplicate key at 3:3: "etag"/ },
  { what: 'JSON trailing text', input: '{} {}', code: 'SYNTAX', path: undefined, message: /after the end/ },
  { what: 'JSON-looking YAML flow mapping', input: '{defaultAdmissionRule: {}}', code: 'SYNTAX', path: undefined, message: /at 1:2: .*quoted/ },
  { what: 'undefined YAML alias', input: 'defaultAdmissionRule: *rule\n', code: 'SYNTAX', path: undefined },
  { what: 'YAML alias bomb', input: aliasBomb(), code: 'TOO_MANY_ALIASES', path: undefined },
  { what: 'deep YAML nesting', input: `${'['.repeat(100_000)}`, code: 'TOO_DEEP', path: undefined, message: /deeper than 64/ },
  { what: 'deep YAML block nesting', input: `${'- '.repeat(100_000)}x\n`, code: 'TOO_DEEP', path: undefined },
  { what: 'deep JSON nesting', input: `{"a": ${'['.repeat(100_000)}`, code: 'TOO_DEEP', path: undefined },
  { what: 'over 4 MiB of text', input: `# ${'x'.repeat(4 * 1024 * 1024)}\n`, code: 'TOO_LARGE', path: undefined },
];

function aliasBomb(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (const [prev, cur] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g'], ['g', 'h'], ['h', 'i']]) {
    lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
  }
  return `${lines.join('\n')}\n`;
}

describe('each rejection rule', () => {
  it.each(REJECTIONS)('$what → $code', ({ input, code, path, message }) => {
    const problems = problemsOf(input);
    expectWellFormed(problems);
    expect(problems.map((p) => [p.code, p.path])).toEqual([[code, path]]);
    if (message) expect(problems[0]?.message).toMatch(message);
  });

  it('every problem code but INTERNAL and TOO_MANY_PROBLEMS has a case above', () => {
    const covered = new Set(REJECTIONS.map((r) => r.code));
    expect(POLICY_PROBLEM_CODES.filter((c) => !covered.has(c))).toEqual(['TOO_MANY_PROBLEMS', 'INTERNAL']);
  });
});

describe('all problems at once', () => {
  it('reports every problem of a badly broken policy in one go', () => {
    const problems = problemsOf({
      name: 'my-project',
      globalPolicyEvaluationMode: 'YES',
      admissionWhitelistPatterns: [{ namePattern: 'gcr.io/ok/*' }, { namePattern: 'gcr.io/p/n*x' }, { name_pattern: '' }],
      defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcement_mode: 'BLOCK', requireAttestationsBy: ['bad', ATT, ATT] },
      clusterAdmissionRules: { 'nowhere.prod': { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY', requireAttestationsBy: [ATT] } },
      kubernetesNamespaceAdmissionRules: { prod: {} },
      updateTime: 'now',
      colour: 'blue',
    });
    expectWellFormed(problems);
    // Unknown fields are found first, then the fields in schema order.
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['UNKNOWN_FIELD', 'colour'],
      ['INVALID_NAME', 'name'],
      ['INVALID_ENUM', 'globalPolicyEvaluationMode'],
      ['INVALID_PATTERN', 'admissionWhitelistPatterns[1].namePattern'],
      ['REQUIRED', 'admissionWhitelistPatterns[2].namePattern'],
      ['INVALID_ENUM', 'defaultAdmissionRule.enforcementMode'],
      ['INVALID_ATTESTOR_NAME', 'defaultAdmissionRule.requireAttestationsBy[0]'],
      ['DUPLICATE_ATTESTOR', 'defaultAdmissionRule.requireAttestationsBy[2]'],
      ['INVALID_KEY', 'clusterAdmissionRules["nowhere.prod"]'],
      ['ATTESTORS_NOT_ALLOWED', 'clusterAdmissionRules["nowhere.prod"].requireAttestationsBy'],
      ['REQUIRED', 'kubernetesNamespaceAdmissionRules["prod"].evaluationMode'],
      ['REQUIRED', 'kubernetesNamespaceAdmissionRules["prod"].enforcementMode'],
      ['MULTIPLE_RULE_MAPS', 'kubernetesNamespaceAdmissionRules'],
      ['INVALID_TIMESTAMP', 'updateTime'],
    ]);
  });

  it('reports several YAML errors with their positions', () => {
    const problems = problemsOf('a: 1\na: 2\nb: [\n');
    expect(problems.map((p) => p.code)).toEqual(['SYNTAX', 'DUPLICATE_KEY']);
    expect(problems[0]?.message).toMatch(/^YAML syntax error at 4:1: /);
    expect(problems[1]?.message).toBe('duplicate key at 2:1: "a" appears twice in one mapping');
  });

  it('caps the list at MAX_PROBLEMS and says how many were left out', () => {
    const problems = problemsOf(base({ admissionWhitelistPatterns: Array.from({ length: MAX_PROBLEMS + 500 }, () => ({ namePattern: 'gcr.i*' })) }));
    expect(problems).toHaveLength(MAX_PROBLEMS + 1);
    expect(problems.at(-1)).toMatchObject({ code: 'TOO_MANY_PROBLEMS' });
    expect(problems.at(-1)?.message).toContain('500 more');
  });
});

// ---------------------------------------------------------------------------------------------

describe('hostile input', () => {
  it('a megabyte of valid policy is read', () => {
    const patterns = Array.from({ length: 30_000 }, (_, i) => `- namePattern: gcr.io/my-project/image-${i}*`).join('\n');
    const text = `admissionWhitelistPatterns:\n${patterns}\n${SEED_000_DEFAULT}`;
    expect(text.length).toBeGreaterThan(1_000_000);
    expect(valid(text).admissionWhitelistPatterns).toHaveLength(30_000);
  });

  it('a megabyte of garbage is an error, not an exception', () => {
    for (const text of ['{'.repeat(1 << 20), '- '.repeat(1 << 19), `a: "${'\\'.repeat(1 << 20)}`, '\u0000'.repeat(1 << 20), `{"a": "${'x'.repeat(1 << 20)}`]) {
      const r = parsePolicyText(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.map((p) => p.code)).not.toContain('INTERNAL');
    }
  });

  it('deeply nested values given directly are rejected without recursion trouble', () => {
    let v: unknown = allow;
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(parsePolicyObject({ defaultAdmissionRule: v }).ok).toBe(false);
  });

  it('"__proto__" keys stay data', () => {
    const r = parsePolicyText('{"__proto__": {"polluted": true}, "defaultAdmissionRule": {"evaluationMode": 1, "enforcementMode": 1}}');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.map((p) => p.path)).toEqual(['__proto__']);
    const r2 = parsePolicyText('defaultAdmissionRule: {evaluationMode: 1, enforcementMode: 1}\nkubernetesNamespaceAdmissionRules:\n  __proto__: {evaluationMode: 1, enforcementMode: 1}\n');
    expect(!r2.ok && r2.error.map((p) => p.code)).toEqual(['INVALID_KEY']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('parsePolicyText never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        const r = parsePolicyText(text);
        if (!r.ok) expectWellFormed(r.error);
      }),
      { numRuns: 500 },
    );
  });

  it('parsePolicyText never throws on mangled policies', () => {
    const seeds = [SEED_000_POLICY, SEED_001_MULTIPLE, SEED_003_BROKEN, JSON.stringify(JSON.parse(JSON.stringify({ defaultAdmissionRule: requireAtt })), null, 2)];
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.nat(), fc.nat(), fc.string({ maxLength: 8 }), (seed, a, b, insert) => {
        const i = a % (seed.length + 1);
        const j = Math.min(seed.length, i + (b % 10));
        const r = parsePolicyText(seed.slice(0, i) + insert + seed.slice(j));
        if (!r.ok) expectWellFormed(r.error);
      }),
      { numRuns: 1000 },
    );
  });

  it('parsePolicyObject never throws on anything', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true, withBigInt: true }), (value) => {
        const r = parsePolicyObject(value);
        if (!r.ok) expectWellFormed(r.error);
      }),
      { numRuns: 1000 },
    );
  });

  it('parsePolicyObject never throws on policy-shaped nonsense', () => {
    const anyValue = fc.oneof(fc.anything(), fc.constantFrom('ALWAYS_ALLOW', 'REQUIRE_ATTESTATION', 2, 0, [], {}, [ATT], null));
    const rule = fc.dictionary(fc.constantFrom('evaluationMode', 'enforcementMode', 'requireAttestationsBy', 'evaluation_mode', 'x'), anyValue);
    const policy = fc.dictionary(
      fc.constantFrom('defaultAdmissionRule', 'default_admission_rule', 'admissionWhitelistPatterns', 'clusterAdmissionRules', 'kubernetesNamespaceAdmissionRules', 'globalPolicyEvaluationMode', 'name', 'updateTime', '__proto__', 'constructor'),
      fc.oneof(rule, fc.dictionary(fc.string(), rule), fc.array(fc.oneof(anyValue, fc.record({ namePattern: fc.string() }))), anyValue),
    );
    fc.assert(
      fc.property(policy, (value) => {
        const r = parsePolicyObject(value);
        if (!r.ok) expectWellFormed(r.error);
      }),
      { numRuns: 1000 },
    );
  });
});
