/**
 * The Store implemented once with Kysely for both dialects. Where SQLite and PostgreSQL differ
 * (column types, connection setup) the dialect flag decides, in this file only. The hottest
 * paths (get, list, the audit insert, the change mark) bypass Kysely's query builder with SQL
 * written out here and in sqlite-direct.ts and postgres-direct.ts.
 */
import type Database from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, sql, type Generated, type SqliteDatabase, type SqliteStatement, type Transaction } from 'kysely';
import { resolve } from 'node:path';
import type pg from 'pg';
import { byteOrder, canonicalTimestamp, hasNul, nowTimestamp, rejectNul, toAuditColumns } from './columns.js';
import { migrate, transact } from './migrations.js';
import { BoundedMap } from '../bounded-map.js';
import { openSqliteDatabase, READ_CHANGE_MARK, SqliteDirect } from './sqlite-direct.js';
import { appendAuditRows, auditInsertStatements, openPostgresPool, pruneAuditRows } from './postgres-direct.js';
import type { AuditPruneResult } from './audit-prune.js';
import {
  StoreAlreadyExists,
  StoreNotFound,
  StoreVersionConflict,
  type AuditQuery,
  type AuditRecord,
  type EncodedAuditRecord,
  type JsonObject,
  type ListQuery,
  type NewResource,
  type ResourceKind,
  type ResourceUpdate,
  type Store,
  type StoreOps,
  type StoredAuditRecord,
  type StoredResource,
} from './store.js';

export interface ResourcesTable {
  kind: string;
  name: string;
  parent: string;
  k1: string | null;
  k2: string | null;
  body: string;
  version: number;
  create_time: string;
  update_time: string;
}

export interface AuditTable {
  seq: Generated<number>;
  time: string;
  project: string;
  log_id: string;
  entry: string;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface Database_ {
  resources: ResourcesTable;
  audit_log: AuditTable;
  meta: MetaTable;
}

type Db = Kysely<Database_> | Transaction<Database_>;


/**
 * Opens the store for a database URL: `postgres://…` / `postgresql://…` for PostgreSQL, anything
 * else is a SQLite file path (`sqlite:` prefix optional). Runs migrations before returning.
 */
export async function openStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const pool = await openPostgresPool(url, 10);
    const db = new Kysely<Database_>({ dialect: new PostgresDialect({ pool }) });
    try {
      await migrate(db, 'postgres');
    } catch (err) {
      await db.destroy();
      throw err;
    }
    return new SqlStore(db, 'postgres', OPEN_GATE, undefined, pool);
  }
  const file = url.replace(/^sqlite:(\/\/)?/, '');
  const sqlite = openSqliteDatabase(file);
  const db = new Kysely<Database_>({ dialect: new SqliteDialect({ database: new StatementCache(sqlite) }) });
  const gate = sqliteGate(file);
  try {
    await gate.run(() => migrate(db, 'sqlite'));
  } catch (err) {
    gate.release();
    await db.destroy();
    throw err;
  }
  return new SqlStore(db, 'sqlite', gate, new SqliteDirect(sqlite));
}

/** Compiled statements kept per SQL text; the oldest goes when a new one would exceed this. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * What Kysely's SqliteDialect is given instead of the better-sqlite3 Database: its driver calls
 * `prepare(sql)` for every query it runs, and better-sqlite3 compiles the SQL anew each time
 * (~15 µs, more than running a point query). This hands back one compiled statement per SQL text.
 *
 * Reusing a statement is safe because the driver (kysely 0.28 SqliteConnection.executeQuery) runs
 * it to completion synchronously, `stmt.all(parameters)` or `stmt.run(parameters)`, right after
 * `prepare` and before anything else can use the connection; better-sqlite3 resets the statement
 * and binds the new parameters on every call, and recompiles it by itself if the schema changed.
 * Nothing here touches statement modes (pluck, raw, expand, safeIntegers), which would stick.
 * The one use that keeps a statement busy across awaits is streaming (`iterate`): a stream left
 * unfinished would leave a shared statement busy, so streams get a statement of their own.
 */
class StatementCache implements SqliteDatabase {
  private readonly statements: BoundedMap<string, CachedStatement>;

  constructor(private readonly database: Database.Database, capacity = STATEMENT_CACHE_SIZE) {
    this.statements = new BoundedMap(capacity);
  }

  prepare(text: string): SqliteStatement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      // A statement that fails to compile throws here and is not cached.
      statement = new CachedStatement(this.database, text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  close(): void {
    this.statements.clear();
    this.database.close();
  }
}

class CachedStatement implements SqliteStatement {
  readonly reader: boolean;
  private readonly statement: Database.Statement<unknown[]>;

  constructor(private readonly database: Database.Database, private readonly text: string) {
    this.statement = database.prepare<unknown[]>(text);
    this.reader = this.statement.reader;
  }

  all(parameters: readonly unknown[]): unknown[] {
    return this.statement.all(parameters);
  }

  run(parameters: readonly unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return this.statement.run(parameters);
  }

  iterate(parameters: readonly unknown[]): IterableIterator<unknown> {
    return this.database.prepare<unknown[]>(this.text).iterate(parameters);
  }
}


/**
 * One hand-written read of `resources` (get, or list in one of its shapes), in both dialects'
 * placeholder styles. get and list are the reads on the decision path (a list by note and digest
 * per image not seen before): building and compiling them with Kysely on every call cost more
 * than SQLite took to run them, and PostgreSQL parsed and planned every one (Kysely sends
 * unnamed statements). Their text is fixed per shape, so each is written once here and prepared
 * once: by SqliteDirect on SQLite, as a named statement on each pooled PostgreSQL connection.
 */
export interface ResourceRead {
  /** The name of the PostgreSQL prepared statement (also what identifies it on SQLite). */
  readonly name: string;
  /** For a list: without its `limit`, which SqliteDirect writes into the text (see readList). */
  readonly sqlite: string;
  readonly postgres: string;
}

/** Every column, in the table's order: what Kysely's selectAll (`select *`) read before. */
const RESOURCE_COLUMNS = 'kind, name, parent, k1, k2, body, version, create_time, update_time';

function resourceRead(name: string, sqliteText: string, postgresSuffix = ''): ResourceRead {
  // `?` appears in these texts only as a placeholder (no literals, no quoted identifiers).
  let n = 0;
  return { name, sqlite: sqliteText, postgres: `${sqliteText}${postgresSuffix}`.replace(/\?/g, () => `$${++n}`) };
}

const GET_RESOURCE = resourceRead('tollgate_get', `select ${RESOURCE_COLUMNS} from resources where kind = ? and name = ?`);

/** The optional filters of a list, in the order their bits make the shape (parent = 1 … after = 8). */
const LIST_FILTERS = ['parent', 'k1', 'k2', 'after'] as const;

/**
 * The 16 list shapes, indexed by which optional filters are present. Parameters go kind, the
 * present filters in LIST_FILTERS order, then on PostgreSQL the limit (SQLite's text has none:
 * SqliteDirect.readList writes it in). Plain comparisons and `order by name` compare
 * bytes on both dialects: SQLite's default BINARY collation, and on PostgreSQL the columns'
 * own collation "C" (migration 0002), which wins over a parameter's default collation.
 */
const LIST_RESOURCES: readonly ResourceRead[] = Array.from({ length: 1 << LIST_FILTERS.length }, (_, shape) => {
  const present = LIST_FILTERS.filter((_f, bit) => (shape & (1 << bit)) !== 0);
  const conditions = ['kind = ?', ...present.map((f) => (f === 'after' ? 'name > ?' : `${f} = ?`))];
  return resourceRead(
    `tollgate_list_${['kind', ...present].join('_')}`,
    `select ${RESOURCE_COLUMNS} from resources where ${conditions.join(' and ')} order by name`,
    ' limit ?',
  );
});

/**
 * list by k1 and several k2 (listByK2s) on PostgreSQL; SQLite runs the k1 + k2 list shape per key.
 * A lateral lookup per key rather than `k2 = any($3)`: with one note holding most rows (one CI
 * attestor signs most images), the planner took `any` to the (kind, k1, name) index and read
 * every row of the note: 39 ms against 0.55 ms per query of three keys on 40 000 rows, measured.
 * Per key, `k2 = d.k2` is the single lookup's own shape, planned on the k2 index. The rows come
 * back unordered and listByK2s orders and cuts them: an outer `order by … limit` made the server
 * set up a sort for every query, ~40% of its time for one (235 against 135 µs for six keys on
 * 45 000 rows, measured), to order a handful of rows.
 */
const LIST_BY_K2S = {
  name: 'tollgate_list_by_k2s_unordered',
  postgres: `select r.* from unnest($3::text[]) as d(k2) cross join lateral (
      select ${RESOURCE_COLUMNS} from resources where kind = $1 and k1 = $2 and k2 = d.k2 order by name limit $4
    ) r`,
} as const;

/** The list shape with exactly k1 and k2 (bits of LIST_FILTERS: k1 = 2, k2 = 4). */
const LIST_BY_K1_K2 = LIST_RESOURCES[2 | 4]!;

export type ReadParameter = string | number;

/**
 * Serialises the work of every store this process has open on one SQLite file. better-sqlite3 is
 * synchronous: when one connection holds the write lock across an `await` (a transaction) and a
 * second connection in the same thread wants to write, SQLite's busy wait blocks the very thread
 * that would finish the first transaction, and the second fails with SQLITE_BUSY after
 * busy_timeout. Queuing in JavaScript instead makes several stores on one file in one process
 * (tests, an embedded second instance) behave like replicas. Other processes still coordinate
 * through SQLite's own locks and busy_timeout.
 */
class Gate {
  private tail: Promise<void> = Promise.resolve();
  users = 0;

  constructor(private readonly onIdle?: () => void) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((r) => (done = r));
    await previous;
    try {
      return await fn();
    } finally {
      done();
    }
  }

  /** One store using the gate has closed. */
  release(): void {
    if (--this.users === 0) this.onIdle?.();
  }
}

const sqliteGates = new Map<string, Gate>();

function sqliteGate(file: string): Gate {
  // In-memory and temporary databases are private to their connection: nothing to share.
  if (file === '' || file === ':memory:' || file.startsWith('file:')) {
    const gate = new Gate();
    gate.users++;
    return gate;
  }
  const key = resolve(file);
  let gate = sqliteGates.get(key);
  if (gate === undefined) {
    gate = new Gate(() => sqliteGates.delete(key));
    sqliteGates.set(key, gate);
  }
  gate.users++;
  return gate;
}

/** A gate that lets everything through at once (PostgreSQL: the server coordinates). */
const OPEN_GATE = { run: <T>(fn: () => Promise<T>): Promise<T> => fn(), release: (): void => undefined };
type GateLike = Pick<Gate, 'run' | 'release'>;

class SqlOps implements StoreOps {
  /**
   * @param sqlite Direct access to the SQLite connection (undefined on PostgreSQL).
   * @param inTransaction Whether db is a transaction's connection (`transaction()`'s ops).
   * @param pool The PostgreSQL pool, for get and list as named prepared statements; undefined on
   *   SQLite and inside a transaction, whose reads must run on the transaction's own connection.
   */
  constructor(
    protected readonly db: Db,
    protected readonly sqlite: SqliteDirect | undefined,
    private readonly inTransaction: boolean,
    protected readonly pool?: pg.Pool,
  ) {}

  async get(kind: ResourceKind, name: string): Promise<StoredResource | undefined> {
    if (hasNul(name)) return undefined;
    const parameters: ReadParameter[] = [kind, name];
    const row = this.sqlite !== undefined ? this.sqlite.readOne(GET_RESOURCE, parameters) : (await this.readPostgres(GET_RESOURCE, parameters))[0];
    return row === undefined ? undefined : toResource(row);
  }

  async list(kind: ResourceKind, q: ListQuery): Promise<StoredResource[]> {
    if (hasNul(q.parent, q.k1, q.k2)) return [];
    if (q.after !== undefined && q.after.includes('\u0000')) {
      throw new TypeError('a page position cannot contain the character U+0000');
    }
    // Parameters in LIST_FILTERS order, each present filter setting its bit of the shape.
    const parameters: ReadParameter[] = [kind];
    let shape = 0;
    LIST_FILTERS.forEach((filter, bit) => {
      const value = q[filter];
      if (value === undefined) return;
      shape |= 1 << bit;
      parameters.push(value);
    });
    const read = LIST_RESOURCES[shape]!;
    const rows = this.sqlite !== undefined ? this.sqlite.readList(read, parameters, q.limit) : await this.readPostgres(read, [...parameters, q.limit]);
    return rows.map(toResource);
  }

  async listByK2s(kind: ResourceKind, k1: string, k2s: readonly string[], limit: number): Promise<StoredResource[]> {
    // Byte order, as both dialects order k2 (see LIST_RESOURCES).
    const keys = [...new Set(k2s)].filter((k) => !hasNul(k)).sort(byteOrder);
    if (hasNul(k1) || keys.length === 0 || limit <= 0) return [];
    if (this.sqlite !== undefined) {
      // Every key with the same limit, cut to it at the end: one prepared statement, where
      // `limit - rows.length` would prepare a new one for nearly every batch.
      const rows: ResourcesTable[] = [];
      for (const k2 of keys) {
        if (rows.length >= limit) break;
        rows.push(...this.sqlite.readList(LIST_BY_K1_K2, [kind, k1, k2], limit));
      }
      return rows.slice(0, limit).map(toResource);
    }
    const rows = await this.readPostgres(LIST_BY_K2S, [kind, k1, keys, limit]);
    // As SQLite returns them: by key, then by name, both in byte order.
    rows.sort((a, b) => byteOrder(a.k2 ?? '', b.k2 ?? '') || byteOrder(a.name, b.name));
    return rows.slice(0, limit).map(toResource);
  }

  /**
   * A get or list on PostgreSQL. Outside a transaction: a named prepared statement through the
   * pool (node-postgres parses it once per pooled connection, then only binds and executes; the
   * server plans it once and may keep a generic plan). Inside one: the same text as a raw query on
   * the transaction's connection through Kysely, which does not expose the connection's pg client
   * (a raw query skips the query builder, but the server parses it each time; transactions are the
   * rare admin writes).
   */
  private async readPostgres(read: Pick<ResourceRead, 'name' | 'postgres'>, parameters: (ReadParameter | readonly string[])[]): Promise<ResourcesTable[]> {
    if (this.pool !== undefined) return (await this.pool.query<ResourcesTable>({ name: read.name, text: read.postgres, values: parameters })).rows;
    return (await this.db.executeQuery<ResourcesTable>(CompiledQuery.raw(read.postgres, parameters))).rows;
  }

  async create(r: NewResource): Promise<StoredResource> {
    rejectNul(`${r.kind} name, parent and lookup keys`, r.name, r.parent, r.k1, r.k2);
    const time = nowTimestamp();
    const row: ResourcesTable = {
      kind: r.kind,
      name: r.name,
      parent: r.parent,
      k1: r.k1 ?? null,
      k2: r.k2 ?? null,
      body: JSON.stringify(r.body),
      version: 1,
      create_time: time,
      update_time: time,
    };
    const result = await this.db
      .insertInto('resources')
      .values(row)
      .onConflict((oc) => oc.columns(['kind', 'name']).doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) throw new StoreAlreadyExists(r.kind, r.name);
    return toResource(row);
  }

  async update(kind: ResourceKind, name: string, u: ResourceUpdate): Promise<StoredResource> {
    if (hasNul(name)) throw new StoreNotFound(kind, name);
    rejectNul(`${kind} lookup keys`, u.k1, u.k2);
    let query = this.db
      .updateTable('resources')
      .set({
        body: JSON.stringify(u.body),
        version: sql<number>`version + 1`,
        update_time: nowTimestamp(),
        ...(u.k1 === undefined ? {} : { k1: u.k1 }),
        ...(u.k2 === undefined ? {} : { k2: u.k2 }),
      })
      .where('kind', '=', kind)
      .where('name', '=', name);
    if (u.expectVersion !== undefined) query = query.where('version', '=', u.expectVersion);
    const row = await query.returningAll().executeTakeFirst();
    if (row !== undefined) return toResource(row);
    // SqlOps.get, not this.get: SqlStore's get would queue behind this very call on its gate.
    const current = await SqlOps.prototype.get.call(this, kind, name);
    if (current === undefined) throw new StoreNotFound(kind, name);
    throw new StoreVersionConflict(kind, name, u.expectVersion ?? -1, current.version);
  }

  async delete(kind: ResourceKind, name: string): Promise<boolean> {
    if (hasNul(name)) return false;
    const r = await this.db.deleteFrom('resources').where('kind', '=', kind).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * The hot write path. Every record is validated before anything is written, so a bad one
   * leaves nothing behind; then prepared statements of at most 64 rows on PostgreSQL (several in
   * one transaction, postgres-direct.ts), one precompiled single-row insert per row on SQLite (in
   * a transaction of its own unless already in one). Either way rows get ascending seq in the
   * order given.
   */
  async appendAudit(records: readonly (AuditRecord | EncodedAuditRecord)[]): Promise<void> {
    if (records.length === 0) return;
    const rows = toAuditColumns(records);
    if (this.sqlite !== undefined) {
      this.sqlite.appendAudit(rows, this.inTransaction);
      return;
    }
    if (this.pool !== undefined) return appendAuditRows(this.pool, rows);
    // Inside a transaction (its connection is Kysely's): the same texts, parsed each time.
    for (const st of auditInsertStatements(rows)) await this.db.executeQuery(CompiledQuery.raw(st.text, st.values));
  }

  async queryAudit(q: AuditQuery): Promise<StoredAuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll();
    if (q.projects !== undefined && q.projects.length > 0) {
      const projects = q.projects.filter((p) => !hasNul(p));
      if (projects.length === 0) return [];
      query = query.where('project', 'in', projects);
    }
    if (q.since !== undefined) query = query.where('time', '>=', canonicalTimestamp(q.since));
    if (q.until !== undefined) query = query.where('time', '<=', canonicalTimestamp(q.until));
    if (q.beforeSeq !== undefined) query = query.where('seq', '<', q.beforeSeq);
    const rows = await query.orderBy('seq', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({ seq: Number(r.seq), time: r.time, project: r.project, logId: r.log_id, entry: JSON.parse(r.entry) as JsonObject }));
  }

  async getMeta(key: string): Promise<string | undefined> {
    if (hasNul(key)) return undefined;
    const row = await this.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    rejectNul('meta key and value', key, value);
    await this.db
      .insertInto('meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }
}

class SqlStore extends SqlOps implements Store {
  private closed = false;

  constructor(
    private readonly kysely: Kysely<Database_>,
    readonly dialect: 'sqlite' | 'postgres',
    private readonly gate: GateLike = OPEN_GATE,
    sqlite?: SqliteDirect,
    pool?: pg.Pool,
  ) {
    super(kysely, sqlite, false, pool);
  }

  override get(kind: ResourceKind, name: string): Promise<StoredResource | undefined> {
    return this.gate.run(() => super.get(kind, name));
  }

  override list(kind: ResourceKind, q: ListQuery): Promise<StoredResource[]> {
    return this.gate.run(() => super.list(kind, q));
  }

  override create(r: NewResource): Promise<StoredResource> {
    return this.gate.run(() => super.create(r));
  }

  override update(kind: ResourceKind, name: string, u: ResourceUpdate): Promise<StoredResource> {
    return this.gate.run(() => super.update(kind, name, u));
  }

  override delete(kind: ResourceKind, name: string): Promise<boolean> {
    return this.gate.run(() => super.delete(kind, name));
  }

  override appendAudit(records: readonly (AuditRecord | EncodedAuditRecord)[]): Promise<void> {
    return this.gate.run(() => super.appendAudit(records));
  }

  override queryAudit(q: AuditQuery): Promise<StoredAuditRecord[]> {
    return this.gate.run(() => super.queryAudit(q));
  }

  override getMeta(key: string): Promise<string | undefined> {
    return this.gate.run(() => super.getMeta(key));
  }

  override setMeta(key: string, value: string): Promise<void> {
    return this.gate.run(() => super.setMeta(key, value));
  }

  async transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return this.gate.run(() => transact(this.kysely, this.dialect, (db) => fn(new SqlOps(db, this.sqlite, true))));
  }

  changeMark(): Promise<string> {
    return this.gate.run(async () => {
      if (this.sqlite !== undefined) return this.sqlite.changeMark();
      const { rows } = await this.kysely.executeQuery<{ n: string }>(CompiledQuery.raw(READ_CHANGE_MARK));
      if (rows[0] === undefined) throw new Error('resource_changes has no row');
      return String(rows[0].n);
    });
  }

  async pruneAudit(before: string, maxRows: number, from?: number): Promise<AuditPruneResult> {
    const cutoff = canonicalTimestamp(before);
    return this.gate.run(async () => {
      if (this.sqlite !== undefined) return this.sqlite.pruneAudit(cutoff, maxRows, from);
      if (this.pool !== undefined) return pruneAuditRows(this.pool, cutoff, maxRows, from);
      throw new Error('this store has no connection to prune audit entries on');
    });
  }

  async ping(): Promise<void> {
    await this.gate.run(() => sql`select 1`.execute(this.kysely));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.gate.release();
    await this.kysely.destroy();
  }
}

function toResource(row: ResourcesTable): StoredResource {
  return {
    kind: row.kind as ResourceKind,
    name: row.name,
    parent: row.parent,
    k1: row.k1,
    k2: row.k2,
    body: JSON.parse(row.body) as JsonObject,
    version: Number(row.version),
    createTime: row.create_time,
    updateTime: row.update_time,
  };
}
