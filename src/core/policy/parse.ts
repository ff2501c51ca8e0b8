/**
 * Reading a Binary Authorization project policy from text (YAML or JSON) or from an already-decoded
 * value, and validating it the way Google's API does.
 *
 * Everything here treats its input as hostile: no input makes these functions throw, every problem
 * found is reported at once (up to MAX_PROBLEMS), and each problem carries a stable code, the field
 * path it is about, and a message that starts with that path. docs/policy.md lists the rules.
 */
import { isScalar, parseDocument, visit, type Document } from 'yaml';
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

/** Every code a policy Problem can carry (docs/policy.md documents each one). */
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

/** Longest policy text accepted (characters). Google publishes no limit; this is gRPC's default 4 MiB. */
export const MAX_POLICY_TEXT_LENGTH = 4 * 1024 * 1024;
/** Attestor references per policy (reference §8). */
export const MAX_ATTESTOR_REFERENCES = 200;
/** Deepest nesting of `[`/`{` accepted in the text; a valid policy needs 4. */
export const MAX_NESTING_DEPTH = 64;
/** YAML alias expansions allowed while building the value (guards against "billion laughs"). */
export const MAX_YAML_ALIASES = 100;
/** At most this many problems are listed; a final TOO_MANY_PROBLEMS entry says how many were left out. */
export const MAX_PROBLEMS = 1000;

// ---------------------------------------------------------------------------------------------
// Text → value

/**
 * Parses a policy file: JSON when the first non-blank character is `{`, YAML 1.2 otherwise. Syntax
 * errors and duplicate keys are reported with `line:column`; a syntactically valid document is then
 * validated by {@link parsePolicyObject}.
 */
export function parsePolicyText(text: string): Result<Policy, Problem[]> {
  try {
    if (typeof text !== 'string') {
      return err([problem('TYPE', `policy: expected text, got ${describeType(text)}`)]);
    }
    if (text.length > MAX_POLICY_TEXT_LENGTH) {
      return err([
        problem('TOO_LARGE', `policy: the text is ${text.length} characters long; the limit is ${MAX_POLICY_TEXT_LENGTH}`),
      ]);
    }
    const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
    const decoded = body.trimStart().startsWith('{') ? parseJsonText(body) : parseYamlText(body);
    if (!decoded.ok) return decoded;
    return parsePolicyObject(decoded.value);
  } catch (e) {
    return err([problem('INTERNAL', `policy: could not be read: ${describeError(e)}`)]);
  }
}

function positionOf(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  const end = Math.max(0, Math.min(offset, text.length));
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `${line}:${end - lineStart + 1}`;
}

function parseYamlText(text: string): Result<unknown, Problem[]> {
  const tooDeep = flowNestingProblem(text);
  if (tooDeep) return err([tooDeep]);
  const doc = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    merge: false,
    uniqueKeys: false, // the library's check is quadratic in the size of a mapping; see duplicateKeyProblems
    prettyErrors: false,
    strict: true,
    stringKeys: true,
  });
  let duplicates: Problem[];
  try {
    duplicates = duplicateKeyProblems(doc, text);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    duplicates = [problem('TOO_DEEP', 'policy: the YAML is nested too deeply to read')];
  }
  if (doc.errors.length > 0) {
    const problems = doc.errors
      .slice(0, 20)
      .map((e) =>
        /call stack/i.test(e.message)
          ? problem('TOO_DEEP', `YAML at ${positionOf(text, e.pos[0])} is nested too deeply to read`)
          : problem('SYNTAX', `YAML syntax error at ${positionOf(text, e.pos[0])}: ${e.message}`),
      );
    if (doc.errors.length > 20) {
      problems.push(problem('TOO_MANY_PROBLEMS', `policy: ${doc.errors.length - 20} more YAML errors not shown`));
    }
    return err([...problems, ...duplicates]);
  }
  if (duplicates.length > 0) return err(duplicates);
  try {
    return ok(doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown);
  } catch (e) {
    if (e instanceof ReferenceError && /excessive alias count/i.test(e.message)) {
      return err([
        problem(
          'TOO_MANY_ALIASES',
          `policy: the YAML expands more than ${MAX_YAML_ALIASES} aliases (*name); write the values out instead`,
        ),
      ]);
    }
    if (e instanceof RangeError) return err([problem('TOO_DEEP', 'policy: the YAML is nested too deeply to read')]);
    return err([problem('SYNTAX', `YAML syntax error: ${describeError(e)}`)]);
  }
}

/** Duplicate keys in any mapping of the document, found in linear time. */
function duplicateKeyProblems(doc: Document, text: string): Problem[] {
  const problems: Problem[] = [];
  let count = 0;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        const id = isScalar(key) ? `s:${String(key.value)}` : `n:${String(key)}`;
        if (!seen.has(id)) {
          seen.add(id);
          continue;
        }
        count++;
        if (problems.length < 20) {
          const at = isScalar(key) && key.range ? key.range[0] : 0;
          const shown = isScalar(key) ? quote(String(key.value)) : 'a key';
          problems.push(problem('DUPLICATE_KEY', `duplicate key at ${positionOf(text, at)}: ${shown} appears twice in one mapping`));
        }
      }
    },
  });
  if (count > problems.length) {
    problems.push(problem('TOO_MANY_PROBLEMS', `policy: ${count - problems.length} more duplicate keys not shown`));
  }
  return problems;
}

/**
 * The yaml library composes flow collections recursively, so refuse absurd `[[[[…` nesting before
 * handing the text over. Brackets inside quoted or plain scalars are counted too, which can only
 * over-estimate; no real policy comes near the limit.
 */
function flowNestingProblem(text: string): Problem | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x23 /* # */ && (i === 0 || /\s/.test(text.charAt(i - 1)))) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > MAX_NESTING_DEPTH) {
        return problem('TOO_DEEP', `YAML nesting at ${positionOf(text, i)} is deeper than ${MAX_NESTING_DEPTH} levels`);
      }
    } else if ((c === 0x5d /* ] */ || c === 0x7d) /* } */ && depth > 0) {
      depth--;
    }
  }
  return undefined;
}

class JsonSyntaxError {
  constructor(
    readonly code: 'SYNTAX' | 'TOO_DEEP',
    readonly message: string,
    readonly offset: number,
  ) {}
}

const JSON_NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * A small strict JSON reader (RFC 8259). Unlike JSON.parse it reports duplicate keys, gives
 * line:column positions and bounds the nesting depth.
 */
class JsonReader {
  private pos = 0;
  readonly duplicates: Problem[] = [];
  duplicateCount = 0;

  constructor(private readonly text: string) {}

  read(): unknown {
    const value = this.value(0);
    this.space();
    if (this.pos < this.text.length) this.fail('unexpected text after the end of the JSON value');
    return value;
  }

  private fail(message: string, at = this.pos, code: 'SYNTAX' | 'TOO_DEEP' = 'SYNTAX'): never {
    throw new JsonSyntaxError(code, message, at);
  }

  private space(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  private describeHere(): string {
    if (this.pos >= this.text.length) return 'end of input';
    return `'${this.text.charAt(this.pos)}'`;
  }

  private value(depth: number): unknown {
    this.space();
    const t = this.text;
    const c = t.charAt(this.pos);
    if (c === '{' || c === '[') {
      if (depth >= MAX_NESTING_DEPTH) this.fail(`nesting is deeper than ${MAX_NESTING_DEPTH} levels`, this.pos, 'TOO_DEEP');
      return c === '{' ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) {
      JSON_NUMBER.lastIndex = this.pos;
      const m = JSON_NUMBER.exec(t);
      if (!m) this.fail('malformed number');
      this.pos += m[0].length;
      return Number(m[0]);
    }
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (t.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(`unexpected ${this.describeHere()}; expected a JSON value`);
  }

  private object(depth: number): Record<string, unknown> {
    this.pos++; // {
    const entries: [string, unknown][] = [];
    const seen = new Set<string>();
    this.space();
    if (this.text.charAt(this.pos) === '}') {
      this.pos++;
      return {};
    }
    for (;;) {
      this.space();
      if (this.text.charAt(this.pos) !== '"') this.fail(`unexpected ${this.describeHere()}; expected a "quoted" key`);
      const keyAt = this.pos;
      const key = this.string();
      if (seen.has(key)) {
        this.duplicateCount++;
        if (this.duplicates.length < 20) this.duplicates.push(
          problem('DUPLICATE_KEY', `duplicate key at ${positionOf(this.text, keyAt)}: ${JSON.stringify(key)} appears twice in one object`),
        );
      }
      seen.add(key);
      this.space();
      if (this.text.charAt(this.pos) !== ':') this.fail(`unexpected ${this.describeHere()}; expected ':'`);
      this.pos++;
      entries.push([key, this.value(depth)]);
      this.space();
      const c = this.text.charAt(this.pos);
      this.pos++;
      if (c === '}') break;
      if (c !== ',') this.fail(`unexpected ${c === '' ? 'end of input' : `'${c}'`}; expected ',' or '}'`, this.pos - 1);
    }
    // fromEntries defines own properties, so a "__proto__" key stays data.
    return Object.fromEntries(entries);
  }

  private array(depth: number): unknown[] {
    this.pos++; // [
    const out: unknown[] = [];
    this.space();
    if (this.text.charAt(this.pos) === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.space();
      const c = this.text.charAt(this.pos);
      this.pos++;
      if (c === ']') break;
      if (c !== ',') this.fail(`unexpected ${c === '' ? 'end of input' : `'${c}'`}; expected ',' or ']'`, this.pos - 1);
    }
    return out;
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    let i = start + 1;
    let escaped = false;
    for (;;) {
      if (i >= t.length) this.fail('unterminated string', start);
      const c = t.charCodeAt(i);
      if (c === 0x22 /* " */) break;
      if (c < 0x20) this.fail('control character in a string (escape it)', i);
      if (c === 0x5c /* \ */) {
        escaped = true;
        i += 2;
      } else {
        i++;
      }
    }
    this.pos = i + 1;
    if (!escaped) return t.slice(start + 1, i);
    try {
      return JSON.parse(t.slice(start, i + 1)) as string;
    } catch {
      return this.fail('invalid escape sequence in a string', start);
    }
  }
}

function parseJsonText(text: string): Result<unknown, Problem[]> {
  const reader = new JsonReader(text);
  try {
    const value = reader.read();
    if (reader.duplicateCount > reader.duplicates.length) {
      reader.duplicates.push(
        problem('TOO_MANY_PROBLEMS', `policy: ${reader.duplicateCount - reader.duplicates.length} more duplicate keys not shown`),
      );
    }
    if (reader.duplicates.length > 0) return err(reader.duplicates);
    return ok(value);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      const what = e.code === 'TOO_DEEP' ? 'JSON' : 'JSON syntax error';
      const hint = e.code === 'SYNTAX' ? " (text that starts with '{' is read as JSON)" : '';
      return err([...reader.duplicates, problem(e.code, `${what} at ${positionOf(text, e.offset)}: ${e.message}${hint}`)]);
    }
    throw e;
  }
}

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

/** JSON-quotes untrusted text for a message, cut to a readable length. */
function quote(s: string): string {
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

function describeType(v: unknown): string {
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
