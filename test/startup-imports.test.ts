/**
 * What a starting server loads. Libraries it may never need (the PostgreSQL client, OpenPGP, the
 * KMS's curve library, YAML) are loaded on first use: each costs megabytes of resident memory in
 * every replica (docs/operations.md). This keeps an innocent top-level import from undoing that.
 * Runs the built code (`npm test` builds first) with a module hook that reports every module
 * Node loads.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/fixtures.js';

const LAZY = ['pg', 'openpgp', '@noble/curves', 'yaml'];

/** The packages under node_modules that importing `module` (a dist path) loads, and its own dist modules. */
function loadedBy(module: string): { packages: Set<string>; dist: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-imports-'));
  const hooks = join(dir, 'hooks.mjs');
  const register = join(dir, 'register.mjs');
  // The resolve hook runs on the hooks thread; it reports each resolved URL on stderr.
  writeFileSync(hooks, `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('LOADED ' + r.url + '\\n');
  return r;
}\n`);
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const target = pathToFileURL(join(ROOT, 'dist', module)).href;
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, '-e', `await import(${JSON.stringify(target)})`, '--input-type=module'], { encoding: 'utf8', cwd: ROOT });
  expect(r.status, r.stderr).toBe(0);
  const urls = r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice('LOADED '.length));
  const packages = new Set<string>();
  for (const url of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m !== null) packages.add(m[1] as string);
  }
  return { packages, dist: urls.filter((u) => u.includes('/dist/')) };
}

describe('what the server loads when it starts', () => {
  it('the server and the CLI entry point (which runs `tollgate serve`) load none of the on-use libraries', () => {
    for (const module of ['server/app.js', 'cli/main.js']) {
      const { packages } = loadedBy(module);
      // The hook sees the imports: the store's query builder is always there.
      expect(packages.has('kysely'), module).toBe(true);
      for (const lazy of LAZY) expect(packages.has(lazy), `${module} loads ${lazy} at startup`).toBe(false);
    }
  });

  it('the audit writer thread loads no database driver and not the store: only the driver its database needs, when it starts', () => {
    const { packages, dist } = loadedBy('server/audit/audit-worker.js');
    expect([...packages]).toEqual([]);
    expect(dist.some((u) => u.endsWith('/store/sql-store.js'))).toBe(false);
    expect(dist.some((u) => u.endsWith('/store/sqlite-direct.js') || u.endsWith('/store/postgres-direct.js'))).toBe(false);
  });
});
