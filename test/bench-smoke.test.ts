/**
 * `npm run bench` in its short mode (about a second per scenario, a small store), so the bench
 * cannot rot: it must compile, run every scenario against the real built server, get every
 * verdict right with no errors, and find every decision's audit entry in the store. Speed is not
 * asserted: CI machines differ, and other test files run beside this one.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './support/fixtures.js';
import { postgresBinDir } from './support/postgres.js';
import { run } from './support/server.js';

interface BenchJson {
  ok: boolean;
  errors: number;
  wrong: number;
  scenarios: { id: string; label: string; skipped?: string; failed?: string; result?: { requests: number; errors: number; wrong: number; perSecond: number; p99: number }; databaseCpuUsPerReview?: number }[];
  paired: { id: string; label: string; failed?: string; ratio?: number; tollgatePerSecond: number[]; floorPerSecond: number[]; errors: number; wrong: number }[];
  ratios: { name: string; value: number }[];
  dialects: { dialect: string; auditProblems: string[]; rssSmallMB?: number; rssLargeMB?: number }[];
}

const SCENARIOS = [
  'floor-transport',
  'floor-half',
  'floor-cold',
  ...['sqlite', 'postgres'].flatMap((d) => ['warm', 'half', 'cold', 'warmLarge', 'coldLarge'].map((s) => `${d}-${s}`)),
];

function postgresAvailable(): boolean {
  if ((process.env['TOLLGATE_TEST_DATABASE_URL'] ?? '') !== '') return true;
  try {
    postgresBinDir();
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run bench -- --short', () => {
  it('runs every scenario with no errors and no wrong verdicts', async () => {
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'bench'], {});
    expect(tsc.stdout + tsc.stderr, 'the bench compiles').toBe('');
    expect(tsc.code).toBe(0);

    const jsonFile = join(dir, 'bench.json');
    const bench = await run(process.execPath, [join(ROOT, 'dist', 'bench', 'bench', 'main.js'), '--short', '--json', jsonFile], {});
    const output = `${bench.stdout}\n${bench.stderr}`;
    expect(bench.code, output).toBe(0);
    const result = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchJson;
    expect(result.ok, output).toBe(true);
    expect(result.errors).toBe(0);
    expect(result.wrong).toBe(0);
    for (const d of result.dialects) expect(d.auditProblems, output).toEqual([]);

    const withPostgres = postgresAvailable();
    // The bare floor again at each dialect's half-load rate, for the dialects that were measured.
    const atRates = ['floor-sqlite-half', ...(withPostgres ? ['floor-postgres-half'] : [])];
    for (const id of [...SCENARIOS, ...atRates]) {
      const s = result.scenarios.find((x) => x.id === id);
      expect(s, `scenario ${id} in:\n${output}`).toBeDefined();
      if (s === undefined) continue;
      // Every scenario is printed, measured or not.
      expect(bench.stdout).toContain(s.label);
      expect(s.failed, `${id}: ${s.failed}`).toBeUndefined();
      if (id.startsWith('postgres-') && !withPostgres) {
        expect(s.skipped).toBeDefined();
        continue;
      }
      expect(s.skipped, `${id} skipped`).toBeUndefined();
      expect(s.result?.requests, `${id} measured nothing`).toBeGreaterThan(0);
      expect(s.result?.errors).toBe(0);
      expect(s.result?.wrong).toBe(0);
      // The database's CPU is measured where the bench started the cluster (not on an external server).
      if (id.startsWith('postgres-') && (process.env['TOLLGATE_TEST_DATABASE_URL'] ?? '') === '') {
        expect(s.databaseCpuUsPerReview, `${id}: database CPU`).toBeGreaterThan(0);
        expect(bench.stdout).toMatch(new RegExp(`${s.label.replace(/[()]/g, '\\$&')}.*; database +\\d`));
      }
    }
    // The throughput targets' paired slices: four of Tollgate's and four of the floor's, each
    // measured, and a ratio from them.
    for (const id of (withPostgres ? ['sqlite', 'postgres'] : ['sqlite']).flatMap((d) => [`${d}-warmPaired`, `${d}-coldPaired`])) {
      const p = result.paired.find((x) => x.id === id);
      expect(p, `paired ${id} in:\n${output}`).toBeDefined();
      if (p === undefined) continue;
      expect(bench.stdout).toContain(p.label);
      expect(p.failed, `${id}: ${p.failed}`).toBeUndefined();
      expect(p.tollgatePerSecond).toHaveLength(4);
      expect(p.floorPerSecond).toHaveLength(4);
      for (const rate of [...p.tollgatePerSecond, ...p.floorPerSecond]) expect(rate, `${id}: a slice measured nothing`).toBeGreaterThan(0);
      expect(p.ratio, `${id}: no ratio`).toBeGreaterThan(0);
      expect(p.errors + p.wrong).toBe(0);
    }
    expect(bench.stdout).toContain('(paired slices)');
    // The report's parts are all there: the ratios against the floors and the peak RSS.
    for (const part of ['warm / transport floor', 'every image new / cold floor', '(b) / (c)', 'p99 at 50% of warm load', 'peak RSS', "at sqlite's 50% rate"]) {
      expect(bench.stdout).toContain(part);
    }
    expect(bench.stdout).toMatch(/^OK in /m);
  }, 240_000);
});
