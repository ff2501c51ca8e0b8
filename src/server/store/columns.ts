/**
 * The values the store writes, checked and put in the one form both dialects store: audit
 * timestamps, text without U+0000, well-formed UTF-16. No database code here, so the audit
 * writer thread can use it without loading the store's query builder.
 */
import type { AuditRecord, EncodedAuditRecord } from './store.js';

/** RFC 3339 with microseconds, as Google's APIs print timestamps. */
export function nowTimestamp(): string {
  return new Date().toISOString().replace(/Z$/, '000Z');
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The one form audit times are stored and compared in: UTC, `Z`, exactly six fractional digits
 * (what nowTimestamp prints). Times are compared as text in SQL, which orders correctly only when
 * every value has this fixed shape: `…:00Z` sorts after `…:00.5Z` as text. Digits past the
 * microsecond are dropped. Throws on anything that is not an RFC 3339 timestamp.
 */
export function canonicalTimestamp(time: string): string {
  const m = RFC3339.exec(time);
  const ms = m === null ? Number.NaN : Date.parse(`${m[1]}T${m[2]}.${(m[3] ?? '').slice(0, 3).padEnd(3, '0')}${m[4]!.toUpperCase()}`);
  const iso = Number.isNaN(ms) ? '' : new Date(ms).toISOString();
  if (m === null || !/^\d{4}-/.test(iso)) throw new TypeError(`not an RFC 3339 timestamp (0000-9999): ${JSON.stringify(time)}`);
  return `${iso.slice(0, -1)}${(m[3] ?? '').slice(3, 6).padEnd(3, '0')}Z`;
}

/** Compares by the UTF-8 bytes: the order both dialects give text (SQLite's BINARY, PostgreSQL's "C"). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * PostgreSQL text cannot hold U+0000 (SQLite can): keys with it are rejected on write and match
 * nothing on read, the same on both dialects.
 */
export function hasNul(...keys: readonly (string | null | undefined)[]): boolean {
  return keys.some((k) => typeof k === 'string' && k.includes('\u0000'));
}

/**
 * The string with each lone UTF-16 surrogate replaced by U+FFFD, for audit columns. On PostgreSQL
 * JSON.stringify would write a lone surrogate as a `\udXXX` escape, which the server's JSON parser
 * rejects (failing the whole batch); better-sqlite3 would store it as invalid UTF-8 bytes that
 * read back as three U+FFFD. This way both store one U+FFFD, as node-postgres text parameters do.
 * (ES2024 methods, in Node 20; TypeScript's lib here is ES2022.)
 */
export function wellFormed(s: string): string {
  const es2024 = s as unknown as { isWellFormed(): boolean; toWellFormed(): string };
  return es2024.isWellFormed() ? s : es2024.toWellFormed();
}

export function rejectNul(what: string, ...keys: readonly (string | null | undefined)[]): void {
  if (hasNul(...keys)) throw new TypeError(`${what} cannot contain the character U+0000`);
}

/** Audit rows as four parallel columns, validated and ready to write. */
export interface AuditColumns {
  readonly time: string[];
  readonly project: string[];
  readonly logId: string[];
  readonly entry: string[];
}

/** Audit records as rows: entries serialized (if not already), every column checked. */
export function toAuditColumns(records: readonly (AuditRecord | EncodedAuditRecord)[]): AuditColumns {
  const n = records.length;
  const rows: AuditColumns = { time: new Array<string>(n), project: new Array<string>(n), logId: new Array<string>(n), entry: new Array<string>(n) };
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    const entry = 'entryJson' in r ? r.entryJson : JSON.stringify(r.entry);
    // JSON text never holds a raw U+0000 (it is escaped); PostgreSQL could not store one.
    rejectNul('audit project, log id and entry', r.project, r.logId, entry);
    rows.time[i] = canonicalTimestamp(r.time);
    rows.project[i] = wellFormed(r.project);
    rows.logId[i] = wellFormed(r.logId);
    rows.entry[i] = wellFormed(entry);
  }
  return rows;
}
