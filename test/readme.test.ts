/**
 * The README's own command blocks, run as written — the real gcloud, curl, openssl and a running
 * server — so the walk-through a new user follows cannot drift from what Tollgate does. Only
 * what ties the text to one machine is replaced: the server's address and token file (the README
 * assumes the defaults, 127.0.0.1:7420 and ./tollgate-data), `/tmp/tg`, and `npx tollgate`, which
 * a shim on PATH maps to the built binary (npx would otherwise look for the package on the
 * registry outside a checkout). A line annotated `# exit N` must exit N; every other line must
 * succeed (the blocks run under `set -euo pipefail`).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, run, startServer, type CommandResult, type TestServer } from './support/server.js';
import { ROOT } from './support/fixtures.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The `sh` code blocks under the section whose heading starts with `heading`. */
function shBlocks(heading: string): string[] {
  const start = README.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`README has no section "## ${heading}"`);
  const end = README.indexOf('\n## ', start + 1);
  const section = README.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** A line ending in `# exit N` becomes one that prints its exit code instead of stopping the script. */
function withExitChecks(block: string): { script: string; expected: number[] } {
  const expected: number[] = [];
  const script = block
    .split('\n')
    .map((line) => {
      const m = /^(.*?)\s+#\s*exit (\d)\b.*$/.exec(line);
      if (m === null) return line;
      expected.push(Number(m[2]));
      return `if ${m[1]}; then echo "README-EXIT 0"; else echo "README-EXIT $?"; fi`;
    })
    .join('\n');
  return { script, expected };
}

function exitsOf(stdout: string): number[] {
  return [...stdout.matchAll(/^README-EXIT (\d+)$/gm)].map((m) => Number(m[1]));
}

let server: TestServer;
let work: string;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'tollgate-readme-'));
  const bin = join(work, 'bin');
  mkdirSync(bin);
  // `npx tollgate …` and `npx --prefix DIR tollgate …`, as the README writes them.
  writeFileSync(
    join(bin, 'npx'),
    `#!/bin/sh\nif [ "$1" = --prefix ]; then shift 2; fi\nif [ "$1" = tollgate ]; then shift; exec '${process.execPath}' '${BIN}' "$@"; fi\necho "npx (test shim): only tollgate is known" >&2\nexit 127\n`,
  );
  chmodSync(join(bin, 'npx'), 0o755);
  env = {
    PATH: `${bin}:${process.env['PATH'] ?? ''}`,
    HOME: work,
    CLOUDSDK_CONFIG: join(work, 'gcloud'),
    TOLLGATE_URL: server.url,
    TOLLGATE_DATA_DIR: server.dataDir,
  };
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** Runs README text in bash, with the server's address in place of the default one. */
function bash(text: string, cwd: string): Promise<CommandResult> {
  const script = text
    .replaceAll('http://127.0.0.1:7420', server.url)
    .replaceAll('tollgate-data/admin-token', server.adminTokenFile)
    .replaceAll('/tmp/tg', join(work, 'tg'));
  return run('bash', ['-euo', 'pipefail', '-c', script], { env, cwd });
}

function ok(r: CommandResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}\n--- server ---\n${server.output().slice(-2000)}`);
  return r.stdout;
}

describe('README', () => {
  it('five minutes with gcloud, then the enforcement doors', async () => {
    const [walk] = shBlocks('Five minutes with gcloud');
    const [enforce] = shBlocks('Enforcement');
    // The webhook line starts a second server that runs until stopped; the manifests line after it
    // needs no running webhook.
    const doors = enforce!
      .split('\n')
      .filter((l) => !/\btollgate serve\b/.test(l))
      .join('\n');
    const r = await bash(`${walk}\necho "README-DOORS"\n${doors}`, work);
    const out = ok(r, 'the README walk-through');

    // The attestation list printed both attestations: the one made by hand and sign-and-create's.
    const listed = out.slice(0, out.indexOf('README-DOORS'));
    expect(listed.match(/^kind: ATTESTATION$/gm)?.length).toBeGreaterThanOrEqual(1);
    // gcloud's sign-and-create warns that its key id is not on the attestor, as the README says.
    expect(r.stderr).toContain('No public key with ID');
    expect(README).toMatch(/No public key with ID/);

    const doorsOut = out.slice(out.indexOf('README-DOORS'));
    expect(doorsOut).toMatch(/^ALLOWED: every image is allowed by the policy$/m);
    const evaluated = JSON.parse(/^\{.*"allowed".*\}$/m.exec(doorsOut)![0]) as { allowed: boolean; verdict: { kind: string } };
    expect(evaluated).toMatchObject({ allowed: true, verdict: { kind: 'ALLOWED' } });
    const manifests = readFileSync(join(work, 'tollgate.yaml'), 'utf8');
    expect(manifests).toContain('kind: ValidatingWebhookConfiguration');
    expect(manifests).toContain('/admission/projects/demo/clusters/us-central1-a.prod');

    // What the server holds is what the walk-through says it made.
    const attestors = await server.request('GET', '/v1/projects/demo/attestors');
    expect(attestors.body.attestors.map((a: { name: string }) => a.name)).toEqual(['projects/demo/attestors/build-attestor']);
    const policy = await server.request('GET', '/v1/projects/demo/policy');
    expect(policy.body.defaultAdmissionRule).toMatchObject({ evaluationMode: 'REQUIRE_ATTESTATION', requireAttestationsBy: ['projects/demo/attestors/build-attestor'] });
  }, 240_000);

  it('offline: the example in examples/', async () => {
    const [example] = shBlocks('Offline: check an image');
    const out = ok(await bash(example!, ROOT), 'the offline example');
    expect(out).toMatch(/^ALLOWED/m);
  }, 60_000);

  it('sign and check by hand, offline: each line exits as annotated', async () => {
    const [byHand] = shBlocks('Sign and check by hand');
    const { script, expected } = withExitChecks(byHand!);
    expect(expected).toEqual([0, 1]);
    const out = ok(await bash(script, work), 'signing by hand');
    expect(exitsOf(out)).toEqual(expected);
    expect(out).toMatch(/^ALLOWED/m);
    expect(out).toMatch(/^DENIED/m);
  }, 60_000);
});
