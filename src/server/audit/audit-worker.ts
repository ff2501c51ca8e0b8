/**
 * Decision audit writes on a worker thread. On SQLite (better-sqlite3 is synchronous) every group
 * commit on the main thread — the inserts and the WAL fsync — stopped every review in flight for
 * its duration, which set the webhook's tail latency under load. On PostgreSQL the driver waits
 * off the event loop, but building and sending a batch still cost the main thread ~11 µs per
 * entry (docs/performance.md, item 23). The worker opens a connection of its own to the same
 * database and writes the batches the DecisionAuditWriter hands it: on SQLite, SQLite's locks
 * (WAL, busy_timeout) coordinate it with the main thread's connection exactly as they coordinate
 * replicas sharing one file; on PostgreSQL it is one more client of the server.
 *
 * The contract is `StoreOps.appendAudit`'s: the promise resolves once the rows are committed and
 * rejects when they were not (the writer retries once and reports a loss). If the worker dies,
 * every pending batch is rejected and later batches are written on the main thread's store, so
 * decisions keep being audited.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { toAuditColumns, type AuditColumns } from '../store/columns.js';
import { postgresAuditInserts } from '../store/postgres-audit.js';
import { openSqliteDatabase, SqliteDirect } from '../store/sqlite-direct.js';
import type { AuditRecord, EncodedAuditRecord, Store, StoreOps } from '../store/store.js';

type Batch = readonly (AuditRecord | EncodedAuditRecord)[];

/** What the worker writes to: a SQLite file or a PostgreSQL URL. */
type Target = { readonly file: string } | { readonly postgres: string };

type Request = { readonly id: number; readonly records: Batch } | { readonly close: true };

type Reply =
  | { readonly id: number; readonly ok: true }
  | { readonly id: number; readonly ok: false; readonly error: string }
  | { readonly ready: true }
  | { readonly failed: string }
  | { readonly closed: true };

export interface AuditAppender extends Pick<StoreOps, 'appendAudit'> {
  close(): Promise<void>;
}

/**
 * The appender decision entries go through: the worker, for a SQLite database file or a
 * PostgreSQL server; otherwise (in-memory SQLite, which another connection cannot share, or a
 * worker that cannot start) the store itself.
 */
export async function startAuditWorker(database: string, store: Pick<Store, 'appendAudit' | 'dialect'>, logger: Logger): Promise<AuditAppender> {
  const fallback: AuditAppender = { appendAudit: (r) => store.appendAudit(r), close: async () => undefined };
  const target = workerTarget(database, store.dialect);
  if (target === undefined) return fallback;

  // A small young generation: the worker only turns short-lived batches into rows, and every
  // megabyte it holds counts against the server's memory.
  const worker = new Worker(new URL(import.meta.url), { workerData: target, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let dead: string | undefined;
  let closed: (() => void) | undefined;

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: Reply) => {
      if ('ready' in m) return resolve();
      if ('failed' in m) return reject(new Error(m.failed));
      if ('closed' in m) return closed?.();
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (pending.size === 0) worker.unref();
      if (m.ok) p?.resolve();
      else p?.reject(new Error(m.error));
    });
    const die = (why: string) => {
      if (dead !== undefined) return;
      dead = why;
      reject(new Error(why));
      for (const p of pending.values()) p.reject(new Error(`the audit writer thread stopped: ${why}`));
      pending.clear();
    };
    worker.on('error', (e) => {
      logger.error('audit writer thread failed; writing audit entries on the main thread', { error: e.message });
      die(e.message);
    });
    worker.on('exit', (code) => die(`exited with code ${code}`));
  });
  try {
    await ready;
  } catch (e) {
    logger.warn('audit writer thread did not start; writing audit entries on the main thread', { error: e instanceof Error ? e.message : String(e) });
    await worker.terminate();
    return fallback;
  }
  // The server must be able to exit while the worker is idle, and must not exit while a batch is
  // being written (the worker is referenced only while one is pending).
  worker.unref();

  // The worker writes batches in the order they were sent: waiting for the last one is waiting for all.
  let last: Promise<void> = Promise.resolve();
  return {
    appendAudit(records) {
      if (records.length === 0) return Promise.resolve();
      if (dead !== undefined) return store.appendAudit(records);
      const id = nextId++;
      const written = new Promise<void>((resolve, reject) => {
        if (pending.size === 0) worker.ref();
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, records } satisfies Request);
      });
      last = written.catch(() => undefined);
      return written;
    },
    async close() {
      if (dead !== undefined) return;
      await last;
      // Let the worker end its connection (a PostgreSQL server logs a client that just vanishes),
      // but do not wait on it for long.
      await new Promise<void>((resolve) => {
        closed = resolve;
        // Referenced until then: an idle worker is not, and the process would exit mid-close.
        worker.ref();
        setTimeout(resolve, 2_000).unref();
        worker.postMessage({ close: true } satisfies Request);
      });
      dead = 'closed';
      await worker.terminate();
    },
  };
}

function workerTarget(database: string, dialect: Store['dialect']): Target | undefined {
  if (dialect === 'postgres') return { postgres: database };
  const file = database.replace(/^sqlite:(\/\/)?/, '');
  if (file === '' || file === ':memory:' || file.startsWith('file:')) return undefined;
  return { file };
}

/** Writes one batch, all or nothing; `close` ends the connection. */
interface Writer {
  write(rows: AuditColumns): Promise<void> | void;
  close(): Promise<void> | void;
}

/**
 * SQLite: a connection of its own and the store's prepared insert, nothing more (not the whole
 * store: every module loaded here is loaded a second time, in this thread's heap).
 */
function sqliteWriter(file: string): Writer {
  const database = openSqliteDatabase(file);
  // Appends touch only the last pages of the table and its index: a small page cache will do
  // (better-sqlite3's default is 16 MB per connection, which this thread would fill with pages
  // it never reads again).
  database.pragma('cache_size = -2048');
  const sqlite = new SqliteDirect(database);
  return {
    write: (rows) => sqlite.appendAudit(rows, false),
    close: () => {
      database.close();
    },
  };
}

/**
 * PostgreSQL: one client (loaded only here, only for PostgreSQL) and the store's multi-row
 * insert. A client whose connection broke is dropped, and the next batch connects again.
 */
async function postgresWriter(url: string): Promise<Writer> {
  const { default: postgres } = await import('pg');
  let client: pg.Client | undefined;
  const connect = async (): Promise<pg.Client> => {
    // Named, so an operator can tell it apart from the store's pool in pg_stat_activity.
    const c = new postgres.Client({ connectionString: url, application_name: 'tollgate-audit-writer' });
    // A connection that breaks while idle is reported as an 'error' event; unhandled, it would
    // end the thread.
    c.on('error', () => {
      if (client === c) client = undefined;
    });
    try {
      await c.connect();
    } catch (e) {
      c.end().catch(() => undefined);
      throw e;
    }
    return (client = c);
  };
  await connect();
  return {
    async write(rows) {
      const c = client ?? (await connect());
      const statements = postgresAuditInserts(rows);
      try {
        if (statements.length === 1) {
          await c.query(statements[0]!);
          return;
        }
        await c.query('begin');
        try {
          for (const s of statements) await c.query(s);
          await c.query('commit');
        } catch (e) {
          await c.query('rollback').catch(() => undefined);
          throw e;
        }
      } catch (e) {
        // Whatever the state of this connection now, the next batch gets a fresh one.
        if (client === c) client = undefined;
        c.end().catch(() => undefined);
        throw e;
      }
    },
    close: async () => {
      await client?.end().catch(() => undefined);
    },
  };
}

/** The worker side: batches are written one after another in arrival order, each all or nothing. */
async function runWorker(target: Target): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  let writer: Writer;
  try {
    writer = 'file' in target ? sqliteWriter(target.file) : await postgresWriter(target.postgres);
  } catch (e) {
    port.postMessage({ failed: e instanceof Error ? e.message : String(e) } satisfies Reply);
    return;
  }
  let tail: Promise<void> = Promise.resolve();
  port.on('message', (m: Request) => {
    tail = tail.then(async () => {
      if ('close' in m) {
        await writer.close();
        port.postMessage({ closed: true } satisfies Reply);
        return;
      }
      try {
        await writer.write(toAuditColumns(m.records));
        port.postMessage({ id: m.id, ok: true } satisfies Reply);
      } catch (e) {
        port.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Reply);
      }
    });
  });
  port.postMessage({ ready: true } satisfies Reply);
}

const target = isMainThread ? undefined : (workerData as Partial<{ file: unknown; postgres: unknown }> | null);
if (typeof target?.file === 'string') void runWorker({ file: target.file });
else if (typeof target?.postgres === 'string') void runWorker({ postgres: target.postgres });
