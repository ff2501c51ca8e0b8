/**
 * Removing audit entries older than a cutoff, a chunk at a time, without an index on time alone
 * (one would cost every audit insert, the hot write path, a third index to maintain). Entries get
 * their seq in the order they are written and their time when they are decided, at most a group
 * commit (100 ms) before, so times follow seq give or take that window and a clock's skew between
 * replicas: the boundary is found by a binary search over seq, on the primary key, and each delete
 * takes a range of seq below it. Every delete also checks the time itself, so an entry out of
 * order is never removed early; one out of order the other way (older, past the boundary) goes
 * with a later pass, once the boundary has moved beyond it. The search trusts that order: a long
 * run of entries dated far ahead (a replica whose clock was wrong for a while) can keep the old
 * entries written after it until the run's own times have passed.
 *
 * No database code here, so the audit writer thread can use it with its own connection.
 */

/** What the prune needs from a connection: reads on the primary key and one ranged delete. */
export interface AuditPruneOps {
  /** The row with the smallest seq ≥ seq, if any. */
  firstFrom(seq: number): Promise<{ readonly seq: number; readonly time: string } | undefined>;
  /** The largest seq, if any row. */
  lastSeq(): Promise<number | undefined>;
  /** Deletes the rows with from ≤ seq < to and time < before; returns how many. */
  deleteRange(from: number, to: number, before: string): Promise<number>;
}

export interface AuditPruneResult {
  readonly deleted: number;
  /** Whether entries older than the cutoff may remain beyond this chunk: call again from `next`. */
  readonly more: boolean;
  /** Where the next chunk starts (a seq), so that every call moves on even when it removed nothing. */
  readonly next: number;
}

/**
 * Deletes the oldest entries written before `before` (a canonical audit time), at most a seq
 * range of `maxRows` in one call, from the first entry at or after seq `from` (default: the
 * first there is), so that a caller can pause between chunks and let the audit writes go on.
 */
export async function pruneAuditChunk(ops: AuditPruneOps, before: string, maxRows: number, from?: number): Promise<AuditPruneResult> {
  if (!(Number.isSafeInteger(maxRows) && maxRows > 0)) throw new RangeError(`maxRows must be a positive whole number, not ${maxRows}`);
  const first = await ops.firstFrom(from ?? Number.MIN_SAFE_INTEGER);
  if (first === undefined) return { deleted: 0, more: false, next: from ?? 0 };
  const last = (await ops.lastSeq()) ?? first.seq;
  // The first seq from which times are at or after the cutoff: every row below lo is older (as
  // far as the search saw), hi is at or after it. A first row out of order (newer) does not stop
  // the search: the rows after it may still be old.
  let lo = first.seq;
  let hi = last + 1;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const row = await ops.firstFrom(mid);
    if (row !== undefined && row.time < before) lo = row.seq + 1;
    else hi = mid;
  }
  if (lo === first.seq) return { deleted: 0, more: false, next: first.seq };
  const end = Math.min(lo, first.seq + maxRows);
  const deleted = await ops.deleteRange(first.seq, end, before);
  return { deleted, more: end < lo, next: end };
}
