/**
 * Cloud Logging's filter language, as far as Binary Authorization's audit queries need it.
 *
 * A filter is parsed once into an AST (errors come back as values, with the offset, line and
 * column where parsing stopped) and then evaluated against each LogEntry as plain JSON.
 *
 * Grammar (whitespace, including newlines, separates terms):
 *
 *     filter      := sequence? EOF
 *     sequence    := disjunction ( "AND"? disjunction )*      -- juxtaposition is AND
 *     disjunction := unary ( "OR" unary )*                     -- OR binds tighter than AND
 *     unary       := ("NOT" | "-") unary | primary
 *     primary     := "(" sequence ")" | "log_id(" string ")" | restriction | text
 *     restriction := path op value                             -- op: = != : < <= > >=
 *     path        := segment ( "." segment )*                  -- segment: word or "quoted"
 *     text        := word | "quoted"                           -- searched across the whole entry
 *
 * `--` starts a comment that runs to the end of the line. Keywords are upper case.
 */
import { isJsonObject } from '../../core/json.js';

export type CompareOp = '=' | '!=' | ':' | '<' | '<=' | '>' | '>=';

/** A comparison's right-hand side, with the readings of it that evaluation needs, made once. */
export interface FilterValue {
  /** The value as written, unquoted and unescaped. */
  readonly text: string;
  readonly quoted: boolean;
  /** Lower-cased text, for the case-insensitive `:`. */
  readonly lower: string;
  /** The value as a number, when it is one. */
  readonly number?: number;
  /** The value as a canonical timestamp (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), when it is one. */
  readonly time?: string;
}

export type FilterNode =
  /** The empty filter: every entry matches. */
  | { readonly kind: 'all' }
  | { readonly kind: 'and'; readonly terms: readonly FilterNode[] }
  | { readonly kind: 'or'; readonly terms: readonly FilterNode[] }
  | { readonly kind: 'not'; readonly term: FilterNode }
  | { readonly kind: 'compare'; readonly path: readonly string[]; readonly op: CompareOp; readonly value: FilterValue; readonly position: number }
  /** `path:*`: the field is present. */
  | { readonly kind: 'exists'; readonly path: readonly string[]; readonly position: number }
  /** Bare text: any key or value anywhere in the entry contains it, ignoring case. */
  | { readonly kind: 'text'; readonly text: string; readonly lower: string; readonly position: number }
  /** `log_id("cloudaudit.googleapis.com/activity")`. */
  | { readonly kind: 'logId'; readonly logId: string; readonly position: number };

export interface FilterError {
  readonly message: string;
  /** 0-based offset into the filter text. */
  readonly position: number;
  /** 1-based line and column of `position`. */
  readonly line: number;
  readonly column: number;
}

export type FilterResult = { readonly ok: true; readonly value: FilterNode } | { readonly ok: false; readonly error: FilterError };

/** Cloud Logging's own limit on the length of a filter. */
export const MAX_FILTER_LENGTH = 20_000;
/** Deepest nesting of parentheses accepted. */
export const MAX_FILTER_DEPTH = 64;

const KEYWORDS = new Set(['AND', 'OR', 'NOT']);
const OPERATORS: readonly string[] = ['<=', '>=', '!=', '=~', '!~', '=', '<', '>', ':'];

class ParseFailure {
  constructor(readonly message: string, readonly position: number) {}
}

/** Parses a filter. Never throws: malformed input yields an error with its position. */
export function parseFilter(text: string): FilterResult {
  if (typeof text !== 'string') return { ok: false, error: locate('', 'the filter must be a string', 0) };
  if (text.length > MAX_FILTER_LENGTH) {
    return { ok: false, error: locate(text, `the filter is longer than ${MAX_FILTER_LENGTH} characters`, MAX_FILTER_LENGTH) };
  }
  try {
    return { ok: true, value: new Parser(text).parse() };
  } catch (e) {
    if (e instanceof ParseFailure) return { ok: false, error: locate(text, e.message, e.position) };
    // Nothing above should throw anything else; if it does, it is still a bad filter, not a crash.
    return { ok: false, error: locate(text, `cannot parse the filter: ${e instanceof Error ? e.message : String(e)}`, 0) };
  }
}

function locate(text: string, message: string, position: number): FilterError {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - (before.lastIndexOf('\n') + 1) + 1;
  return { message, position, line, column };
}

/** A human-readable form of a filter error: `expected a value after "=" (line 1, column 7)`. */
export function describeFilterError(e: FilterError): string {
  return `${e.message} (line ${e.line}, column ${e.column})`;
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}

/** Characters that end an unquoted word in a field path or a bare text term. */
function endsWord(c: string | undefined): boolean {
  return c === undefined || isSpace(c) || c === '(' || c === ')' || c === '"' || c === '.' || c === '=' || c === '!' || c === '<' || c === '>' || c === ':';
}

/** Characters that end an unquoted value (the right-hand side of a comparison). */
function endsValue(c: string | undefined): boolean {
  return c === undefined || isSpace(c) || c === '(' || c === ')' || c === '"';
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  parse(): FilterNode {
    this.skipSpace();
    if (this.pos >= this.src.length) return { kind: 'all' };
    const node = this.sequence();
    this.skipSpace();
    if (this.pos < this.src.length) {
      throw new ParseFailure(this.src[this.pos] === ')' ? 'unbalanced ")": no "(" to close' : `unexpected ${this.show()}`, this.pos);
    }
    return node;
  }

  private show(): string {
    const c = this.src[this.pos];
    return c === undefined ? 'end of filter' : JSON.stringify(c);
  }

  /** Skips whitespace and `--` comments. */
  private skipSpace(): void {
    for (;;) {
      while (isSpace(this.src[this.pos])) this.pos++;
      if (this.src.startsWith('--', this.pos)) {
        const nl = this.src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? this.src.length : nl + 1;
        continue;
      }
      return;
    }
  }

  /** The unquoted word at the cursor, without consuming it. */
  private peekWord(): string {
    let end = this.pos;
    while (!endsWord(this.src[end])) end++;
    return this.src.slice(this.pos, end);
  }

  private peekKeyword(): string | undefined {
    const w = this.peekWord();
    return KEYWORDS.has(w) ? w : undefined;
  }

  private atSequenceEnd(): boolean {
    return this.pos >= this.src.length || this.src[this.pos] === ')';
  }

  private sequence(): FilterNode {
    const terms: FilterNode[] = [this.disjunction()];
    for (;;) {
      this.skipSpace();
      if (this.atSequenceEnd()) break;
      if (this.peekKeyword() === 'AND') {
        const at = this.pos;
        this.pos += 3;
        this.skipSpace();
        if (this.atSequenceEnd()) throw new ParseFailure('expected a term after AND', at);
      }
      terms.push(this.disjunction());
    }
    return terms.length === 1 ? (terms[0] as FilterNode) : { kind: 'and', terms: flatten('and', terms) };
  }

  private disjunction(): FilterNode {
    const terms: FilterNode[] = [this.unary()];
    for (;;) {
      const save = this.pos;
      this.skipSpace();
      if (this.atSequenceEnd() || this.peekKeyword() !== 'OR') {
        this.pos = save;
        break;
      }
      const at = this.pos;
      this.pos += 2;
      this.skipSpace();
      if (this.atSequenceEnd()) throw new ParseFailure('expected a term after OR', at);
      terms.push(this.unary());
    }
    return terms.length === 1 ? (terms[0] as FilterNode) : { kind: 'or', terms: flatten('or', terms) };
  }

  /** NOT and `-` prefixes, counted in a loop (no recursion, however many there are). */
  private unary(): FilterNode {
    let negations = 0;
    for (;;) {
      this.skipSpace();
      const keyword = this.peekKeyword();
      if (keyword === 'NOT') {
        const at = this.pos;
        this.pos += 3;
        this.skipSpace();
        if (this.atSequenceEnd()) throw new ParseFailure('expected a term after NOT', at);
        negations++;
        continue;
      }
      if (this.src[this.pos] === '-') {
        const at = this.pos;
        this.pos++;
        this.skipSpace();
        if (this.atSequenceEnd()) throw new ParseFailure('expected a term after "-"', at);
        negations++;
        continue;
      }
      if (keyword !== undefined) throw new ParseFailure(`expected a term, found ${keyword}`, this.pos);
      break;
    }
    const node = this.primary();
    return negations % 2 === 1 ? { kind: 'not', term: node } : node;
  }

  private primary(): FilterNode {
    const start = this.pos;
    if (this.src[start] === '(') {
      if (++this.depth > MAX_FILTER_DEPTH) throw new ParseFailure(`parentheses nested deeper than ${MAX_FILTER_DEPTH}`, start);
      this.pos++;
      this.skipSpace();
      if (this.src[this.pos] === ')') throw new ParseFailure('empty parentheses', start);
      if (this.pos >= this.src.length) throw new ParseFailure('unbalanced "(": no ")" closes it', start);
      const inner = this.sequence();
      this.skipSpace();
      if (this.src[this.pos] !== ')') throw new ParseFailure('unbalanced "(": no ")" closes it', start);
      this.pos++;
      this.depth--;
      return inner;
    }
    if (this.src[start] === ')') throw new ParseFailure('unbalanced ")": no "(" to close', start);

    // A function call: a word directly followed by "(".
    const word = this.peekWord();
    if (word !== '' && this.src[start + word.length] === '(') return this.call(word, start);

    const path = this.path();
    const afterPath = this.pos;
    this.skipSpace();
    const op = OPERATORS.find((o) => this.src.startsWith(o, this.pos));
    if (op === undefined) {
      this.pos = afterPath;
      // Bare text: a single quoted string is searched as written; anything else as its source.
      const text = path.segments.length === 1 && path.quoted[0] === true ? (path.segments[0] as string) : this.src.slice(start, afterPath);
      return { kind: 'text', text, lower: text.toLowerCase(), position: start };
    }
    const opAt = this.pos;
    if (op === '=~' || op === '!~') throw new ParseFailure(`regular-expression comparisons (${op}) are not supported by Tollgate`, opAt);
    this.pos += op.length;
    while (isSpace(this.src[this.pos])) this.pos++;
    const value = this.value(op);
    if (op === ':' && !value.quoted && value.text === '*') return { kind: 'exists', path: path.segments, position: start };
    return { kind: 'compare', path: path.segments, op: op as CompareOp, value: filterValue(value.text, value.quoted), position: start };
  }

  private call(name: string, start: number): FilterNode {
    if (name !== 'log_id') throw new ParseFailure(`the function ${name}() is not supported by Tollgate (only log_id() is)`, start);
    this.pos += name.length + 1;
    this.skipSpace();
    if (this.src[this.pos] !== '"') throw new ParseFailure('log_id() takes one quoted log ID', this.pos);
    const logId = this.quoted();
    this.skipSpace();
    if (this.src[this.pos] !== ')') throw new ParseFailure('expected ")" to close log_id(', this.pos);
    this.pos++;
    return { kind: 'logId', logId, position: start };
  }

  private path(): { segments: string[]; quoted: boolean[] } {
    const segments: string[] = [];
    const quoted: boolean[] = [];
    for (;;) {
      if (this.src[this.pos] === '"') {
        segments.push(this.quoted());
        quoted.push(true);
      } else {
        const w = this.peekWord();
        if (w === '') {
          throw new ParseFailure(segments.length === 0 ? `expected a field, a value or text, found ${this.show()}` : `expected a field name after ".", found ${this.show()}`, this.pos);
        }
        this.pos += w.length;
        segments.push(w);
        quoted.push(false);
      }
      if (this.src[this.pos] !== '.') return { segments, quoted };
      this.pos++;
    }
  }

  private value(op: string): { text: string; quoted: boolean } {
    if (this.src[this.pos] === '"') return { text: this.quoted(), quoted: true };
    let end = this.pos;
    while (!endsValue(this.src[end])) end++;
    const text = this.src.slice(this.pos, end);
    if (text === '') throw new ParseFailure(`expected a value after "${op}", found ${this.show()}`, this.pos);
    if (KEYWORDS.has(text)) throw new ParseFailure(`expected a value after "${op}", found ${text}`, this.pos);
    this.pos = end;
    return { text, quoted: false };
  }

  /** A double-quoted string with backslash escapes. */
  private quoted(): string {
    const start = this.pos;
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) throw new ParseFailure('unterminated string: no closing \'"\'', start);
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === '\\') {
        const e = this.src[this.pos + 1];
        if (e === undefined) throw new ParseFailure('unterminated string: no closing \'"\'', start);
        if (e === 'u') {
          const hex = this.src.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new ParseFailure('\\u must be followed by four hex digits', this.pos);
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 6;
          continue;
        }
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        this.pos += 2;
        continue;
      }
      out += c;
      this.pos++;
    }
  }
}

function flatten(kind: 'and' | 'or', terms: FilterNode[]): FilterNode[] {
  return terms.flatMap((t) => (t.kind === kind ? t.terms : [t]));
}

function filterValue(text: string, quoted: boolean): FilterValue {
  const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : Number.NaN;
  const time = canonicalTime(text);
  return { text, quoted, lower: text.toLowerCase(), ...(Number.isFinite(n) ? { number: n } : {}), ...(time === undefined ? {} : { time }) };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * An RFC 3339 timestamp (or a bare date, meaning its midnight UTC) in one fixed, comparable form:
 * UTC, `Z`, six fractional digits. Undefined for anything else.
 */
export function canonicalTime(text: string): string | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}.${frac.slice(0, 3).padEnd(3, '0')}${zone.toUpperCase()}`);
  if (Number.isNaN(ms)) return undefined;
  // Date.parse accepts some impossible dates (Feb 30): require the fields to survive the round trip.
  if (zone.toUpperCase() === 'Z' && new Date(ms).toISOString().slice(0, 19) !== `${y}-${mo}-${d}T${h}:${mi}:${s}`) return undefined;
  const iso = new Date(ms).toISOString();
  if (!/^\d{4}-/.test(iso)) return undefined;
  return `${iso.slice(0, 23)}${frac.slice(3, 6).padEnd(3, '0')}Z`;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const SEVERITIES: Readonly<Record<string, number>> = {
  DEFAULT: 0, DEBUG: 100, INFO: 200, NOTICE: 300, WARNING: 400, ERROR: 500, CRITICAL: 600, ALERT: 700, EMERGENCY: 800,
};

/** Entries nest no deeper than this for text search; deeper parts are not searched. */
const MAX_SEARCH_DEPTH = 100;

/** Whether a LogEntry (as JSON) matches a parsed filter. Never throws. */
export function matchesFilter(node: FilterNode, entry: unknown): boolean {
  switch (node.kind) {
    case 'all':
      return true;
    case 'and':
      return node.terms.every((t) => matchesFilter(t, entry));
    case 'or':
      return node.terms.some((t) => matchesFilter(t, entry));
    case 'not':
      return !matchesFilter(node.term, entry);
    case 'exists':
      return resolve(entry, node.path).some((v) => v !== null && v !== undefined);
    case 'text':
      return containsText(entry, node.lower, 0);
    case 'logId': {
      const logName = isJsonObject(entry) ? entry['logName'] : undefined;
      return typeof logName === 'string' && normalizeLogName(logName).endsWith(`/logs/${node.logId}`);
    }
    case 'compare':
      return compare(node.path, node.op, node.value, entry);
  }
}

function compare(path: readonly string[], op: CompareOp, value: FilterValue, entry: unknown): boolean {
  let values = resolve(entry, path);
  const severity = path.length === 1 && path[0] === 'severity';
  // An entry without a severity has severity DEFAULT.
  if (severity && values.length === 0) values = ['DEFAULT'];
  const logName = path.length === 1 && (path[0] === 'logName' || path[0] === 'log_name');
  if (op === '!=') return !values.some((v) => equals(v, value, severity, logName));
  if (op === '=') return values.some((v) => equals(v, value, severity, logName));
  if (op === ':') return values.some((v) => has(v, logName ? normalizeLogName(value.lower) : value.lower, logName, 0));
  return values.some((v) => {
    const c = order(v, value, severity);
    if (c === undefined) return false;
    return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
  });
}

/**
 * The values at a dotted path. A repeated field on the way (an array) stands for each of its
 * elements, so `a.b.c` reaches every `c` of every element of `a.b`; a path ending on an array
 * yields its elements.
 */
function resolve(entry: unknown, path: readonly string[]): unknown[] {
  let current: unknown[] = [entry];
  for (const segment of path) {
    const next: unknown[] = [];
    for (const v of current) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (!isJsonObject(item)) continue;
        const child = lookup(item, segment);
        if (child !== undefined) next.push(child);
      }
    }
    current = next;
    if (current.length === 0) return current;
  }
  return current.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

/** A field by its JSON name, or by its proto snake_case spelling (`proto_payload`, `method_name`). */
function lookup(obj: Record<string, unknown>, segment: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, segment)) return obj[segment];
  if (segment.includes('_')) {
    const camel = segment.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    if (Object.prototype.hasOwnProperty.call(obj, camel)) return obj[camel];
  }
  return undefined;
}

/** Log names are written with the log ID URL-encoded (`%2F`) or not; compare them decoded. */
function normalizeLogName(s: string): string {
  return s.replace(/%2f/gi, '/');
}

function equals(v: unknown, value: FilterValue, severity: boolean, logName: boolean): boolean {
  if (typeof v === 'string') {
    if (severity) return severityRank(v) !== undefined && severityRank(v) === severityRank(value.text);
    if (logName) return normalizeLogName(v) === normalizeLogName(value.text);
    if (v === value.text) return true;
    if (value.time !== undefined) return canonicalTime(v) === value.time;
    if (value.number !== undefined && /^[+-]?\d/.test(v)) return Number(v) === value.number;
    return false;
  }
  if (typeof v === 'number') return value.number !== undefined && v === value.number;
  if (typeof v === 'boolean') return String(v) === value.lower;
  if (v === null) return value.text === 'NULL_VALUE' || (!value.quoted && value.lower === 'null');
  return false;
}

function severityRank(s: string): number | undefined {
  const upper = s.toUpperCase();
  if (Object.prototype.hasOwnProperty.call(SEVERITIES, upper)) return SEVERITIES[upper];
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

/** Orders an entry value against a filter value: numbers, severities, times, then text. */
function order(v: unknown, value: FilterValue, severity: boolean): number | undefined {
  if (typeof v === 'number') return value.number === undefined ? undefined : Math.sign(v - value.number);
  if (typeof v !== 'string') return undefined;
  if (severity) {
    const a = severityRank(v);
    const b = severityRank(value.text);
    return a === undefined || b === undefined ? undefined : Math.sign(a - b);
  }
  if (value.time !== undefined) {
    const t = canonicalTime(v);
    if (t !== undefined) return t < value.time ? -1 : t > value.time ? 1 : 0;
  }
  if (value.number !== undefined && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return Math.sign(Number(v) - value.number);
  return v < value.text ? -1 : v > value.text ? 1 : 0;
}

/** The `:` operator: substring of text (ignoring case); on objects any key or value; on arrays any element. */
function has(v: unknown, lower: string, logName: boolean, depth: number): boolean {
  if (typeof v === 'string') return (logName ? normalizeLogName(v) : v).toLowerCase().includes(lower);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v).toLowerCase().includes(lower);
  if (depth >= MAX_SEARCH_DEPTH) return false;
  if (Array.isArray(v)) return v.some((x) => has(x, lower, false, depth + 1));
  if (isJsonObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k.toLowerCase().includes(lower) || has(x, lower, false, depth + 1)) return true;
    }
  }
  return false;
}

/** Bare text: any key or scalar value anywhere in the entry contains the text, ignoring case. */
function containsText(v: unknown, lower: string, depth: number): boolean {
  return has(v, lower, false, depth);
}

// ---------------------------------------------------------------------------------------------
// Time bounds, so a store query can use its time index

export interface TimeBound {
  /** Canonical RFC 3339 (`YYYY-MM-DDTHH:MM:SS.ffffffZ`). */
  readonly time: string;
  /** `>=` / `<=` (true) or `>` / `<` (false). */
  readonly inclusive: boolean;
}

/**
 * The tightest lower bound on `timestamp` that every matching entry satisfies, read from the
 * top-level AND (gcloud's own `timestamp>="…" AND …` prefix is one). Undefined when the filter
 * does not imply one (for example when the bound sits under OR or NOT).
 */
export function timeLowerBound(node: FilterNode): TimeBound | undefined {
  return bound(node, 'lower');
}

/** The tightest upper bound on `timestamp` implied by the top-level AND, like timeLowerBound. */
export function timeUpperBound(node: FilterNode): TimeBound | undefined {
  return bound(node, 'upper');
}

function bound(node: FilterNode, side: 'lower' | 'upper'): TimeBound | undefined {
  const terms = node.kind === 'and' ? node.terms : [node];
  let best: TimeBound | undefined;
  for (const t of terms) {
    if (t.kind !== 'compare' || t.path.length !== 1 || t.path[0] !== 'timestamp' || t.value.time === undefined) continue;
    const time = t.value.time;
    let b: TimeBound | undefined;
    if (side === 'lower' && (t.op === '>=' || t.op === '>' || t.op === '=')) b = { time, inclusive: t.op !== '>' };
    if (side === 'upper' && (t.op === '<=' || t.op === '<' || t.op === '=')) b = { time, inclusive: t.op !== '<' };
    if (b === undefined) continue;
    if (best === undefined) best = b;
    else if (side === 'lower' ? b.time > best.time || (b.time === best.time && !b.inclusive) : b.time < best.time || (b.time === best.time && !b.inclusive)) best = b;
  }
  return best;
}
