/**
 * Reading a Binary Authorization project policy from text: strict JSON when the first non-blank
 * character is `{`, YAML 1.2 otherwise. The decoded value is then validated by parsePolicyObject
 * (parse.ts). Only the CLI and tests read policy text; the server takes decoded JSON bodies and
 * imports parse.ts alone, so it never loads the yaml library.
 *
 * Like parse.ts, everything here treats its input as hostile: no input makes parsePolicyText throw,
 * and syntax errors and duplicate keys are reported with `line:column`. docs/policy.md lists the
 * rules.
 */
import { isScalar, parseDocument, visit, type Document } from 'yaml';
import { describeError, err, ok, problem, type Problem, type Result } from '../result.js';
import type { Policy } from './model.js';
import { describeType, parsePolicyObject, quote } from './parse.js';

/** Longest policy text accepted (characters). Google publishes no limit; this is gRPC's default 4 MiB. */
export const MAX_POLICY_TEXT_LENGTH = 4 * 1024 * 1024;
/** Deepest nesting of `[`/`{` accepted in the text; a valid policy needs 4. */
export const MAX_NESTING_DEPTH = 64;
/** YAML alias expansions allowed while building the value (guards against "billion laughs"). */
export const MAX_YAML_ALIASES = 100;

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
