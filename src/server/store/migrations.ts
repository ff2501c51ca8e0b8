/**
 * Schema migrations, run in order on every start. Each step is applied once and recorded in
 * `tollgate_migrations`; add new steps at the end, never edit an applied one.
 */
import { sql, type Kysely } from 'kysely';

type Dialect = 'sqlite' | 'postgres';
// Migrations see the database untyped: they create the tables the typed layer uses.
type AnyDb = Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Migration {
  readonly id: string;
  up(db: AnyDb, dialect: Dialect): Promise<void>;
}

const MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_resources_audit_meta',
    async up(db, dialect) {
      await db.schema
        .createTable('resources')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('parent', 'text', (c) => c.notNull())
        .addColumn('k1', 'text')
        .addColumn('k2', 'text')
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('create_time', 'text', (c) => c.notNull())
        .addColumn('update_time', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('resources_pk', ['kind', 'name'])
        .execute();
      await db.schema.createIndex('resources_parent').on('resources').columns(['kind', 'parent', 'name']).execute();
      await db.schema.createIndex('resources_k1').on('resources').columns(['kind', 'k1', 'name']).execute();
      await db.schema.createIndex('resources_k2').on('resources').columns(['kind', 'k2', 'name']).execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('log_id', 'text', (c) => c.notNull())
        .addColumn('entry', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_project_time').on('audit_log').columns(['project', 'time']).execute();
      await db.schema.createTable('meta').addColumn('key', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).execute();
    },
  },
  {
    // PostgreSQL compares text with the database's collation (often en_US or ICU), where
    // `ORDER BY name` and `name > after` differ from SQLite's byte order and from each other across
    // servers. Byte order ("C") makes listing and keyset paging identical on both dialects and
    // keeps audit times (fixed-width RFC 3339) ordered as text. SQLite already compares bytes.
    id: '0002_postgres_byte_order_collation',
    async up(db, dialect) {
      if (dialect !== 'postgres') return;
      await sql`alter table resources
        alter column name type text collate "C",
        alter column parent type text collate "C",
        alter column k1 type text collate "C",
        alter column k2 type text collate "C"`.execute(db);
      await sql`alter table audit_log
        alter column time type text collate "C",
        alter column project type text collate "C"`.execute(db);
      await sql`alter table meta alter column key type text collate "C"`.execute(db);
    },
  },
  {
    // A counter that every committed change to `resources` moves, whoever made it (this process,
    // another replica, another process on the SQLite file): Store.changeMark reads it, so caches
    // of resources know when to drop what they hold. Triggers keep it in the writing transaction,
    // so it moves exactly when the change commits, and not at all when it rolls back.
    id: '0003_resource_change_mark',
    async up(db, dialect) {
      await sql`create table resource_changes (
        id integer primary key check (id = 1),
        n ${sql.raw(dialect === 'postgres' ? 'bigint' : 'integer')} not null
      )`.execute(db);
      await sql`insert into resource_changes (id, n) values (1, 0)`.execute(db);
      if (dialect === 'sqlite') {
        // SQLite has row triggers only; a row update in SQLite costs next to nothing.
        for (const event of ['insert', 'update', 'delete'] as const) {
          await sql`create trigger ${sql.raw(`resources_changed_${event}`)} after ${sql.raw(event)} on resources
            begin update resource_changes set n = n + 1 where id = 1; end`.execute(db);
        }
        return;
      }
      await sql`create function tollgate_resources_changed() returns trigger language plpgsql as $$
        begin
          update resource_changes set n = n + 1 where id = 1;
          return null;
        end
      $$`.execute(db);
      // One statement-level trigger, BEFORE rather than AFTER: every transaction that writes
      // resources then locks the counter row before it locks any resource row. One lock order for
      // all writers: two transactions writing overlapping resources (in any order) queue on the
      // counter instead of deadlocking on it (AFTER would take it last, after resource rows the
      // other holds). The price: resource-writing transactions commit one at a time, and a
      // statement that changes no row (a create that exists, a stale update) still moves the
      // mark, which only costs a cache refill.
      await sql`create trigger resources_changed
        before insert or update or delete on resources
        for each statement execute function tollgate_resources_changed()`.execute(db);
    },
  },
  {
    // Decision audit entries are ~3 KB of JSON, over PostgreSQL's 2 KB TOAST threshold, so each
    // is compressed on insert. With the default pglz that was a third of the server's time per
    // audit row (50 → 33 µs per row measured on PostgreSQL 15 with lz4). lz4 needs PostgreSQL 14+
    // built with it (Debian's is); elsewhere this changes nothing. Rows already stored keep their
    // compression; only new values use lz4.
    id: '0004_postgres_audit_entry_lz4',
    async up(db, dialect) {
      if (dialect !== 'postgres') return;
      const { rows } = await sql<{ lz4: boolean }>`select 'lz4' = any(enumvals) as lz4 from pg_settings where name = 'default_toast_compression'`.execute(db);
      if (rows[0]?.lz4 !== true) return;
      await sql`alter table audit_log alter column entry set compression lz4`.execute(db);
    },
  },
];

/**
 * Runs fn in one transaction. On SQLite it begins with BEGIN IMMEDIATE: a deferred transaction
 * that reads and then writes fails at once with SQLITE_BUSY (no busy wait) when another connection
 * (a second process on the same file) committed in between; taking the write lock up front makes
 * writers queue on busy_timeout instead.
 */
export async function transact<DB, T>(db: Kysely<DB>, dialect: Dialect, fn: (db: Kysely<DB>) => Promise<T>): Promise<T> {
  if (dialect === 'postgres') return db.transaction().execute(fn);
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    let result: T;
    try {
      result = await fn(conn);
    } catch (err) {
      await sql`rollback`.execute(conn);
      throw err;
    }
    await sql`commit`.execute(conn);
    return result;
  });
}

export async function migrate(db: AnyDb, dialect: Dialect): Promise<void> {
  // One transaction for the lot (DDL is transactional in both dialects), holding an advisory lock
  // on PostgreSQL so replicas that start together migrate once.
  await transact(db, dialect, async (trx) => {
    if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7420)`.execute(trx);
    await trx.schema
      .createTable('tollgate_migrations')
      .ifNotExists()
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute();
    for (const m of MIGRATIONS) {
      const done = await trx.selectFrom('tollgate_migrations').select('id').where('id', '=', m.id).executeTakeFirst();
      if (done !== undefined) continue;
      await m.up(trx, dialect);
      await trx.insertInto('tollgate_migrations').values({ id: m.id, applied_at: new Date().toISOString() }).execute();
    }
  });
}
