import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { heapGrowthFlag, SERVER_HEAP_GROWING_PERCENT } from './heap-growth.js';

describe('heapGrowthFlag', () => {
  it('caps old-generation growth unless node was given its own setting', () => {
    expect(heapGrowthFlag([])).toBe(`--heap-growing-percent=${SERVER_HEAP_GROWING_PERCENT}`);
    expect(heapGrowthFlag(['--enable-source-maps'])).toBe(`--heap-growing-percent=${SERVER_HEAP_GROWING_PERCENT}`);
    expect(heapGrowthFlag(['--heap-growing-percent=0'])).toBeUndefined();
    expect(heapGrowthFlag(['--heap_growing_percent=80'])).toBeUndefined();
  });

  it('is a flag this node accepts at runtime (an unknown one would be ignored without a word)', () => {
    // node prints unknown V8 flags to stderr on startup and exits with 9 for a bad value.
    const flag = heapGrowthFlag([])!;
    const r = spawnSync(process.execPath, [flag, '-e', `require('node:v8').setFlagsFromString(${JSON.stringify(flag)}); console.log('ok')`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    const help = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    expect(help.stdout).toContain('--heap-growing-percent');
  });
});
