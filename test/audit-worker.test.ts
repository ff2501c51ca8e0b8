/**
 * The audit writer thread (src/server/audit/audit-worker.ts) on SQLite and on a real PostgreSQL
 * server, run from the build: a worker
 * thread loads its module as JavaScript, which only dist/ has. Each case runs in a child Node
 * process, the way `tollgate serve` uses it, because one property is about the process itself:
 * it must not exit while a batch is still being written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { ensureBuiltStore } from './support/store-writer.js';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist/server');
let dir: string;

beforeAll(() => {
  ensureBuiltStore();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-audit-worker-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an ES module script in a child process and returns its last stdout line as JSON. */
function run(name: string, body: string): Record<string, unknown> {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, `
import { openStore } from '${DIST}/store/sql-store.js';
import { startAuditWorker } from '${DIST}/audit/audit-worker.js';
import { DecisionAuditWriter } from '${DIST}/audit/decision-log.js';
import { jsonLogger } from '${DIST}/log.js';
import { createRequire } from 'node:module';
const pgClient = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('pg').Client;
const logs = [];
const logger = jsonLogger('debug', (line) => logs.push(line));
${body}
`);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || last === '') throw new Error(`child failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(last) as Record<string, unknown>;
}

describe('the audit writer thread', () => {
  it('writes every entry the group-committing writer is given, in order, before the process may exit', () => {
    const db = join(dir, 'all.db');
    const out = run('all', `
const store = await openStore(${JSON.stringify(db)});
const appender = await startAuditWorker(${JSON.stringify(db)}, { dialect: 'sqlite', appendAudit: async () => { throw new Error('fallback used'); } }, logger);
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

  it('rejects a batch the store refuses (nothing of it written), and the writer reports the loss', () => {
    const db = join(dir, 'bad.db');
    const out = run('bad', `
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

  it('uses the main store for an in-memory database, which another connection cannot share', () => {
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

describe('the audit writer thread on PostgreSQL', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
  });

  it('writes every entry through a connection of its own, in order, reconnects when that connection is cut, and ends it on close', () => {
    const out = run('pg-all', `
const url = ${JSON.stringify(pg.url)};
const store = await openStore(url);
const appender = await startAuditWorker(url, { dialect: 'postgres', appendAudit: async () => { throw new Error('fallback used'); } }, logger);
const failures = [];
const writer = new DecisionAuditWriter({ store: appender, logger, retryDelayMs: 1, onError: (f) => failures.push(f.kind) });
let n = 0;
const batch = async () => {
  for (let j = 0; j < 150; j++) writer.record({ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { insertId: 'e' + n++, pad: 'x'.repeat(1500) } });
  await writer.flush();
};
const admin = new pgClient({ connectionString: url });
await admin.connect();
const writers = async () => (await admin.query("select count(*)::int as n from pg_stat_activity where application_name = 'tollgate-audit-writer'")).rows[0].n;
await batch();
const connected = await writers();
// Cut the writer's connection, as a server restart or an idle timeout would.
const cut = (await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'tollgate-audit-writer'")).rowCount;
await new Promise((r) => setTimeout(r, 200));
await batch();
await batch();
await writer.close();
await appender.close();
const rows = await store.queryAudit({ limit: 10000 });
const ids = rows.reverse().map((r) => r.entry.insertId);
console.log(JSON.stringify({ recorded: n, stored: rows.length, inOrder: ids.every((id, k) => id === 'e' + k), connected, cut, afterClose: await writers(), failures }));
await admin.end();
await store.close();
`);
    expect(out).toMatchObject({ recorded: 450, stored: 450, inOrder: true, connected: 1, cut: 1, afterClose: 0 });
    // The cut may surface as one failed attempt, which the writer's retry covers; nothing is lost.
    expect((out['failures'] as string[]).filter((k) => k !== 'retrying')).toEqual([]);
  });

  it('rejects a batch the server would refuse (nothing of it written)', () => {
    const out = run('pg-bad', `
const url = ${JSON.stringify(pg.url)};
const store = await openStore(url);
const before = (await store.queryAudit({ limit: 10000 })).length;
const appender = await startAuditWorker(url, store, logger);
let error = '';
try {
  await appender.appendAudit([{ time: new Date().toISOString(), project: 'p', logId: 'x', entry: { a: 1 } }, { time: 'yesterday', project: 'p', logId: 'x', entry: {} }]);
} catch (e) { error = e.message; }
await appender.close();
console.log(JSON.stringify({ error, added: (await store.queryAudit({ limit: 10000 })).length - before }));
await store.close();
`);
    expect(out['error']).toContain('RFC 3339');
    expect(out).toMatchObject({ added: 0 });
  });

  it('falls back to the main store when it cannot connect', () => {
    const out = run('pg-down', `
const calls = [];
const appender = await startAuditWorker('postgres://nobody@127.0.0.1:1/none', { dialect: 'postgres', appendAudit: async (r) => { calls.push(r.length); } }, logger);
await appender.appendAudit([{ time: new Date().toISOString(), project: 'p', logId: 'x', entry: {} }]);
await appender.close();
console.log(JSON.stringify({ calls, warned: logs.some((l) => l.includes('audit writer thread did not start')) }));
`);
    expect(out).toEqual({ calls: [1], warned: true });
  });
});
