/**
 * The store contract, run unchanged over both dialects: SQLite in a temp file and a real
 * PostgreSQL server (a throwaway cluster, or a fresh database on TOLLGATE_TEST_DATABASE_URL).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres } from '../../../test/support/postgres.js';
import { canonicalTimestamp, nowTimestamp } from './columns.js';
import { openStore } from './sql-store.js';
import {
  StoreAlreadyExists,
  StoreNotFound,
  StoreVersionConflict,
  type AuditRecord,
  type EncodedAuditRecord,
  type JsonObject,
  type ListQuery,
  type Store,
  type StoreOps,
  type StoredAuditRecord,
  type StoredResource,
} from './store.js';

interface TestDatabase {
  readonly url: string;
  stop(): Promise<void>;
  /** A second, empty database of the same dialect (for first-start migrations). */
  fresh(): Promise<string>;
}

async function sqliteDatabase(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-store-'));
  let n = 0;
  return {
    url: join(dir, 'tollgate.db'),
    async stop() {
      rmSync(dir, { recursive: true, force: true });
    },
    async fresh() {
      return join(dir, `fresh-${++n}.db`);
    },
  };
}

async function postgresDatabase(): Promise<TestDatabase> {
  const server = await startPostgres();
  const base = new URL(server.url).pathname.slice(1);
  const created: string[] = [];
  return {
    url: server.url,
    async stop() {
      // On a shared server (TOLLGATE_TEST_DATABASE_URL) the extra databases must go too.
      for (const name of created) await pgQuery(server.url, `drop database if exists "${name}" with (force)`);
      await server.stop();
    },
    async fresh() {
      const name = `${base}_fresh_${created.length + 1}`;
      await pgQuery(server.url, `create database "${name}"`);
      created.push(name);
      const url = new URL(server.url);
      url.pathname = `/${name}`;
      return url.toString();
    },
  };
}

async function pgQuery(url: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

/** Rows of tollgate_migrations, read with the driver directly (not through the store). */
async function appliedMigrations(dialect: string, url: string): Promise<string[]> {
  const text = 'select id from tollgate_migrations order by id';
  if (dialect === 'postgres') return (await pgQuery(url, text)).map((r) => String(r['id']));
  const db = new Database(url, { readonly: true });
  try {
    return (db.prepare(text).all() as { id: string }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

/** Runs statements on the database with the driver directly: another program, not a store. */
async function execDirect(dialect: string, url: string, statements: readonly string[]): Promise<void> {
  if (dialect === 'postgres') {
    for (const text of statements) await pgQuery(url, text);
    return;
  }
  const db = new Database(url);
  try {
    db.pragma('busy_timeout = 5000');
    for (const text of statements) db.prepare(text).run();
  } finally {
    db.close();
  }
}

/** Byte order of the UTF-8 encoding: what both dialects must order names by. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function drain(page: (after: string | undefined) => Promise<StoredResource[]>): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const rows = await page(after);
    if (rows.length === 0) break;
    pages++;
    names.push(...rows.map((r) => r.name));
    after = rows[rows.length - 1]!.name;
    if (pages > 1000) throw new Error('paging does not end');
  }
  return { names, pages };
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

describe.each([
  ['sqlite', sqliteDatabase],
  ['postgres', postgresDatabase],
] as const)('store on %s', (dialect, startDatabase) => {
  let db: TestDatabase | undefined;
  let store: Store;
  let counter = 0;
  /** A project of its own for each test: tests share one database. */
  const project = (): string => `projects/${dialect}-t${++counter}`;

  beforeAll(async () => {
    db = await startDatabase();
    store = await openStore(db.url);
  });

  afterAll(async () => {
    await store?.close();
    await db?.stop();
  });

  it('reports its dialect and answers ping', async () => {
    expect(store.dialect).toBe(dialect);
    await store.ping();
  });

  it('creates and gets a resource with every field', async () => {
    const p = project();
    const before = nowTimestamp();
    const created = await store.create({ kind: 'attestor', name: `${p}/attestors/a`, parent: p, k1: 'note-1', k2: null, body: { a: 1, nested: { b: [true, null, 'x'] } } });
    const after = nowTimestamp();
    expect(created).toMatchObject({ kind: 'attestor', name: `${p}/attestors/a`, parent: p, k1: 'note-1', k2: null, version: 1, body: { a: 1, nested: { b: [true, null, 'x'] } } });
    expect(created.createTime).toMatch(TIMESTAMP);
    expect(created.updateTime).toBe(created.createTime);
    expect(created.createTime >= before && created.createTime <= after).toBe(true);
    expect(await store.get('attestor', `${p}/attestors/a`)).toEqual(created);
    // k1/k2 default to null; kinds are separate name spaces.
    const note = await store.create({ kind: 'note', name: `${p}/attestors/a`, parent: p, body: {} });
    expect(note).toMatchObject({ k1: null, k2: null, version: 1 });
    expect(await store.get('attestor', `${p}/attestors/missing`)).toBeUndefined();
    expect(await store.get('policy', `${p}/attestors/a`)).toBeUndefined();
  });

  it('lists by parent, k1 and k2, ordered by name, within one kind, up to the limit', async () => {
    const p = project();
    const other = project();
    const occ = (id: string, parent: string, note: string, digest: string) =>
      store.create({ kind: 'occurrence', name: `${parent}/occurrences/${id}`, parent, k1: note, k2: digest, body: { id } });
    await occ('c', p, 'n1', 'd1');
    await occ('a', p, 'n1', 'd2');
    await occ('b', p, 'n2', 'd1');
    await occ('z', other, 'n1', 'd1');
    await store.create({ kind: 'note', name: `${p}/notes/n1`, parent: p, k1: 'n1', k2: 'd1', body: {} });

    const names = (rows: StoredResource[]) => rows.map((r) => r.name.slice(r.name.lastIndexOf('/') + 1));
    expect(names(await store.list('occurrence', { parent: p, limit: 10 }))).toEqual(['a', 'b', 'c']);
    expect(names(await store.list('occurrence', { parent: p, limit: 2 }))).toEqual(['a', 'b']);
    expect(names(await store.list('occurrence', { parent: p, k1: 'n1', limit: 10 }))).toEqual(['a', 'c']);
    expect(names(await store.list('occurrence', { parent: p, k2: 'd1', limit: 10 }))).toEqual(['b', 'c']);
    expect(names(await store.list('occurrence', { parent: p, k1: 'n1', k2: 'd1', limit: 10 }))).toEqual(['c']);
    // k1 across parents (an index lookup: occurrences of one note in every project).
    const byNote = await store.list('occurrence', { k1: 'n1', k2: 'd1', limit: 10 });
    expect(byNote.map((r) => r.name)).toEqual([`${p}/occurrences/c`, `${other}/occurrences/z`].sort(byteOrder));
    expect(await store.list('occurrence', { parent: `${p}/nothing`, limit: 10 })).toEqual([]);
    expect(await store.list('note', { parent: p, limit: 10 })).toHaveLength(1);
    expect(await store.list('occurrence', { parent: p, limit: 0 })).toEqual([]);
  });

  it('pages with `after` in byte order, the same on both dialects, whatever the server collation', async () => {
    const p = project();
    const ids = [
      'a', 'B', 'b', 'Z', '_', '-', '~', '0', '9', 'é', 'e', 'f', 'E', 'ß', 'ss', 'Å', 'z', 'a-b', 'a_b', 'ab', 'a b',
      '世界', '日本', '😀', '\uffff', 'ｆ', "o'q", 'x%y', 'xy', 'x"y',
    ];
    for (const id of ids) await store.create({ kind: 'attestor', name: `${p}/attestors/${id}`, parent: p, body: { id } });
    const expected = ids.map((id) => `${p}/attestors/${id}`).sort(byteOrder);
    expect((await store.list('attestor', { parent: p, limit: 100 })).map((r) => r.name)).toEqual(expected);
    for (const size of [1, 4, 7]) {
      const { names, pages } = await drain((after) => store.list('attestor', { parent: p, limit: size, ...(after === undefined ? {} : { after }) }));
      expect(names).toEqual(expected);
      expect(pages).toBe(Math.ceil(ids.length / size));
    }
    // `after` need not be an existing name.
    const fromE = await store.list('attestor', { parent: p, after: `${p}/attestors/e`, limit: 100 });
    expect(fromE.map((r) => r.name)).toEqual(expected.filter((n) => byteOrder(n, `${p}/attestors/e`) > 0));
  });

  it('lists with every combination of parent, k1, k2 and after exactly as a filter over all rows, in and out of a transaction', async () => {
    // cryptoKey: a kind no other test here writes, so a list by kind alone sees only these rows.
    const kind = 'cryptoKey';
    const parents = [project(), project()];
    const ids = ['a', 'B', 'é', 'e', 'ß', '😀', 'ｆ', 'a b', 'z', '0', '~', '\uffff'];
    const K1 = ['a', 'b', null];
    const K2 = ['x', 'y', null];
    const committed: StoredResource[] = [];
    for (const [pi, parent] of parents.entries()) {
      for (const [j, id] of ids.entries()) {
        const r = { name: `${parent}/cryptoKeys/${id}`, parent, k1: K1[(j + pi) % 3]!, k2: K2[(2 * j + pi) % 3]!, body: { id, pi } };
        committed.push(await store.create({ kind, ...r }));
        // The same names and keys under another kind must never show up.
        await store.create({ kind: 'keyRing', ...r });
      }
    }
    const [p1, p2] = parents as [string, string];
    const values = {
      parent: [p1, p2, `${p1}/none`],
      k1: ['a', 'b', 'c'],
      k2: ['x', 'y', 'z'],
      after: ['', `${p1}/cryptoKeys/e`, `${p1}/cryptoKeys/f`, `${p2}/cryptoKeys/ß`, `${p2}/cryptoKeys/\uffff`],
    };
    type Filter = keyof typeof values;
    const filters = Object.keys(values) as Filter[];
    const queries: ListQuery[] = [];
    for (let shape = 0; shape < 1 << filters.length; shape++) {
      let partial: Partial<Record<Filter, string>>[] = [{}];
      for (const [bit, f] of filters.entries()) {
        if ((shape & (1 << bit)) === 0) continue;
        partial = partial.flatMap((q) => values[f].map((v) => ({ ...q, [f]: v })));
      }
      for (const q of partial) for (const limit of [100, 2]) queries.push({ ...q, limit });
    }
    expect(queries).toHaveLength(4 * 4 * 4 * 6 * 2);

    const expected = (rows: readonly StoredResource[], q: ListQuery): StoredResource[] =>
      rows
        .filter((r) => (q.parent === undefined || r.parent === q.parent) && (q.k1 === undefined || r.k1 === q.k1) && (q.k2 === undefined || r.k2 === q.k2))
        .filter((r) => q.after === undefined || byteOrder(r.name, q.after) > 0)
        .sort((a, b) => byteOrder(a.name, b.name))
        .slice(0, q.limit);
    const checkAll = async (ops: StoreOps, rows: readonly StoredResource[]): Promise<void> => {
      const shapesFound = new Set<string>();
      for (const q of queries) {
        const want = expected(rows, q);
        if (want.length > 0) shapesFound.add(filters.filter((f) => q[f] !== undefined).join('+'));
        expect(await ops.list(kind, q), JSON.stringify(q)).toEqual(want);
      }
      // Every shape finds something for some values: the comparison is not vacuous.
      expect(shapesFound.size).toBe(16);
      for (const r of rows) expect(await ops.get(kind, r.name)).toEqual(r);
      // U+0000 as before: keys with it match nothing, a page position with it is an error.
      expect(await ops.list(kind, { k1: 'a\u0000', limit: 10 })).toEqual([]);
      expect(await ops.list(kind, { k2: 'x\u0000', after: 'a\u0000', limit: 10 })).toEqual([]);
      await expect(ops.list(kind, { parent: p1, after: `${p1}/\u0000`, limit: 10 })).rejects.toThrow(TypeError);
      expect(await ops.get(kind, `${p1}/cryptoKeys/a\u0000`)).toBeUndefined();
    };

    await checkAll(store, committed);

    // Inside a transaction, over the rows as its own uncommitted writes left them; then rolled back.
    const rollBack = new Error('roll back');
    const thrown = await store
      .transaction(async (tx) => {
        const rows = committed.filter((r) => r.name !== `${p1}/cryptoKeys/e`);
        expect(await tx.delete(kind, `${p1}/cryptoKeys/e`)).toBe(true);
        const moved = committed.find((r) => r.name === `${p2}/cryptoKeys/ß`)!;
        const updated = await tx.update(kind, moved.name, { body: { moved: true }, k1: moved.k1 === 'a' ? 'b' : 'a', k2: 'y' });
        rows[rows.indexOf(moved)] = updated;
        for (const [i, id] of ['e0', 'ä', 'zz'].entries()) {
          rows.push(await tx.create({ kind, name: `${parents[i % 2]!}/cryptoKeys/${id}`, parent: parents[i % 2]!, k1: 'a', k2: i === 2 ? null : 'x', body: { id } }));
        }
        await checkAll(tx, rows);
        expect(await tx.get(kind, `${p1}/cryptoKeys/e`)).toBeUndefined();
        throw rollBack;
      })
      .catch((e: unknown) => e);
    expect(thrown).toBe(rollBack);
    await checkAll(store, committed);
  });

  it('lists by k1 and several k2 at once, ordered by k2 then name, within the limit', async () => {
    const p = project();
    const note = `${p}/notes/n`;
    const made: StoredResource[] = [];
    // Three digests with 1, 2 and 3 rows; rows of another note, another kind and a k2 not asked for.
    for (const [k2, count] of [['sha256:bb', 2], ['sha256:aa', 1], ['sha256:cc', 3]] as const) {
      for (let i = count; i >= 1; i--) made.push(await store.create({ kind: 'occurrence', name: `${p}/occurrences/${k2.slice(7)}${i}`, parent: p, k1: note, k2, body: { k2, i } }));
    }
    await store.create({ kind: 'occurrence', name: `${p}/occurrences/other`, parent: p, k1: `${p}/notes/other`, k2: 'sha256:aa', body: {} });
    await store.create({ kind: 'note', name: `${p}/notes/aa`, parent: p, k1: note, k2: 'sha256:aa', body: {} });
    await store.create({ kind: 'occurrence', name: `${p}/occurrences/dd`, parent: p, k1: note, k2: 'sha256:dd', body: {} });
    const names = async (k2s: string[], limit: number) => (await store.listByK2s('occurrence', note, k2s, limit)).map((r) => r.name);
    const all = [`${p}/occurrences/aa1`, `${p}/occurrences/bb1`, `${p}/occurrences/bb2`, `${p}/occurrences/cc1`, `${p}/occurrences/cc2`, `${p}/occurrences/cc3`];
    expect(await names(['sha256:cc', 'sha256:aa', 'sha256:bb', 'sha256:aa', 'sha256:zz'], 100)).toEqual(all);
    expect(await names(['sha256:cc', 'sha256:bb', 'sha256:aa'], 4)).toEqual(all.slice(0, 4));
    expect(await names(['sha256:bb'], 100)).toEqual(all.slice(1, 3));
    expect(await names([], 100)).toEqual([]);
    expect(await names(['sha256:aa\u0000'], 100)).toEqual([]);
    expect(await store.listByK2s('occurrence', `${note}\u0000`, ['sha256:aa'], 100)).toEqual([]);
    // Whole rows, as list returns them; inside a transaction too.
    const viaList = await store.list('occurrence', { k1: note, k2: 'sha256:cc', limit: 10 });
    expect(await store.listByK2s('occurrence', note, ['sha256:cc'], 10)).toEqual(viaList);
    expect(await store.transaction((tx) => tx.listByK2s('occurrence', note, ['sha256:aa', 'sha256:cc'], 100))).toHaveLength(4);
  });

  it('returns exactly the first `limit` rows for every limit from 0 to 80, again after the prepared statements per limit were replaced', async () => {
    // SQLite writes each list's limit into its statement and keeps 64 of them: 81 limits, twice,
    // make it replace statements it still needs.
    const parent = project();
    const made: StoredResource[] = [];
    for (let i = 0; i < 90; i++) made.push(await store.create({ kind: 'cryptoKey', name: `${parent}/cryptoKeys/k${String(i).padStart(3, '0')}`, parent, body: { i } }));
    for (let round = 0; round < 2; round++) {
      for (let limit = 0; limit <= 80; limit++) {
        const rows = await store.list('cryptoKey', { parent, limit });
        expect(rows.map((r) => r.name), `limit ${limit}`).toEqual(made.slice(0, limit).map((r) => r.name));
      }
    }
    await expect(store.list('cryptoKey', { parent, limit: 1.5 })).rejects.toThrow();
  });

  it('get and list inside a transaction see its own uncommitted writes; readers outside see them only once committed', async () => {
    const p = project();
    const kept = `${p}/notes/kept`;
    const fresh = `${p}/notes/fresh`;
    await store.create({ kind: 'note', name: kept, parent: p, k1: 'old', body: { v: 1 } });
    const names = (rows: readonly StoredResource[]) => rows.map((r) => r.name);
    const readOutside = () =>
      Promise.all([
        store.get('note', fresh),
        store.get('note', kept),
        store.list('note', { parent: p, k1: 'new', limit: 10 }),
        store.list('note', { parent: p, k1: 'old', limit: 10 }),
      ]);
    let queued: ReturnType<typeof readOutside> | undefined;

    await store.transaction(async (tx) => {
      await tx.create({ kind: 'note', name: fresh, parent: p, k1: 'new', k2: 'd', body: { v: 1 } });
      await tx.update('note', kept, { body: { v: 2 }, k1: 'new' });
      expect(await tx.get('note', fresh)).toMatchObject({ version: 1, k1: 'new', k2: 'd' });
      expect(await tx.get('note', kept)).toMatchObject({ version: 2, body: { v: 2 }, k1: 'new' });
      expect(names(await tx.list('note', { parent: p, k1: 'new', limit: 10 }))).toEqual([fresh, kept].sort(byteOrder));
      expect(names(await tx.list('note', { k1: 'new', k2: 'd', limit: 10 }))).toEqual([fresh]);
      expect(await tx.list('note', { parent: p, k1: 'old', limit: 10 })).toEqual([]);
      expect(names(await tx.list('note', { parent: p, after: fresh, limit: 10 }))).toEqual([kept]);

      if (dialect === 'postgres') {
        // The store's own reads run on other pooled connections: the committed state only.
        const [f, k, byNew, byOld] = await readOutside();
        expect(f).toBeUndefined();
        expect(k).toMatchObject({ version: 1, body: { v: 1 }, k1: 'old' });
        expect(byNew).toEqual([]);
        expect(names(byOld)).toEqual([kept]);
      } else {
        // Another connection to the file (another process, a replica) sees the committed state.
        const other = new Database(db!.url, { readonly: true });
        try {
          const read = other.prepare('select version, k1 from resources where kind = ? and name = ?');
          expect(read.get('note', fresh)).toBeUndefined();
          expect(read.get('note', kept)).toEqual({ version: 1, k1: 'old' });
        } finally {
          other.close();
        }
        // The store's own reads share the transaction's connection, so they wait for it (the
        // gate) instead of reading its uncommitted writes; they run once it has committed.
        queued = readOutside();
        let settled = false;
        void queued.then(() => (settled = true));
        await new Promise((r) => setTimeout(r, 20));
        expect(settled).toBe(false);
      }
    });

    const [f, k, byNew, byOld] = await (queued ?? readOutside());
    expect(f).toMatchObject({ version: 1, k1: 'new' });
    expect(k).toMatchObject({ version: 2, body: { v: 2 }, k1: 'new' });
    expect(names(byNew)).toEqual([fresh, kept].sort(byteOrder));
    expect(byOld).toEqual([]);
  });

  it('refuses to create a resource that exists (StoreAlreadyExists), leaving it unchanged', async () => {
    const p = project();
    const name = `${p}/attestors/a`;
    const first = await store.create({ kind: 'attestor', name, parent: p, body: { first: true } });
    const err = await store.create({ kind: 'attestor', name, parent: p, body: { second: true } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreAlreadyExists);
    expect(err).toMatchObject({ kind: 'attestor', resourceName: name });
    expect(await store.get('attestor', name)).toEqual(first);
  });

  it('updates with and without expectVersion; conflicts and missing resources are typed errors', async () => {
    const p = project();
    const name = `${p}/attestors/a`;
    const created = await store.create({ kind: 'attestor', name, parent: p, k1: 'k1', k2: 'k2', body: { v: 1 } });

    const v2 = await store.update('attestor', name, { body: { v: 2 } });
    expect(v2).toMatchObject({ version: 2, body: { v: 2 }, k1: 'k1', k2: 'k2', createTime: created.createTime, parent: p });
    expect(v2.updateTime >= created.updateTime).toBe(true);
    expect(v2.updateTime).toMatch(TIMESTAMP);

    const v3 = await store.update('attestor', name, { body: { v: 3 }, expectVersion: 2, k1: 'changed', k2: null });
    expect(v3).toMatchObject({ version: 3, body: { v: 3 }, k1: 'changed', k2: null });
    expect(await store.get('attestor', name)).toEqual(v3);
    expect((await store.list('attestor', { k1: 'changed', limit: 10 })).map((r) => r.name)).toEqual([name]);
    expect(await store.list('attestor', { parent: p, k1: 'k1', limit: 10 })).toEqual([]);

    const conflict = await store.update('attestor', name, { body: { v: 'stale' }, expectVersion: 2 }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(StoreVersionConflict);
    expect(conflict).toMatchObject({ kind: 'attestor', resourceName: name, expected: 2, actual: 3 });
    expect(await store.get('attestor', name)).toEqual(v3);

    for (const update of [{ body: {} }, { body: {}, expectVersion: 1 }]) {
      const missing = await store.update('attestor', `${p}/attestors/missing`, update).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(StoreNotFound);
      expect(missing).toMatchObject({ kind: 'attestor', resourceName: `${p}/attestors/missing` });
    }
    // Same name, other kind: not found.
    expect(await store.update('note', name, { body: {} }).catch((e: unknown) => e)).toBeInstanceOf(StoreNotFound);
  });

  it('deletes, reports whether it did, and lets the name be created again at version 1', async () => {
    const p = project();
    const name = `${p}/notes/n`;
    await store.create({ kind: 'note', name, parent: p, body: {} });
    await store.update('note', name, { body: { x: 1 } });
    expect(await store.delete('note', name)).toBe(true);
    expect(await store.get('note', name)).toBeUndefined();
    expect(await store.list('note', { parent: p, limit: 10 })).toEqual([]);
    expect(await store.delete('note', name)).toBe(false);
    expect(await store.delete('attestor', name)).toBe(false);
    expect((await store.create({ kind: 'note', name, parent: p, body: {} })).version).toBe(1);
  });

  it('commits every write of a transaction together and returns its result', async () => {
    const p = project();
    await store.create({ kind: 'note', name: `${p}/notes/counter`, parent: p, body: { n: 0 } });
    const result = await store.transaction(async (tx) => {
      await tx.create({ kind: 'occurrence', name: `${p}/occurrences/1`, parent: p, body: {} });
      const counter = await tx.get('note', `${p}/notes/counter`);
      await tx.update('note', `${p}/notes/counter`, { body: { n: 1 }, expectVersion: counter!.version });
      await tx.appendAudit([{ time: nowTimestamp(), project: p, logId: 'test', entry: { step: 1 } }]);
      await tx.setMeta(`${p}/meta`, 'committed');
      // Reads inside see the transaction's own writes.
      expect(await tx.get('occurrence', `${p}/occurrences/1`)).toBeDefined();
      expect(await tx.list('occurrence', { parent: p, limit: 10 })).toHaveLength(1);
      expect(await tx.getMeta(`${p}/meta`)).toBe('committed');
      return 'done';
    });
    expect(result).toBe('done');
    expect(await store.get('occurrence', `${p}/occurrences/1`)).toBeDefined();
    expect(await store.get('note', `${p}/notes/counter`)).toMatchObject({ version: 2, body: { n: 1 } });
    expect(await store.queryAudit({ projects: [p], limit: 10 })).toHaveLength(1);
    expect(await store.getMeta(`${p}/meta`)).toBe('committed');
  });

  it('rolls back everything when the function throws, rethrowing the same error', async () => {
    const p = project();
    await store.create({ kind: 'note', name: `${p}/notes/counter`, parent: p, body: { n: 0 } });
    await store.create({ kind: 'note', name: `${p}/notes/doomed`, parent: p, body: {} });
    await store.setMeta(`${p}/meta`, 'before');
    const boom = new Error('boom');
    const thrown = await store
      .transaction(async (tx) => {
        await tx.create({ kind: 'occurrence', name: `${p}/occurrences/1`, parent: p, body: {} });
        await tx.update('note', `${p}/notes/counter`, { body: { n: 1 } });
        await tx.delete('note', `${p}/notes/doomed`);
        await tx.appendAudit([{ time: nowTimestamp(), project: p, logId: 'test', entry: {} }]);
        await tx.setMeta(`${p}/meta`, 'inside');
        throw boom;
      })
      .catch((e: unknown) => e);
    expect(thrown).toBe(boom);

    // A store error part way (after writes) rolls back the same way.
    const conflict = await store
      .transaction(async (tx) => {
        await tx.create({ kind: 'occurrence', name: `${p}/occurrences/2`, parent: p, body: {} });
        await tx.create({ kind: 'note', name: `${p}/notes/counter`, parent: p, body: {} });
      })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(StoreAlreadyExists);

    expect(await store.list('occurrence', { parent: p, limit: 10 })).toEqual([]);
    expect(await store.get('note', `${p}/notes/counter`)).toMatchObject({ version: 1, body: { n: 0 } });
    expect(await store.get('note', `${p}/notes/doomed`)).toBeDefined();
    expect(await store.queryAudit({ projects: [p], limit: 10 })).toEqual([]);
    expect(await store.getMeta(`${p}/meta`)).toBe('before');
    // The store is still usable afterwards.
    await store.transaction((tx) => tx.create({ kind: 'occurrence', name: `${p}/occurrences/3`, parent: p, body: {} }));
    expect(await store.list('occurrence', { parent: p, limit: 10 })).toHaveLength(1);
  });

  it('compare-and-set: of 20 parallel writers of one version exactly one wins; with retries none is lost', async () => {
    const p = project();
    const name = `${p}/notes/counter`;
    await store.create({ kind: 'note', name, parent: p, body: { count: 0, writers: [] } });

    // Round 1: everyone updates from version 1.
    const round = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.update('note', name, { body: { count: 1, writers: [i] }, expectVersion: 1 })),
    );
    const won = round.filter((r) => r.status === 'fulfilled');
    const lost = round.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const r of lost) expect(r.reason).toBeInstanceOf(StoreVersionConflict);
    expect(await store.get('note', name)).toMatchObject({ version: 2, body: { count: 1 } });

    // Round 2: 20 writers, each read-modify-write in a transaction, retrying on conflict.
    await store.update('note', name, { body: { count: 0, writers: [] } });
    const start = (await store.get('note', name))!.version;
    const versionsWon = new Map<number, number>();
    let conflicts = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        for (let attempt = 0; attempt < 200; attempt++) {
          try {
            const updated = await store.transaction(async (tx: StoreOps) => {
              const cur = (await tx.get('note', name))!;
              const body = cur.body as { count: number; writers: number[] };
              return tx.update('note', name, { body: { count: body.count + 1, writers: [...body.writers, i] }, expectVersion: cur.version });
            });
            expect(versionsWon.has(updated.version)).toBe(false);
            versionsWon.set(updated.version, i);
            return;
          } catch (err) {
            if (!(err instanceof StoreVersionConflict)) throw err;
            conflicts++;
            await new Promise((r) => setTimeout(r, Math.random() * 3));
          }
        }
        throw new Error(`writer ${i} never won`);
      }),
    );
    const final = (await store.get('note', name))!;
    const body = final.body as { count: number; writers: number[] };
    expect(body.count).toBe(20);
    expect([...body.writers].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(final.version).toBe(start + 20);
    expect([...versionsWon.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => start + 1 + i));
    expect(conflicts).toBeGreaterThanOrEqual(0);
  });

  it('prunes audit entries older than a cutoff, chunk by chunk from where the last stopped, whatever their project, and keeps the rest', async () => {
    // A database of its own: the prune takes every project's old entries.
    const own = await openStore(await db!.fresh());
    try {
      const day = (d: number, s = 0) => `2024-05-${String(d).padStart(2, '0')}T10:00:${String(s).padStart(2, '0')}.000000Z`;
      const entry = (time: string, n: number): AuditRecord => ({ time, project: `projects/p${n % 3}`, logId: 'cloudaudit.googleapis.com/activity', entry: { n } });
      // 24 entries of May 1st with one of the 20th written among them (out of order, inside the
      // range the deletes take), then 10 of the 20th, then one more of May 2nd written last.
      await own.appendAudit(Array.from({ length: 10 }, (_, i) => entry(day(1, i), i)));
      await own.appendAudit([entry(day(20), 100)]);
      await own.appendAudit(Array.from({ length: 14 }, (_, i) => entry(day(1, 10 + i), 10 + i)));
      await own.appendAudit(Array.from({ length: 10 }, (_, i) => entry(day(20, i), 200 + i)));
      await own.appendAudit([entry(day(2), 300)]);
      const cutoff = '2024-05-10T00:00:00Z';
      let from: number | undefined;
      let deleted = 0;
      let calls = 0;
      for (;;) {
        const r = await own.pruneAudit(cutoff, 10, from);
        calls++;
        deleted += r.deleted;
        from = r.next;
        if (!r.more) break;
      }
      expect(deleted).toBe(24);
      expect(calls).toBe(3);
      const left = (await own.queryAudit({ limit: 100 })).map((r) => r.entry['n']).sort((x, y) => Number(x) - Number(y));
      // The one of May 2nd, written after newer ones, waits for a later pass (audit-prune.ts).
      expect(left).toEqual([100, ...Array.from({ length: 10 }, (_, i) => 200 + i), 300]);
      // Nothing older than a cutoff: nothing to do.
      expect(await own.pruneAudit('2024-04-01T00:00:00Z', 10)).toMatchObject({ deleted: 0, more: false });
      // A cutoff past everything takes all that is left, the late one included.
      expect(await own.pruneAudit('2030-01-01T00:00:00Z', 100)).toMatchObject({ deleted: 12, more: false });
      expect(await own.queryAudit({ limit: 10 })).toEqual([]);
      await expect(own.pruneAudit('yesterday', 10)).rejects.toThrow(/RFC 3339/);
    } finally {
      await own.close();
    }
  });

  it('appends audit records and queries them newest first, by project, time bounds and beforeSeq', async () => {
    const a = project();
    const b = project();
    const c = project();
    const at = (s: number) => `2024-05-01T10:00:${String(s).padStart(2, '0')}.000000Z`;
    const records: AuditRecord[] = [
      { time: at(1), project: a, logId: 'cloudaudit.googleapis.com/activity', entry: { n: 1, text: 'héllo 世界' } },
      { time: at(2), project: b, logId: 'binaryauthorization.googleapis.com/policy_decision', entry: { n: 2 } },
      { time: at(3), project: a, logId: 'cloudaudit.googleapis.com/activity', entry: { n: 3 } },
    ];
    await store.appendAudit(records.slice(0, 2));
    await store.appendAudit([]);
    await store.appendAudit(records.slice(2));
    await store.appendAudit([
      { time: at(4), project: c, logId: 'x', entry: { n: 4 } },
      { time: at(5), project: a, logId: 'x', entry: { n: 5 } },
      { time: at(6), project: b, logId: 'x', entry: { n: 6 } },
    ]);

    const n = (rows: StoredAuditRecord[]) => rows.map((r) => r.entry['n']);
    const ab = await store.queryAudit({ projects: [a, b], limit: 100 });
    expect(n(ab)).toEqual([6, 5, 3, 2, 1]);
    for (let i = 1; i < ab.length; i++) expect(ab[i]!.seq).toBeLessThan(ab[i - 1]!.seq);
    expect(ab[4]).toEqual({ seq: ab[4]!.seq, time: at(1), project: a, logId: 'cloudaudit.googleapis.com/activity', entry: { n: 1, text: 'héllo 世界' } });
    expect(n(await store.queryAudit({ projects: [a], limit: 100 }))).toEqual([5, 3, 1]);
    expect(n(await store.queryAudit({ projects: [a, b], limit: 2 }))).toEqual([6, 5]);
    // Without a project filter every project is included (ours are the newest six here).
    expect(n(await store.queryAudit({ limit: 6 }))).toEqual([6, 5, 4, 3, 2, 1]);

    // Time bounds are inclusive, and are compared as times whatever RFC 3339 form they come in.
    expect(n(await store.queryAudit({ projects: [a, b, c], since: at(2), until: at(4), limit: 100 }))).toEqual([4, 3, 2]);
    expect(n(await store.queryAudit({ projects: [a, b, c], since: '2024-05-01T10:00:02Z', until: '2024-05-01T10:00:04Z', limit: 100 }))).toEqual([4, 3, 2]);
    expect(n(await store.queryAudit({ projects: [a, b, c], since: '2024-05-01T12:00:01.5+02:00', limit: 100 }))).toEqual([6, 5, 4, 3, 2]);
    expect(n(await store.queryAudit({ projects: [a, b, c], until: '2024-05-01T10:00:02.000001Z', limit: 100 }))).toEqual([2, 1]);
    expect(n(await store.queryAudit({ projects: [a, b, c], since: at(7), limit: 100 }))).toEqual([]);

    // beforeSeq pages backwards without gaps or repeats.
    const all = await store.queryAudit({ projects: [a, b, c], limit: 100 });
    const paged: StoredAuditRecord[] = [];
    let beforeSeq: number | undefined;
    for (;;) {
      const page = await store.queryAudit({ projects: [a, b, c], limit: 4, ...(beforeSeq === undefined ? {} : { beforeSeq }) });
      if (page.length === 0) break;
      paged.push(...page);
      beforeSeq = page[page.length - 1]!.seq;
    }
    expect(paged).toEqual(all);
    expect(n(paged)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(n(await store.queryAudit({ projects: [a], beforeSeq: ab[1]!.seq, limit: 100 }))).toEqual([3, 1]);
  });

  it('stores audit times in one canonical form and rejects non-timestamps', async () => {
    const p = project();
    await store.appendAudit([
      { time: '2024-05-01T12:00:00+02:00', project: p, logId: 'x', entry: { n: 1 } },
      { time: '2024-05-01T10:00:00.5Z', project: p, logId: 'x', entry: { n: 2 } },
      { time: '2024-05-01t10:00:01.123456789z', project: p, logId: 'x', entry: { n: 3 } },
    ]);
    const rows = await store.queryAudit({ projects: [p], limit: 10 });
    expect(rows.map((r) => r.time)).toEqual(['2024-05-01T10:00:01.123456Z', '2024-05-01T10:00:00.500000Z', '2024-05-01T10:00:00.000000Z']);
    expect(rows.map((r) => r.entry['n'])).toEqual([3, 2, 1]);
    expect((await store.queryAudit({ projects: [p], since: '2024-05-01T10:00:00Z', until: '2024-05-01T10:00:00.5Z', limit: 10 })).map((r) => r.entry['n'])).toEqual([2, 1]);
    await expect(store.appendAudit([{ time: 'yesterday', project: p, logId: 'x', entry: {} }])).rejects.toThrow(TypeError);
    await expect(store.queryAudit({ since: '2024-05-01', limit: 1 })).rejects.toThrow(TypeError);
    expect(await store.queryAudit({ projects: [p], limit: 10 })).toHaveLength(3);
  });

  it('moves the change mark on every committed resource write, and on nothing else', async () => {
    const p = project();
    const name = `${p}/notes/n`;
    let mark = await store.changeMark();
    expect(mark).toMatch(/^\d+$/);
    /** Whether the mark moved since the last look. */
    const moved = async (): Promise<boolean> => {
      const next = await store.changeMark();
      const changed = next !== mark;
      mark = next;
      return changed;
    };
    expect(await moved()).toBe(false);

    await store.create({ kind: 'note', name, parent: p, body: { v: 1 } });
    expect(await moved()).toBe(true);
    await store.update('note', name, { body: { v: 2 }, expectVersion: 1 });
    expect(await moved()).toBe(true);
    await store.update('note', name, { body: { v: 3 }, k1: 'k' });
    expect(await moved()).toBe(true);

    // Reads, audit and meta are not resources.
    await store.get('note', name);
    await store.list('note', { parent: p, limit: 10 });
    await store.appendAudit([{ time: nowTimestamp(), project: p, logId: 'x', entry: {} }]);
    await store.appendAudit([{ time: nowTimestamp(), project: p, logId: 'x', entryJson: '{}' }]);
    await store.queryAudit({ projects: [p], limit: 10 });
    await store.setMeta(`${p}/meta`, 'v');
    await store.getMeta(`${p}/meta`);
    await store.ping();
    await store.transaction(async (tx) => {
      await tx.get('note', name);
      await tx.appendAudit([{ time: nowTimestamp(), project: p, logId: 'x', entry: {} }]);
      await tx.setMeta(`${p}/meta`, 'w');
    });
    expect(await moved()).toBe(false);

    // A committed transaction moves it.
    await store.transaction(async (tx) => {
      await tx.create({ kind: 'note', name: `${p}/notes/2`, parent: p, body: {} });
      await tx.update('note', name, { body: { v: 4 } });
    });
    expect(await moved()).toBe(true);

    // A rolled-back one does not, whatever it wrote.
    const rolledBack = await store
      .transaction(async (tx) => {
        await tx.create({ kind: 'note', name: `${p}/notes/3`, parent: p, body: {} });
        await tx.update('note', name, { body: { v: 'rolled back' } });
        await tx.delete('note', `${p}/notes/2`);
        throw new Error('roll back');
      })
      .catch((e: unknown) => e);
    expect(rolledBack).toMatchObject({ message: 'roll back' });
    expect(await moved()).toBe(false);
    // Nor does one that fails part way on a store error.
    const failed = await store
      .transaction(async (tx) => {
        await tx.update('note', name, { body: { v: 'failed' } });
        await tx.create({ kind: 'note', name: `${p}/notes/2`, parent: p, body: {} });
      })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StoreAlreadyExists);
    expect(await moved()).toBe(false);
    expect(await store.get('note', name)).toMatchObject({ body: { v: 4 } });

    expect(await store.delete('note', `${p}/notes/2`)).toBe(true);
    expect(await moved()).toBe(true);
    // Marks are per database, not per store object: reading again is stable.
    expect(await store.changeMark()).toBe(mark);
  });

  it('moves the change mark for changes made through another store or directly on the database', async () => {
    const p = project();
    const other = await openStore(db!.url);
    try {
      const mark = await store.changeMark();
      expect(await other.changeMark()).toBe(mark);
      await other.create({ kind: 'attestor', name: `${p}/attestors/a`, parent: p, body: {} });
      const afterCreate = await store.changeMark();
      expect(afterCreate).not.toBe(mark);
      expect(await other.changeMark()).toBe(afterCreate);

      await other.transaction(async (tx) => {
        await tx.update('attestor', `${p}/attestors/a`, { body: { v: 2 } });
      });
      const afterTx = await store.changeMark();
      expect(afterTx).not.toBe(afterCreate);

      await other.transaction(async (tx) => {
        await tx.delete('attestor', `${p}/attestors/a`);
        throw new Error('roll back');
      }).catch(() => undefined);
      expect(await store.changeMark()).toBe(afterTx);
    } finally {
      await other.close();
    }

    // Another program writing the table with the driver (no store at all) moves it too.
    const before = await store.changeMark();
    await execDirect(dialect, db!.url, [`update resources set version = version + 1 where kind = 'attestor' and name = '${p}/attestors/a'`]);
    expect(await store.changeMark()).not.toBe(before);
  });

  it('adds the change mark to a database created before it existed, on open', async () => {
    const fresh = await db!.fresh();
    const first = await openStore(fresh);
    await first.create({ kind: 'note', name: 'projects/old/notes/kept', parent: 'projects/old', body: { kept: true } });
    await first.close();
    // Take the database back to how 0002 left it.
    await execDirect(dialect, fresh, [
      ...(dialect === 'postgres'
        ? ['drop trigger resources_changed on resources', 'drop function tollgate_resources_changed()']
        : ['drop trigger resources_changed_insert', 'drop trigger resources_changed_update', 'drop trigger resources_changed_delete']),
      'drop table resource_changes',
      `delete from tollgate_migrations where id = '0003_resource_change_mark'`,
    ]);
    expect(await appliedMigrations(dialect, fresh)).not.toContain('0003_resource_change_mark');

    const reopened = await openStore(fresh);
    try {
      expect(await appliedMigrations(dialect, fresh)).toContain('0003_resource_change_mark');
      expect(await reopened.get('note', 'projects/old/notes/kept')).toMatchObject({ body: { kept: true } });
      const mark = await reopened.changeMark();
      expect(mark).toBe('0');
      await reopened.update('note', 'projects/old/notes/kept', { body: { kept: 'still' } });
      expect(await reopened.changeMark()).not.toBe(mark);
    } finally {
      await reopened.close();
    }
  });

  it.runIf(dialect === 'postgres')('compresses audit entries with lz4 where the server has it (PostgreSQL)', async () => {
    const [setting] = await pgQuery(db!.url, `select 'lz4' = any(enumvals) as lz4 from pg_settings where name = 'default_toast_compression'`);
    const [column] = await pgQuery(db!.url, `select attcompression from pg_attribute where attrelid = 'audit_log'::regclass and attname = 'entry'`);
    // 'l' is lz4; '' is the server's default (pglz), what a server without lz4 keeps.
    expect(column!['attcompression']).toBe(setting?.['lz4'] === true ? 'l' : '');
    expect(await appliedMigrations(dialect, db!.url)).toContain('0004_postgres_audit_entry_lz4');
    // An entry big enough to be compressed is stored compressed and reads back the same.
    const p = project();
    const entry = { logName: `projects/${p}/logs/x`, insertId: 'lz4', timestamp: '2026-11-23T00:00:00.000000Z', jsonPayload: { text: 'decision '.repeat(600) } };
    await store.appendAudit([{ project: p, logId: 'x', time: entry.timestamp, entry }]);
    const [stored] = await pgQuery(db!.url, `select pg_column_compression(entry) as method, octet_length(entry) as bytes, pg_column_size(entry) as size from audit_log where project = '${p}'`);
    expect(stored!['method']).toBe(setting?.['lz4'] === true ? 'lz4' : 'pglz');
    expect(Number(stored!['size'])).toBeLessThan(Number(stored!['bytes']));
    expect((await store.queryAudit({ projects: [p], limit: 10 })).map((r) => r.entry)).toEqual([entry]);
  });

  it('runs parallel transactions writing the same few resources in opposite orders without deadlock', async () => {
    const p = project();
    const names = [0, 1, 2].map((i) => `${p}/notes/${i}`);
    for (const name of names) await store.create({ kind: 'note', name, parent: p, body: { writes: 0 } });
    const before = Number(await store.changeMark());
    const writers = 40;
    const results = await Promise.allSettled(
      Array.from({ length: writers }, (_, i) =>
        store.transaction(async (tx) => {
          const pair = [names[i % 3]!, names[(i + 1) % 3]!];
          if (i % 2 === 1) pair.reverse();
          await tx.update('note', pair[0]!, { body: { by: i } });
          // Hold the first row's lock while other transactions start theirs.
          await new Promise((r) => setTimeout(r, 2));
          await tx.update('note', pair[1]!, { body: { by: i } });
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const versions = await Promise.all(names.map(async (name) => (await store.get('note', name))!.version));
    expect(versions.reduce((a, b) => a + b, 0)).toBe(names.length + 2 * writers);
    // One move per updated row (SQLite) or per update statement (PostgreSQL): the same here.
    expect(Number(await store.changeMark()) - before).toBe(2 * writers);
  });

  it('appends plain and pre-encoded audit records mixed in one call, in order', async () => {
    const p = project();
    const at = (s: number) => `2024-05-02T10:00:${String(s).padStart(2, '0')}.000000Z`;
    const tricky = { n: 2, text: 'héllo "q" \\ back {a,b} NULL \'s 世界 😀 \n', nested: [null, { x: '}' }] };
    const records: (AuditRecord | EncodedAuditRecord)[] = [
      { time: at(1), project: p, logId: 'x', entry: { n: 1 } },
      { time: at(2), project: p, logId: 'NULL', entryJson: JSON.stringify(tricky) },
      { time: '2024-05-02T12:00:03+02:00', project: p, logId: '{"a,b"}', entryJson: '{"n":3}' },
      { time: at(4), project: p, logId: '', entry: { n: 4, lone: 'x\udc00y' } },
    ];
    await store.appendAudit(records);
    await store.transaction(async (tx) => {
      await tx.appendAudit([
        { time: at(5), project: p, logId: 'x', entryJson: '{"n":5}' },
        { time: at(6), project: p, logId: 'x', entry: { n: 6 } },
      ]);
    });
    const rows = await store.queryAudit({ projects: [p], limit: 10 });
    expect(rows.map((r) => r.entry['n'])).toEqual([6, 5, 4, 3, 2, 1]);
    expect(rows[4]).toEqual({ seq: rows[4]!.seq, time: at(2), project: p, logId: 'NULL', entry: tricky });
    expect(rows[3]).toMatchObject({ time: at(3), logId: '{"a,b"}', entry: { n: 3 } });
    expect(rows[2]).toMatchObject({ logId: '', entry: { n: 4, lone: 'x\udc00y' } });

    // A lone surrogate outside JSON text is stored as U+FFFD (what UTF-8 makes of it) on both.
    await store.appendAudit([{ time: at(7), project: p, logId: 'lone \ud800', entry: { n: 7 } }]);
    expect((await store.queryAudit({ projects: [p], limit: 1 }))[0]).toMatchObject({ logId: 'lone \ufffd', entry: { n: 7 } });

    // Pre-encoded and plain records mixed in one batch: the same entries come back.
    await store.appendAudit([
      { time: at(8), project: p, logId: 'x', entryJson: JSON.stringify(tricky) },
      { time: at(9), project: p, logId: 'x', entry: { n: 9, emoji: '😀', escapes: '\u0041 \\ "' } },
    ]);
    const last = await store.queryAudit({ projects: [p], limit: 2 });
    expect(last.map((r) => r.entry)).toEqual([{ n: 9, emoji: '😀', escapes: '\u0041 \\ "' }, tricky]);
  });

  it('writes nothing of an audit batch with one bad record, in or out of a transaction', async () => {
    const p = project();
    const good = (i: number): EncodedAuditRecord => ({ time: nowTimestamp(), project: p, logId: 'x', entryJson: JSON.stringify({ i }) });
    const batch = (bad: AuditRecord | EncodedAuditRecord) => [...Array.from({ length: 10 }, (_, i) => good(i)), bad, good(11)];
    await expect(store.appendAudit(batch({ time: 'yesterday', project: p, logId: 'x', entry: {} }))).rejects.toThrow(TypeError);
    await expect(store.appendAudit(batch({ time: nowTimestamp(), project: `${p}\u0000`, logId: 'x', entry: {} }))).rejects.toThrow(TypeError);
    await expect(store.appendAudit(batch({ time: nowTimestamp(), project: p, logId: 'x', entryJson: '{"a":"\u0000"}' }))).rejects.toThrow(TypeError);
    await expect(store.transaction((tx) => tx.appendAudit(batch({ time: '2024-13-01T00:00:00Z', project: p, logId: 'x', entryJson: '{}' })))).rejects.toThrow(TypeError);
    expect(await store.queryAudit({ projects: [p], limit: 100 })).toEqual([]);
    // The store goes on writing batches afterwards.
    await store.appendAudit([good(1), good(2)]);
    expect(await store.queryAudit({ projects: [p], limit: 100 })).toHaveLength(2);
  });

  it('writes nothing of an audit batch the database refuses part-way, and writes on afterwards', async () => {
    const p = project();
    const url = db!.url;
    // The database itself refuses one row, as it would on a full disk or a lost connection: on
    // PostgreSQL a batch of 150 rows is three statements (64 + 64 + 22) in one transaction, and
    // the refused row is in the third.
    const refuse =
      dialect === 'postgres'
        ? [
            `create function refuse_audit() returns trigger language plpgsql as $$ begin if new.entry like '%"refuse"%' then raise exception 'refused by the test'; end if; return new; end $$`,
            'create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()',
          ]
        : [`create trigger refuse_audit before insert on audit_log when new.entry like '%"refuse"%' begin select raise(abort, 'refused by the test'); end`];
    await execDirect(dialect, url, refuse);
    try {
      const rows = (n: number, bad?: number): EncodedAuditRecord[] =>
        Array.from({ length: n }, (_, i) => ({ time: nowTimestamp(), project: p, logId: 'x', entryJson: JSON.stringify(i === bad ? { i, refuse: true } : { i }) }));
      await expect(store.appendAudit(rows(150, 140))).rejects.toThrow(/refused by the test/);
      await expect(store.appendAudit(rows(10, 3))).rejects.toThrow(/refused by the test/);
      expect(await store.queryAudit({ projects: [p], limit: 500 })).toEqual([]);
      // The connection that failed is not left in a broken transaction: every later batch is written.
      for (let k = 0; k < 12; k++) await store.appendAudit(rows(k % 2 === 0 ? 3 : 130));
      expect(await store.queryAudit({ projects: [p], limit: 2000 })).toHaveLength(6 * 3 + 6 * 130);
    } finally {
      await execDirect(dialect, url, dialect === 'postgres' ? ['drop trigger refuse_audit on audit_log', 'drop function refuse_audit()'] : ['drop trigger refuse_audit']);
    }
  });

  it('round-trips 1 000- and 2 500-record audit batches in order, in and out of a transaction', async () => {
    const p = project();
    // Times out of order on purpose: the order is the order given (seq), not time.
    const make = (offset: number, count: number): (AuditRecord | EncodedAuditRecord)[] =>
      Array.from({ length: count }, (_, j) => {
        const i = offset + j;
        const time = `2024-05-03T10:${String((i * 7) % 60).padStart(2, '0')}:00.${String(i).padStart(6, '0')}Z`;
        return i % 2 === 0
          ? { time, project: p, logId: `log ${i % 3}`, entry: { i, pad: 'x'.repeat(i % 40) } }
          : { time, project: p, logId: `log ${i % 3}`, entryJson: JSON.stringify({ i, quote: '"\\' }) };
      });
    await store.appendAudit(make(0, 1000));
    await store.transaction((tx) => tx.appendAudit(make(1000, 1000)));
    // More rows than one PostgreSQL statement takes: several statements, still all or nothing.
    await store.appendAudit(make(2000, 2500));
    await store.transaction((tx) => tx.appendAudit(make(4500, 2500)));
    const rows = await store.queryAudit({ projects: [p], limit: 10_000 });
    expect(rows.map((r) => r.entry['i'])).toEqual(Array.from({ length: 7000 }, (_, k) => 6999 - k));
    for (let k = 1; k < rows.length; k++) expect(rows[k]!.seq).toBeLessThan(rows[k - 1]!.seq);
    expect(rows[6999]).toEqual({ seq: rows[6999]!.seq, time: '2024-05-03T10:00:00.000000Z', project: p, logId: 'log 0', entry: { i: 0, pad: '' } });
    expect(rows[0]).toMatchObject({ logId: `log ${6999 % 3}`, entry: { i: 6999, quote: '"\\' } });
  });

  it('gets and sets meta values, overwriting', async () => {
    const p = project();
    expect(await store.getMeta(`${p}/key`)).toBeUndefined();
    await store.setMeta(`${p}/key`, 'one');
    expect(await store.getMeta(`${p}/key`)).toBe('one');
    await store.setMeta(`${p}/key`, 'two ✓ "quoted"');
    expect(await store.getMeta(`${p}/key`)).toBe('two ✓ "quoted"');
    await store.setMeta(`${p}/empty`, '');
    expect(await store.getMeta(`${p}/empty`)).toBe('');
  });

  it('runs migrations once: reopening (and several stores starting together) changes nothing', async () => {
    const p = project();
    await store.create({ kind: 'note', name: `${p}/notes/kept`, parent: p, body: { kept: true } });
    const applied = await appliedMigrations(dialect, db!.url);
    expect(applied.length).toBeGreaterThanOrEqual(2);
    expect(new Set(applied).size).toBe(applied.length);

    const again = await openStore(db!.url);
    try {
      expect(await again.get('note', `${p}/notes/kept`)).toMatchObject({ body: { kept: true } });
    } finally {
      await again.close();
    }
    expect(await appliedMigrations(dialect, db!.url)).toEqual(applied);

    // A fresh database that three replicas start on at once is migrated exactly once.
    const fresh = await db!.fresh();
    const stores = await Promise.all([openStore(fresh), openStore(fresh), openStore(fresh)]);
    try {
      await stores[0]!.create({ kind: 'note', name: 'projects/x/notes/n', parent: 'projects/x', body: {} });
      expect(await stores[2]!.get('note', 'projects/x/notes/n')).toBeDefined();
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    expect(await appliedMigrations(dialect, fresh)).toEqual(applied);
  });

  it('round-trips unicode and 1 MB JSON bodies exactly', async () => {
    const p = project();
    const big = 'x'.repeat(1 << 20);
    const body: JsonObject = {
      text: 'héllo wörld 世界 😀 \u2028\u2029 "quotes" \'single\' \\ back \n\t nul:\u0000 ctrl:\u0001 bom:\ufeff',
      big,
      numbers: [0, -1, 1.5, 1e300, Number.MAX_SAFE_INTEGER],
      nested: { deep: [{ a: null }, [true, false]], empty: {}, list: [] },
      'key with spaces & ünïcode 😀': 'value',
    };
    const created = await store.create({ kind: 'occurrence', name: `${p}/occurrences/big`, parent: p, body });
    expect(created.body).toEqual(body);
    expect((await store.get('occurrence', `${p}/occurrences/big`))!.body).toEqual(body);
    expect((await store.list('occurrence', { parent: p, limit: 1 }))[0]!.body).toEqual(body);
    const bigger = { ...body, big: `${big}y` };
    expect((await store.update('occurrence', `${p}/occurrences/big`, { body: bigger, expectVersion: 1 })).body).toEqual(bigger);
    expect((await store.get('occurrence', `${p}/occurrences/big`))!.body['big']).toHaveLength((1 << 20) + 1);
    await store.appendAudit([{ time: nowTimestamp(), project: p, logId: 'x', entry: body }]);
    expect((await store.queryAudit({ projects: [p], limit: 1 }))[0]!.entry).toEqual(body);
  });

  it('round-trips names, parents and keys with quotes, %, backslashes and unicode exactly', async () => {
    const p = `projects/${dialect}-odd'"%_\\😀`;
    const names = [
      `${p}/attestors/it's`,
      `${p}/attestors/say "hi"`,
      `${p}/attestors/100%`,
      `${p}/attestors/a_b`,
      `${p}/attestors/back\\slash`,
      `${p}/attestors/世界😀`,
      `${p}/attestors/percent%2Fencoded`,
      `${p}/attestors/'; drop table resources; --`,
      `${p}/attestors/trailing space `,
    ];
    for (const name of names) {
      const r = await store.create({ kind: 'attestor', name, parent: p, k1: `k1 ${name}`, k2: `%${name}_`, body: { name } });
      expect(r.name).toBe(name);
    }
    for (const name of names) {
      const got = await store.get('attestor', name);
      expect(got).toMatchObject({ name, parent: p, k1: `k1 ${name}`, k2: `%${name}_`, body: { name } });
      expect((await store.list('attestor', { k1: `k1 ${name}`, limit: 10 })).map((r) => r.name)).toEqual([name]);
      expect((await store.list('attestor', { k2: `%${name}_`, limit: 10 })).map((r) => r.name)).toEqual([name]);
    }
    expect((await store.list('attestor', { parent: p, limit: 100 })).map((r) => r.name)).toEqual([...names].sort(byteOrder));
    // `%` and `_` are literal: no pattern matching anywhere.
    expect(await store.list('attestor', { parent: `projects/${dialect}-odd%`, limit: 10 })).toEqual([]);
    expect(await store.get('attestor', `${p}/attestors/a%b`)).toBeUndefined();
    expect(await store.get('attestor', `${p}/attestors/a_`)).toBeUndefined();
    expect(await store.delete('attestor', `${p}/attestors/100_`)).toBe(false);
    expect(await store.delete('attestor', `${p}/attestors/100%`)).toBe(true);
    await store.setMeta(`meta '%_\\ 😀`, `value '%_\\ 😀`);
    expect(await store.getMeta(`meta '%_\\ 😀`)).toBe(`value '%_\\ 😀`);
    await store.appendAudit([{ time: nowTimestamp(), project: p, logId: `log '%`, entry: {} }]);
    expect((await store.queryAudit({ projects: [p], limit: 10 })).map((r) => r.logId)).toEqual([`log '%`]);
  });

  it('treats U+0000 in keys the same on both dialects: rejected on write, matching nothing on read', async () => {
    const p = project();
    const nul = `${p}/attestors/a\u0000b`;
    await expect(store.create({ kind: 'attestor', name: nul, parent: p, body: {} })).rejects.toThrow(TypeError);
    await expect(store.create({ kind: 'attestor', name: `${p}/attestors/ok`, parent: p, k1: 'a\u0000', body: {} })).rejects.toThrow(TypeError);
    expect(await store.get('attestor', nul)).toBeUndefined();
    expect(await store.list('attestor', { parent: `${p}\u0000`, limit: 10 })).toEqual([]);
    expect(await store.delete('attestor', nul)).toBe(false);
    await expect(store.update('attestor', nul, { body: {} })).rejects.toBeInstanceOf(StoreNotFound);
    expect(await store.getMeta('a\u0000')).toBeUndefined();
    await expect(store.setMeta('a\u0000', 'x')).rejects.toThrow(TypeError);
    expect(await store.queryAudit({ projects: ['a\u0000'], limit: 10 })).toEqual([]);
    // A failed write inside a transaction fails the transaction, nothing else.
    await expect(store.transaction(async (tx) => {
      await tx.create({ kind: 'attestor', name: `${p}/attestors/ok`, parent: p, body: {} });
      await tx.create({ kind: 'attestor', name: nul, parent: p, body: {} });
    })).rejects.toThrow(TypeError);
    expect(await store.get('attestor', `${p}/attestors/ok`)).toBeUndefined();
  });
});

describe('canonicalTimestamp', () => {
  it('normalises RFC 3339 to UTC with six fractional digits', () => {
    expect(canonicalTimestamp('2024-05-01T10:00:00Z')).toBe('2024-05-01T10:00:00.000000Z');
    expect(canonicalTimestamp('2024-05-01T10:00:00.1Z')).toBe('2024-05-01T10:00:00.100000Z');
    expect(canonicalTimestamp('2024-05-01T10:00:00.123456789Z')).toBe('2024-05-01T10:00:00.123456Z');
    expect(canonicalTimestamp('2024-05-01T00:30:00.25-01:00')).toBe('2024-05-01T01:30:00.250000Z');
    expect(canonicalTimestamp('2024-05-01 10:00:00+00:00')).toBe('2024-05-01T10:00:00.000000Z');
    expect(canonicalTimestamp('0001-01-01T00:00:00Z')).toBe('0001-01-01T00:00:00.000000Z');
    const now = nowTimestamp();
    expect(canonicalTimestamp(now)).toBe(now);
  });

  it('rejects what is not a timestamp', () => {
    for (const bad of ['', '2024-05-01', '2024-05-01T10:00Z', '2024-05-01T10:00:00', '2024-13-01T00:00:00Z', '9999-12-31T23:00:00-05:00', 'x2024-05-01T10:00:00Z']) {
      expect(() => canonicalTimestamp(bad), bad).toThrow(TypeError);
    }
  });
});
