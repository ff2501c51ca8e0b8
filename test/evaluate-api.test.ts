/**
 * The evaluate API and `tollgate evaluate --project` against a running server: the same engine
 * and the same JSON as offline mode, fail-closed exit codes, cross-project grants, coherence of
 * caches after changes, evaluation audit entries, and metrics.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFixtureText } from './support/fixtures.js';
import { attest, createFixtureAttestor, createNote, ok, type FixtureAttestor } from './support/seed.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;
const P = 'demo';
const NOTE = `projects/${P}/notes/build-note`;
const ATTESTOR = `projects/${P}/attestors/build`;
const KEY_ID = 'urn:tollgate:test:build-key';
const BUILD: FixtureAttestor = { project: P, noteId: 'build-note', attestorId: 'build', keyId: KEY_ID };
const SIGNED = `us-docker.pkg.dev/${P}/apps/web@sha256:${'5a'.repeat(32)}`;
const UNSIGNED = `us-docker.pkg.dev/${P}/apps/web@sha256:${'6b'.repeat(32)}`;
let occurrenceName: string;

const policyRequiring = (attestor: string, mode = 'ENFORCED_BLOCK_AND_AUDIT_LOG') => ({
  defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: mode, requireAttestationsBy: [attestor] },
  globalPolicyEvaluationMode: 'ENABLE',
});

const evaluate = (images: string[], context: Record<string, string> = {}, project = P) => server.request('POST', `/tollgate/v1/projects/${project}:evaluate`, { images, context });

beforeAll(async () => {
  server = await startServer();
  await createFixtureAttestor(server, BUILD, 'build');
  await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(ATTESTOR));
  occurrenceName = await attest(server, BUILD, SIGNED);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('POST /tollgate/v1/projects/P:evaluate', () => {
  it('allows a signed digest and denies an unsigned one, in the documented schema', async () => {
    const r = await evaluate([SIGNED, UNSIGNED]);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ schemaVersion: 'tollgate.dev/decision/v1', allowed: false, verdict: { kind: 'DENIED' } });
    expect(r.body.images.map((i: { reason: string }) => i.reason)).toEqual(['ATTESTED', 'NOT_ATTESTED']);
    expect(r.body.messages[0]).toBe(`Image ${UNSIGNED} denied by Binary Authorization default admission rule. Image ${UNSIGNED} denied by attestor ${ATTESTOR}: No attestations found`);
  });

  it('validates its input with field paths', async () => {
    expect(await evaluate([])).toMatchObject({ status: 400, body: { error: { status: 'INVALID_ARGUMENT' } } });
    const bad = await evaluate(['Not An Image']);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('images[0]');
    const ctx = await evaluate([SIGNED], { colour: 'blue' });
    expect(ctx.body.error.message).toContain('context.colour');
  });

  it('needs binaryauthorization.policy.evaluate', async () => {
    expect((await evaluate([SIGNED], {}, 'other-project')).status).toBe(200);
    const t = await server.tollgate(['iam', 'principals', 'create', 'ci@example.com']);
    expect(t.code, t.stderr).toBe(0);
    const tok = await server.tollgate(['iam', 'tokens', 'create', 'ci@example.com']);
    const token = tok.stdout.trim();
    expect((await server.request('POST', `/tollgate/v1/projects/${P}:evaluate`, { images: [SIGNED] }, token)).status).toBe(403);
    await server.gcloud(['projects', 'add-iam-policy-binding', P, '--member=user:ci@example.com', '--role=roles/binaryauthorization.policyEvaluator']);
    expect((await server.request('POST', `/tollgate/v1/projects/${P}:evaluate`, { images: [SIGNED] }, token)).status).toBe(200);
  });
});

describe('tollgate evaluate --project', () => {
  it('exits 0 allowed, 1 denied, 2 bad input, 3 no decision', async () => {
    expect((await server.tollgate(['evaluate', '--project', P, SIGNED])).code).toBe(0);
    const denied = await server.tollgate(['evaluate', '--project', P, UNSIGNED]);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toMatch(/^DENIED/);
    expect((await server.tollgate(['evaluate', '--project', P, 'Bad Image'])).code).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-tok-'));
    writeFileSync(join(dir, 't'), 'tg_wrong\n');
    expect((await server.tollgate(['evaluate', '--project', P, '--token-file', join(dir, 't'), SIGNED])).code).toBe(3);
    expect((await server.tollgate(['evaluate', '--project', P, '--url', 'http://127.0.0.1:9', SIGNED])).code).toBe(3);
    // A valid token without binaryauthorization.policy.evaluate: 403, no decision.
    expect((await server.tollgate(['iam', 'principals', 'create', 'bystander@example.com'])).code).toBe(0);
    writeFileSync(join(dir, 'b'), (await server.tollgate(['iam', 'tokens', 'create', 'bystander@example.com'])).stdout);
    const forbidden = await server.tollgate(['evaluate', '--project', P, '--token-file', join(dir, 'b'), SIGNED]);
    expect(forbidden.code).toBe(3);
    expect(forbidden.stderr).toContain('PERMISSION_DENIED');
  });

  it('exits 3 when the server accepts the connection and never answers (--timeout), 2 for a bad --timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createNetServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const t0 = Date.now();
      const hung = await server.tollgate(['evaluate', '--project', P, '--url', url, '--timeout', '1.5', SIGNED]);
      expect(hung.code).toBe(3);
      expect(hung.stderr).toContain(`Tollgate at ${url} did not answer within 1.5 s (--timeout)`);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(sockets.length).toBeGreaterThan(0);
      expect((await server.tollgate(['evaluate', '--project', P, '--timeout', 'soon', SIGNED])).code).toBe(2);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('prints the same decision as offline mode on the same evidence', async () => {
    const online = await server.tollgate(['evaluate', '--project', P, '--format', 'json', SIGNED, UNSIGNED, `${SIGNED.split('@')[0]}:v1`]);
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-ev-'));
    writeFileSync(join(dir, 'policy.yaml'), (await server.gcloud(['container', 'binauthz', 'policy', 'export'])).stdout);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'attestors'));
    mkdirSync(join(dir, 'occurrences'));
    writeFileSync(join(dir, 'attestors', 'a.json'), JSON.stringify((await server.request('GET', `/v1/${ATTESTOR}`)).body));
    writeFileSync(join(dir, 'occurrences', 'o.json'), JSON.stringify((await server.request('GET', `/v1/${NOTE}/occurrences`)).body));
    const offline = await server.tollgate(['evaluate', '--offline', '--policy', join(dir, 'policy.yaml'), '--evidence', dir, '--format', 'json', SIGNED, UNSIGNED, `${SIGNED.split('@')[0]}:v1`]);
    expect(offline.code).toBe(online.code);
    expect(JSON.parse(offline.stdout)).toEqual(JSON.parse(online.stdout));
  });

  it('dry run and breakglass allow', async () => {
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(ATTESTOR, 'DRYRUN_AUDIT_LOG_ONLY'));
    await new Promise((r) => setTimeout(r, 1100));
    const dry = await server.tollgate(['evaluate', '--project', P, '--format', 'json', UNSIGNED]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).verdict).toEqual({ kind: 'DRY_RUN' });
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(ATTESTOR));
    await new Promise((r) => setTimeout(r, 1100));
    const bg = await server.tollgate(['evaluate', '--project', P, '--breakglass', 'INC-1', '--format', 'json', UNSIGNED]);
    expect(bg.code).toBe(0);
    expect(JSON.parse(bg.stdout).verdict).toEqual({ kind: 'BREAKGLASS', justification: 'INC-1', wouldHaveBeen: 'DENIED' });
  }, 30_000);
});

describe('changes take effect within a second', () => {
  it('a deleted attestation, a removed key and a tightened policy', async () => {
    const extra = `us-docker.pkg.dev/${P}/apps/api@sha256:${'7c'.repeat(32)}`;
    const occ = await attest(server, BUILD, extra);
    expect((await evaluate([extra])).body.allowed).toBe(true);
    await ok(server, 'DELETE', `/v1/${occ}`);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await evaluate([extra])).body.allowed).toBe(false);

    expect((await evaluate([SIGNED])).body.allowed).toBe(true);
    const attestor = await ok(server, 'GET', `/v1/${ATTESTOR}`);
    await ok(server, 'PUT', `/v1/${ATTESTOR}`, { ...attestor, userOwnedGrafeasNote: { ...attestor.userOwnedGrafeasNote, publicKeys: [] } });
    await new Promise((r) => setTimeout(r, 1000));
    const noKey = await evaluate([SIGNED]);
    expect(noKey.body.allowed).toBe(false);
    expect(JSON.stringify(noKey.body)).toContain('NO_MATCHING_KEY');
    await ok(server, 'PUT', `/v1/${ATTESTOR}`, attestor.etag ? { ...attestor, etag: undefined } : attestor);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await evaluate([SIGNED])).body.allowed).toBe(true);

    await ok(server, 'PUT', `/v1/projects/${P}/policy`, { defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await evaluate([SIGNED])).body.allowed).toBe(false);
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(ATTESTOR));
    await new Promise((r) => setTimeout(r, 1000));
    expect((await evaluate([SIGNED])).body.allowed).toBe(true);
    expect(occurrenceName).toMatch(/^projects\/demo\/occurrences\//);
  }, 30_000);
});

describe('cross-project attestors', () => {
  it('are honoured only after the deployer project\'s service agent is granted attestorsVerifier', async () => {
    const A = 'attestors-prj';
    const qa: FixtureAttestor = { project: A, noteId: 'qa-note', attestorId: 'qa', keyId: KEY_ID };
    const attestor = `projects/${A}/attestors/qa`;
    await createFixtureAttestor(server, qa, 'qa');
    const image = `us-docker.pkg.dev/${A}/apps/qa@sha256:${'8d'.repeat(32)}`;
    await attest(server, qa, image);
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(attestor));
    await new Promise((r) => setTimeout(r, 1000));
    const denied = await evaluate([image]);
    expect(denied.body.allowed).toBe(false);
    const number = (await ok(server, 'GET', `/v1/projects/${P}`)).projectNumber as string;
    const agent = `service-${number}@gcp-sa-binaryauthorization.iam.gserviceaccount.com`;
    expect(denied.body.images[0].attestors[0]).toMatchObject({ reason: 'ATTESTOR_NOT_ACCESSIBLE' });
    expect(denied.body.images[0].attestors[0].message).toContain(agent);
    const g = await server.gcloud(['container', 'binauthz', 'attestors', 'add-iam-policy-binding', 'qa', `--project=${A}`, `--member=serviceAccount:${agent}`, '--role=roles/binaryauthorization.attestorsVerifier']);
    expect(g.code, g.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await evaluate([image])).body.allowed).toBe(true);
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(ATTESTOR));
  }, 60_000);
});

describe('an attestor whose note lives in a third project', () => {
  it('is honoured only once the attestor project\'s service agent may read the note\'s occurrences', async () => {
    const A = 'xattestor-prj';
    const N = 'xnotes-prj';
    await createNote(server, N, 'shared-note', 'shared');
    const attestor = `projects/${A}/attestors/shared`;
    await ok(server, 'POST', `/v1/projects/${A}/attestors?attestorId=shared`, {
      name: attestor,
      userOwnedGrafeasNote: { noteReference: `projects/${N}/notes/shared-note`, publicKeys: [{ id: KEY_ID, pkixPublicKey: { publicKeyPem: readFixtureText('pkix', 'ECDSA_P256_SHA256', 'public.pem'), signatureAlgorithm: 'ECDSA_P256_SHA256' } }] },
    });
    const image = `us-docker.pkg.dev/${A}/apps/shared@sha256:${'9e'.repeat(32)}`;
    await attest(server, { project: N, noteId: 'shared-note', attestorId: 'shared', keyId: KEY_ID }, image);
    const agentOf = async (project: string) => `service-${(await ok(server, 'GET', `/v1/projects/${project}`)).projectNumber as string}@gcp-sa-binaryauthorization.iam.gserviceaccount.com`;
    // The deployer's agent may use the attestor; the attestor project's agent may not read the note yet.
    const g = await server.gcloud(['container', 'binauthz', 'attestors', 'add-iam-policy-binding', 'shared', `--project=${A}`, `--member=serviceAccount:${await agentOf(P)}`, '--role=roles/binaryauthorization.attestorsVerifier']);
    expect(g.code, g.stderr).toBe(0);
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(attestor));
    await new Promise((r) => setTimeout(r, 1000));
    const denied = await evaluate([image]);
    expect(denied.body.allowed).toBe(false);
    expect(denied.body.images[0].attestors[0]).toMatchObject({ reason: 'ATTESTOR_NOT_ACCESSIBLE' });
    const attestorAgent = await agentOf(A);
    expect(denied.body.images[0].attestors[0].message).toContain(`cannot read the occurrences of projects/${N}/notes/shared-note`);
    expect(denied.body.images[0].attestors[0].message).toContain(attestorAgent);
    // The grant the reference's walkthrough makes on the note (Container Analysis setIamPolicy).
    await ok(server, 'POST', `/v1/projects/${N}/notes/shared-note:setIamPolicy`, {
      policy: { bindings: [{ role: 'roles/containeranalysis.notes.occurrences.viewer', members: [`serviceAccount:${attestorAgent}`] }] },
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await evaluate([image])).body.allowed).toBe(true);
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, policyRequiring(ATTESTOR));
  }, 60_000);
});

describe('audit and metrics', () => {
  it('logs evaluations as evaluations, and counts decisions and cache hits', async () => {
    await evaluate([UNSIGNED]);
    await evaluate([UNSIGNED]);
    await new Promise((r) => setTimeout(r, 300));
    const logs = await server.request('POST', '/v2/entries:list', { resourceNames: [`projects/${P}`], filter: 'protoPayload.methodName="tollgate.v1.Evaluation.Evaluate"', pageSize: 5 });
    expect(logs.status).toBe(200);
    expect(logs.body.entries.length).toBeGreaterThan(0);
    expect(JSON.stringify(logs.body.entries)).not.toContain('io.k8s.core.v1.pods.create');
    const m = await fetch(`${server.url}/metrics`);
    const text = await m.text();
    expect(m.status).toBe(200);
    expect(text).toMatch(/tollgate_decisions_total\{[^}]*verdict="DENIED"[^}]*\} \d+/);
    expect(text).toContain('tollgate_decision_seconds_bucket');
    expect(text).toContain('tollgate_http_requests_total');
    // The second evaluation of the same image was answered from the decision memo.
    expect(Number(/^tollgate_cache_total\{cache="decisions",result="hit"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^tollgate_cache_total\{cache="attestation-lookups",result="miss"\} [1-9]\d*$/m);
    expect(text).toContain('# TYPE tollgate_store_errors_total counter');
  });
});
