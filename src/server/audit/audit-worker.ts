/**
 * Decision audit writes on a worker thread (SQLite). better-sqlite3 is synchronous: on the main
 * thread every group commit (the inserts and the WAL fsync) stops every review in flight for its
 * duration, which is what sets the webhook's tail latency under load. The worker opens its own
 * connection to the same database file and writes the batches the DecisionAuditWriter hands it;
 * SQLite's locks (WAL, busy_timeout) coordinate it with the main thread's connection exactly as
 * they coordinate replicas sharing one file. PostgreSQL needs none of this: its driver waits off
 * the event loop already.
 *
 * The contract is `StoreOps.appendAudit`'s: the promise resolves once the rows are committed and
 * rejects when they were not (the writer retries once and reports a loss). If the worker dies,
 * every pending batch is rejected and later batches are written on the main thread's store, so
 * decisions keep being audited.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { toAuditColumns } from '../store/columns.js';
import { openSqliteDatabase, SqliteDirect } from '../store/sqlite-direct.js';
import type { AuditRecord, EncodedAuditRecord, Store, StoreOps } from '../store/store.js';

type Batch = readonly (AuditRecord | EncodedAuditRecord)[];

interface Request {
  readonly id: number;
  readonly records: Batch;
}

type Reply = { readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly error: string } | { readonly ready: true } | { readonly failed: string };

export interface AuditAppender extends Pick<StoreOps, 'appendAudit'> {
  close(): Promise<void>;
}

/**
 * The appender decision entries go through: for a SQLite database file, the worker; otherwise the
 * store itself — PostgreSQL, and in-memory SQLite, which another connection cannot share (and the
 * store too if the worker cannot start).
 */
export async function startAuditWorker(database: string, store: Pick<Store, 'appendAudit' | 'dialect'>, logger: Logger): Promise<AuditAppender> {
  const fallback: AuditAppender = { appendAudit: (r) => store.appendAudit(r), close: async () => undefined };
  const file = database.replace(/^sqlite:(\/\/)?/, '');
  if (store.dialect !== 'sqlite' || file === '' || file === ':memory:' || file.startsWith('file:')) return fallback;

  // A small young generation: the worker only turns short-lived batches into rows, and every
  // megabyte it holds counts against the server's memory.
  const worker = new Worker(new URL(import.meta.url), { workerData: { file }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let dead: string | undefined;

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: Reply) => {
      if ('ready' in m) return resolve();
      if ('failed' in m) return reject(new Error(m.failed));
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
      dead = 'closed';
      await worker.terminate();
    },
  };
}

/**
 * The worker side: a connection of its own and the store's prepared insert, nothing more (not
 * the whole store: every module loaded here is loaded a second time, in this thread's heap).
 * Batches are written one after another in arrival order, each in a transaction of its own.
 */
function runWorker(): void {
  const port = parentPort;
  if (port === null) return;
  const { file } = workerData as { file: string };
  let sqlite: SqliteDirect;
  try {
    const database = openSqliteDatabase(file);
    // Appends touch only the last pages of the table and its index: a small page cache will do
    // (better-sqlite3's default is 16 MB per connection, which this thread would fill with pages
    // it never reads again).
    database.pragma('cache_size = -2048');
    sqlite = new SqliteDirect(database);
  } catch (e) {
    port.postMessage({ failed: e instanceof Error ? e.message : String(e) } satisfies Reply);
    return;
  }
  port.on('message', (m: Request) => {
    try {
      sqlite.appendAudit(toAuditColumns(m.records), false);
      port.postMessage({ id: m.id, ok: true } satisfies Reply);
    } catch (e) {
      port.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Reply);
    }
  });
  port.postMessage({ ready: true } satisfies Reply);
}

if (!isMainThread && (workerData as { file?: unknown } | null)?.file !== undefined) runWorker();
