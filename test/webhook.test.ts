/**
 * The Kubernetes admission webhook end to end: a real HTTPS listener (startWebhookListener) with a
 * small real DecisionService on the core (examples/evidence, policies per project), AdmissionReviews
 * wrapped around real manifests, TLS verified with the generated CA, client-certificate mode, and
 * the `tollgate k8s manifests` output checked against itself and served.
 */
import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest, Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { registerK8s } from '../src/cli/commands/k8s.js';
import { CliExit } from '../src/cli/exit-codes.js';
import { jsonLogger } from '../src/server/log.js';
import { startWebhookListener, type WebhookListener } from '../src/server/webhook/listener.js';
import {
  admissionReview,
  coreDecisionService,
  EXEMPT_IMAGE,
  fixture,
  SIGNED_IMAGE,
  SYSTEM_IMAGE,
  TEST_POLICIES,
  UNSIGNED_IMAGE,
  type Json,
  type RecordingDecisionService,
} from './support/k8s.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

interface CallOptions {
  method?: string;
  ca?: string | null;
  servername?: string;
  cert?: string;
  key?: string;
  raw?: string | Buffer;
  agent?: Agent | false;
}

function call(url: string, path: string, body?: unknown, o: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    const data = o.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const req = httpsRequest(
      {
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: o.method ?? (data === undefined ? 'GET' : 'POST'),
        headers: data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        agent: o.agent ?? false,
        ...(o.ca === null ? {} : { ca: o.ca ?? listener.caPem }),
        ...(o.servername === undefined ? {} : { servername: o.servername }),
        ...(o.cert === undefined ? {} : { cert: o.cert, key: o.key }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const CLUSTER = 'us-central1-a.prod';
const path = (project: string, cluster = CLUSTER) => `/admission/projects/${project}/clusters/${cluster}`;
const unsignedMessage = `Image ${UNSIGNED_IMAGE} denied by Binary Authorization default admission rule. Image ${UNSIGNED_IMAGE} denied by attestor projects/demo/attestors/build-attestor: No attestations found`;

let listener: WebhookListener;
let service: RecordingDecisionService;
let dataDir: string;
const logLines: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tollgate-webhook-'));
  service = await coreDecisionService(TEST_POLICIES);
  listener = await startWebhookListener({ listen: '127.0.0.1:0', dataDir, decisions: service, logger: jsonLogger('debug', (l) => logLines.push(l)) });
});

afterAll(async () => {
  await listener?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function admit(project: string, object: Json, opts: Parameters<typeof admissionReview>[1] = {}, cluster = CLUSTER) {
  const review = admissionReview(object, opts);
  const r = await call(listener.url, path(project, cluster), review);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.apiVersion).toBe('admission.k8s.io/v1');
  expect(r.body.kind).toBe('AdmissionReview');
  expect(r.body.response.uid).toBe(review['request'].uid);
  // Every answer states its length (one write, no chunk framing).
  expect(r.headers['transfer-encoding']).toBeUndefined();
  expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(`${JSON.stringify(r.body)}\n`));
  return r.body.response;
}

describe('webhook over TLS', () => {
  it('serves /healthz with a certificate the generated CA verifies, for 127.0.0.1 and localhost', async () => {
    expect(listener.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(listener.generated).toBe(true);
    expect(readFileSync(join(dataDir, 'webhook', 'ca.crt'), 'utf8')).toBe(listener.caPem);
    expect((await call(listener.url, '/healthz')).body).toEqual({ status: 'ok' });
    const port = new URL(listener.url).port;
    expect((await call(`https://localhost:${port}`, '/healthz')).status).toBe(200);
    expect((await call(listener.url, '/healthz', undefined, { servername: 'tollgate-webhook.tollgate-system.svc' })).status).toBe(200);
  });

  it('is refused by a client that does not trust the CA', async () => {
    await expect(call(listener.url, '/healthz', undefined, { ca: null })).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
  });

  it('reuses the generated certificate on the next start', async () => {
    const again = await startWebhookListener({ listen: '127.0.0.1:0', dataDir, decisions: service, logger: jsonLogger('error', () => undefined) });
    try {
      expect(again.caPem).toBe(listener.caPem);
      expect((await call(again.url, '/healthz')).status).toBe(200);
    } finally {
      await again.close();
    }
  });
});

// The server's decision service returns a decision it has at hand (a repeated review) as is and
// promises the rest: the webhook answers both alike.
describe.each([
  ['promised', false],
  ['at hand', true],
])('admission decisions, the decision %s', (_, sync) => {
  beforeAll(() => {
    service.sync = sync;
  });
  afterAll(() => {
    service.sync = false;
  });

  it('signed Deployment (kubectl create deployment): allowed, decided with the full context', async () => {
    service.calls.length = 0;
    const r = await admit('demo', fixture('deployment'), { username: 'alice@example.com' });
    expect(r).toEqual({ uid: expect.any(String), allowed: true });
    expect(service.calls).toHaveLength(1);
    expect(service.calls[0]).toEqual({
      project: 'demo',
      images: [SIGNED_IMAGE, EXEMPT_IMAGE],
      context: { platform: 'gke', cluster: CLUSTER, namespace: 'shop', serviceAccount: 'default' },
      source: {
        kind: 'admission',
        cluster: CLUSTER,
        uid: r.uid,
        methodName: 'io.k8s.apps.v1.deployments.create',
        resourceName: 'apps/v1/namespaces/shop/deployments/web',
        userInfo: { username: 'alice@example.com' },
        dryRun: false,
      },
      // The listener's 9 s budget (no ?timeout=), counted from when the review arrived.
      deadline: { at: expect.any(Number), budgetMs: 9_000 },
    });
  });

  const unsignedAt: [string, string, Json?][] = [
    ['pod', 'spec.initContainers[0].image'],
    ['deployment', 'spec.template.spec.containers[1].image'],
    ['replicaset', 'spec.template.spec.initContainers[0].image'],
    ['statefulset', 'spec.template.spec.containers[0].image'],
    ['daemonset', 'spec.template.spec.containers[0].image'],
    ['job', 'spec.template.spec.containers[0].image', { namespace: 'shop' }],
    ['cronjob', 'spec.jobTemplate.spec.template.spec.containers[0].image'],
    ['replicationcontroller', 'spec.template.spec.containers[1].image'],
    ['knative-service', 'spec.template.spec.containers[0].image'],
  ];
  it.each(unsignedAt)('%s with an unsigned image at %s: denied (403 VIOLATES_POLICY) naming the image and the field', async (name, field, opts) => {
    const r = await admit('demo', fixture(name, { [field]: UNSIGNED_IMAGE }), opts ?? {});
    expect(r.allowed).toBe(false);
    expect(r.status).toMatchObject({ status: 'Failure', code: 403, reason: 'VIOLATES_POLICY', message: unsignedMessage });
    expect(r.status.details.causes).toEqual([{ reason: 'FieldValueForbidden', message: unsignedMessage, field }]);
  });

  it.each(['pod', 'statefulset', 'daemonset', 'job', 'cronjob', 'replicationcontroller', 'knative-service', 'replicaset'])('%s as written (signed, exempt and system images): allowed', async (name) => {
    const r = await admit('demo', fixture(name), name === 'job' ? { namespace: 'shop' } : {});
    expect(r).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('exempt and system images alone: allowed', async () => {
    const r = await admit('demo', fixture('pod', { 'spec.containers': [{ name: 'a', image: EXEMPT_IMAGE }, { name: 'b', image: SYSTEM_IMAGE }], 'spec.initContainers': [] }));
    expect(r.allowed).toBe(true);
  });

  it('kubectl debug (pods/ephemeralcontainers) with an unsigned debugger image: denied', async () => {
    const r = await admit('demo', fixture('pod-ephemeralcontainers', { 'spec.ephemeralContainers[0].image': UNSIGNED_IMAGE }), {
      operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: fixture('pod'),
    });
    expect(r.allowed).toBe(false);
    expect(r.status.details.causes[0].field).toBe('spec.ephemeralContainers[0].image');
    expect(service.calls.at(-1)?.source).toMatchObject({ methodName: 'io.k8s.core.v1.pods.ephemeralcontainers.update' });
    expect(service.calls.at(-1)?.images).toEqual([UNSIGNED_IMAGE]);
  });

  it('policy dry run: allowed, with the would-be denial as a warning and the dry-run annotations', async () => {
    const r = await admit('dryrun', fixture('pod', { 'spec.containers[0].image': UNSIGNED_IMAGE }));
    expect(r).toEqual({
      uid: expect.any(String),
      allowed: true,
      warnings: [`Binary Authorization dry run (not enforced): ${unsignedMessage}`],
      auditAnnotations: { 'dry-run': 'true', 'overridden-verification-result': unsignedMessage },
    });
  });

  it('breakglass label on a Pod: allowed whatever the policy says, marked and passed to the decision', async () => {
    const pod = fixture('pod', { 'spec.containers[0].image': UNSIGNED_IMAGE, 'metadata.labels': { app: 'web', 'image-policy.k8s.io/break-glass': 'true' } });
    const r = await admit('demo', pod);
    expect(r.allowed).toBe(true);
    expect(r.auditAnnotations).toEqual({ 'break-glass': 'true', 'overridden-verification-result': unsignedMessage });
    expect(r.warnings[0]).toContain('Binary Authorization breakglass');
    expect(service.calls.at(-1)?.context.breakglass).toBe('Kubernetes breakglass: label image-policy.k8s.io/break-glass="true" on Pod metadata');
  });

  it('legacy breakglass annotation on a Deployment\'s pod template: allowed', async () => {
    const r = await admit('demo', fixture('deployment', {
      'spec.template.spec.containers[0].image': UNSIGNED_IMAGE,
      'spec.template.metadata.annotations': { 'alpha.image-policy.k8s.io/break-glass': 'true' },
    }));
    expect(r.allowed).toBe(true);
    expect(r.auditAnnotations['break-glass']).toBe('true');
  });

  it('a server-side dry run (kubectl --dry-run=server) is answered like any other, flagged for the audit', async () => {
    const r = await admit('demo', fixture('pod', { 'spec.containers[0].image': UNSIGNED_IMAGE }), { dryRun: true });
    expect(r.allowed).toBe(false);
    expect(service.calls.at(-1)?.source).toMatchObject({ kind: 'admission', dryRun: true });
  });

  describe('specific rules', () => {
    it('cluster rules come from the path', async () => {
      const signed = fixture('deployment');
      const lockdown = await admit('clusters', signed, {}, 'us-east1-b.lockdown');
      expect(lockdown.allowed).toBe(false);
      expect(lockdown.status.message).toContain('denied by Binary Authorization cluster admission rule for us-east1-b.lockdown. Denied by always_deny admission rule');
      const unsigned = fixture('deployment', { 'spec.template.spec.containers[0].image': UNSIGNED_IMAGE });
      expect((await admit('clusters', unsigned, {}, 'us-east1-b.sandbox')).allowed).toBe(true);
      expect((await admit('clusters', unsigned, {}, 'us-east1-b.other')).allowed).toBe(false);
      expect(service.calls.at(-1)?.context.cluster).toBe('us-east1-b.other');
    });

    it('namespace rules from the review\'s namespace', async () => {
      const unsigned = (ns: string) => fixture('pod', { 'spec.containers[0].image': UNSIGNED_IMAGE, 'metadata.namespace': ns });
      expect((await admit('namespaces', unsigned('sandbox'))).allowed).toBe(true);
      const canary = await admit('namespaces', unsigned('canary'));
      expect(canary.allowed).toBe(true);
      expect(canary.warnings[0]).toContain('Kubernetes namespace admission rule for canary');
      const shop = await admit('namespaces', unsigned('shop'));
      expect(shop.allowed).toBe(false);
      expect(shop.status.message).toContain('default admission rule');
    });

    it('service-account rules from the pod spec (default: "default")', async () => {
      const web = await admit('serviceaccounts', fixture('pod'));
      expect(web.allowed).toBe(false);
      expect(web.status.message).toContain('Kubernetes service account admission rule for shop:web. Denied by always_deny admission rule');
      expect((await admit('serviceaccounts', fixture('statefulset', { 'spec.template.spec.containers[0].image': UNSIGNED_IMAGE }))).allowed).toBe(true);
      expect(service.calls.at(-1)?.context).toMatchObject({ namespace: 'shop', serviceAccount: 'db' });
      expect((await admit('serviceaccounts', fixture('deployment'))).allowed).toBe(true);
      expect((await admit('serviceaccounts', fixture('deployment', { 'spec.template.spec.containers[0].image': UNSIGNED_IMAGE }))).allowed).toBe(false);
    });
  });

  it('a kind without a pod spec is allowed without a decision', async () => {
    const before = service.calls.length;
    const r = await admit('demo', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' }, data: { image: UNSIGNED_IMAGE } });
    expect(r).toEqual({ uid: expect.any(String), allowed: true });
    expect(service.calls.length).toBe(before);
  });

  it('a malformed pod spec in a well-formed review: denied 400 BadRequest naming the field', async () => {
    const r = await admit('demo', fixture('deployment', { 'spec.template.spec.containers[0].image': '' }));
    expect(r.allowed).toBe(false);
    expect(r.status).toMatchObject({ code: 400, reason: 'BadRequest' });
    expect(r.status.message).toContain('spec.template.spec.containers[0].image: missing or empty');
    const line = logLines.find((l) => l.includes('webhook review refused: malformed pod spec') && l.includes(r.uid));
    expect(line, 'a warn line for the operator').toBeDefined();
    expect(JSON.parse(line as string)).toMatchObject({ level: 'warn', project: 'demo', method: 'io.k8s.apps.v1.deployments.create', problem: expect.stringContaining('containers[0].image') });
  });

  it('an unknown project: denied (fail closed) as unavailable, not as a policy violation', async () => {
    const r = await admit('nope', fixture('pod'));
    expect(r.allowed).toBe(false);
    expect(r.status).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    expect(r.status.message).toContain('project nope does not exist');
  });
});

describe('deadline', () => {
  it('a decision slower than the API server\'s ?timeout= is denied in time, saying it timed out', async () => {
    service.delayMs = 5_000;
    try {
      const review = admissionReview(fixture('pod'));
      const t0 = Date.now();
      const r = await call(listener.url, `${path('demo')}?timeout=2s`, review);
      const elapsed = Date.now() - t0;
      // Answered before the API server gives up (2 s), keeping its margin (1.8 s).
      expect(elapsed).toBeLessThan(2_000);
      expect(elapsed).toBeGreaterThanOrEqual(1_750);
      expect(r.body.response).toMatchObject({ uid: review['request'].uid, allowed: false, status: { code: 504, reason: 'Timeout' } });
      expect(r.body.response.status.message).toContain('could not decide within 1.8 s');
      expect(r.body.response.status.message).toContain('fail closed');

      // Breakglass is for exactly that moment: still allowed.
      const glass = admissionReview(fixture('pod', { 'metadata.labels': { 'image-policy.k8s.io/break-glass': 'true' } }));
      const g = await call(listener.url, `${path('demo')}?timeout=1s`, glass);
      expect(g.body.response.allowed).toBe(true);
      expect(g.body.response.auditAnnotations['break-glass']).toBe('true');
      // It does not claim an audit entry that is not committed yet; the error log line is the record until it is.
      expect(g.body.response.warnings[1]).toBe("This deployment is NOT in Tollgate's audit log yet (the decision did not complete in time); the server logged it as an error.");
      expect(g.body.response.warnings.join('\n')).toContain("the decision did not complete within 900 ms (the webhook's deadline)");
      // The service knew the deadline, so what it records when it completes is what the cluster was told.
      expect(service.calls.at(-1)?.deadline?.budgetMs).toBe(900);
      expect(service.calls.at(-2)?.deadline?.budgetMs).toBe(1_800);
    } finally {
      service.delayMs = 0;
    }
    expect(logLines.some((l) => l.includes('webhook decision timed out: denied (fail closed)'))).toBe(true);
    expect(logLines.some((l) => l.includes('allowed by breakglass, audit entry not committed yet') && l.includes('"level":"error"'))).toBe(true);
  });

  it('a failed decision (a breakglass entry that could not be committed) denies; with breakglass it allows and says it is not recorded', async () => {
    service.failWith = new Error('audit store unavailable: disk full');
    try {
      const r = await call(listener.url, path('demo'), admissionReview(fixture('pod')));
      expect(r.body.response).toMatchObject({ allowed: false, status: { code: 500, reason: 'InternalError' } });
      const g = await call(listener.url, path('demo'), admissionReview(fixture('pod', { 'metadata.labels': { 'image-policy.k8s.io/break-glass': 'true' } })));
      expect(g.body.response.allowed).toBe(true);
      expect(g.body.response.warnings[1]).toBe("This deployment is NOT in Tollgate's audit log yet (the decision or its audit entry failed: audit store unavailable: disk full); the server logged it as an error.");
      expect(g.body.response.warnings[0]).not.toContain('This deployment is audited');
    } finally {
      service.failWith = undefined;
    }
    expect(logLines.some((l) => l.includes('allowed by breakglass, audit entry not committed') && l.includes('disk full'))).toBe(true);
  });

  it('the listener\'s own timeout applies without ?timeout=', async () => {
    const quick = await startWebhookListener({ listen: '127.0.0.1:0', dataDir, decisions: service, logger: jsonLogger('error', () => undefined), timeoutMs: 300 });
    service.delayMs = 2_000;
    try {
      const t0 = Date.now();
      const r = await call(quick.url, path('demo'), admissionReview(fixture('pod')));
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(r.body.response.status.reason).toBe('Timeout');
    } finally {
      service.delayMs = 0;
      await quick.close();
    }
  });
});

describe('bad requests', () => {
  it.each([
    ['malformed JSON', '{"apiVersion": "admission.k8s.io/v1", "kind": ', 'Invalid JSON payload received'],
    ['not an AdmissionReview', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }), 'Invalid AdmissionReview: kind: must be "AdmissionReview"'],
    ['a v1beta1 review', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), 'admissionReviewVersions: [v1]'],
    ['a review without uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: {}, resource: {} } }), 'request.uid'],
    ['an empty body', '', 'Invalid JSON payload received'],
  ])('%s: 400 with a Google-style error', async (_name, raw, message) => {
    const r = await call(listener.url, path('demo'), undefined, { raw, method: 'POST' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(r.body.error.message).toContain(message);
    expect((await call(listener.url, '/healthz')).status).toBe(200);
  });

  it('404 for other paths, 405 for other methods', async () => {
    expect((await call(listener.url, '/validate', admissionReview(fixture('pod')))).status).toBe(404);
    expect((await call(listener.url, '/admission/projects/demo/clusters/no-dot', admissionReview(fixture('pod')))).status).toBe(404);
    const get = await call(listener.url, path('demo'));
    expect(get.status).toBe(405);
    expect(get.headers['allow']).toBe('POST');
    expect((await call(listener.url, '/healthz', undefined, { method: 'DELETE' })).status).toBe(405);
  });

  it('the same target answered alike every time: malformed percent-encoding 400, a trailing slash and percent-encoded names accepted', async () => {
    // Targets are parsed once and remembered: the second request of each pair is answered from that.
    for (let i = 0; i < 2; i++) {
      const bad = await call(listener.url, '/admission/projects/de%E0mo/clusters/us-central1-a.prod', admissionReview(fixture('pod')));
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toBe('malformed percent-encoding in the request path');
      service.calls.length = 0;
      const ok = await call(listener.url, '/admission/projects/d%65mo/clusters/us-central1-a.prod/?timeout=10s', admissionReview(fixture('pod')));
      expect(ok.status).toBe(200);
      expect(ok.body.response.allowed).toBe(true);
      expect(service.calls[0]).toMatchObject({ project: 'demo', context: { cluster: 'us-central1-a.prod' } });
    }
  });

  it('413 for a body over the limit', async () => {
    const big = JSON.stringify({ ...admissionReview(fixture('pod')), padding: 'x'.repeat(7 * 1024 * 1024) });
    const r = await call(listener.url, path('demo'), undefined, { raw: big, method: 'POST' }).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
    // The server answers 413 and closes; a client still uploading may see the reset instead.
    expect([413, -1]).toContain(r.status);
    expect((await call(listener.url, '/healthz')).status).toBe(200);
  });

  it('many concurrent reviews on kept-alive connections', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: listener.caPem });
    try {
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => call(listener.url, path('demo'), admissionReview(fixture('pod', i % 2 === 0 ? {} : { 'spec.containers[0].image': UNSIGNED_IMAGE })), { agent })),
      );
      results.forEach((r, i) => expect(r.body.response.allowed).toBe(i % 2 === 0));
    } finally {
      agent.destroy();
    }
  });
});

describe('client certificates (--webhook-client-ca)', () => {
  let dir: string;
  let strict: WebhookListener;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-webhook-mtls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client-ca.key', '-out', 'client-ca.crt', '-days', '2', '-subj', '/CN=apiserver client CA');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=kube-apiserver');
    writeFileSync(join(dir, 'ext.cnf'), 'extendedKeyUsage=clientAuth\n');
    ssl('x509', '-req', '-in', 'client.csr', '-CA', 'client-ca.crt', '-CAkey', 'client-ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2', '-extfile', 'ext.cnf');
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.crt', '-days', '2', '-subj', '/CN=rogue');
    strict = await startWebhookListener({ listen: '127.0.0.1:0', dataDir, decisions: service, logger: jsonLogger('error', () => undefined), clientCaFile: join(dir, 'client-ca.crt') });
  });
  afterAll(async () => {
    await strict?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the API server\'s client certificate', async () => {
    const r = await call(strict.url, path('demo'), admissionReview(fixture('pod')), { cert: readFileSync(join(dir, 'client.crt'), 'utf8'), key: readFileSync(join(dir, 'client.key'), 'utf8') });
    expect(r.body.response.allowed).toBe(true);
  });

  it('refuses a review from a client without a certificate, or with one from another CA', async () => {
    const none = await call(strict.url, path('demo'), admissionReview(fixture('pod')));
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    expect(none.body.error.message).toContain('requires a client certificate signed by its --webhook-client-ca (none was presented)');
    const rogue = await call(strict.url, path('demo'), admissionReview(fixture('pod')), { cert: readFileSync(join(dir, 'rogue.crt'), 'utf8'), key: readFileSync(join(dir, 'rogue.key'), 'utf8') });
    expect(rogue.status).toBe(401);
    expect(rogue.body.error.message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|self.signed|unable to (get|verify)/i);
    // Nothing but /healthz: an unknown path is refused the same way, not described.
    expect((await call(strict.url, '/anything')).status).toBe(401);
  });

  it('lets the kubelet\'s liveness probe (no certificate) read /healthz', async () => {
    const r = await call(strict.url, '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });
});

describe('tollgate k8s manifests', () => {
  let dir: string;
  let docs: Json[];
  let byKind: (kind: string, name?: string) => Json;
  const project = 'demo';
  const cluster = 'us-central1-a.prod';

  async function runCli(args: string[]): Promise<string> {
    const program = new Command('tollgate').exitOverride();
    registerK8s(program);
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += chunk.toString();
      return true;
    });
    try {
      await program.parseAsync(['node', 'tollgate', ...args]);
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-manifests-'));
    const text = await runCli(['k8s', 'manifests', '--project', project, '--cluster', cluster, '--data-dir', dir, '--image', 'registry.example.com/tollgate:0.1.0']);
    expect(text).toContain('kubectl delete validatingwebhookconfiguration tollgate-image-policy');
    expect(text).toContain('create secret generic tollgate-config');
    const parsed = parseAllDocuments(text);
    if (!Array.isArray(parsed)) throw new Error('not a YAML stream');
    for (const d of parsed) expect(d.errors).toEqual([]);
    docs = parsed.map((d) => d.toJS() as Json);
    byKind = (kind, name) => {
      const found = docs.filter((d) => d['kind'] === kind && (name === undefined || d['metadata'].name === name));
      expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
      return found[0] as Json;
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the Namespace, Secret, Deployment, Services, PodDisruptionBudget and ValidatingWebhookConfiguration', () => {
    expect(docs.map((d) => `${d['kind']}/${d['metadata'].name}`)).toEqual([
      'Namespace/tollgate-system', 'Secret/tollgate-webhook-tls', 'Deployment/tollgate', 'Service/tollgate-webhook', 'Service/tollgate',
      'PodDisruptionBudget/tollgate', 'ValidatingWebhookConfiguration/tollgate-image-policy',
    ]);
    for (const d of docs.filter((x) => x['kind'] !== 'Namespace' && x['kind'] !== 'ValidatingWebhookConfiguration')) expect(d['metadata'].namespace).toBe('tollgate-system');
  });

  it('caBundle verifies the serving certificate in the Secret, issued for the Service\'s DNS name', () => {
    const webhook = byKind('ValidatingWebhookConfiguration').webhooks[0];
    const secret = byKind('Secret');
    const ca = new X509Certificate(Buffer.from(webhook.clientConfig.caBundle, 'base64'));
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Buffer.from(secret.data['ca.crt'], 'base64').toString()).toBe(Buffer.from(webhook.clientConfig.caBundle, 'base64').toString());
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    const svc = webhook.clientConfig.service;
    // The API server connects to SERVICE.NAMESPACE.svc.
    expect(cert.checkHost(`${svc.name}.${svc.namespace}.svc`)).toBe(`${svc.name}.${svc.namespace}.svc`);
    expect(cert.checkPrivateKey(createPrivateKey(Buffer.from(secret.data['tls.key'], 'base64').toString()))).toBe(true);
  });

  it('paths, ports and names agree', () => {
    const webhook = byKind('ValidatingWebhookConfiguration').webhooks[0];
    const deployment = byKind('Deployment');
    const service = byKind('Service', webhook.clientConfig.service.name);
    const api = byKind('Service', 'tollgate');
    const pdb = byKind('PodDisruptionBudget');
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    const arg = (flag: string) => container.args[container.args.indexOf(flag) + 1] as string;
    const port = (name: string) => container.ports.find((p: Json) => p['name'] === name).containerPort as number;

    expect(webhook.name).toBe('imagepolicywebhook.image-policy.k8s.io');
    expect(webhook.clientConfig.service).toEqual({ name: 'tollgate-webhook', namespace: 'tollgate-system', path: `/admission/projects/${project}/clusters/${cluster}`, port: 443 });
    expect(service.spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    expect(arg('--webhook-listen')).toBe(`0.0.0.0:${port('webhook')}`);
    expect(port('webhook')).toBe(8443);
    expect(arg('--listen')).toBe(`0.0.0.0:${port('api')}`);
    expect(api.spec.ports[0]).toMatchObject({ port: port('api'), targetPort: 'api' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'api' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'webhook', scheme: 'HTTPS' });
    expect(container.image).toBe('registry.example.com/tollgate:0.1.0');
    expect(container.args[0]).toBe('serve');

    // The certificate files the server is told to use are in the mounted Secret.
    const mount = container.volumeMounts.find((m: Json) => arg('--webhook-cert').startsWith(`${m['mountPath']}/`));
    const volume = pod.spec.volumes.find((v: Json) => v['name'] === mount.name);
    expect(volume.secret.secretName).toBe(byKind('Secret').metadata.name);
    expect(arg('--webhook-cert')).toBe(`${mount.mountPath}/tls.crt`);
    expect(arg('--webhook-key')).toBe(`${mount.mountPath}/tls.key`);
    // The database and master key come from the Secret the user creates.
    expect(container.env).toEqual([
      { name: 'TOLLGATE_DATABASE', valueFrom: { secretKeyRef: { name: 'tollgate-config', key: 'database-url' } } },
      { name: 'TOLLGATE_MASTER_KEY', valueFrom: { secretKeyRef: { name: 'tollgate-config', key: 'master-key' } } },
    ]);

    // Selectors match the pods.
    for (const selector of [deployment.spec.selector.matchLabels, pdb.spec.selector.matchLabels, service.spec.selector, api.spec.selector]) {
      for (const [k, v] of Object.entries(selector as Record<string, string>)) expect(pod.metadata.labels[k]).toBe(v);
    }
    expect(deployment.spec.replicas).toBe(2);
    expect(pdb.spec.minAvailable).toBe(1);
  });

  it('the webhook fails closed, exempts kube-system and its own namespace, and covers pods and every workload kind', () => {
    const webhook = byKind('ValidatingWebhookConfiguration').webhooks[0];
    expect(webhook).toMatchObject({ failurePolicy: 'Fail', timeoutSeconds: 10, matchPolicy: 'Equivalent', sideEffects: 'None', admissionReviewVersions: ['v1'] });
    expect(webhook.namespaceSelector).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'tollgate-system'] }] });
    const covered = webhook.rules.flatMap((r: Json) => r['resources'].map((res: string) => `${r['apiGroups'][0]}/${r['apiVersions'][0]}/${res}`));
    expect(covered.sort()).toEqual([
      '/v1/pods', '/v1/pods/ephemeralcontainers', '/v1/replicationcontrollers',
      'apps/v1/daemonsets', 'apps/v1/deployments', 'apps/v1/replicasets', 'apps/v1/statefulsets',
      'batch/v1/cronjobs', 'batch/v1/jobs',
      'serving.knative.dev/v1/services',
    ]);
    for (const r of webhook.rules) expect(r.operations).toEqual(['CREATE', 'UPDATE']);
  });

  it('the printed Secret serves the webhook: the caBundle verifies it as the API server would', async () => {
    const secret = byKind('Secret');
    const webhook = byKind('ValidatingWebhookConfiguration').webhooks[0];
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, Buffer.from(secret.data['tls.crt'], 'base64'));
    writeFileSync(keyFile, Buffer.from(secret.data['tls.key'], 'base64'), { mode: 0o600 });
    const served = await startWebhookListener({ listen: '127.0.0.1:0', certFile, keyFile, dataDir: dir, decisions: service, logger: jsonLogger('error', () => undefined) });
    try {
      expect(served.generated).toBe(false);
      const ca = Buffer.from(webhook.clientConfig.caBundle, 'base64').toString();
      const svc = webhook.clientConfig.service;
      const r = await call(served.url, svc.path, admissionReview(fixture('pod', { 'spec.containers[0].image': UNSIGNED_IMAGE })), { ca, servername: `${svc.name}.${svc.namespace}.svc` });
      expect(r.body.response.allowed).toBe(false);
      expect(service.calls.at(-1)?.context.cluster).toBe(cluster);
    } finally {
      await served.close();
    }
  });

  it('is stable: a second run prints the same certificates', async () => {
    const text = await runCli(['k8s', 'manifests', '--project', project, '--cluster', cluster, '--data-dir', dir, '--image', 'registry.example.com/tollgate:0.1.0']);
    expect(parseAllDocuments(text).map((d) => d.toJS())).toEqual(docs);
  });

  it('another namespace: the certificate, Service and exemption follow it', async () => {
    const text = await runCli(['k8s', 'manifests', '--project', 'p', '--cluster', 'europe-west1.c1', '--namespace', 'security', '--data-dir', dir]);
    const other = parseAllDocuments(text).map((d) => d.toJS() as Json);
    const webhook = other.find((d) => d['kind'] === 'ValidatingWebhookConfiguration')?.['webhooks'][0];
    expect(webhook.clientConfig.service).toMatchObject({ namespace: 'security', path: '/admission/projects/p/clusters/europe-west1.c1' });
    expect(webhook.namespaceSelector.matchExpressions[0].values).toEqual(['kube-system', 'security']);
    const cert = new X509Certificate(Buffer.from(other.find((d) => d['kind'] === 'Secret')?.['data']['tls.crt'], 'base64'));
    expect(cert.checkHost('tollgate-webhook.security.svc')).toBe('tollgate-webhook.security.svc');
    expect(other.find((d) => d['kind'] === 'Deployment')?.['spec'].template.spec.containers[0].image).toBe('tollgate:0.1.0');
  });

  it.each([
    [['--cluster', 'no-dot'], '--cluster must be LOCATION.CLUSTER_ID'],
    [['--cluster', 'a.b', '--namespace', 'Bad_NS'], '--namespace must be'],
    [['--cluster', 'a.b', '--project', 'has/slash'], '--project is not a project id'],
  ])('rejects %j', async (args, message) => {
    const full = ['k8s', 'manifests', '--project', 'demo', ...args, '--data-dir', dir];
    const err = await runCli(full).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliExit);
    expect((err as CliExit).code).toBe(2);
    expect((err as CliExit).message).toContain(message);
  });
});
