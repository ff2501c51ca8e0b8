import { describe, expect, it } from 'vitest';
import { jsonLogger } from '../log.js';
import type { AuditPruneResult } from '../store/audit-prune.js';
import { startAuditRetention } from './retention.js';

const NOW = Date.parse('2026-11-25T12:00:00Z');

/** A prune that removes `perChunk` entries a call out of `total`, recording its calls. */
function fakePrune(total: number, perChunk: number, failAt?: number) {
  const calls: { before: string; maxRows: number; from: number | undefined }[] = [];
  let left = total;
  const prune = async (before: string, maxRows: number, from?: number): Promise<AuditPruneResult> => {
    calls.push({ before, maxRows, from });
    if (failAt !== undefined && calls.length === failAt) throw new Error('database is locked');
    const deleted = Math.min(left, perChunk);
    left -= deleted;
    return { deleted, more: left > 0, next: (from ?? 0) + maxRows };
  };
  return { prune, calls };
}

function logs() {
  const lines: Record<string, unknown>[] = [];
  return { lines, logger: jsonLogger('info', (line) => void lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

describe('audit retention', () => {
  it('removes chunk after chunk from where the last stopped, with the cutoff its retention sets, and reports the count', async () => {
    const { prune, calls } = fakePrune(12, 5);
    const { lines, logger } = logs();
    const pruned: number[] = [];
    const r = startAuditRetention({ retentionSeconds: 400 * 86400, prune, logger, now: () => NOW, firstDelayMs: 3_600_000, chunkRows: 5, pauseMs: 1, onPruned: (n) => void pruned.push(n) });
    try {
      expect(await r.runNow()).toBe(12);
    } finally {
      await r.stop();
    }
    expect(calls).toEqual([
      { before: new Date(NOW - 400 * 86400 * 1000).toISOString(), maxRows: 5, from: undefined },
      { before: new Date(NOW - 400 * 86400 * 1000).toISOString(), maxRows: 5, from: 5 },
      { before: new Date(NOW - 400 * 86400 * 1000).toISOString(), maxRows: 5, from: 10 },
    ]);
    expect(pruned).toEqual([12]);
    expect(lines.find((l) => l['removed'] === 12)?.['msg']).toMatch(/audit retention: removed/);
  });

  it('runs its first pass by itself after the first delay', async () => {
    const { prune, calls } = fakePrune(3, 10);
    const r = startAuditRetention({ retentionSeconds: 3600, prune, logger: logs().logger, now: () => NOW, firstDelayMs: 20, intervalMs: 3_600_000 });
    try {
      await new Promise((res) => setTimeout(res, 200));
      expect(calls).toHaveLength(1);
      expect(calls[0]?.before).toBe('2026-11-25T11:00:00.000Z');
    } finally {
      await r.stop();
    }
  });

  it('stops a pass at the first error, logs it and counts what it removed; the next pass starts over', async () => {
    const { prune, calls } = fakePrune(20, 5, 2);
    const { lines, logger } = logs();
    const r = startAuditRetention({ retentionSeconds: 3600, prune, logger, now: () => NOW, firstDelayMs: 3_600_000, chunkRows: 5, pauseMs: 1 });
    try {
      expect(await r.runNow()).toBe(5);
      const error = lines.find((l) => l['level'] === 'error');
      expect(JSON.stringify(error)).toContain('database is locked');
      expect(await r.runNow()).toBe(15);
      expect(calls[2]?.from).toBeUndefined();
    } finally {
      await r.stop();
    }
  });

  it('runs one pass at a time: a second call waits for the one running', async () => {
    const { prune, calls } = fakePrune(10, 5);
    const r = startAuditRetention({ retentionSeconds: 3600, prune, logger: logs().logger, now: () => NOW, firstDelayMs: 3_600_000, chunkRows: 5, pauseMs: 1 });
    try {
      const [a, b] = await Promise.all([r.runNow(), r.runNow()]);
      expect(a).toBe(10);
      expect(b).toBe(10);
      expect(calls).toHaveLength(2);
    } finally {
      await r.stop();
    }
  });
});
