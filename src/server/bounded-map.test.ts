import { describe, expect, it } from 'vitest';
import { BoundedMap } from './bounded-map.js';

/** The plain-Map version every cache used before: the reference the fast one must agree with. */
class ReferenceFifo<K, V> {
  readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}
  set(key: K, value: V): void {
    if (!this.map.has(key) && this.map.size >= this.max) this.map.delete(this.map.keys().next().value as K);
    this.map.set(key, value);
  }
}

/** A small deterministic generator (xorshift32), so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('BoundedMap', () => {
  it('drops the entry set longest ago when a new key would exceed the bound', () => {
    const m = new BoundedMap<string, number>(3);
    m.set('a', 1).set('b', 2).set('c', 3).set('d', 4);
    expect(m.size).toBe(3);
    expect(m.has('a')).toBe(false);
    expect([m.get('b'), m.get('c'), m.get('d')]).toEqual([2, 3, 4]);
  });

  it('keeps the place of a key set again, like Map', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2).set('a', 10).set('c', 3);
    expect(m.get('a')).toBeUndefined();
    expect(m.get('b')).toBe(2);
    expect(m.get('c')).toBe(3);
  });

  it('puts a key deleted and set again at the end, and never drops a live entry for a deleted one', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('a')).toBe(false);
    m.set('a', 3); // now b, a
    m.set('c', 4); // drops b, the oldest live entry, not a (whose first pair is stale)
    expect(m.has('b')).toBe(false);
    expect(m.get('a')).toBe(3);
    expect(m.get('c')).toBe(4);
  });

  it('clear empties it and it fills again', () => {
    const m = new BoundedMap<number, number>(2);
    m.set(1, 1).set(2, 2);
    m.clear();
    expect(m.size).toBe(0);
    m.set(3, 3).set(4, 4).set(5, 5);
    expect([m.has(3), m.has(4), m.has(5)]).toEqual([false, true, true]);
  });

  it('refuses a bound below one', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
    expect(() => new BoundedMap(1.5)).toThrow(RangeError);
  });

  it('agrees with a plain-Map FIFO over long random runs of sets and deletes (its order is compacted and rebuilt on the way)', () => {
    for (const [max, keys] of [
      [1, 3],
      [5, 8],
      [64, 200],
      [1000, 1500],
    ] as const) {
      const next = random(max * 7919 + keys);
      const fast = new BoundedMap<number, number>(max);
      const reference = new ReferenceFifo<number, number>(max);
      const disagreements: string[] = [];
      let fullAt = 0;
      for (let step = 0; step < 60_000; step++) {
        const key = Math.floor(next() * keys);
        if (next() < 0.3) {
          if (fast.delete(key) !== reference.map.delete(key)) disagreements.push(`step ${step}: delete ${key}`);
        } else {
          fast.set(key, step);
          reference.set(key, step);
        }
        if (fast.size === max) fullAt++;
        if (fast.size !== reference.map.size) disagreements.push(`step ${step}: size ${fast.size} ≠ ${reference.map.size}`);
      }
      for (let key = 0; key < keys; key++) if (fast.get(key) !== reference.map.get(key)) disagreements.push(`key ${key} at the end`);
      expect(disagreements.slice(0, 5), `max ${max}`).toEqual([]);
      expect(fullAt, `max ${max}: the run never filled the map, so nothing was dropped`).toBeGreaterThan(0);
    }
  });

  it('keeps its bookkeeping bounded when entries are deleted and set again below the bound', () => {
    const m = new BoundedMap<number, number>(1_000);
    for (let i = 0; i < 200_000; i++) {
      m.set(i % 10, i);
      m.delete(i % 10);
    }
    // The order array is private; what matters is that it did not grow with every set.
    const order = (m as unknown as { order: unknown[] }).order;
    expect(order.length).toBeLessThan(1_000);
  });
});
