/**
 * Decision audit writes on a worker thread. On SQLite, better-sqlite3 is synchronous: on the main
 * thread every group commit (the inserts and the WAL fsync) stops every review in flight for its
 * duration, which is what sets the webhook's tail latency under load. On PostgreSQL the driver
 * waits off the event loop, but handing it ~3 KB entries on the main thread made that thread's
 * heap collect its old generation every ~0.6 s under load (each pause stalling the reviews in
 * flight), where handing the same batches to a thread did not (docs/performance.md item 29).
 * The worker opens its own connection to the same database and writes the batches the
 * DecisionAuditWriter hands it: SQLite's locks (WAL, busy_timeout) coordinate it with the main
 * thread's connection exactly as they coordinate replicas sharing one file; on PostgreSQL it is
 * one more client.
 *
 * The contract is `StoreOps.appendAudit`'s: the promise resolves once the rows are committed and
 * rejects when they were not (the writer retries once and reports a loss). The retention's
 * deletes (`Store.pruneAudit`) go the same way, a chunk per request, between batches. If the
 * worker dies, every pending request is rejected and later ones run on the main thread's store,
 * so decisions keep being audited.
 */
import { Worker, isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { AuditPruneResult } from '../store/audit-prune.js';
import { canonicalTimestamp, toAuditColumns, type AuditColumns } from '../store/columns.js';
import type { AuditRecord, EncodedAuditRecord, Store, StoreOps } from '../store/store.js';

type Batch = readonly (AuditRecord | EncodedAuditRecord)[];

/** Where the worker writes: the server's own database, through a connection of the worker's. */
type Target = { readonly sqliteFile: string } | { readonly postgresUrl: string };

type Request =
  | { readonly id: number; readonly records: Batch }
  | { readonly id: number; readonly prune: { readonly before: string; readonly maxRows: number; readonly from?: number } }
  | { readonly close: true };

type Reply =
  | { readonly id: number; readonly ok: true; readonly pruned?: AuditPruneResult }
  | { readonly id: number; readonly ok: false; readonly error: string }
  | { readonly ready: true }
  | { readonly failed: string }
  | { readonly closed: true };

export interface AuditAppender extends Pick<StoreOps, 'appendAudit'>, Pick<Store, 'pruneAudit'> {
  close(): Promise<void>;
}

/** How long close waits for the worker to finish its batches and close its connection. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * The appender decision entries go through: for a SQLite database file or a PostgreSQL URL, the
 * worker; otherwise the store itself (in-memory SQLite, which another connection cannot share,
 * and any database when the worker cannot start).
 */
export async function startAuditWorker(database: string, store: Pick<Store, 'appendAudit' | 'pruneAudit' | 'dialect'>, logger: Logger): Promise<AuditAppender> {
  const fallback: AuditAppender = { appendAudit: (r) => store.appendAudit(r), pruneAudit: (b, n, f) => store.pruneAudit(b, n, f), close: async () => undefined };
  const target = targetOf(database, store.dialect);
  if (target === undefined) return fallback;

  // A small young generation: the worker only turns short-lived batches into rows, and every
  // megabyte it holds counts against the server's memory.
  const worker = new Worker(new URL(import.meta.url), { workerData: { auditTarget: target }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  const pending = new Map<number, { resolve: (pruned?: AuditPruneResult) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let dead: string | undefined;
  let onClosed: (() => void) | undefined;

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: Reply) => {
      if ('ready' in m) return resolve();
      if ('failed' in m) return reject(new Error(m.failed));
      if ('closed' in m) return onClosed?.();
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (pending.size === 0) worker.unref();
      if (m.ok) p?.resolve(m.pruned);
      else p?.reject(new Error(m.error));
    });
    const die = (why: string) => {
      if (dead !== undefined) return;
      dead = why;
      reject(new Error(why));
      onClosed?.();
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

  // The worker handles requests in the order they were sent: waiting for the last one is waiting for all.
  let last: Promise<unknown> = Promise.resolve();
  const send = (request: Extract<Request, { id: number }>): Promise<AuditPruneResult | undefined> => {
    const done = new Promise<AuditPruneResult | undefined>((resolve, reject) => {
      if (pending.size === 0) worker.ref();
      pending.set(request.id, { resolve, reject });
      worker.postMessage(request satisfies Request);
    });
    last = done.catch(() => undefined);
    return done;
  };
  return {
    async appendAudit(records) {
      if (records.length === 0) return;
      if (dead !== undefined) return store.appendAudit(records);
      await send({ id: nextId++, records });
    },
    // Between two batches, on the worker's connection: a chunk of deletes never runs on the
    // event loop (SQLite's are synchronous), and batches sent meanwhile wait for one chunk only.
    async pruneAudit(before, maxRows, from) {
      if (dead !== undefined) return store.pruneAudit(before, maxRows, from);
      const pruned = await send({ id: nextId++, prune: { before: canonicalTimestamp(before), maxRows, ...(from === undefined ? {} : { from }) } });
      if (pruned === undefined) throw new Error('the audit writer thread answered a prune without its result');
      return pruned;
    },
    async close() {
      if (dead !== undefined) return;
      await last;
      // Let the worker close its connection (a PostgreSQL server otherwise logs a dropped client).
      worker.ref();
      const closed = new Promise<void>((resolve) => {
        onClosed = resolve;
        setTimeout(resolve, CLOSE_TIMEOUT_MS).unref();
      });
      worker.postMessage({ close: true } satisfies Request);
      await closed;
      dead = 'closed';
      await worker.terminate();
    },
  };
}

function targetOf(database: string, dialect: Store['dialect']): Target | undefined {
  if (dialect === 'postgres') return { postgresUrl: database };
  const file = database.replace(/^sqlite:(\/\/)?/, '');
  if (file === '' || file === ':memory:' || file.startsWith('file:')) return undefined;
  return { sqliteFile: file };
}

interface Writer {
  write(rows: AuditColumns): Promise<void> | void;
  prune(before: string, maxRows: number, from?: number): Promise<AuditPruneResult>;
  close(): Promise<void> | void;
}

/**
 * A connection of the worker's own and the store's insert, nothing more: not the whole store, and
 * only the driver of the database at hand (every module loaded here is loaded a second time, in
 * this thread's heap).
 */
async function openWriter(target: Target): Promise<Writer> {
  if ('postgresUrl' in target) {
    // One connection: batches are written one at a time.
    const { appendAuditRows, openPostgresPool, pruneAuditRows } = await import('../store/postgres-direct.js');
    const pool = await openPostgresPool(target.postgresUrl, 1);
    return { write: (rows) => appendAuditRows(pool, rows), prune: (before, maxRows, from) => pruneAuditRows(pool, before, maxRows, from), close: () => pool.end() };
  }
  const { openSqliteDatabase, SqliteDirect } = await import('../store/sqlite-direct.js');
  const database = openSqliteDatabase(target.sqliteFile);
  // Appends touch only the last pages of the table and its index: a small page cache will do
  // (better-sqlite3's default is 16 MB per connection, which this thread would fill with pages
  // it never reads again).
  database.pragma('cache_size = -2048');
  const sqlite = new SqliteDirect(database);
  return { write: (rows) => sqlite.appendAudit(rows, false), prune: (before, maxRows, from) => sqlite.pruneAudit(before, maxRows, from), close: () => void database.close() };
}

/** The worker side: batches are written one after another in arrival order, each in a transaction of its own. */
async function runWorker(port: MessagePort, target: Target): Promise<void> {
  let writer: Writer;
  try {
    writer = await openWriter(target);
  } catch (e) {
    port.postMessage({ failed: e instanceof Error ? e.message : String(e) } satisfies Reply);
    return;
  }
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (m: Request) => {
    queue = queue.then(async () => {
      if ('close' in m) {
        await Promise.resolve(writer.close()).catch(() => undefined);
        port.postMessage({ closed: true } satisfies Reply);
        return;
      }
      try {
        if ('prune' in m) {
          const pruned = await writer.prune(m.prune.before, m.prune.maxRows, m.prune.from);
          port.postMessage({ id: m.id, ok: true, pruned } satisfies Reply);
          return;
        }
        await writer.write(toAuditColumns(m.records));
        port.postMessage({ id: m.id, ok: true } satisfies Reply);
      } catch (e) {
        port.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Reply);
      }
    });
  });
  port.postMessage({ ready: true } satisfies Reply);
}

const auditTarget = isMainThread ? undefined : (workerData as { auditTarget?: Target } | null)?.auditTarget;
if (auditTarget !== undefined && parentPort !== null) void runWorker(parentPort, auditTarget);
