import { describe, expect, it } from 'vitest';
import { pruneAuditChunk, type AuditPruneOps } from './audit-prune.js';

/** A table in memory: rows by seq (with gaps), and the calls the prune made. */
function table(rows: readonly (readonly [seq: number, time: string])[]) {
  const live = new Map(rows.map(([seq, time]) => [seq, time]));
  const deletes: [number, number][] = [];
  const ops: AuditPruneOps = {
    firstFrom: async (from) => {
      const seqs = [...live.keys()].filter((s) => s >= from).sort((a, b) => a - b);
      return seqs.length === 0 ? undefined : { seq: seqs[0]!, time: live.get(seqs[0]!)! };
    },
    lastSeq: async () => (live.size === 0 ? undefined : Math.max(...live.keys())),
    deleteRange: async (from, to, before) => {
      deletes.push([from, to]);
      let n = 0;
      for (const [seq, time] of [...live]) {
        if (seq >= from && seq < to && time < before) {
          live.delete(seq);
          n++;
        }
      }
      return n;
    },
  };
  return { ops, live, deletes };
}

const OLD = (i: number) => `2001-01-01T00:00:${String(i).padStart(2, '0')}.000000Z`;
const NEW = (i: number) => `2030-01-01T00:00:${String(i).padStart(2, '0')}.000000Z`;
const CUTOFF = '2020-01-01T00:00:00.000000Z';

/** Calls the prune as the retention does, chunk after chunk from `next`, until it says no more. */
async function prunePass(ops: AuditPruneOps, maxRows: number): Promise<{ deleted: number; calls: number }> {
  let from: number | undefined;
  let deleted = 0;
  for (let calls = 1; calls < 1000; calls++) {
    const r = await pruneAuditChunk(ops, CUTOFF, maxRows, from);
    deleted += r.deleted;
    from = r.next;
    if (!r.more) return { deleted, calls };
  }
  throw new Error('the prune never finished');
}

describe('pruneAuditChunk', () => {
  it('removes every entry older than the cutoff, a range of maxRows at a time, and nothing newer', async () => {
    const t = table([...Array.from({ length: 23 }, (_, i) => [i + 1, OLD(i)] as const), ...Array.from({ length: 7 }, (_, i) => [i + 24, NEW(i)] as const)]);
    const { deleted, calls } = await prunePass(t.ops, 5);
    expect(deleted).toBe(23);
    expect(calls).toBe(5);
    expect([...t.live.keys()]).toEqual([24, 25, 26, 27, 28, 29, 30]);
    // Each delete is a range of at most maxRows seq, below the first new entry.
    for (const [from, to] of t.deletes) expect(to - from).toBeLessThanOrEqual(5);
    expect(Math.max(...t.deletes.map(([, to]) => to))).toBe(24);
  });

  it('does nothing on an empty table or one with nothing old', async () => {
    expect(await pruneAuditChunk(table([]).ops, CUTOFF, 10)).toMatchObject({ deleted: 0, more: false });
    const fresh = table([[1, NEW(1)], [2, NEW(2)]]);
    expect(await pruneAuditChunk(fresh.ops, CUTOFF, 10)).toMatchObject({ deleted: 0, more: false });
    expect(fresh.deletes).toEqual([]);
  });

  it('never removes an entry newer than the cutoff, wherever it sits among old ones; one old entry out of order goes in a later pass', async () => {
    // Seq gaps, a new entry among old ones, and an old one after the new ones (replicas whose
    // clocks differ a little, a group commit written after the next one started).
    const t = table([[1, OLD(1)], [2, OLD(2)], [5, NEW(5)], [6, OLD(6)], [9, OLD(9)], [10, NEW(10)], [11, NEW(11)], [12, OLD(12)]]);
    await prunePass(t.ops, 2);
    expect([...t.live.keys()]).toEqual([5, 10, 11, 12]);
    // Once the boundary is past it (the entries before it are old too), it goes.
    t.live.set(10, OLD(10));
    t.live.set(11, OLD(11));
    await prunePass(t.ops, 2);
    expect([...t.live.keys()]).toEqual([5]);
  });

  it('moves on past a run of new entries at the head, longer than a chunk, to the old ones behind it', async () => {
    // A replica whose clock ran years ahead wrote these first.
    const t = table([...Array.from({ length: 12 }, (_, i) => [i + 1, NEW(i)] as const), ...Array.from({ length: 12 }, (_, i) => [i + 13, OLD(i)] as const), [25, NEW(30)]]);
    const { deleted } = await prunePass(t.ops, 4);
    expect(deleted).toBe(12);
    expect([...t.live.keys()]).toEqual([...Array.from({ length: 12 }, (_, i) => i + 1), 25]);
  });

  it('refuses a chunk size that is not a positive whole number', async () => {
    await expect(pruneAuditChunk(table([]).ops, CUTOFF, 0)).rejects.toThrow(/maxRows/);
    await expect(pruneAuditChunk(table([]).ops, CUTOFF, 1.5)).rejects.toThrow(/maxRows/);
  });
});
