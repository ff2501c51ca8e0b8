/** The Logging API router against a real SQLite store: order, paging, bounds, permissions, errors. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../app-deps.js';
import { ApiError } from '../errors.js';
import type { RequestContext } from '../http/router.js';
import { createIam } from '../iam/iam-service.js';
import type { Principal } from '../iam/principal.js';
import { jsonLogger } from '../log.js';
import { openStore } from '../store/sql-store.js';
import type { AuditRecord, JsonObject, Store, StoredAuditRecord } from '../store/store.js';
import { loggingRouter, scanAudit, type LoggingRouterOptions } from './logging.js';

let dir: string;
let store: Store;
let deps: AppDeps;
let all: StoredAuditRecord[];

const admin: Principal = { type: 'user', email: 'admin@tollgate.local', superuser: true };
const viewer: Principal = { type: 'user', email: 'viewer@example.com', superuser: false };
const privateViewer: Principal = { type: 'user', email: 'auditor@example.com', superuser: false };
const stranger: Principal = { type: 'user', email: 'stranger@example.com', superuser: false };

const NOW = Date.parse('2026-11-22T12:00:00.000Z');

/** Times with dense bursts, ties, sparse gaps, one far in the past and two in the future. */
function times(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 400; i++) out.push(new Date(NOW - 3_600_000 + i * 7).toISOString()); // a burst: 400 in 2.8 s
  for (let i = 0; i < 150; i++) out.push(new Date(NOW - 86_400_000 * 3 + i * 600_000).toISOString()); // sparse
  for (let i = 0; i < 30; i++) out.push('2026-11-22T11:00:00.000001Z'); // ties
  out.push('1999-12-31T23:59:59.999999Z', '2031-01-01T00:00:00Z', '2026-11-22T12:00:30Z');
  return out;
}

function record(time: string, i: number): AuditRecord {
  const project = i % 5 === 0 ? 'other' : 'demo';
  const logId = i % 7 === 0 ? 'cloudaudit.googleapis.com/data_access' : 'cloudaudit.googleapis.com/activity';
  const entry: JsonObject = {
    logName: `projects/${project}/logs/${encodeURIComponent(logId)}`,
    insertId: `e${i}`,
    timestamp: time,
    severity: i % 3 === 0 ? 'ERROR' : 'NOTICE',
    protoPayload: { methodName: i % 2 === 0 ? 'even' : 'odd' },
  };
  return { time, project, logId, entry };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-logging-'));
  store = await openStore(join(dir, 'tollgate.db'));
  const records = times().map(record);
  // Written in a shuffled order, so write order (seq) is not time order.
  const shuffled = records.map((r, i) => ({ r, k: (i * 7919) % records.length })).sort((a, b) => a.k - b.k).map((x) => x.r);
  for (let i = 0; i < shuffled.length; i += 100) await store.appendAudit(shuffled.slice(i, i + 100));
  all = await store.queryAudit({ limit: 100_000 });
  const iam = createIam(store);
  await iam.setPolicy('projects/demo', {
    bindings: [
      { role: 'roles/logging.viewer', members: [`user:${viewer.email}`] },
      { role: 'roles/logging.privateLogViewer', members: [`user:${privateViewer.email}`] },
    ],
  });
  deps = { store, iam, logger: jsonLogger('error', () => undefined), settings: { publicUrl: 'http://127.0.0.1:0', dataDir: dir } };
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

function ctx(body: unknown, principal: Principal, params: Record<string, string> = {}): RequestContext {
  return {
    method: 'POST',
    path: '',
    query: new URLSearchParams(),
    params,
    headers: {},
    host: '127.0.0.1',
    principal,
    json: async () => body,
    rawBody: async () => Buffer.from(JSON.stringify(body)),
  };
}

async function list(body: Record<string, unknown>, principal: Principal = admin, opts: LoggingRouterOptions = {}): Promise<{ entries: JsonObject[]; nextPageToken?: string }> {
  const m = loggingRouter(deps, { now: () => NOW, ...opts }).match('POST', '/v2/entries:list');
  if (m.kind !== 'match') throw new Error('no route');
  return (await m.handler(ctx(body, principal))).body as { entries: JsonObject[]; nextPageToken?: string };
}

/** Follows nextPageToken to the end; returns the insertIds and the number of calls. */
async function listAll(body: Record<string, unknown>, principal: Principal = admin, opts: LoggingRouterOptions = {}): Promise<{ ids: string[]; calls: number }> {
  const ids: string[] = [];
  let token: string | undefined;
  let calls = 0;
  do {
    const page = await list({ ...body, ...(token === undefined ? {} : { pageToken: token }) }, principal, opts);
    calls++;
    if (calls > 10_000) throw new Error('paging does not end');
    ids.push(...page.entries.map((e) => String(e['insertId'])));
    token = page.nextPageToken;
  } while (token !== undefined);
  return { ids, calls };
}

function expected(pred: (r: StoredAuditRecord) => boolean, order: 'asc' | 'desc'): string[] {
  const rows = all.filter(pred).sort((a, b) => (a.time === b.time ? a.seq - b.seq : a.time < b.time ? -1 : 1));
  if (order === 'desc') rows.reverse();
  return rows.map((r) => String(r.entry['insertId']));
}

async function apiStatus(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof ApiError) return `${e.status}: ${e.message}`;
    throw e;
  }
}

describe('entries:list', () => {
  it('returns every entry of the project, newest first, across pages, windows and scan caps', async () => {
    const want = expected((r) => r.project === 'demo', 'desc');
    expect(want.length).toBeGreaterThan(400);
    for (const opts of [{}, { windowRows: 16, scanCap: 100 }, { windowRows: 3, scanCap: 7 }]) {
      const got = await listAll({ resourceNames: ['projects/demo'], orderBy: 'timestamp desc', pageSize: 37 }, admin, opts);
      expect(got.ids).toEqual(want);
    }
  });

  it('returns them oldest first with timestamp asc', async () => {
    const want = expected((r) => r.project === 'demo', 'asc');
    for (const opts of [{}, { windowRows: 16, scanCap: 100 }]) {
      const got = await listAll({ resourceNames: ['projects/demo'], orderBy: 'timestamp asc', pageSize: 1000 }, admin, opts);
      expect(got.ids).toEqual(want);
    }
  });

  it('reads several projects at once, and log views by their project', async () => {
    const want = expected(() => true, 'desc');
    const got = await listAll({ resourceNames: ['projects/demo', 'projects/other/locations/global/buckets/_Default/views/_AllLogs'], pageSize: 1000 });
    expect(got.ids).toEqual(want);
  });

  it('applies the filter, and uses gcloud\'s timestamp prefix as a bound', async () => {
    const since = '2026-11-22T11:00:00.000001Z';
    const want = expected((r) => r.project === 'demo' && r.time >= since && r.entry['severity'] === 'ERROR', 'desc');
    expect(want.length).toBeGreaterThan(10);
    const got = await listAll({ resourceNames: ['projects/demo'], filter: `timestamp>="${since}" AND severity>=ERROR`, orderBy: 'timestamp desc', pageSize: 10 });
    expect(got.ids).toEqual(want);
    // A bounded walk never reads a window below its bound.
    let rowsBelow = 0;
    await scanAudit({ queryAudit: async (q) => { const rows = await store.queryAudit(q); if (q.since !== undefined) rowsBelow += rows.filter((r) => r.time < since).length; return rows; } }, {
      projects: ['demo'], order: 'desc', lower: since, upper: '9999-12-31T23:59:59.999999Z', state: { time: '9999-12-31T23:59:59.999999Z', seq: Number.MAX_SAFE_INTEGER, windowMs: 60_000 },
      cap: 100_000, windowRows: 50, nowMs: NOW, visit: () => false,
    });
    expect(rowsBelow).toBe(0);
  });

  it('answers the first page from the newest rows without walking the whole table', async () => {
    let queries = 0;
    const counting = { queryAudit: (q: Parameters<Store['queryAudit']>[0]) => { queries++; return store.queryAudit(q); } };
    const page: string[] = [];
    await scanAudit(counting, {
      projects: ['demo'], order: 'desc', lower: '0000-01-01T00:00:00.000000Z', upper: '9999-12-31T23:59:59.999999Z',
      state: { time: '9999-12-31T23:59:59.999999Z', seq: Number.MAX_SAFE_INTEGER, windowMs: 60_000 }, cap: 100_000, windowRows: 1000, nowMs: NOW,
      visit: (r) => { page.push(String(r.entry['insertId'])); return page.length >= 3; },
    });
    expect(page).toEqual(expected((r) => r.project === 'demo', 'desc').slice(0, 3));
    expect(queries).toBeLessThanOrEqual(5);
  });

  it('stops each call at the scan cap with a token, so a filter matching nothing still ends', async () => {
    const first = await list({ resourceNames: ['projects/demo'], filter: 'unicorn', pageSize: 10 }, admin, { windowRows: 10, scanCap: 50 });
    expect(first.entries).toEqual([]);
    expect(first.nextPageToken).toEqual(expect.any(String));
    const got = await listAll({ resourceNames: ['projects/demo'], filter: 'unicorn' }, admin, { windowRows: 10, scanCap: 50 });
    expect(got.ids).toEqual([]);
    expect(got.calls).toBeGreaterThan(3);
  });

  it('pageSize defaults to 50 and is capped at 1000', async () => {
    expect((await list({ resourceNames: ['projects/demo'] })).entries).toHaveLength(50);
    expect((await list({ resourceNames: ['projects/demo'], pageSize: 5000 })).entries.length).toBeLessThanOrEqual(1000);
    expect((await list({ resourceNames: ['projects/demo'], pageSize: '3' })).entries).toHaveLength(3);
  });

  it('hides private (Data Access) logs from callers without logging.privateLogEntries.list', async () => {
    const isPrivate = (r: StoredAuditRecord) => r.logId === 'cloudaudit.googleapis.com/data_access';
    const body = { resourceNames: ['projects/demo'], pageSize: 1000 };
    expect((await listAll(body, viewer)).ids).toEqual(expected((r) => r.project === 'demo' && !isPrivate(r), 'desc'));
    expect((await listAll(body, privateViewer)).ids).toEqual(expected((r) => r.project === 'demo', 'desc'));
    expect(await apiStatus(list(body, stranger))).toMatch(/^PERMISSION_DENIED: .*logging\.logEntries\.list/);
    // Permission on one project is not permission on another.
    expect(await apiStatus(list({ resourceNames: ['projects/demo', 'projects/other'] }, viewer))).toMatch(/^PERMISSION_DENIED/);
  });

  it('refuses malformed requests with INVALID_ARGUMENT', async () => {
    const bad = async (body: Record<string, unknown>) => apiStatus(list(body));
    expect(await bad({ resourceNames: ['projects/demo'], filter: 'severity=ERROR\nresource.type=' })).toBe('INVALID_ARGUMENT: Invalid filter: expected a value after "=", found end of filter (line 2, column 15)');
    expect(await bad({ resourceNames: ['projects/demo'], filter: '(a' })).toMatch(/INVALID_ARGUMENT: Invalid filter: unbalanced/);
    expect(await bad({})).toMatch(/INVALID_ARGUMENT: resourceNames/);
    expect(await bad({ resourceNames: ['organizations/123'] })).toMatch(/INVALID_ARGUMENT: .*not a project/);
    expect(await bad({ resourceNames: 'projects/demo' })).toMatch(/INVALID_ARGUMENT/);
    expect(await bad({ resourceNames: ['projects/demo'], orderBy: 'severity desc' })).toMatch(/INVALID_ARGUMENT: orderBy/);
    expect(await bad({ resourceNames: ['projects/demo'], pageSize: -1 })).toMatch(/INVALID_ARGUMENT: pageSize/);
    expect(await bad({ resourceNames: ['projects/demo'], pageToken: 'garbage' })).toMatch(/INVALID_ARGUMENT: pageToken/);
    const page = await list({ resourceNames: ['projects/demo'], filter: 'severity=ERROR', pageSize: 1 });
    expect(await bad({ resourceNames: ['projects/demo'], filter: 'severity=NOTICE', pageToken: page.nextPageToken })).toMatch(/INVALID_ARGUMENT: pageToken: the page token belongs/);
  });

  it('accepts the legacy projectIds and a bare "timestamp" order (ascending)', async () => {
    const got = await list({ projectIds: ['demo'], orderBy: 'timestamp', pageSize: 2 });
    expect(got.entries.map((e) => e['insertId'])).toEqual(expected((r) => r.project === 'demo', 'asc').slice(0, 2));
  });
});

describe('logs.list', () => {
  it('lists the logs that hold entries, private ones only for those who may read them', async () => {
    const router = loggingRouter(deps, { now: () => NOW });
    const m = router.match('GET', '/v2/projects/demo/logs');
    if (m.kind !== 'match') throw new Error('no route');
    const asAdmin = await m.handler(ctx(undefined, admin, m.params));
    expect(asAdmin.body).toEqual({ logNames: ['projects/demo/logs/cloudaudit.googleapis.com%2Factivity', 'projects/demo/logs/cloudaudit.googleapis.com%2Fdata_access'] });
    const asViewer = await m.handler(ctx(undefined, viewer, m.params));
    expect(asViewer.body).toEqual({ logNames: ['projects/demo/logs/cloudaudit.googleapis.com%2Factivity'] });
  });
});
