/**
 * The SQLite audit writer thread (src/server/audit/audit-worker.ts), run from the build: a worker
 * thread loads its module as JavaScript, which only dist/ has. Each case runs in a child Node
 * process, the way `tollgate serve` uses it, because one property is about the process itself:
 * it must not exit while a batch is still being written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
