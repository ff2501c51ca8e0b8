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

describe('process metrics', () => {
  const value = (text: string, name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    expect(line, `${name} in:\n${text}`).toBeDefined();
    return Number(line?.slice(name.length + 1));
  };

  it('renders the process gauges under prom-client names, each with HELP and TYPE, read at scrape time', () => {
    const metrics = createMetrics();
    const first = metrics.text();
    for (const [name, type] of [
      ['process_cpu_user_seconds_total', 'counter'],
      ['process_cpu_system_seconds_total', 'counter'],
      ['process_cpu_seconds_total', 'counter'],
      ['process_start_time_seconds', 'gauge'],
      ['process_resident_memory_bytes', 'gauge'],
      ['nodejs_heap_size_total_bytes', 'gauge'],
      ['nodejs_heap_size_used_bytes', 'gauge'],
      ['nodejs_external_memory_bytes', 'gauge'],
    ] as const) {
      expect(first).toContain(`# TYPE ${name} ${type}\n`);
      expect(first).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    }
    // What this very process reports, within what it can have changed between the two reads.
    const rss = value(first, 'process_resident_memory_bytes');
    expect(Math.abs(rss - process.memoryUsage().rss)).toBeLessThan(64 * 1024 * 1024);
    expect(value(first, 'nodejs_heap_size_used_bytes')).toBeLessThanOrEqual(value(first, 'nodejs_heap_size_total_bytes'));
    const start = value(first, 'process_start_time_seconds');
    expect(Math.abs(start - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
    expect(value(first, 'process_cpu_seconds_total')).toBeCloseTo(value(first, 'process_cpu_user_seconds_total') + value(first, 'process_cpu_system_seconds_total'), 6);

    // Burn some CPU: the next scrape reads the counters again.
    const until = process.cpuUsage().user + 50_000;
    let x = 0;
    while (process.cpuUsage().user < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    expect(value(metrics.text(), 'process_cpu_user_seconds_total')).toBeGreaterThan(value(first, 'process_cpu_user_seconds_total'));
  });
});
