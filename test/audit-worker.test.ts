/**
 * The audit writer thread (src/server/audit/audit-worker.ts) on SQLite and on a real PostgreSQL,
 * run from the build: a worker thread loads its module as JavaScript, which only dist/ has. Each
 * case runs in a child Node process, the way `tollgate serve` uses it, because one property is
 * about the process itself: it must not exit while a batch is still being written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { ensureBuiltStore } from './support/store-writer.js';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist/server');
let dir: string;
let postgres: TestPostgres;

beforeAll(async () => {
  ensureBuiltStore();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-audit-worker-'));
  postgres = await startPostgres();
}, 120_000);
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await postgres?.stop();
});

/** A database of its own for one case: a SQLite file, or a fresh database on the test server. */
async function databaseFor(dialect: 'sqlite' | 'postgres', name: string): Promise<string> {
  if (dialect === 'sqlite') return join(dir, `${name}.db`);
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  const database = `${new URL(postgres.url).pathname.slice(1)}_aw_${name}`;
  try {
    await admin.query(`create database "${database}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgres.url);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * The PostgreSQL cases' child-script opening: the store, a client of its own (`admin`) on the same
 * database, and a main store (`noFallback`) whose use would fail the case, so the worker is what writes.
 */
function postgresPreamble(db: string): string {
  return `
import { createRequire } from 'node:module';
const pg = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('pg');
const store = await openStore(${JSON.stringify(db)});
const admin = new pg.Client({ connectionString: ${JSON.stringify(db)} });
await admin.connect();
const noFallback = { dialect: 'postgres', appendAudit: async () => { throw new Error('fallback used'); } };`;
}

/** Runs an ES module script in a child process and returns its last stdout line as JSON. */
function run(name: string, body: string): Record<string, unknown> {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, `
import { openStore } from '${DIST}/store/sql-store.js';
import { startAuditWorker } from '${DIST}/audit/audit-worker.js';
import { DecisionAuditWriter } from '${DIST}/audit/decision-log.js';
import { jsonLogger } from '${DIST}/log.js';
const logs = [];
const logger = jsonLogger('debug', (line) => logs.push(line));
${body}
`);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || last === '') throw new Error(`child failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(last) as Record<string, unknown>;
}

describe.each(['sqlite', 'postgres'] as const)('the audit writer thread on %s', (dialect) => {
  it('writes every entry the group-committing writer is given, in order, before the process may exit', async () => {
    const db = await databaseFor(dialect, 'all');
    const out = run(`all-${dialect}`, `
const store = await openStore(${JSON.stringify(db)});
const appender = await startAuditWorker(${JSON.stringify(db)}, { dialect: '${dialect}', appendAudit: async () => { throw new Error('fallback used'); } }, logger);
const writer = new DecisionAuditWriter({ store: appender, logger });
let n = 0;
for (let i = 0; i < 60; i++) {
  for (let j = 0; j < 40; j++) writer.record({ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { insertId: 'e' + n++, pad: 'x'.repeat(1500) } });
  await new Promise((r) => setTimeout(r, 3));
}
await writer.close();
await appender.close();
const rows = await store.queryAudit({ limit: 10000 });
const ids = rows.reverse().map((r) => r.entry.insertId);
console.log(JSON.stringify({ recorded: n, stored: rows.length, inOrder: ids.every((id, k) => id === 'e' + k), logs }));
await store.close();
`);
    expect(out).toMatchObject({ recorded: 2400, stored: 2400, inOrder: true, logs: [] });
  });

  it('rejects a batch the store refuses (nothing of it written), and the writer reports the loss', async () => {
    const db = await databaseFor(dialect, 'bad');
    const out = run(`bad-${dialect}`, `
const store = await openStore(${JSON.stringify(db)});
const appender = await startAuditWorker(${JSON.stringify(db)}, store, logger);
let error = '';
try {
  await appender.appendAudit([{ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { a: 1 } }, { time: 'yesterday', project: 'p', logId: 'x', entry: {} }]);
} catch (e) { error = e.message; }
const failures = [];
const writer = new DecisionAuditWriter({ store: appender, logger, retryDelayMs: 1, onError: (f) => failures.push(f.kind) });
await writer.record({ time: 'not a time', project: 'p', logId: 'x', entry: { insertId: 'bad' } });
await writer.close();
await appender.close();
console.log(JSON.stringify({ error, failures, stored: (await store.queryAudit({ limit: 10 })).length }));
await store.close();
`);
    expect(out['error']).toContain('RFC 3339');
    expect(out).toMatchObject({ failures: ['retrying', 'lost'], stored: 0 });
  });

  it.runIf(dialect === 'postgres')('writes through one connection of its own, which it closes on close', async () => {
    const db = await databaseFor(dialect, 'conn');
    const out = run(`conn-${dialect}`, `
${postgresPreamble(db)}
// Backends on this database other than admin's: the store's pool and the worker's.
const count = async () => Number((await admin.query('select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()')).rows[0].n);
const settled = async (want) => { for (let i = 0; i < 100 && (await count()) !== want; i++) await new Promise((r) => setTimeout(r, 20)); return count(); };
await store.queryAudit({ limit: 1 });
const before = await count();
const appender = await startAuditWorker(${JSON.stringify(db)}, noFallback, logger);
for (let i = 0; i < 3; i++) await appender.appendAudit(Array.from({ length: 100 }, (_, k) => ({ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { insertId: 'e' + (100 * i + k) } })));
const writing = await count();
await appender.close();
const after = await settled(before);
const stored = (await store.queryAudit({ limit: 1000 })).length;
await admin.end();
await store.close();
console.log(JSON.stringify({ added: writing - before, left: after - before, stored, logs }));
`);
    expect(out).toEqual({ added: 1, left: 0, stored: 300, logs: [] });
  });

  it.runIf(dialect === 'postgres')('replaces its connection when the database drops it', async () => {
    const db = await databaseFor(dialect, 'drop');
    const out = run(`drop-${dialect}`, `
${postgresPreamble(db)}
const appender = await startAuditWorker(${JSON.stringify(db)}, noFallback, logger);
const batch = (tag) => Array.from({ length: 10 }, (_, k) => ({ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { insertId: tag + k } }));
await appender.appendAudit(batch('before'));
// What a failover or an idle timeout does: the server ends every other connection, the worker's included.
const { rowCount } = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
await new Promise((r) => setTimeout(r, 200));
let during = 'written';
try { await appender.appendAudit(batch('during')); } catch (e) { during = 'rejected'; }
await appender.appendAudit(batch('after'));
await appender.close();
const ids = (await store.queryAudit({ limit: 100 })).map((r) => r.entry.insertId);
await admin.end();
await store.close();
console.log(JSON.stringify({ terminated: rowCount > 0, during, before: ids.filter((i) => i.startsWith('before')).length, after: ids.filter((i) => i.startsWith('after')).length }));
`);
    expect(out).toMatchObject({ terminated: true, before: 10, after: 10 });
    expect(['written', 'rejected']).toContain(out['during']);
  });

  it('removes old entries on its own connection, a chunk per request, between the batches it writes', async () => {
    const db = await databaseFor(dialect, 'prune');
    const out = run(`prune-${dialect}`, `
const store = await openStore(${JSON.stringify(db)});
const fail = async () => { throw new Error('fallback used'); };
const appender = await startAuditWorker(${JSON.stringify(db)}, { dialect: '${dialect}', appendAudit: fail, pruneAudit: fail }, logger);
const old = Array.from({ length: 30 }, (_, i) => ({ time: '2001-01-01T00:00:00Z', project: 'p' + (i % 2), logId: 'x', entry: { insertId: 'old' + i } }));
await appender.appendAudit(old);
const chunks = [];
let from;
for (;;) {
  const pending = appender.appendAudit([{ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { insertId: 'new' + chunks.length } }]);
  const r = await appender.pruneAudit('2020-01-01T00:00:00Z', 8, from);
  await pending;
  chunks.push(r.deleted);
  from = r.next;
  if (!r.more) break;
}
await appender.close();
const ids = (await store.queryAudit({ limit: 100 })).map((r) => r.entry.insertId).reverse();
console.log(JSON.stringify({ chunks, ids, logs }));
await store.close();
`);
    expect(out).toEqual({ chunks: [8, 8, 8, 6], ids: ['new0', 'new1', 'new2', 'new3'], logs: [] });
  });

  it.runIf(dialect === 'sqlite')('uses the main store for an in-memory database, which another connection cannot share', () => {
    const out = run('memory', `
const calls = [];
const appender = await startAuditWorker(':memory:', { dialect: 'sqlite', appendAudit: async (r) => { calls.push(r.length); } }, logger);
await appender.appendAudit([{ time: new Date().toISOString(), project: 'p', logId: 'x', entry: {} }]);
await appender.close();
console.log(JSON.stringify({ calls }));
`);
    expect(out).toEqual({ calls: [1] });
  });
});
