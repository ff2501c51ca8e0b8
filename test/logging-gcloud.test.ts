/**
 * The real `gcloud logging read` (and `gcloud logging logs list`) against a real `tollgate serve`:
 * the server's own Admin Activity entries, and decision entries written straight into its store
 * (SQLite in WAL mode lets a second connection write beside the server), found by the GKE audit
 * queries of reference §6.1 exactly as the docs give them. Then `tollgate audit` on the same data.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/server/store/sql-store.js';
import type { AuditRecord } from '../src/server/store/store.js';
import { admissionSource, decisionRecord, PRINCIPAL } from './support/audit-samples.js';
import { startServer, type CommandResult, type TestServer } from './support/server.js';

// Reference §6.1, with the docs' "…" abbreviations written out.
const BLOCKED_PODS =
  'resource.type="k8s_cluster" logName:"cloudaudit.googleapis.com%2Factivity" (protoPayload.methodName="io.k8s.core.v1.pods.create" OR protoPayload.methodName="io.k8s.core.v1.pods.update") protoPayload.response.status="Failure" (protoPayload.response.reason="VIOLATES_POLICY" OR protoPayload.response.reason="Forbidden")';
const DRY_RUN = 'labels."imagepolicywebhook.image-policy.k8s.io/dry-run"="true"';
const BREAKGLASS = 'labels."imagepolicywebhook.image-policy.k8s.io/break-glass"="true"';
const BREAKGLASS_TEXT = '(protoPayload.methodName="io.k8s.core.v1.pods.create" OR protoPayload.methodName="io.k8s.core.v1.pods.update") "image-policy.k8s.io/break-glass"';

type Entry = { insertId: string; timestamp: string; labels?: Record<string, string>; protoPayload: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

let server: TestServer;

function minutesAgo(m: number): string {
  return new Date(Date.now() - m * 60_000).toISOString().replace(/Z$/, '000Z');
}

beforeAll(async () => {
  server = await startServer();
  // Admin Activity: a note over REST (as the tutorials do) and an attestor with gcloud.
  const note = await server.request('POST', '/v1/projects/demo/notes?noteId=build-note', { attestation: { hint: { humanReadableName: 'Build attestor' } } });
  expect(note.status).toBe(200);
  const attestor = await server.gcloud(['container', 'binauthz', 'attestors', 'create', 'build', '--attestation-authority-note=build-note', '--attestation-authority-note-project=demo']);
  expect(attestor.code, attestor.stderr).toBe(0);

  // Decisions, as the decision service writes them.
  const records: AuditRecord[] = [
    decisionRecord('DENIED', admissionSource({ pod: 'web' }), minutesAgo(30), 'blocked-create'),
    decisionRecord('DENIED', admissionSource({ pod: 'api', operation: 'update' }), minutesAgo(25), 'blocked-update'),
    decisionRecord('ALLOWED', admissionSource({ pod: 'ok' }), minutesAgo(20), 'allowed'),
    decisionRecord('DRY_RUN', admissionSource({ pod: 'dry' }), minutesAgo(15), 'dry-run'),
    decisionRecord('BREAKGLASS', admissionSource({ pod: 'glass', operation: 'update' }), minutesAgo(10), 'breakglass'),
    decisionRecord('DENIED', { kind: 'evaluate-api', principal: PRINCIPAL }, minutesAgo(5), 'evaluation'),
    // Older than gcloud's default freshness (one day).
    decisionRecord('DENIED', admissionSource({ pod: 'old' }), minutesAgo(2 * 24 * 60), 'blocked-old'),
    // Another project's decisions are not this project's.
    decisionRecord('DENIED', admissionSource({ pod: 'elsewhere' }), minutesAgo(12), 'other-project', 'other'),
  ];
  const store = await openStore(join(server.dataDir, 'tollgate.db'));
  try {
    await store.appendAudit(records);
  } finally {
    await store.close();
  }
});

afterAll(async () => {
  await server?.stop();
});

async function read(filter: string, ...flags: string[]): Promise<Entry[]> {
  const r = await server.gcloud(['logging', 'read', filter, '--format=json', ...flags]);
  expect(r.code, `gcloud logging read ${filter}\n${r.stderr}\n${server.output().slice(-2000)}`).toBe(0);
  return JSON.parse(r.stdout) as Entry[];
}

const ids = (entries: readonly Entry[]) => entries.map((e) => e.insertId);

describe('gcloud logging read against Tollgate', () => {
  it('reads the Admin Activity entries the server writes', async () => {
    const notes = await read('protoPayload.methodName="grafeas.v1.Grafeas.CreateNote"');
    expect(notes).toHaveLength(1);
    expect(notes[0]?.protoPayload).toMatchObject({
      serviceName: 'containeranalysis.googleapis.com',
      methodName: 'grafeas.v1.Grafeas.CreateNote',
      resourceName: 'projects/demo/notes/build-note',
      authenticationInfo: { principalEmail: 'admin@tollgate.local' },
    });
    const attestors = await read('protoPayload.serviceName="binaryauthorization.googleapis.com" protoPayload.methodName:"CreateAttestor"');
    expect(attestors.map((e) => e.protoPayload['resourceName'])).toEqual(['projects/demo/attestors/build']);
  });

  it('finds blocked pods with the documented query, newest first, within gcloud\'s freshness', async () => {
    const blocked = await read(BLOCKED_PODS);
    expect(ids(blocked)).toEqual(['blocked-update', 'blocked-create']);
    expect(blocked[1]?.protoPayload).toMatchObject({
      methodName: 'io.k8s.core.v1.pods.create',
      resourceName: 'core/v1/namespaces/default/pods/web',
      response: { status: 'Failure', reason: 'VIOLATES_POLICY', code: 403 },
    });
    expect(blocked[0]!.timestamp > blocked[1]!.timestamp).toBe(true);
    // --freshness widens the window gcloud puts in front of the filter.
    expect(ids(await read(BLOCKED_PODS, '--freshness=3d'))).toEqual(['blocked-update', 'blocked-create', 'blocked-old']);
    // --order=asc sends no timestamp prefix at all.
    expect(ids(await read(BLOCKED_PODS, '--order=asc'))).toEqual(['blocked-old', 'blocked-create', 'blocked-update']);
  });

  it('finds dry-run entries with the documented query', async () => {
    const dry = await read(DRY_RUN);
    expect(ids(dry)).toEqual(['dry-run']);
    expect(dry[0]?.labels?.['imagepolicywebhook.image-policy.k8s.io/overridden-verification-result']).toMatch(/denied by Binary Authorization default admission rule/);
  });

  it('finds breakglass entries with the documented label query and the text search', async () => {
    expect(ids(await read(BREAKGLASS))).toEqual(['breakglass']);
    expect(ids(await read(BREAKGLASS_TEXT))).toEqual(['breakglass']);
  });

  it('never counts evaluations as deployments, and keeps projects apart', async () => {
    expect(ids(await read('protoPayload.methodName="tollgate.v1.Evaluation.Evaluate"'))).toEqual(['evaluation']);
    expect(ids(await read('resource.type="k8s_cluster"'))).not.toContain('evaluation');
    expect(ids(await read('"elsewhere"'))).toEqual([]);
    expect(ids(await read('"elsewhere"', '--project=other'))).toEqual(['other-project']);
  });

  it('honours --limit', async () => {
    const two = await read('resource.type="k8s_cluster"', '--limit=2');
    expect(ids(two)).toEqual(['breakglass', 'dry-run']);
  });

  it('reports a malformed filter as a clean INVALID_ARGUMENT', async () => {
    const r: CommandResult = await server.gcloud(['logging', 'read', 'protoPayload.methodName=', '--format=json']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('INVALID_ARGUMENT: Invalid filter: expected a value after "="');
    expect(r.stderr).not.toMatch(/Traceback|HttpError accessing/);
  });

  it('lists the project\'s logs', async () => {
    const r = await server.gcloud(['logging', 'logs', 'list', '--format=value(.)']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['projects/demo/logs/cloudaudit.googleapis.com%2Factivity']);
  });
});

describe('tollgate audit', () => {
  it('prints decisions and writes newest first, with a verdict-like summary', async () => {
    const r = await server.tollgate(['audit', '--project', 'demo', '--limit', '50']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+WHO\s+METHOD\s+RESOURCE\s+RESULT$/);
    // The writes made just now come first, then the decisions of the last half hour, newest first.
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const order = [
      /google\.cloud\.binaryauthorization\.v1\.BinauthzManagementServiceV1\.CreateAttestor\s+projects\/demo\/attestors\/build\s+OK$/,
      /tollgate\.v1\.Evaluation\.Evaluate\s+projects\/demo\/policy\s+DENIED: Image /,
      /pods\/glass/, /pods\/dry/, /pods\/ok/, /pods\/api/, /pods\/web/, /pods\/old/,
    ].map(at);
    expect(order.every((i, k) => i > 0 && (k === 0 || i > (order[k - 1] as number))), order.join(' ')).toBe(true);
    expect(r.stdout).toMatch(/alice@example\.com\s+io\.k8s\.core\.v1\.pods\.update\s+core\/v1\/namespaces\/default\/pods\/glass\s+BREAKGLASS "incident 42", would have been DENIED/);
    expect(r.stdout).toMatch(/pods\/dry\s+DRY_RUN, allowed; would deny: Image /);
    expect(r.stdout).toMatch(/pods\/ok\s+ALLOWED \(1 image\)/);
    expect(r.stdout).toMatch(/admin@tollgate\.local\s+grafeas\.v1\.Grafeas\.CreateNote\s+projects\/demo\/notes\/build-note\s+OK/);
    // Without gcloud's freshness prefix, older entries are there too.
    expect(r.stdout).toMatch(/pods\/old\s+DENIED/);
  });

  it('filters, limits and prints JSON', async () => {
    const r = await server.tollgate(['audit', '--project', 'demo', '--filter', BLOCKED_PODS, '--limit', '2', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(ids(JSON.parse(r.stdout) as Entry[])).toEqual(['blocked-update', 'blocked-create']);
    const asc = await server.tollgate(['audit', '--project', 'demo', '--filter', BLOCKED_PODS, '--order', 'asc', '--format', 'json']);
    expect(ids(JSON.parse(asc.stdout) as Entry[])).toEqual(['blocked-old', 'blocked-create', 'blocked-update']);
    const env = await server.tollgate(['audit', '--filter', DRY_RUN, '--format', 'json'], { env: { TOLLGATE_PROJECT: 'demo' } });
    expect(ids(JSON.parse(env.stdout) as Entry[])).toEqual(['dry-run']);
  });

  it('exits 2 on a bad filter or usage, 3 without permission', async () => {
    const bad = await server.tollgate(['audit', '--project', 'demo', '--filter', '(unbalanced']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/INVALID_ARGUMENT: Invalid filter: unbalanced "\(": .*\(line 1, column 1\)/);
    expect((await server.tollgate(['audit', '--project', 'demo', '--limit', '0'])).code).toBe(2);
    const created = await server.tollgate(['iam', 'principals', 'create', 'nobody@example.com']);
    expect(created.code, created.stderr).toBe(0);
    const token = (await server.tollgate(['iam', 'tokens', 'create', 'nobody@example.com'])).stdout.trim();
    const file = join(server.dataDir, 'nobody-token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const denied = await server.tollgate(['audit', '--project', 'demo', '--token-file', file]);
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/PERMISSION_DENIED: .*logging\.logEntries\.list/);
    // Every project's log needs an administrator's token to list the projects.
    const everyone = await server.tollgate(['audit', '--token-file', file], { env: { TOLLGATE_PROJECT: '' } });
    expect(everyone.code).toBe(2);
    expect(everyone.stderr).toContain("give --project P (or set TOLLGATE_PROJECT): reading every project's log needs an administrator's token");
  });

  it('reads every project\'s log without --project (an administrator)', async () => {
    const all = await server.tollgate(['audit', '--filter', DRY_RUN, '--format', 'json'], { env: { TOLLGATE_PROJECT: '' } });
    expect(all.code, all.stderr).toBe(0);
    expect(ids(JSON.parse(all.stdout) as Entry[])).toEqual(['dry-run']);
    const text = await server.tollgate(['audit', '--limit', '50'], { env: { TOLLGATE_PROJECT: '' } });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/pods\/old\s+DENIED/);
  });
});
