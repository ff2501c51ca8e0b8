/**
 * kill -9 durability: a child process commits a burst of transactions (counter CAS + occurrence +
 * audit record each) through the built store and acknowledges each on stdout after its commit;
 * the test SIGKILLs it mid-burst (on PostgreSQL the server too, every process of it, then lets it
 * recover), reopens the store and checks that every acknowledged transaction is there and every
 * transaction is all-or-nothing. Two kills per dialect, then a clean run on the recovered data.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/server/store/sql-store.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { checkDurability, ensureBuiltStore, startWriter } from './support/store-writer.js';

/** Kill after this many acknowledgements in each round: a burst is well under way by then. */
const KILL_AFTER = [80, 30];

async function killRounds(url: string, concurrency: number, crashServer?: () => Promise<void>): Promise<void> {
  const acked: string[] = [];
  let inFlight = 0;
  for (const [round, killAfter] of KILL_AFTER.entries()) {
    const writer = startWriter(url, `r${round}`, 1_000_000, concurrency);
    await writer.waitForAcks(killAfter);
    writer.kill('SIGKILL');
    if (crashServer !== undefined) await crashServer();
    const exit = await writer.exited;
    expect(exit.signal, exit.stderr).toBe('SIGKILL');
    expect(exit.done, 'the writer was still writing when killed').toBeUndefined();
    acked.push(...writer.acked);
    inFlight += concurrency;

    const store = await openStore(url);
    try {
      const summary = await checkDurability(store, acked, inFlight);
      expect(summary.count).toBeGreaterThanOrEqual(acked.length);
      expect(summary.count).toBeLessThanOrEqual(acked.length + inFlight);
    } finally {
      await store.close();
    }
  }

  // The recovered database takes new writes, and a writer left alone finishes cleanly.
  const writer = startWriter(url, 'clean', 20, concurrency);
  const exit = await writer.exited;
  expect(exit.code, exit.stderr).toBe(0);
  expect(exit.done).toMatch(/^done 20 /);
  acked.push(...writer.acked);
  expect(writer.acked).toHaveLength(20);
  const store = await openStore(url);
  try {
    const summary = await checkDurability(store, acked, inFlight);
    expect(summary.count).toBeGreaterThanOrEqual(acked.length);
  } finally {
    await store.close();
  }
}

describe('kill -9 durability', () => {
  beforeAll(() => ensureBuiltStore(), 300_000);

  describe('SQLite (WAL, synchronous=FULL)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'tollgate-durability-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('keeps every acknowledged transaction and no partial one after SIGKILL', async () => {
      const file = join(dir, 'tollgate.db');
      await killRounds(file, 2);
      const db = new Database(file);
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      } finally {
        db.close();
      }
    });
  });

  describe('PostgreSQL (fsync on)', () => {
    let server: TestPostgres | undefined;
    beforeAll(async () => {
      server = await startPostgres({ durable: true });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('keeps every acknowledged transaction and no partial one after SIGKILL of the writer and the server', async () => {
      // With TOLLGATE_TEST_DATABASE_URL the server and its settings are not ours: only the
      // writer is killed there. Our own cluster must really flush.
      if (server!.crashAndRestart !== undefined) {
        const client = new pg.Client({ connectionString: server!.url });
        await client.connect();
        try {
          for (const setting of ['fsync', 'synchronous_commit', 'full_page_writes']) {
            const { rows } = await client.query<Record<string, string>>(`show ${setting}`);
            expect(rows[0]?.[setting], setting).toBe('on');
          }
        } finally {
          await client.end();
        }
      }
      await killRounds(server!.url, 4, server!.crashAndRestart);
    });
  });
});
