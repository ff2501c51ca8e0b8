/**
 * Enforcement end to end through a real `tollgate serve --webhook-listen`: attestors and
 * attestations created through the APIs, AdmissionReviews posted to the TLS webhook as the API
 * server posts them, and the decisions read back with the reference's GKE queries through the
 * real `gcloud logging read`.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionReview, fixture, SIGNED_IMAGE, UNSIGNED_IMAGE, type Json } from './support/k8s.js';
import { ok, seedExampleEvidence } from './support/seed.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;
let webhookUrl: string;
let ca: string;
const P = 'demo';
const CLUSTER = 'us-central1-a.prod';

function review(path: string, body: Json): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, webhookUrl);
    const data = JSON.stringify(body);
    const req = httpsRequest(url, { method: 'POST', ca, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Json }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const admission = (project = P, cluster = CLUSTER) => `/admission/projects/${project}/clusters/${cluster}`;
const pod = (image: string, extra: Record<string, unknown> = {}) => admissionReview(fixture('pod', { 'spec.containers[0].image': image, 'spec.containers[1].image': image, ...extra }));

async function logs(filter: string): Promise<Json[]> {
  const r = await server.gcloud(['logging', 'read', filter, `--project=${P}`, '--format=json', '--limit=50']);
  if (r.code !== 0) throw new Error(`gcloud logging read failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Json[];
}

beforeAll(async () => {
  server = await startServer({ args: ['--webhook-listen', '127.0.0.1:0'] });
  const m = /Admission webhook is listening on (\S+)/.exec(server.output());
  if (m === null) throw new Error(`no webhook URL in:\n${server.output()}`);
  webhookUrl = m[1] as string;
  ca = readFileSync(join(server.dataDir, 'webhook', 'ca.crt'), 'utf8');
  // The example attestor and its attestation, loaded through the APIs.
  await seedExampleEvidence(server);
  await ok(server, 'PUT', `/v1/projects/${P}/policy`, {
    admissionWhitelistPatterns: [{ namePattern: 'gcr.io/google-samples/*' }],
    defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/build-attestor'] },
    globalPolicyEvaluationMode: 'ENABLE',
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('the webhook decides from the store', () => {
  it('admits a signed pod and refuses an unsigned one with Google\'s message', async () => {
    const signed = await review(admission(), pod(SIGNED_IMAGE));
    expect(signed.status).toBe(200);
    expect(signed.body['response']).toMatchObject({ allowed: true });
    const unsigned = await review(admission(), pod(UNSIGNED_IMAGE));
    expect(unsigned.body['response']).toMatchObject({ allowed: false, status: { code: 403, reason: 'VIOLATES_POLICY' } });
    expect(unsigned.body['response'].status.message).toContain(`Image ${UNSIGNED_IMAGE} denied by Binary Authorization default admission rule`);
  });

  it('dry run admits with warnings; breakglass admits; a tag is refused', async () => {
    const dry = await server.request('PUT', `/v1/projects/${P}/policy`, {
      clusterAdmissionRules: { [CLUSTER]: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'DRYRUN_AUDIT_LOG_ONLY', requireAttestationsBy: ['projects/demo/attestors/build-attestor'] } },
      defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
    });
    expect(dry.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await review(admission(), pod(UNSIGNED_IMAGE));
    expect(r.body['response'].allowed).toBe(true);
    expect(r.body['response'].warnings.join('\n')).toContain(UNSIGNED_IMAGE);
    // Another cluster falls to the default rule (ALWAYS_DENY), breakglass or not.
    const other = await review(admission(P, 'europe-west1.dev'), pod(SIGNED_IMAGE));
    expect(other.body['response'].allowed).toBe(false);
    const glass = await review(admission(P, 'europe-west1.dev'), pod(SIGNED_IMAGE, { 'metadata.labels': { app: 'web', 'image-policy.k8s.io/break-glass': 'true' } }));
    expect(glass.body['response'].allowed).toBe(true);
    const tag = await review(admission(P, 'europe-west1.dev'), pod('us-docker.pkg.dev/demo/apps/hello:latest'));
    expect(tag.body['response'].allowed).toBe(false);
  }, 30_000);

  it('fails closed for a project that does not exist', async () => {
    const r = await review(admission('no-such-project'), pod(SIGNED_IMAGE));
    expect(r.body['response'].allowed).toBe(false);
  });
});

describe('the GKE audit queries of the reference, through gcloud logging read', () => {
  it('finds blocked pods, dry-run entries and breakglass entries', async () => {
    await new Promise((r) => setTimeout(r, 300)); // group commits land within 100 ms
    const blocked = await logs([
      'resource.type="k8s_cluster"',
      'logName:"cloudaudit.googleapis.com%2Factivity"',
      '(protoPayload.methodName="io.k8s.core.v1.pods.create" OR protoPayload.methodName="io.k8s.core.v1.pods.update")',
      'protoPayload.response.status="Failure"',
      '(protoPayload.response.reason="VIOLATES_POLICY" OR protoPayload.response.reason="Forbidden")',
    ].join('\n'));
    expect(blocked.length).toBeGreaterThanOrEqual(3);
    const dry = await logs('labels."imagepolicywebhook.image-policy.k8s.io/dry-run"="true"');
    expect(dry.length).toBe(1);
    expect(JSON.stringify(dry[0])).toContain(UNSIGNED_IMAGE);
    const glass = await logs('labels."imagepolicywebhook.image-policy.k8s.io/break-glass"="true"');
    expect(glass.length).toBe(1);
    const text = await logs('"image-policy.k8s.io/break-glass"');
    expect(text.length).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe('workloads, server-side dry runs and metrics through the real server', () => {
  beforeAll(async () => {
    await ok(server, 'PUT', `/v1/projects/${P}/policy`, {
      admissionWhitelistPatterns: [{ namePattern: 'gcr.io/google-samples/*' }],
      defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/build-attestor'] },
      globalPolicyEvaluationMode: 'ENABLE',
    });
    await new Promise((r) => setTimeout(r, 1000)); // past the caches' freshness window
  }, 30_000);

  it('decides a Deployment and a CronJob from the store, naming the denied field', async () => {
    const deployment = await review(admission(), admissionReview(fixture('deployment')));
    expect(deployment.body['response']).toMatchObject({ allowed: true });
    const cronjob = await review(admission(), admissionReview(fixture('cronjob', { 'spec.jobTemplate.spec.template.spec.containers[0].image': UNSIGNED_IMAGE })));
    expect(cronjob.body['response']).toMatchObject({ allowed: false, status: { code: 403, reason: 'VIOLATES_POLICY' } });
    expect(cronjob.body['response'].status.details.causes[0].field).toBe('spec.jobTemplate.spec.template.spec.containers[0].image');
  });

  it('answers a server-side dry run (dryRun: true) without auditing it as a deployment', async () => {
    const probe = (name: string, dryRun: boolean) => admissionReview(fixture('pod', { 'metadata.name': name, 'spec.containers[0].image': UNSIGNED_IMAGE, 'spec.containers[1].image': UNSIGNED_IMAGE }), { dryRun });
    const dry = await review(admission(), probe('dryrun-probe-7f3a', true));
    expect(dry.body['response']).toMatchObject({ allowed: false, status: { reason: 'VIOLATES_POLICY' } });
    const real = await review(admission(), probe('audited-probe-7f3a', false));
    expect(real.body['response'].allowed).toBe(false);
    await new Promise((r) => setTimeout(r, 300)); // group commits land within 100 ms
    expect(await logs('protoPayload.resourceName:"audited-probe-7f3a"')).toHaveLength(1);
    expect(await logs('protoPayload.resourceName:"dryrun-probe-7f3a"')).toHaveLength(0);
  }, 30_000);

  it('counts the webhook\'s requests, its decisions and its caches in /metrics', async () => {
    const bad = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(new URL(admission(), webhookUrl), { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{not json');
    });
    expect(bad).toBe(400);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 'NaN');
    expect(value(/^tollgate_http_requests_total\{route="webhook POST \/admission\/projects\/\{project\}\/clusters\/\{cluster\}",code="200"\} (\d+)$/m)).toBeGreaterThanOrEqual(8);
    expect(value(/^tollgate_http_requests_total\{route="webhook POST \/admission\/projects\/\{project\}\/clusters\/\{cluster\}",code="400"\} (\d+)$/m)).toBe(1);
    expect(value(/^tollgate_decisions_total\{verdict="DENIED",mode="enforced",source="admission",reason="NOT_ATTESTED"\} (\d+)$/m)).toBeGreaterThanOrEqual(2);
    expect(value(/^tollgate_cache_total\{cache="decisions",result="miss"\} (\d+)$/m)).toBeGreaterThan(0);
    // The signed images' checks, made in place (a handful of reviews gives the adaptive placement nothing to compare).
    expect(value(/^tollgate_signature_checks_total\{placement="in_place"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^tollgate_signature_checks_total\{placement="pool"\} (\d+)$/m)).toBe(0);
    // The earlier dry-run and breakglass reviews, by mode.
    expect(text).toMatch(/^tollgate_decisions_total\{verdict="DRY_RUN",mode="dry-run",source="admission",[^}]*\} [1-9]\d*$/m);
    expect(text).toMatch(/^tollgate_decisions_total\{verdict="BREAKGLASS",mode="breakglass",source="admission",[^}]*\} [1-9]\d*$/m);
    expect(text).toMatch(/^tollgate_http_request_seconds_count\{route="webhook POST [^"]+"\} \d+$/m);
    // The server's own process, as any Node service reports it: its resident memory (a running
    // server holds tens of MB at least) and when it started (within the test's lifetime).
    expect(value(/^process_resident_memory_bytes (\d+)$/m)).toBeGreaterThan(20 * 1024 * 1024);
    expect(value(/^process_start_time_seconds (\d+)$/m)).toBeGreaterThan(Date.now() / 1000 - 600);
  });
});
