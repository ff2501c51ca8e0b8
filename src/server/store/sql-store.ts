/**
 * The Store implemented once with Kysely for both dialects. Where SQLite and PostgreSQL differ
 * (column types, connection setup) the dialect flag decides, in this file only.
 */
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Generated, type Transaction } from 'kysely';
import pg from 'pg';
import { migrate } from './migrations.js';
import {
  StoreAlreadyExists,
  StoreNotFound,
  StoreVersionConflict,
  type AuditQuery,
  type AuditRecord,
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

/** RFC 3339 with microseconds, as Google's APIs print timestamps. */
export function nowTimestamp(): string {
  return new Date().toISOString().replace(/Z$/, '000Z');
}

/**
 * Opens the store for a database URL: `postgres://…` / `postgresql://…` for PostgreSQL, anything
 * else is a SQLite file path (`sqlite:` prefix optional). Runs migrations before returning.
 */
export async function openStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    const db = new Kysely<Database_>({ dialect: new PostgresDialect({ pool }) });
    await migrate(db, 'postgres');
    return new SqlStore(db, 'postgres');
  }
  const file = url.replace(/^sqlite:(\/\/)?/, '');
  const sqlite = new Database(file);
  // WAL lets readers run beside the writer (and several processes share a file); FULL makes
  // every acknowledged commit survive a crash of the machine, not only of the process.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database_>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db, 'sqlite');
  return new SqlStore(db, 'sqlite');
}

class SqlOps implements StoreOps {
  constructor(protected readonly db: Db) {}

  async get(kind: ResourceKind, name: string): Promise<StoredResource | undefined> {
    const row = await this.db.selectFrom('resources').selectAll().where('kind', '=', kind).where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : toResource(row);
  }

  async list(kind: ResourceKind, q: ListQuery): Promise<StoredResource[]> {
    let query = this.db.selectFrom('resources').selectAll().where('kind', '=', kind);
    if (q.parent !== undefined) query = query.where('parent', '=', q.parent);
    if (q.k1 !== undefined) query = query.where('k1', '=', q.k1);
    if (q.k2 !== undefined) query = query.where('k2', '=', q.k2);
    if (q.after !== undefined) query = query.where('name', '>', q.after);
    const rows = await query.orderBy('name').limit(q.limit).execute();
    return rows.map(toResource);
  }

  async create(r: NewResource): Promise<StoredResource> {
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
    const current = await this.get(kind, name);
    if (current === undefined) throw new StoreNotFound(kind, name);
    throw new StoreVersionConflict(kind, name, u.expectVersion ?? -1, current.version);
  }

  async delete(kind: ResourceKind, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('resources').where('kind', '=', kind).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.db
      .insertInto('audit_log')
      .values(records.map((r) => ({ time: r.time, project: r.project, log_id: r.logId, entry: JSON.stringify(r.entry) })))
      .execute();
  }

  async queryAudit(q: AuditQuery): Promise<StoredAuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll();
    if (q.projects !== undefined && q.projects.length > 0) query = query.where('project', 'in', [...q.projects]);
    if (q.since !== undefined) query = query.where('time', '>=', q.since);
    if (q.until !== undefined) query = query.where('time', '<=', q.until);
    if (q.beforeSeq !== undefined) query = query.where('seq', '<', q.beforeSeq);
    const rows = await query.orderBy('seq', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({ seq: Number(r.seq), time: r.time, project: r.project, logId: r.log_id, entry: JSON.parse(r.entry) as JsonObject }));
  }

  async getMeta(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db
      .insertInto('meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }
}

class SqlStore extends SqlOps implements Store {
  constructor(private readonly kysely: Kysely<Database_>, readonly dialect: 'sqlite' | 'postgres') {
    super(kysely);
  }

  async transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute((trx) => fn(new SqlOps(trx)));
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.kysely);
  }

  async close(): Promise<void> {
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
