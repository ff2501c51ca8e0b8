import { describe, expect, it } from 'vitest';
import { Counter, createMetrics, seriesBy } from './metrics.js';

describe('Counter', () => {
  it('counts a series resolved once together with inc() on the same labels, in any label order', () => {
    const c = new Counter('t_total', 'test');
    const hit = c.series({ cache: 'decisions', result: 'hit' });
    hit.inc();
    hit.inc(2);
    c.inc({ result: 'hit', cache: 'decisions' });
    c.inc({ cache: 'decisions', result: 'miss' });
    expect(c.get({ cache: 'decisions', result: 'hit' })).toBe(4);
    expect(c.text().split('\n')).toEqual([
      '# HELP t_total test',
      '# TYPE t_total counter',
      't_total{cache="decisions",result="hit"} 4',
      't_total{cache="decisions",result="miss"} 1',
    ]);
  });

  it('renders a series as soon as it is resolved, at 0', () => {
    const c = new Counter('t_total', 'test');
    c.series({ operation: 'policy' });
    expect(c.text()).toContain('t_total{operation="policy"} 0');
  });
});

describe('seriesBy', () => {
  it('resolves each combination of values once and hands back the same series after', () => {
    const c = new Counter('t_total', 'test');
    const made: string[] = [];
    const byCache = seriesBy(
      (cache: string, hit: boolean) => `${cache}\n${hit}`,
      (cache, hit) => {
        made.push(`${cache}/${hit}`);
        return c.series({ cache, result: hit ? 'hit' : 'miss' });
      },
    );
    byCache('policies', true).inc();
    byCache('policies', true).inc();
    byCache('policies', false).inc();
    expect(byCache('attestors', true)).toBe(byCache('attestors', true));
    expect(made).toEqual(['policies/true', 'policies/false', 'attestors/true']);
    expect(c.get({ cache: 'policies', result: 'hit' })).toBe(2);
    expect(c.get({ cache: 'policies', result: 'miss' })).toBe(1);
  });
});

describe('createMetrics', () => {
  it('declares the cache and store error counters with their help text', () => {
    const text = createMetrics().text();
    expect(text).toContain('# TYPE tollgate_cache_total counter');
    expect(text).toContain('# TYPE tollgate_store_errors_total counter');
    expect(text.endsWith('\n')).toBe(true);
  });
});
