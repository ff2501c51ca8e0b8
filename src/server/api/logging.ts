/**
 * Cloud Logging v2, the part `gcloud logging read` and `gcloud logging logs list` use
 * (gcloud-compat §6): `POST /v2/entries:list` over the server's audit log (Admin Activity entries
 * of every write, and decision entries), with Logging's filter language, and
 * `GET /v2/projects/P/logs`.
 *
 * Reading is bounded: the audit table is walked in time windows (its index is on project and
 * time), newest first for `timestamp desc`, oldest first for `timestamp asc`, with each window
 * sized to hold about a thousand rows. One call reads at most `scanCap` rows; when it stops
 * there, it answers with the entries found so far and a `nextPageToken` that continues the walk,
 * which gcloud follows by itself.
 */
import { createHash } from 'node:crypto';
import type { AppDeps } from '../app-deps.js';
import { invalidArgument } from '../errors.js';
import { Router } from '../http/router.js';
import { describeFilterError, matchesFilter, parseFilter, timeLowerBound, timeUpperBound, type FilterNode } from '../logging/filter.js';
import type { JsonObject, Store, StoredAuditRecord } from '../store/store.js';
import { field, objectBody, principalOf } from './common.js';

/** Reads every log entry of a project except the private ones. */
export const LIST_PERMISSION = 'logging.logEntries.list';
/** Also needed for the private logs (Data Access audit logs). */
export const PRIVATE_LIST_PERMISSION = 'logging.privateLogEntries.list';
/** Log IDs that are private: readable only with `logging.privateLogEntries.list`. */
export const PRIVATE_LOG_IDS: readonly string[] = ['cloudaudit.googleapis.com/data_access', 'cloudaudit.googleapis.com/access_transparency'];

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;
const MAX_RESOURCE_NAMES = 100;
const MIN_TIME = '0000-01-01T00:00:00.000000Z';
const MAX_TIME = '9999-12-31T23:59:59.999999Z';
const MIN_MS = Date.parse('0000-01-01T00:00:00.000Z');
const MAX_MS = Date.parse('9999-12-31T23:59:59.999Z');
const FIRST_WINDOW_MS = 60_000;
/** Entries up to this far in the future count as "now" (clock skew between replicas). */
const FUTURE_SLACK_MS = 60_000;
/** How much shorter the next window is when one held more than windowRows rows. */
const SHRINK = 256;
/** A limit that reads every row of a query. */
const ALL_ROWS = 1_000_000_000;

export interface LoggingRouterOptions {
  /** Rows read at most per call (default 100 000). */
  readonly scanCap?: number;
  /** Rows per store query; a time window holding more is split (default 1000). */
  readonly windowRows?: number;
  /** Rows read at most to list a project's logs (default 10 000). */
  readonly logsScanCap?: number;
  /** The clock (ms), for tests. */
  readonly now?: () => number;
}

export function loggingRouter(deps: AppDeps, options: LoggingRouterOptions = {}): Router {
  const scanCap = options.scanCap ?? 100_000;
  const windowRows = options.windowRows ?? 1000;
  const logsScanCap = options.logsScanCap ?? 10_000;
  const now = options.now ?? Date.now;

  /** The projects whose private logs the principal may read, after checking it may read each. */
  async function authorize(principal: ReturnType<typeof principalOf>, projects: readonly string[]): Promise<Set<string>> {
    const privateOk = new Set<string>();
    for (const p of projects) {
      await deps.iam.require(principal, LIST_PERMISSION, `projects/${p}`);
      const held = await deps.iam.testPermissions(principal, [PRIVATE_LIST_PERMISSION], `projects/${p}`);
      if (held.includes(PRIVATE_LIST_PERMISSION)) privateOk.add(p);
    }
    return privateOk;
  }

  const readable = (privateOk: Set<string>) => (row: StoredAuditRecord) => privateOk.has(row.project) || !PRIVATE_LOG_IDS.includes(row.logId);

  return new Router('logging')
    .post('/v2/entries:list', async (ctx) => {
      const principal = principalOf(ctx);
      const body = await objectBody(ctx);
      const projects = projectsOf(body);
      const filterText = optionalString(body, 'filter') ?? '';
      const order = orderOf(optionalString(body, 'orderBy'));
      const pageSize = pageSizeOf(field(body, 'pageSize'));
      const parsed = parseFilter(filterText);
      if (!parsed.ok) throw invalidArgument(`Invalid filter: ${describeFilterError(parsed.error)}`);
      const filter = parsed.value;
      const privateOk = await authorize(principal, projects);
      const canRead = readable(privateOk);

      const fingerprint = requestFingerprint(projects, filterText, order);
      const tokenText = optionalString(body, 'pageToken');
      const state = tokenText === undefined || tokenText === '' ? initialState(filter, order) : decodeToken(tokenText, fingerprint);
      const bounds = boundsOf(filter);

      const entries: JsonObject[] = [];
      const result = await scanAudit(deps.store, {
        projects,
        order,
        lower: bounds.lower,
        upper: bounds.upper,
        state,
        cap: scanCap,
        windowRows,
        nowMs: now(),
        visit: (row) => {
          if (!canRead(row) || !matchesFilter(filter, row.entry)) return false;
          entries.push(row.entry);
          return entries.length >= pageSize;
        },
      });
      const nextPageToken = result.done ? undefined : encodeToken(result.state, fingerprint);
      return { body: { entries, ...(nextPageToken === undefined ? {} : { nextPageToken }) } };
    })
    .get('/v2/projects/{project}/logs', async (ctx) => {
      const principal = principalOf(ctx);
      const project = ctx.params['project'] as string;
      const privateOk = await authorize(principal, [project]);
      const canRead = readable(privateOk);
      const ids = new Set<string>();
      await scanAudit(deps.store, {
        projects: [project],
        order: 'desc',
        lower: MIN_TIME,
        upper: MAX_TIME,
        state: { time: MAX_TIME, seq: Number.MAX_SAFE_INTEGER, windowMs: FIRST_WINDOW_MS },
        cap: logsScanCap,
        windowRows,
        nowMs: now(),
        visit: (row) => {
          if (canRead(row)) ids.add(row.logId);
          return false;
        },
      });
      const logNames = [...ids].sort().map((id) => `projects/${project}/logs/${encodeURIComponent(id)}`);
      return { body: { logNames } };
    });
}

// ---------------------------------------------------------------------------------------------
// Request fields

function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const v = field(body, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${name}: must be a string`);
  return v;
}

/** `resourceNames` (`projects/P`, or a log view under it), or the legacy `projectIds`. */
function projectsOf(body: Record<string, unknown>): string[] {
  const names = field(body, 'resourceNames');
  const ids = field(body, 'projectIds');
  const out: string[] = [];
  if (names !== undefined && names !== null) {
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw invalidArgument('resourceNames: must be a list of resource names such as projects/my-project');
    for (const n of names as string[]) {
      const m = /^projects\/([^/]+)(?:\/locations\/[^/]+\/buckets\/[^/]+(?:\/views\/[^/]+)?)?$/.exec(n);
      if (m === null) {
        throw invalidArgument(/^(organizations|folders|billingAccounts)\//.test(n)
          ? `resourceNames: Tollgate keeps logs per project; "${n}" is not a project`
          : `resourceNames: "${n}" is not a resource name such as projects/my-project`);
      }
      out.push(m[1] as string);
    }
  }
  if (ids !== undefined && ids !== null) {
    if (!Array.isArray(ids) || !ids.every((n) => typeof n === 'string' && n !== '' && !n.includes('/'))) throw invalidArgument('projectIds: must be a list of project IDs');
    out.push(...(ids as string[]));
  }
  const unique = [...new Set(out)];
  if (unique.length === 0) throw invalidArgument('resourceNames: at least one resource name such as projects/my-project is required');
  if (unique.length > MAX_RESOURCE_NAMES) throw invalidArgument(`resourceNames: at most ${MAX_RESOURCE_NAMES} projects per request`);
  return unique;
}

type Order = 'asc' | 'desc';

/** `timestamp desc` (the default here, and what gcloud sends) or `timestamp asc`. */
function orderOf(orderBy: string | undefined): Order {
  if (orderBy === undefined || orderBy.trim() === '') return 'desc';
  const m = /^\s*timestamp(?:\s+(asc|desc))?\s*$/i.exec(orderBy);
  if (m === null) throw invalidArgument(`orderBy: only "timestamp asc" and "timestamp desc" are supported, not "${orderBy}"`);
  return m[1]?.toLowerCase() === 'desc' ? 'desc' : 'asc';
}

function pageSizeOf(v: unknown): number {
  if (v === undefined || v === null || v === '') return DEFAULT_PAGE_SIZE;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalidArgument(`pageSize: must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n === 0 ? DEFAULT_PAGE_SIZE : Math.min(n, MAX_PAGE_SIZE);
}

function boundsOf(filter: FilterNode): { lower: string; upper: string } {
  return { lower: timeLowerBound(filter)?.time ?? MIN_TIME, upper: timeUpperBound(filter)?.time ?? MAX_TIME };
}

// ---------------------------------------------------------------------------------------------
// Page tokens

/** Where a walk stands: for `desc`, every row newer than (time, seq) was seen; for `asc`, every older one. */
export interface ScanState {
  readonly time: string;
  readonly seq: number;
  /** The window span to try next (ms), learned from the rows' density. */
  readonly windowMs: number;
  /** desc: the lowest write sequence seen so far; asc: the highest (where to peek next). */
  readonly seqEdge?: number;
}

function initialState(filter: FilterNode, order: Order): ScanState {
  const { lower, upper } = boundsOf(filter);
  return order === 'desc'
    ? { time: upper, seq: Number.MAX_SAFE_INTEGER, windowMs: FIRST_WINDOW_MS }
    : { time: lower, seq: -1, windowMs: FIRST_WINDOW_MS };
}

function requestFingerprint(projects: readonly string[], filter: string, order: Order): string {
  return createHash('sha256').update(JSON.stringify([[...projects].sort(), filter, order])).digest('base64url').slice(0, 16);
}

function encodeToken(state: ScanState, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ v: 1, f: fingerprint, t: state.time, s: state.seq, w: state.windowMs, e: state.seqEdge }), 'utf8').toString('base64url');
}

function decodeToken(token: string, fingerprint: string): ScanState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidArgument('pageToken: invalid page token');
  }
  const p = parsed as { v?: unknown; f?: unknown; t?: unknown; s?: unknown; w?: unknown; e?: unknown } | null;
  if (
    typeof p !== 'object' || p === null || p.v !== 1 || typeof p.f !== 'string' || typeof p.t !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(p.t) ||
    typeof p.s !== 'number' || !Number.isSafeInteger(p.s) || typeof p.w !== 'number' || !Number.isFinite(p.w) || p.w < 1 ||
    (p.e !== undefined && (typeof p.e !== 'number' || !Number.isSafeInteger(p.e)))
  ) {
    throw invalidArgument('pageToken: invalid page token');
  }
  if (p.f !== fingerprint) throw invalidArgument('pageToken: the page token belongs to a request with other resourceNames, filter or orderBy');
  return { time: p.t, seq: p.s, windowMs: p.w, ...(typeof p.e === 'number' ? { seqEdge: p.e } : {}) };
}

// ---------------------------------------------------------------------------------------------
// The windowed walk over the audit table

export interface ScanOptions {
  readonly projects: readonly string[];
  readonly order: Order;
  /** Inclusive time bounds (canonical RFC 3339); rows outside are never read. */
  readonly lower: string;
  readonly upper: string;
  readonly state: ScanState;
  /** Rows read at most. */
  readonly cap: number;
  /** Rows per store query. */
  readonly windowRows: number;
  readonly nowMs: number;
  /** Sees each row in order; returns true to stop after it (the page is full). */
  readonly visit: (row: StoredAuditRecord) => boolean;
}

export interface ScanResult {
  /** True when every row within the bounds was visited. */
  readonly done: boolean;
  /** Where to continue (meaningful when not done). */
  readonly state: ScanState;
  /** Rows read from the store. */
  readonly rowsRead: number;
}

function msOf(time: string): number {
  return Date.parse(`${time.slice(0, 23)}Z`);
}

function timeOf(ms: number): string {
  if (ms <= MIN_MS) return MIN_TIME;
  if (ms >= MAX_MS) return MAX_TIME;
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function clampWindow(ms: number): number {
  return Math.max(1, Math.min(Math.round(ms), MAX_MS - MIN_MS));
}

/**
 * Visits the audit rows of `projects` between `lower` and `upper` in timestamp order (ties by
 * write order), continuing from `state`.
 *
 * The store answers time-range queries from its (project, time) index but sorts a window's rows
 * by write order before it applies the limit, so a window costs about the rows in it: cheap when
 * it is empty or small however long it is, dear when it spans a dense stretch. Windows are aimed
 * rather than guessed: write order is nearly time order (entries are written when they happen, or
 * within the group-commit window), so peeking at the few writes next to the ones already seen
 * (a cheap query by write order) shows where the rows continue and how dense they are. A window
 * that still comes back full is cut down using the times of the rows it returned. None of this
 * affects what is returned, only how many rows are read to find it.
 */
export async function scanAudit(store: Pick<Store, 'queryAudit'>, o: ScanOptions): Promise<ScanResult> {
  const desc = o.order === 'desc';
  let { time, seq, windowMs } = o.state;
  /** desc: the lowest write sequence seen; asc: the highest. */
  let seqEdge = o.state.seqEdge;
  let rowsRead = 0;
  let futureWindow = desc && time > timeOf(o.nowMs + FUTURE_SLACK_MS);
  // Every call moves the cursor at least one window, so a caller that follows tokens always ends.
  let progressed = false;
  const state = (): ScanState => ({ time, seq, windowMs, ...(seqEdge === undefined ? {} : { seqEdge }) });
  const remaining = (r: StoredAuditRecord) => (desc ? r.time < time || (r.time === time && r.seq < seq) : r.time > time || (r.time === time && r.seq > seq));
  const wanted = (r: StoredAuditRecord) => o.projects.includes(r.project) && r.time >= o.lower && r.time <= o.upper && remaining(r);

  const half = Math.max(1, Math.floor(o.windowRows / 2));
  const peekRows = Math.max(16, half);

  /**
   * The far edge of the next window, aimed by peeking at the writes next to those seen: the time
   * of the half-window-th wanted row among them, so the window holds about that many rows.
   */
  const peek = async (): Promise<string | undefined> => {
    const from = seqEdge ?? (desc ? undefined : 0);
    const rows = await store.queryAudit(desc ? { ...(from === undefined ? {} : { beforeSeq: from }), limit: peekRows } : { beforeSeq: (from ?? 0) + peekRows + 1, limit: peekRows });
    rowsRead += rows.length;
    const times = rows.filter(wanted).map((r) => r.time).sort();
    if (times.length === 0) {
      // Nothing wanted there (other projects', or already seen): peek further along next time.
      for (const r of rows) seqEdge = seqEdge === undefined ? r.seq : desc ? Math.min(seqEdge, r.seq) : Math.max(seqEdge, r.seq);
      return undefined;
    }
    const k = Math.min(times.length, half);
    return desc ? times[times.length - k] : times[k - 1];
  };

  let farEdge = await peek();
  for (;;) {
    if (desc ? time < o.lower : time > o.upper) return { done: true, state: state(), rowsRead };
    if (progressed && rowsRead >= o.cap) return { done: false, state: state(), rowsRead };
    // The window [since, until], one edge at the cursor.
    let usedFuture = false;
    let since: string;
    let until: string;
    if (desc) {
      until = time;
      // Reading newest first with no upper bound and nothing to aim by, the first window is
      // everything after "now": normally nothing, and never a reason to walk down from 9999.
      const aimed = farEdge !== undefined && farEdge < time;
      usedFuture = !aimed && futureWindow;
      const edge = aimed ? (farEdge as string) : usedFuture ? timeOf(o.nowMs + FUTURE_SLACK_MS) : timeOf(msOf(time) - windowMs);
      since = edge < o.lower ? o.lower : edge;
    } else {
      since = time;
      const edge = farEdge !== undefined && farEdge > time ? farEdge : timeOf(msOf(time) + windowMs);
      until = edge > o.upper ? o.upper : edge;
    }
    farEdge = undefined;
    const spanMs = msOf(until) - msOf(since);
    let rows = await store.queryAudit({ projects: o.projects, since, until, limit: o.windowRows });
    rowsRead += rows.length;
    if (rows.length >= o.windowRows) {
      futureWindow = false;
      if (spanMs > 1) {
        // Too dense. The rows that came back (the window's latest writes) hold at least half a
        // window's rows up to the half-window-th of them, seen from the cursor.
        const times = rows.filter(remaining).map((r) => r.time).sort();
        const next = times.length < half ? undefined : desc ? times[times.length - half] : times[half - 1];
        // Only a strictly shorter window is progress; otherwise cut deep (every row of a window
        // is read, so one deep cut is cheaper than several shallow ones).
        if (next !== undefined && (desc ? next > since : next < until)) farEdge = next;
        else windowMs = clampWindow(spanMs / SHRINK);
        continue;
      }
      // A millisecond holding more rows than a window can: read all of it, whatever the cap says,
      // since rows are only ordered by time once they are all at hand.
      rows = await store.queryAudit({ projects: o.projects, since, until, limit: ALL_ROWS });
      rowsRead += rows.length;
    }
    for (const r of rows) seqEdge = seqEdge === undefined ? r.seq : desc ? Math.min(seqEdge, r.seq) : Math.max(seqEdge, r.seq);
    rows = rows.filter(remaining);
    rows.sort((a, b) => (a.time === b.time ? a.seq - b.seq : a.time < b.time ? -1 : 1));
    if (desc) rows.reverse();
    for (const row of rows) {
      if (o.visit(row)) {
        time = row.time;
        seq = row.seq;
        return { done: false, state: state(), rowsRead };
      }
    }
    // The whole window was seen: move past it, and size the next one by the density found.
    const n = rows.length;
    // Aim for half a window's rows next time: grow up to 8× over sparse stretches, halve when dense.
    if (!usedFuture) windowMs = clampWindow(Math.max(spanMs, 1) * Math.min(8, Math.max(0.5, o.windowRows / 2 / Math.max(n, 1))));
    futureWindow = false;
    progressed = true;
    if (desc) {
      if (since <= o.lower) return { done: true, state: state(), rowsRead };
      time = since;
      seq = 0;
    } else {
      if (until >= o.upper) return { done: true, state: state(), rowsRead };
      time = until;
      seq = Number.MAX_SAFE_INTEGER;
    }
    // Few rows here: look where the writes continue before growing blindly into a dense stretch.
    if (n < o.windowRows / 4) farEdge = await peek();
  }
}
