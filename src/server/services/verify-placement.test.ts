import { describe, expect, it } from 'vitest';
import { adaptivePlacement, IN_PLACE, ON_POOL, placementFor } from './verify-placement.js';

/** A clock the test moves, and reviews answered at the rate each placement allows, as under a closed loop. */
function harness() {
  let t = 0;
  const moves: { onPool: boolean; moved: boolean }[] = [];
  const p = adaptivePlacement(() => t, { trialMs: 250, settleMs: 2_500, minVerifications: 100, minReviews: 200, margin: 0.05, onTrial: (s, moved) => void moves.push({ onPool: s.onPool, moved }) });
  /** `ms` of load, one review (with a verification unless `verifies` is false) at a time; the placement of each, by time. */
  function load(ms: number, perSecond: { inPlace: number; pool: number }, verifies = true): { at: number; onPool: boolean }[] {
    const out: { at: number; onPool: boolean }[] = [];
    for (const end = t + ms; t < end; ) {
      const onPool = verifies ? p.place() : p.state().onPool;
      out.push({ at: t, onPool });
      p.answered();
      t += 1000 / (onPool ? perSecond.pool : perSecond.inPlace);
    }
    return out;
  }
  const between = (placed: { at: number; onPool: boolean }[], from: number, to: number) => placed.filter((x) => x.at >= from && x.at < to).map((x) => x.onPool);
  const all = (xs: boolean[], value: boolean) => xs.length > 0 && xs.every((x) => x === value);
  return { p, load, between, all, moves };
}

describe('adaptive verification placement', () => {
  it('verifies in place while there is nothing to compare', () => {
    const { p, load, all } = harness();
    // Reviews without verifications (warm caches): no trials, however long.
    const placed = load(20_000, { inPlace: 1_000, pool: 5_000 }, false);
    expect(all(placed.map((x) => x.onPool), false)).toBe(true);
    expect(p.state()).toEqual({ phase: 'settled', onPool: false });
  });

  it('compares within half a second of verifications starting after a quiet time', () => {
    const { p, load, between, all } = harness();
    load(10_000, { inPlace: 3_000, pool: 3_400 }, false);
    const from = 10_000;
    const placed = load(1_600, { inPlace: 3_000, pool: 3_400 });
    // The quiet time is looked at every 500 ms: the trials start by 10.5 s, the pool is kept by 11 s.
    expect(all(between(placed, from + 1_001, from + 1_600), true)).toBe(true);
    expect(p.state()).toMatchObject({ phase: 'settled', onPool: true });
  });

  it('tries both, then keeps the pool when it answers clearly more reviews a second', () => {
    const { p, load, between, all } = harness();
    const rates = { inPlace: 3_000, pool: 3_400 };
    const placed = load(5_400, rates);
    expect(all(between(placed, 0, 2_500), false)).toBe(true);
    // The first cycle tries in place first, then the pool; the pool is kept.
    expect(all(between(placed, 2_501, 2_750), false)).toBe(true);
    expect(all(between(placed, 2_751, 3_000), true)).toBe(true);
    expect(all(between(placed, 3_001, 5_400), true)).toBe(true);
    expect(p.state()).toMatchObject({ phase: 'settled', onPool: true });
    expect(p.state().lastTrial?.inPlacePerSecond).toBeCloseTo(3_000, -2);
    expect(p.state().lastTrial?.poolPerSecond).toBeCloseTo(3_400, -2);
  });

  it('stays in place when the pool answers fewer, or more by less than the margin', () => {
    for (const pool of [2_700, 3_100]) {
      const { p, load, between, all, moves } = harness();
      const placed = load(5_400, { inPlace: 3_000, pool });
      expect(all(between(placed, 3_001, 5_400), false)).toBe(true);
      expect(moves).toEqual([{ onPool: false, moved: false }]);
      expect(p.state().lastTrial?.poolPerSecond).toBeCloseTo(pool, -2);
    }
  });

  it('compares again a few seconds later, in the other order, and follows a change', () => {
    const { p, load, between, all, moves } = harness();
    load(5_500, { inPlace: 3_000, pool: 3_400 });
    expect(p.state().onPool).toBe(true);
    // A database moves onto the same cores: now the pool answers fewer.
    const placed = load(1_000, { inPlace: 3_000, pool: 2_500 });
    // Second cycle: the pool's trial comes first (it was in use), then in place, which is kept.
    expect(all(between(placed, 5_501, 5_750), true)).toBe(true);
    expect(all(between(placed, 5_751, 6_000), false)).toBe(true);
    expect(all(between(placed, 6_001, 6_500), false)).toBe(true);
    expect(p.state().onPool).toBe(false);
    expect(p.state().lastTrial?.poolPerSecond).toBeCloseTo(2_500, -2);
    // Each comparison says whether the placement moved (the server logs moves).
    expect(moves).toEqual([{ onPool: true, moved: true }, { onPool: false, moved: true }]);
  });

  it('decides nothing from trials with too few reviews: in place', () => {
    const { p, load } = harness();
    // 600 reviews a second: 150 per trial, under the 200 needed (the settled time still saw 1 500 verifications).
    load(3_100, { inPlace: 600, pool: 6_000 });
    expect(p.state()).toMatchObject({ phase: 'settled', onPool: false, lastTrial: { inPlacePerSecond: undefined } });
  });

  it('fixed placements and the flag values', () => {
    expect(IN_PLACE.place()).toBe(false);
    expect(ON_POOL.place()).toBe(true);
    expect(placementFor('in-place')).toBe(IN_PLACE);
    expect(placementFor('pool')).toBe(ON_POOL);
    const adaptive = placementFor('adaptive');
    expect(adaptive.place()).toBe(false);
    expect(adaptive.state().phase).toBe('settled');
  });
});
