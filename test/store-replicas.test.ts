/**
 * Replicas: several store instances on one database (PostgreSQL, and a SQLite file) see each
 * other's writes at once, and compare-and-set across them never loses an update — within one
 * process and across processes (two child processes writing through the built store).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nowTimestamp } from '../src/server/store/columns.js';
import { openStore } from '../src/server/store/sql-store.js';
import { StoreVersionConflict, type Store } from '../src/server/store/store.js';
import { startPostgres } from './support/postgres.js';
import { checkDurability, ensureBuiltStore, startWriter } from './support/store-writer.js';

interface TestDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

async function sqliteFile(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-replicas-'));
  return { url: join(dir, 'tollgate.db'), stop: async () => rmSync(dir, { recursive: true, force: true }) };
}

// The child processes run the built store (dist/); `npm test` builds first, a lone run builds here.
beforeAll(() => ensureBuiltStore(), 300_000);

describe.each([
  ['sqlite', sqliteFile],
  ['postgres', () => startPostgres()],
] as const)('two stores on one %s database', (dialect, startDatabase) => {
  let db: TestDatabase | undefined;
  let a: Store;
  let b: Store;
  let counter = 0;
  const project = (): string => `projects/replicas-${++counter}`;

  beforeAll(async () => {
    db = await startDatabase();
    [a, b] = await Promise.all([openStore(db.url), openStore(db.url)]);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.stop();
  });

  it("each sees the other's writes at once", async () => {
    const p = project();
    const name = `${p}/attestors/x`;
    const created = await a.create({ kind: 'attestor', name, parent: p, k1: 'n', body: { v: 1 } });
    expect(await b.get('attestor', name)).toEqual(created);
    const updated = await b.update('attestor', name, { body: { v: 2 }, expectVersion: 1 });
    expect(await a.get('attestor', name)).toEqual(updated);
    expect((await a.list('attestor', { parent: p, limit: 10 })).map((r) => r.version)).toEqual([2]);
    expect((await a.update('attestor', name, { body: { v: 'stale' }, expectVersion: 1 }).catch((e: unknown) => e))).toBeInstanceOf(StoreVersionConflict);

    await b.setMeta(`${p}/meta`, 'from b');
    expect(await a.getMeta(`${p}/meta`)).toBe('from b');
    await a.setMeta(`${p}/meta`, 'from a');
    expect(await b.getMeta(`${p}/meta`)).toBe('from a');

    await a.appendAudit([{ time: nowTimestamp(), project: p, logId: 'x', entry: { by: 'a' } }]);
    await b.appendAudit([{ time: nowTimestamp(), project: p, logId: 'x', entry: { by: 'b' } }]);
    expect((await b.queryAudit({ projects: [p], limit: 10 })).map((r) => r.entry['by'])).toEqual(['b', 'a']);
    expect((await a.queryAudit({ projects: [p], limit: 10 })).map((r) => r.entry['by'])).toEqual(['b', 'a']);

    await a.transaction(async (tx) => {
      await tx.create({ kind: 'note', name: `${p}/notes/1`, parent: p, body: {} });
      await tx.delete('attestor', name);
    });
    expect(await b.get('note', `${p}/notes/1`)).toBeDefined();
    expect(await b.get('attestor', name)).toBeUndefined();
  });

  it("never shows one store's uncommitted or rolled-back transaction to the other", async () => {
    const p = project();
    let readDuring: Promise<unknown> | undefined;
    await a.transaction(async (tx) => {
      await tx.create({ kind: 'note', name: `${p}/notes/1`, parent: p, body: {} });
      if (dialect === 'postgres') {
        expect(await b.get('note', `${p}/notes/1`)).toBeUndefined();
      } else {
        // Stores on one SQLite file in one process queue behind each other's transactions: b's
        // read runs after a's commit (awaiting it here would wait forever).
        readDuring = b.get('note', `${p}/notes/1`);
      }
    });
    if (readDuring !== undefined) expect(await readDuring).toBeDefined();
    expect(await b.get('note', `${p}/notes/1`)).toBeDefined();

    const failed = await a
      .transaction(async (tx) => {
        await tx.create({ kind: 'note', name: `${p}/notes/2`, parent: p, body: {} });
        if (dialect === 'postgres') expect(await b.get('note', `${p}/notes/2`)).toBeUndefined();
        else readDuring = b.get('note', `${p}/notes/2`);
        throw new Error('roll back');
      })
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ message: 'roll back' });
    if (dialect === 'sqlite') expect(await readDuring).toBeUndefined();
    expect(await b.get('note', `${p}/notes/2`)).toBeUndefined();
  });

  it('compare-and-set across the two: one winner per version, no update lost with retries', async () => {
    const p = project();
    const name = `${p}/notes/counter`;
    await a.create({ kind: 'note', name, parent: p, body: { count: 0, writers: [] } });

    const round = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).update('note', name, { body: { count: 1, writers: [i] }, expectVersion: 1 })),
    );
    expect(round.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of round) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(StoreVersionConflict);

    await b.update('note', name, { body: { count: 0, writers: [] } });
    const start = (await a.get('note', name))!.version;
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const store = i % 2 === 0 ? a : b;
        for (let attempt = 0; attempt < 500; attempt++) {
          try {
            await store.transaction(async (tx) => {
              const cur = (await tx.get('note', name))!;
              const body = cur.body as { count: number; writers: number[] };
              await tx.update('note', name, { body: { count: body.count + 1, writers: [...body.writers, i] }, expectVersion: cur.version });
            });
            return;
          } catch (err) {
            if (!(err instanceof StoreVersionConflict)) throw err;
            await new Promise((r) => setTimeout(r, Math.random() * 3));
          }
        }
        throw new Error(`writer ${i} never won`);
      }),
    );
    for (const store of [a, b]) {
      const final = (await store.get('note', name))!;
      const body = final.body as { count: number; writers: number[] };
      expect(body.count).toBe(20);
      expect([...body.writers].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(final.version).toBe(start + 20);
    }
  });

  it('two processes writing transactions at once lose nothing', async () => {
    const mark = await a.changeMark();
    const writers = [startWriter(db!.url, 'p1', 60, 2), startWriter(db!.url, 'p2', 60, 2)];
    const exits = await Promise.all(writers.map((w) => w.exited));
    for (const exit of exits) {
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.done).toMatch(/^done 60 /);
    }
    const summary = await checkDurability(a, writers.flatMap((w) => w.acked), 0);
    expect(summary).toEqual({ count: 120, occurrences: 120, audit: 120 });
    // The other processes' resource writes moved the change mark both stores here read.
    expect(await a.changeMark()).not.toBe(mark);
    expect(await b.changeMark()).toBe(await a.changeMark());
  });
});
