/**
 * Validating an already-decoded Binary Authorization project policy (from JSON.parse, a YAML
 * document or a gRPC-style client) the way Google's API does, and turning it into a typed Policy.
 * Reading a policy from text (YAML or JSON) is in parse-text.ts, which passes the decoded value on
 * to parsePolicyObject. Keeping the two apart keeps the yaml library out of the server, which only
 * validates decoded request bodies.
 *
 * Everything here treats its input as hostile: no input makes these functions throw, every problem
 * found is reported at once (up to MAX_PROBLEMS), and each problem carries a stable code, the field
 * path it is about, and a message that starts with that path. docs/policy.md lists the rules.
 */
import { describeError, err, ok, problem, type Problem, type Result } from '../result.js';
import {
  ENFORCEMENT_MODES,
  EVALUATION_MODES,
  GLOBAL_POLICY_EVALUATION_MODES,
  SPECIFIC_RULE_MAPS,
  type AdmissionRule,
  type AdmissionWhitelistPattern,
  type EnforcementMode,
  type GlobalPolicyEvaluationMode,
  type Policy,
  type SpecificRuleMap,
} from './model.js';
import { parseExemptPattern } from './pattern.js';

/**
 * Every code a policy Problem can carry, from parsePolicyObject or from parsePolicyText in
 * parse-text.ts (SYNTAX, DUPLICATE_KEY, TOO_LARGE, TOO_DEEP and TOO_MANY_ALIASES come only from the
 * text). docs/policy.md documents each one.
 */
export const POLICY_PROBLEM_CODES = [
  'SYNTAX',
  'DUPLICATE_KEY',
  'TOO_LARGE',
  'TOO_DEEP',
  'TOO_MANY_ALIASES',
  'TYPE',
  'UNKNOWN_FIELD',
  'DUPLICATE_FIELD',
  'INVALID_ENUM',
  'REQUIRED',
  'INVALID_NAME',
  'INVALID_TIMESTAMP',
  'INVALID_PATTERN',
  'INVALID_ATTESTOR_NAME',
  'DUPLICATE_ATTESTOR',
  'TOO_MANY_ATTESTORS',
  'ATTESTORS_NOT_ALLOWED',
  'INVALID_KEY',
  'MULTIPLE_RULE_MAPS',
  'TOO_MANY_PROBLEMS',
  'INTERNAL',
] as const;
export type PolicyProblemCode = (typeof POLICY_PROBLEM_CODES)[number];

/** Attestor references per policy (reference §8). */
export const MAX_ATTESTOR_REFERENCES = 200;
/** At most this many problems are listed; a final TOO_MANY_PROBLEMS entry says how many were left out. */
export const MAX_PROBLEMS = 1000;

// ---------------------------------------------------------------------------------------------
// Names and keys

// Google requires 6-30 characters; Tollgate also takes shorter ids (tutorials and gcloud tests use `demo`).
const PROJECT_ID = '[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?';
/** Legacy domain-scoped project ids: `example.com:my-project`. */
const DNS_LABEL_SRC = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN_PROJECT_ID = `${DNS_LABEL_SRC}(?:\\.${DNS_LABEL_SRC})+:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?`;
const PROJECT = `(?:${PROJECT_ID}|${DOMAIN_PROJECT_ID})`;
/** Attestor ids: letters, digits, `_` and `-`, 1–100 characters. */
const ATTESTOR_ID = '[A-Za-z0-9_-]{1,100}';
const ATTESTOR_NAME = new RegExp(`^projects/${PROJECT}/attestors/${ATTESTOR_ID}$`);
const PROJECT_ONLY = new RegExp(`^${PROJECT}$`);
const POLICY_NAME = new RegExp(`^projects/(?:${PROJECT}|[1-9][0-9]{0,18})/policy$`);

/** `projects/PROJECT_ID/attestors/ATTESTOR_ID` with the grammars documented in docs/policy.md. */
export function isValidAttestorName(name: string): boolean {
  return typeof name === 'string' && name.length <= 400 && ATTESTOR_NAME.test(name);
}

/** JSON-quotes untrusted text for a message, cut to a readable length. Shared with parse-text.ts. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);
}

function attestorNameProblem(name: string): string {
  const expected = 'expected projects/PROJECT_ID/attestors/ATTESTOR_ID';
  if (name.includes('$')) return `${quote(name)} contains an unexpanded shell variable; ${expected}`;
  if (name === '') return `empty attestor name; ${expected}`;
  const parts = name.split('/');
  if (parts.length === 1) return `${quote(name)} is a bare attestor id; ${expected}`;
  if (parts.length !== 4 || parts[0] !== 'projects' || parts[2] !== 'attestors') {
    return `${quote(name)} is not an attestor resource name; ${expected}`;
  }
  const project = parts[1] ?? '';
  if (!PROJECT_ONLY.test(project)) {
    return `${quote(project)} is not a valid project id (1-30 lowercase letters, digits or hyphens, starting with a letter, not ending with a hyphen)`;
  }
  return `${quote(parts[3] ?? '')} is not a valid attestor id (1-100 letters, digits, '_' or '-')`;
}

const DNS_LABEL = new RegExp(`^${DNS_LABEL_SRC}$`);

function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

function isDnsSubdomain(s: string): boolean {
  return s.length >= 1 && s.length <= 253 && s.split('.').every(isDnsLabel);
}

const REGION = /^[a-z]+-[a-z]+[0-9]+$/;
const ZONE = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;
const GKE_CLUSTER = /^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

/** Returns why `key` is not a valid key for `map`, or undefined when it is. */
function ruleKeyProblem(map: SpecificRuleMap, key: string): string | undefined {
  const q = quote(key);
  switch (map) {
    case 'clusterAdmissionRules': {
      const expected = 'expected LOCATION.CLUSTER_ID, e.g. us-central1-a.prod-cluster';
      const dot = key.indexOf('.');
      if (dot < 0) return `${q} has no '.'; ${expected}`;
      const location = key.slice(0, dot);
      const cluster = key.slice(dot + 1);
      if (!REGION.test(location) && !ZONE.test(location)) {
        return `${quote(location)} is not a region or zone (like us-central1 or us-central1-a); ${expected}`;
      }
      if (!GKE_CLUSTER.test(cluster)) {
        return `${quote(cluster)} is not a GKE cluster name (1-40 lowercase letters, digits or '-', starting with a letter, not ending with '-'); ${expected}`;
      }
      return undefined;
    }
    case 'kubernetesNamespaceAdmissionRules':
      return isDnsSubdomain(key)
        ? undefined
        : `${q} is not a Kubernetes namespace (lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit)`;
    case 'kubernetesServiceAccountAdmissionRules': {
      const expected = 'expected NAMESPACE:SERVICE_ACCOUNT, e.g. default:deployer';
      const parts = key.split(':');
      if (parts.length !== 2) return `${q} is not of the form NAMESPACE:SERVICE_ACCOUNT; ${expected}`;
      const [ns = '', sa = ''] = parts;
      if (!isDnsSubdomain(ns)) return `${quote(ns)} is not a Kubernetes namespace; ${expected}`;
      if (!isDnsSubdomain(sa)) return `${quote(sa)} is not a Kubernetes service account name; ${expected}`;
      return undefined;
    }
    case 'istioServiceIdentityAdmissionRules': {
      const expected = 'expected spiffe://DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT or DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT';
      const rest = key.startsWith('spiffe://') ? key.slice('spiffe://'.length) : key;
      const parts = rest.split('/');
      if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return `${q} is not a service identity; ${expected}`;
      const [domain = '', , ns = '', , sa = ''] = parts;
      if (!TRUST_DOMAIN.test(domain)) return `${quote(domain)} is not a trust domain; ${expected}`;
      if (!isDnsSubdomain(ns)) return `${quote(ns)} is not a Kubernetes namespace; ${expected}`;
      if (!isDnsSubdomain(sa)) return `${quote(sa)} is not a Kubernetes service account name; ${expected}`;
      return undefined;
    }
  }
}

const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))$/;

function isRfc3339(s: string): boolean {
  const m = RFC3339.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offH, offM] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  if (year === undefined || month === undefined || day === undefined) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return (
    year >= 1 &&
    days !== undefined &&
    day >= 1 &&
    day <= days &&
    (hour ?? 0) <= 23 &&
    (minute ?? 0) <= 59 &&
    (second ?? 0) <= 59 &&
    (offH ?? 0) <= 23 &&
    (offM ?? 0) <= 59
  );
}

// ---------------------------------------------------------------------------------------------
// Value → Policy

const POLICY_FIELDS = [
  'name',
  'description',
  'globalPolicyEvaluationMode',
  'admissionWhitelistPatterns',
  'defaultAdmissionRule',
  ...SPECIFIC_RULE_MAPS,
  'updateTime',
  'etag',
] as const;
const RULE_FIELDS = ['evaluationMode', 'enforcementMode', 'requireAttestationsBy'] as const;
const PATTERN_FIELDS = ['namePattern'] as const;

type Level = 'policy' | 'rule' | 'pattern';
const LEVEL_NAMES: Record<Level, string> = {
  policy: 'the policy',
  rule: 'an admission rule',
  pattern: 'an admissionWhitelistPatterns entry',
};
const LEVEL_FIELDS: Record<Level, readonly string[]> = { policy: POLICY_FIELDS, rule: RULE_FIELDS, pattern: PATTERN_FIELDS };

/** Names people reach for that Google does not use. */
const FIELD_ALIASES: Readonly<Record<string, string>> = {
  admissionallowlistpatterns: 'admissionWhitelistPatterns',
  allowlistpatterns: 'admissionWhitelistPatterns',
  whitelistpatterns: 'admissionWhitelistPatterns',
  exemptimages: 'admissionWhitelistPatterns',
  allowpattern: 'namePattern',
  pattern: 'namePattern',
  namespaceadmissionrules: 'kubernetesNamespaceAdmissionRules',
  serviceaccountadmissionrules: 'kubernetesServiceAccountAdmissionRules',
  attestors: 'requireAttestationsBy',
};

function snakeCase(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_\s]/g, '');
}

/** Levenshtein distance, giving up (returning limit + 1) once it exceeds `limit`. */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      best = Math.min(best, v);
    }
    if (best > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length] ?? limit + 1;
}

function closest(raw: string, candidates: readonly string[]): string | undefined {
  const n = normalize(raw);
  if (n.length === 0 || n.length > 200) return undefined;
  const limit = n.length >= 8 ? 2 : 1;
  let best: string | undefined;
  let bestD = limit + 1;
  for (const c of candidates) {
    const d = distance(n, normalize(c), limit);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

function unknownFieldHint(key: string, level: Level): string {
  const own = LEVEL_FIELDS[level];
  const alias = FIELD_ALIASES[normalize(key)];
  if (alias !== undefined && own.includes(alias)) return `; did you mean '${alias}'?`;
  const near = closest(key, own);
  if (near !== undefined) return `; did you mean '${near}'?`;
  if (level === 'policy') {
    const rule = closest(key, RULE_FIELDS);
    if (rule !== undefined) {
      return `; '${rule}' belongs inside an admission rule — indent it under defaultAdmissionRule (or a rule map entry)`;
    }
    if (closest(key, PATTERN_FIELDS) !== undefined) {
      return `; 'namePattern' belongs inside an admissionWhitelistPatterns entry (- namePattern: …)`;
    }
  } else {
    const top = closest(key, POLICY_FIELDS) ?? (alias !== undefined && POLICY_FIELDS.some((f) => f === alias) ? alias : undefined);
    if (top !== undefined) return `; '${top}' belongs at the top level of the policy — check the indentation`;
  }
  return `; known fields: ${own.join(', ')}`;
}

/** How a message names the type of an untrusted value (`a list`, `the number 3`, …). Shared with parse-text.ts. */
export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'number':
      return `the number ${String(v)}`;
    case 'boolean':
      return `the boolean ${String(v)}`;
    case 'object':
      return isMapping(v) ? 'a mapping' : 'an object';
    default:
      return `a ${typeof v}`;
  }
}

function isMapping(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function fieldPath(base: string, field: string): string {
  return base === '' ? field : `${base}.${field}`;
}

class Collector {
  readonly problems: Problem[] = [];
  private dropped = 0;
  /** Paths of every requireAttestationsBy entry, in document order. */
  readonly attestorRefs: string[] = [];

  /** True once no further problem will be listed; callers may skip building costly messages. */
  get full(): boolean {
    return this.problems.length >= MAX_PROBLEMS;
  }

  add(code: PolicyProblemCode, path: string, detail: string): void {
    if (this.problems.length >= MAX_PROBLEMS) {
      this.dropped++;
      return;
    }
    this.problems.push(problem(code, `${path === '' ? 'policy' : path}: ${detail}`, path === '' ? undefined : path));
  }

  finish(): Problem[] {
    return this.dropped === 0
      ? this.problems
      : [...this.problems, problem('TOO_MANY_PROBLEMS', `policy: ${this.dropped} more problems not shown`)];
  }
}

const ABSENT = Symbol('absent');
type Fields = Map<string, unknown>;

/**
 * Reads the own fields of a mapping in either spelling, reporting unknown fields and fields given
 * in both spellings. Returns canonical (camelCase) name → value; null values are kept (null means
 * "not set" in proto3 JSON, callers decide).
 */
function readFields(obj: Record<string, unknown>, path: string, level: Level, c: Collector): Fields {
  const known = LEVEL_FIELDS[level];
  const byName = new Map<string, string>();
  for (const f of known) {
    byName.set(f, f);
    byName.set(snakeCase(f), f);
  }
  const out: Fields = new Map();
  const spelled = new Map<string, string>();
  for (const key of Object.keys(obj)) {
    const canonical = byName.get(key);
    if (canonical === undefined) {
      const hint = c.full ? '' : unknownFieldHint(key, level);
      c.add('UNKNOWN_FIELD', fieldPath(path, key), `unknown field in ${LEVEL_NAMES[level]}${hint}`);
      continue;
    }
    const earlier = spelled.get(canonical);
    if (earlier !== undefined) {
      c.add(
        'DUPLICATE_FIELD',
        fieldPath(path, canonical),
        `given twice, as '${earlier}' and as '${key}'; use one spelling (camelCase '${canonical}' is preferred)`,
      );
      if (key !== canonical) continue; // keep the camelCase value
    }
    spelled.set(canonical, key);
    out.set(canonical, obj[key]);
  }
  return out;
}

function get(fields: Fields, name: string): unknown {
  const v = fields.get(name);
  return v === undefined || v === null ? ABSENT : v;
}

function optionalString(fields: Fields, name: string, path: string, c: Collector): string | undefined {
  const v = get(fields, name);
  if (v === ABSENT) return undefined;
  if (typeof v !== 'string') {
    c.add('TYPE', fieldPath(path, name), `expected a string, got ${describeType(v)}`);
    return undefined;
  }
  return v === '' ? undefined : v; // proto3: an empty string is the same as an absent one
}

const INVALID = Symbol('invalid');

/** Reads an enum given by name or by proto number. ABSENT when missing or null. */
function readEnum<T extends string>(
  fields: Fields,
  name: string,
  path: string,
  values: readonly T[],
  c: Collector,
): T | typeof ABSENT | typeof INVALID {
  const v = get(fields, name);
  if (v === ABSENT) return ABSENT;
  const p = fieldPath(path, name);
  if (typeof v === 'number') {
    const named = Number.isInteger(v) ? values[v] : undefined;
    if (named !== undefined) return named;
    c.add('INVALID_ENUM', p, `${String(v)} is not a valid enum number; use 0-${values.length - 1} or a name (${values.join(', ')})`);
    return INVALID;
  }
  if (typeof v !== 'string') {
    c.add('TYPE', p, `expected one of ${values.filter((x) => !x.endsWith('_UNSPECIFIED')).join(', ')}, got ${describeType(v)}`);
    return INVALID;
  }
  const exact = values.find((x) => x === v);
  if (exact !== undefined) return exact;
  const choices = values.filter((x) => !x.endsWith('_UNSPECIFIED')).join(', ');
  const near = v.length <= 100 ? (values.find((x) => x.toLowerCase() === v.toLowerCase()) ?? closest(v, values)) : undefined;
  c.add(
    'INVALID_ENUM',
    p,
    `${quote(v)} is not a valid value` +
      (near !== undefined ? `; did you mean ${near}?` : `; expected one of ${choices}`),
  );
  return INVALID;
}

function parseRule(value: unknown, path: string, c: Collector): AdmissionRule | undefined {
  if (!isMapping(value)) {
    c.add('TYPE', path, `expected an admission rule (a mapping with evaluationMode and enforcementMode), got ${describeType(value)}`);
    return undefined;
  }
  const fields = readFields(value, path, 'rule', c);
  let valid = true;

  const evaluation = readEnum(fields, 'evaluationMode', path, EVALUATION_MODES, c);
  if (evaluation === ABSENT || evaluation === 'EVALUATION_MODE_UNSPECIFIED') {
    c.add('REQUIRED', fieldPath(path, 'evaluationMode'), 'required; set ALWAYS_ALLOW, REQUIRE_ATTESTATION or ALWAYS_DENY');
    valid = false;
  } else if (evaluation === INVALID) {
    valid = false;
  }

  const enforcement = readEnum(fields, 'enforcementMode', path, ENFORCEMENT_MODES, c);
  if (enforcement === ABSENT || enforcement === 'ENFORCEMENT_MODE_UNSPECIFIED') {
    c.add('REQUIRED', fieldPath(path, 'enforcementMode'), 'required; set ENFORCED_BLOCK_AND_AUDIT_LOG or DRYRUN_AUDIT_LOG_ONLY');
    valid = false;
  } else if (enforcement === INVALID) {
    valid = false;
  }

  const attestors: string[] = [];
  const listPath = fieldPath(path, 'requireAttestationsBy');
  const list = get(fields, 'requireAttestationsBy');
  if (list !== ABSENT) {
    if (!Array.isArray(list)) {
      c.add('TYPE', listPath, `expected a list of attestor names, got ${describeType(list)}`);
      valid = false;
    } else {
      const seen = new Map<string, number>();
      list.forEach((item: unknown, i) => {
        const p = `${listPath}[${i}]`;
        c.attestorRefs.push(p);
        if (typeof item !== 'string') {
          c.add('TYPE', p, `expected an attestor name (projects/PROJECT_ID/attestors/ATTESTOR_ID), got ${describeType(item)}`);
          valid = false;
          return;
        }
        if (!isValidAttestorName(item)) {
          c.add('INVALID_ATTESTOR_NAME', p, attestorNameProblem(item));
          valid = false;
          return;
        }
        const first = seen.get(item);
        if (first !== undefined) {
          c.add('DUPLICATE_ATTESTOR', p, `${quote(item)} is already listed at ${listPath}[${first}]`);
          valid = false;
          return;
        }
        seen.set(item, i);
        attestors.push(item);
      });
    }
  }

  const listed = Array.isArray(list) ? list.length : 0;
  if (evaluation === 'REQUIRE_ATTESTATION' && listed === 0 && (list === ABSENT || Array.isArray(list))) {
    c.add('REQUIRED', listPath, 'REQUIRE_ATTESTATION needs at least one attestor (projects/PROJECT_ID/attestors/ATTESTOR_ID)');
    valid = false;
  }
  if ((evaluation === 'ALWAYS_ALLOW' || evaluation === 'ALWAYS_DENY') && listed > 0) {
    c.add('ATTESTORS_NOT_ALLOWED', listPath, `must be empty when evaluationMode is ${evaluation}; attestors only apply to REQUIRE_ATTESTATION`);
    valid = false;
  }

  if (!valid || typeof evaluation !== 'string' || typeof enforcement !== 'string') return undefined;
  const enforcementMode = enforcement as EnforcementMode;
  if (evaluation === 'REQUIRE_ATTESTATION') {
    const [first, ...rest] = attestors;
    if (first === undefined) return undefined;
    return { evaluationMode: evaluation, enforcementMode, requireAttestationsBy: [first, ...rest] };
  }
  if (evaluation === 'ALWAYS_ALLOW' || evaluation === 'ALWAYS_DENY') return { evaluationMode: evaluation, enforcementMode };
  return undefined;
}

function parsePatterns(value: unknown, path: string, c: Collector): AdmissionWhitelistPattern[] {
  if (value === ABSENT) return [];
  if (!Array.isArray(value)) {
    c.add('TYPE', path, `expected a list of {namePattern: …} entries, got ${describeType(value)}`);
    return [];
  }
  const out: AdmissionWhitelistPattern[] = [];
  value.forEach((item: unknown, i) => {
    const p = `${path}[${i}]`;
    if (typeof item === 'string') {
      c.add('TYPE', p, `expected a mapping {namePattern: ${quote(item)}}, got a bare string`);
      return;
    }
    if (!isMapping(item)) {
      c.add('TYPE', p, `expected a mapping with namePattern, got ${describeType(item)}`);
      return;
    }
    const fields = readFields(item, p, 'pattern', c);
    const raw = get(fields, 'namePattern');
    const np = fieldPath(p, 'namePattern');
    if (raw === ABSENT || raw === '') {
      c.add('REQUIRED', np, 'required; the image name or pattern to exempt, e.g. gcr.io/my-project/*');
      return;
    }
    if (typeof raw !== 'string') {
      c.add('TYPE', np, `expected a string, got ${describeType(raw)}`);
      return;
    }
    const parsed = parseExemptPattern(raw);
    if (!parsed.ok) {
      c.add('INVALID_PATTERN', np, parsed.error.message);
      return;
    }
    out.push({ namePattern: raw });
  });
  return out;
}

function parseRuleMap(value: unknown, map: SpecificRuleMap, c: Collector): Record<string, AdmissionRule> {
  if (value === ABSENT) return {};
  if (!isMapping(value)) {
    c.add('TYPE', map, `expected a mapping from key to admission rule, got ${describeType(value)}`);
    return {};
  }
  const entries: [string, AdmissionRule][] = [];
  for (const key of Object.keys(value)) {
    const p = `${map}[${JSON.stringify(key)}]`;
    const keyProblem = ruleKeyProblem(map, key);
    if (keyProblem !== undefined) c.add('INVALID_KEY', p, keyProblem);
    const rule = parseRule(value[key], p, c);
    if (rule !== undefined && keyProblem === undefined) entries.push([key, rule]);
  }
  return Object.fromEntries(entries);
}

/**
 * Validates a decoded policy (from JSON.parse, a YAML document or a gRPC-style client) and returns
 * the typed Policy, or every problem found.
 */
export function parsePolicyObject(value: unknown): Result<Policy, Problem[]> {
  try {
    return validatePolicy(value);
  } catch (e) {
    return err([problem('INTERNAL', `policy: could not be validated: ${describeError(e)}`)]);
  }
}

function validatePolicy(value: unknown): Result<Policy, Problem[]> {
  const c = new Collector();
  if (value === null || value === undefined) {
    return err([problem('TYPE', 'policy: the document is empty; expected a mapping with at least defaultAdmissionRule')]);
  }
  if (!isMapping(value)) {
    return err([
      problem('TYPE', `policy: expected a mapping with defaultAdmissionRule and the other policy fields, got ${describeType(value)}`),
    ]);
  }
  const fields = readFields(value, '', 'policy', c);

  const name = optionalString(fields, 'name', '', c);
  if (name !== undefined && !POLICY_NAME.test(name)) {
    c.add(
      'INVALID_NAME',
      'name',
      `${quote(name)} is not a policy name; expected projects/PROJECT_ID/policy` +
        (name.includes('$') ? ' (it contains an unexpanded shell variable)' : ''),
    );
  }
  const description = optionalString(fields, 'description', '', c);

  const gpem = readEnum(fields, 'globalPolicyEvaluationMode', '', GLOBAL_POLICY_EVALUATION_MODES, c);
  const globalPolicyEvaluationMode: GlobalPolicyEvaluationMode =
    gpem === ABSENT || gpem === INVALID ? 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED' : gpem;

  const admissionWhitelistPatterns = parsePatterns(get(fields, 'admissionWhitelistPatterns'), 'admissionWhitelistPatterns', c);

  let defaultAdmissionRule: AdmissionRule | undefined;
  const rawDefault = fields.get('defaultAdmissionRule');
  if (rawDefault === undefined) {
    c.add('REQUIRED', 'defaultAdmissionRule', 'required; the rule for images no exemption or specific rule covers');
  } else if (rawDefault === null) {
    c.add(
      'REQUIRED',
      'defaultAdmissionRule',
      'required, but it is empty here; its fields (evaluationMode, enforcementMode, …) must be indented under it',
    );
  } else {
    defaultAdmissionRule = parseRule(rawDefault, 'defaultAdmissionRule', c);
  }

  const maps = {} as Record<SpecificRuleMap, Record<string, AdmissionRule>>;
  const populated: SpecificRuleMap[] = [];
  for (const map of SPECIFIC_RULE_MAPS) {
    const raw = get(fields, map);
    maps[map] = parseRuleMap(raw, map, c);
    if (isMapping(raw) && Object.keys(raw).length > 0) populated.push(map);
  }
  for (const extra of populated.slice(1)) {
    c.add(
      'MULTIPLE_RULE_MAPS',
      extra,
      `only one kind of specific rule may be set, but ${populated.join(', ')} are all non-empty; keep one`,
    );
  }

  const updateTime = optionalString(fields, 'updateTime', '', c);
  if (updateTime !== undefined && !isRfc3339(updateTime)) {
    c.add('INVALID_TIMESTAMP', 'updateTime', `${quote(updateTime)} is not an RFC 3339 timestamp like 2024-05-01T12:00:00Z`);
  }
  const etag = optionalString(fields, 'etag', '', c);

  if (c.attestorRefs.length > MAX_ATTESTOR_REFERENCES) {
    c.add(
      'TOO_MANY_ATTESTORS',
      c.attestorRefs[MAX_ATTESTOR_REFERENCES] ?? '',
      `the policy references ${c.attestorRefs.length} attestors; at most ${MAX_ATTESTOR_REFERENCES} are allowed`,
    );
  }

  const problems = c.finish();
  if (problems.length > 0 || defaultAdmissionRule === undefined) {
    return err(problems.length > 0 ? problems : [problem('INTERNAL', 'policy: invalid')]);
  }
  return ok({
    ...(name === undefined ? {} : { name }),
    ...(description === undefined ? {} : { description }),
    globalPolicyEvaluationMode,
    admissionWhitelistPatterns,
    defaultAdmissionRule,
    clusterAdmissionRules: maps.clusterAdmissionRules,
    kubernetesNamespaceAdmissionRules: maps.kubernetesNamespaceAdmissionRules,
    kubernetesServiceAccountAdmissionRules: maps.kubernetesServiceAccountAdmissionRules,
    istioServiceIdentityAdmissionRules: maps.istioServiceIdentityAdmissionRules,
    ...(updateTime === undefined ? {} : { updateTime }),
    ...(etag === undefined ? {} : { etag }),
  });
}
