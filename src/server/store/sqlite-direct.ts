/**
 * SQLite through better-sqlite3 directly, for the hot paths where Kysely's per-query work
 * (compiling, an async round through the driver) costs more than SQLite itself. Kept apart from
 * sql-store.ts so the audit writer thread can write batches without loading Kysely.
 */
import Database from 'better-sqlite3';
import { BoundedMap } from '../bounded-map.js';
import { pruneAuditChunk, type AuditPruneOps, type AuditPruneResult } from './audit-prune.js';
import type { AuditColumns } from './columns.js';
import type { ReadParameter, ResourceRead, ResourcesTable } from './sql-store.js';

/**
 * Opens a SQLite database file with the settings every connection to it uses. WAL lets readers
 * run beside the writer (and several processes share a file); FULL makes every acknowledged
 * commit survive a crash of the machine, not only of the process. busy_timeout first: switching
 * to WAL needs a lock another connection may hold for a moment.
 */
export function openSqliteDatabase(file: string): Database.Database {
  const sqlite = new Database(file);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  return sqlite;
}

const INSERT_AUDIT_ROW = 'insert into audit_log (time, project, log_id, entry) values (?, ?, ?, ?)';
export const READ_CHANGE_MARK = 'select n from resource_changes where id = 1';
/** Prepared list statements kept (see readList); the oldest goes first when more are needed. */
const MAX_LIST_STATEMENTS = 64;


/**
 * The store's direct line to better-sqlite3, for the hot paths where Kysely's per-query work
 * (compiling, an async round through the driver) costs more than SQLite itself: the audit batch
 * insert, the change mark, and get and list. In the store it shares Kysely's connection, so there
 * it must only be used where nothing else can be using that connection: inside the store's gate
 * (every SqlStore method and every transaction runs there), and within a transaction only by that
 * transaction's ops. The audit writer thread gives it a connection of its own.
 */
export class SqliteDirect {
  private insertAudit: Database.Statement<[string, string, string, string]> | undefined;
  private insertAuditBatch: Database.Transaction<(rows: AuditColumns) => void> | undefined;
  private readChangeMark: Database.Statement<[], number> | undefined;
  private pruneOps: AuditPruneOps | undefined;
  /** get statements, prepared on first use (one per read, never evicted). */
  private readonly reads = new Map<ResourceRead, Database.Statement<[ReadParameter[]], ResourcesTable>>();
  /** list statements by shape and limit, the limit written into the text (see readList). */
  private readonly lists = new BoundedMap<string, Database.Statement<[ReadParameter[]], ResourcesTable>>(MAX_LIST_STATEMENTS);

  constructor(private readonly database: Database.Database) {}

  /**
   * Rows of a list (a read whose SQLite text has no limit), at most `limit`, synchronously. Inside
   * a transaction this is that transaction's connection, so it sees the transaction's own
   * uncommitted writes.
   *
   * The limit is written into the statement's text rather than bound: this SQLite build
   * (better-sqlite3 compiles it with STAT4) marks a statement whose LIMIT is a parameter for
   * recompiling whenever that parameter is bound, which doubled the cost of the decision path's
   * lookup by note and digest (15 → 35 µs measured on the bench's store). Callers use a few
   * limits (a page size plus one), so a small bounded set of statements covers them.
   */
  readList(read: ResourceRead, parameters: ReadParameter[], limit: number): ResourcesTable[] {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`a list limit must be a whole number, not ${limit}`);
    const key = `${read.name} ${limit}`;
    let statement = this.lists.get(key);
    if (statement === undefined) {
      statement = this.database.prepare<[ReadParameter[]], ResourcesTable>(`${read.sqlite} limit ${limit}`);
      this.lists.set(key, statement);
    }
    return statement.all(parameters);
  }

  /** The row of a get, synchronously (same connection rules as readList). */
  readOne(read: ResourceRead, parameters: ReadParameter[]): ResourcesTable | undefined {
    return this.statement(read).get(parameters);
  }

  /** Writes the rows in order; outside a transaction in one of its own (all or nothing). */
  appendAudit(rows: AuditColumns, inTransaction: boolean): void {
    if (inTransaction) {
      if (!this.database.inTransaction) throw new Error('audit rows for a transaction that is not open');
      this.insertRows(rows);
      return;
    }
    this.insertAuditBatch ??= this.database.transaction((r: AuditColumns) => this.insertRows(r));
    // IMMEDIATE like every other write transaction here (see transact): take the write lock up
    // front, waiting on busy_timeout if another process holds it.
    this.insertAuditBatch.immediate(rows);
  }

  /**
   * Removes a chunk of audit entries older than `before` (audit-prune.ts). The delete runs in an
   * IMMEDIATE transaction, like every write here: a plain statement that reads first would fail
   * at once with SQLITE_BUSY if another connection committed in between.
   */
  pruneAudit(before: string, maxRows: number, from?: number): Promise<AuditPruneResult> {
    this.pruneOps ??= this.auditPruneOps();
    return pruneAuditChunk(this.pruneOps, before, maxRows, from);
  }

  /** The prune's statements, prepared once per connection like the insert's. */
  private auditPruneOps(): AuditPruneOps {
    const first = this.database.prepare<[number], { seq: number; time: string }>('select seq, time from audit_log where seq >= ? order by seq limit 1');
    const last = this.database.prepare<[], number | null>('select max(seq) from audit_log').pluck();
    const remove = this.database.prepare<[number, number, string]>('delete from audit_log where seq >= ? and seq < ? and time < ?');
    const removeRange = this.database.transaction((from: number, to: number, cutoff: string) => remove.run(from, to, cutoff).changes);
    return {
      firstFrom: async (seq) => first.get(seq),
      lastSeq: async () => last.get() ?? undefined,
      deleteRange: async (from, to, cutoff) => removeRange.immediate(from, to, cutoff),
    };
  }

  changeMark(): string {
    // A statement of its own (not from the cache): pluck() is a mode that stays on the statement.
    this.readChangeMark ??= this.database.prepare<[], number>(READ_CHANGE_MARK).pluck();
    const n = this.readChangeMark.get();
    if (n === undefined) throw new Error('resource_changes has no row');
    return String(n);
  }

  private statement(read: ResourceRead): Database.Statement<[ReadParameter[]], ResourcesTable> {
    let statement = this.reads.get(read);
    if (statement === undefined) {
      // Statements of their own, like the others here: nothing sets a mode on them, and they
      // are run to completion (all/get) before anything else can use the connection. The
      // parameters go as one array, which better-sqlite3 binds in order.
      statement = this.database.prepare<[ReadParameter[]], ResourcesTable>(read.sqlite);
      this.reads.set(read, statement);
    }
    return statement;
  }

  private insertRows(rows: AuditColumns): void {
    this.insertAudit ??= this.database.prepare<[string, string, string, string]>(INSERT_AUDIT_ROW);
    const insert = this.insertAudit;
    for (let i = 0; i < rows.time.length; i++) insert.run(rows.time[i]!, rows.project[i]!, rows.logId[i]!, rows.entry[i]!);
  }
}

