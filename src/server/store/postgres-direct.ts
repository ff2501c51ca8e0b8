/**
 * PostgreSQL without the query builder: the connection pool's settings and the audit insert,
 * shared by the store and the audit writer thread (audit-worker.ts), which loads this module and
 * node-postgres but not Kysely or the rest of the store.
 */
import type pg from 'pg';
import { pruneAuditChunk, type AuditPruneResult } from './audit-prune.js';
import type { AuditColumns } from './columns.js';

/**
 * A pool for a `postgres://` URL. A database that stops answering must fail reads (decisions then
 * deny, fail closed, and count as store errors) rather than hold them for ever: connecting gives
 * up after 10 s, a query after 30 s, and TCP keepalive notices a peer that vanished.
 */
export async function openPostgresPool(url: string, max: number): Promise<pg.Pool> {
  // Loaded only here: a server on SQLite never needs the PostgreSQL client in memory.
  const { default: postgres } = await import('pg');
  const pool = new postgres.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000, query_timeout: 30_000, keepAlive: true });
  // An idle pooled connection that the server drops (restart, failover, idle timeout) is
  // reported as an 'error' event; unhandled, it would crash the process. The pool discards the
  // connection and the next query opens a new one, so there is nothing else to do here.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Rows per audit insert statement on PostgreSQL: each count 1…64 is a named prepared statement,
 * parsed and planned once per pooled connection. Parsing and planning a 64-row VALUES statement
 * afresh cost the server as much again as inserting its rows (26 against 16 µs per 3 KB row,
 * measured in batches of 64), but a connection keeps every statement it prepared, and the plans
 * grow with the row count: all counts up to 64 take ~3.5 MB of a backend's memory, up to 250
 * ~40 MB. The decision audit writer sends batches of this size (app.ts), so each is one statement.
 */
export const POSTGRES_AUDIT_ROWS_PER_STATEMENT = 64;

/** `insert into audit_log … values ($1, $2, $3, $4), …` for n rows, each text made once. */
const auditInsertTexts: string[] = [];
function auditInsertText(n: number): string {
  let text = auditInsertTexts[n];
  if (text === undefined) {
    const groups: string[] = new Array<string>(n);
    for (let r = 0; r < n; r++) groups[r] = `($${4 * r + 1}, $${4 * r + 2}, $${4 * r + 3}, $${4 * r + 4})`;
    auditInsertTexts[n] = text = `insert into audit_log (time, project, log_id, entry) values ${groups.join(', ')}`;
  }
  return text;
}

export interface AuditStatement {
  readonly name: string;
  readonly text: string;
  readonly values: string[];
}

/**
 * Validated rows as multi-row VALUES statements of at most 64 rows, each value a text parameter:
 * the server only copies them. Reading the batch as JSON arrays instead (json_array_elements,
 * one statement text for any size) made PostgreSQL parse the entries twice, validating the array
 * and then splitting it: ~42 against ~28 µs of the server's time per 3 KB row, measured in
 * batches of 200. A plain INSERT … VALUES inserts its rows in list order, so the bigserial seq is
 * drawn in the order given.
 */
export function auditInsertStatements(rows: AuditColumns): AuditStatement[] {
  const n = rows.time.length;
  const statements: AuditStatement[] = [];
  for (let start = 0; start < n; start += POSTGRES_AUDIT_ROWS_PER_STATEMENT) {
    const count = Math.min(POSTGRES_AUDIT_ROWS_PER_STATEMENT, n - start);
    const values: string[] = new Array<string>(4 * count);
    for (let r = 0; r < count; r++) {
      values[4 * r] = rows.time[start + r]!;
      values[4 * r + 1] = rows.project[start + r]!;
      values[4 * r + 2] = rows.logId[start + r]!;
      values[4 * r + 3] = rows.entry[start + r]!;
    }
    statements.push({ name: `tollgate_audit_insert_${count}`, text: auditInsertText(count), values });
  }
  return statements;
}

/** Writes the rows through the pool: one statement as is, several in one transaction on one connection. */
export async function appendAuditRows(pool: pg.Pool, rows: AuditColumns): Promise<void> {
  const statements = auditInsertStatements(rows);
  if (statements.length === 0) return;
  if (statements.length === 1) {
    await pool.query(statements[0]!);
    return;
  }
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('begin');
    for (const st of statements) await client.query(st);
    await client.query('commit');
  } catch (e) {
    // A connection that cannot even roll back is closed rather than given back to the pool.
    await client.query('rollback').catch((r: unknown) => (broken = r instanceof Error ? r : new Error(String(r))));
    throw e;
  } finally {
    client.release(broken);
  }
}

/** The advisory lock a pruning replica holds, so that replicas do not prune the same rows at once. */
const AUDIT_PRUNE_LOCK = 7421;

/**
 * Removes a chunk of audit entries older than `before` (audit-prune.ts), in one transaction on one
 * connection. Replicas all prune; one at a time: a replica that finds another pruning does nothing
 * this time (it returns no more to do), and the next pass sees what is left.
 */
export async function pruneAuditRows(pool: pg.Pool, before: string, maxRows: number, from?: number): Promise<AuditPruneResult> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('begin');
    const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_xact_lock($1) as locked', [AUDIT_PRUNE_LOCK]);
    let result: AuditPruneResult = { deleted: 0, more: false, next: from ?? 0 };
    if (rows[0]?.locked === true) {
      result = await pruneAuditChunk(
        {
          firstFrom: async (seq) => {
            const r = (await client.query<{ seq: string; time: string }>('select seq, time from audit_log where seq >= $1 order by seq limit 1', [seq])).rows[0];
            return r === undefined ? undefined : { seq: Number(r.seq), time: r.time };
          },
          lastSeq: async () => {
            const r = (await client.query<{ seq: string | null }>('select max(seq) as seq from audit_log')).rows[0];
            return r?.seq === null || r?.seq === undefined ? undefined : Number(r.seq);
          },
          deleteRange: async (from, to, cutoff) => (await client.query('delete from audit_log where seq >= $1 and seq < $2 and time < $3', [from, to, cutoff])).rowCount ?? 0,
        },
        before,
        maxRows,
        from,
      );
    }
    await client.query('commit');
    return result;
  } catch (e) {
    await client.query('rollback').catch((r: unknown) => (broken = r instanceof Error ? r : new Error(String(r))));
    throw e;
  } finally {
    client.release(broken);
  }
}
