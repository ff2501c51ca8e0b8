/**
 * The Cloud Run API's rules that gcloud does not exercise on its own: IAM, resourceVersion
 * conflicts, template comparison, hosts without a region, validation, label selectors and paging,
 * revision deletion, dry-run requests, project numbers as namespaces. Against the real
 * `tollgate serve`; regional hosts are sent in proxy form, as gcloud sends them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaller } from './support/authz.js';
import { startServer, type TestServer } from './support/server.js';

const SIGNED = 'us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706';
const OTHER = 'us-docker.pkg.dev/demo/apps/web@sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2';
const KN = '/apis/serving.knative.dev/v1/namespaces/demo';
const V1 = '/v1/projects/demo/locations/us-central1';

let server: TestServer;
let regional: string;

function service(name: string, image: string, opts: { guard?: boolean; nonce?: string; annotations?: Record<string, string> } = {}) {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name, namespace: 'demo', annotations: { ...(opts.guard === false ? {} : { 'run.googleapis.com/binary-authorization': 'default' }), ...opts.annotations } },
    spec: { template: { metadata: { labels: { 'client.knative.dev/nonce': opts.nonce ?? Math.random().toString(36).slice(2) } }, spec: { containers: [{ image, name: '', ports: [{ containerPort: 8080 }] }] } } },
  };
}

const ready = (s: any) => s.status.conditions.find((c: { type: string }) => c.type === 'Ready'); // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  server = await startServer();
  regional = `us-central1-127.0.0.1:${server.port}`;
  // Only the hello repository is allowed.
  const put = await server.request('PUT', '/v1/projects/demo/policy', {
    globalPolicyEvaluationMode: 'ENABLE',
    admissionWhitelistPatterns: [{ namePattern: 'us-docker.pkg.dev/demo/apps/hello@*' }],
    defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' },
  });
  expect(put.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('IAM', () => {
  it('viewers read but cannot deploy; developers deploy; the placeholder URL follows run.invoker', async () => {
    // Principals and tokens made by the bootstrap admin through the admin API (`tollgate iam`'s path).
    const viewer = (await createCaller(server, 'viewer@example.com')).token;
    const dev = (await createCaller(server, 'dev@example.com')).token;
    const policy = await server.request('POST', '/v1/projects/demo:setIamPolicy', {
      policy: { bindings: [{ role: 'roles/run.viewer', members: ['user:viewer@example.com'] }, { role: 'roles/run.developer', members: ['user:dev@example.com'] }] },
    });
    expect(policy.status).toBe(200);

    expect((await server.request('POST', `${V1}/services`, service('iam', SIGNED), { token: viewer })).status).toBe(403);
    const created = await server.request('POST', `${V1}/services`, service('iam', SIGNED), { token: dev });
    expect(created.status).toBe(200);
    expect(created.body.metadata.annotations['serving.knative.dev/creator']).toBe('dev@example.com');
    expect((await server.request('GET', `${V1}/services/iam`, undefined, { token: viewer })).status).toBe(200);
    // Developers may not make a service public (run.services.setIamPolicy is run.admin's).
    expect((await server.request('POST', `${V1}/services/iam:setIamPolicy`, { policy: { bindings: [{ role: 'roles/run.invoker', members: ['allUsers'] }] } }, { token: dev })).status).toBe(403);

    const page = `/run/projects/demo/locations/us-central1/services/iam/`;
    expect((await server.request('GET', page, undefined, { token: null })).status).toBe(403);
    expect((await server.request('GET', page, undefined, { token: viewer })).status).toBe(403);
    expect((await server.request('GET', page)).status).toBe(503);
    expect((await server.request('POST', `${V1}/services/iam:setIamPolicy`, { policy: { bindings: [{ role: 'roles/run.invoker', members: ['allUsers'] }] } })).status).toBe(200);
    expect((await server.request('GET', page, undefined, { token: null })).status).toBe(503);
    expect((await server.request('GET', '/run/projects/demo/locations/us-central1/services/none/', undefined)).status).toBe(404);
  });
});

describe('generations, resourceVersion and templates', () => {
  it('refuses a stale resourceVersion; a metadata-only PUT makes no revision; going back to the serving template after a refusal is Ready again', async () => {
    const created = (await server.request('POST', `${V1}/services`, service('gen', SIGNED, { nonce: 'n1' }))).body;
    expect(created.metadata.generation).toBe(1);
    expect(ready(created).status).toBe('True');

    const labelled = structuredClone(created);
    labelled.metadata.labels = { team: 'a' };
    const put = await server.request('PUT', `${V1}/services/gen`, labelled);
    expect(put.status).toBe(200);
    expect(put.body.metadata.generation).toBe(2);
    expect(put.body.status.observedGeneration).toBe(2);
    expect(put.body.status.latestCreatedRevisionName).toBe(created.status.latestCreatedRevisionName);
    // The old resourceVersion is stale now.
    const stale = await server.request('PUT', `${V1}/services/gen`, created);
    expect(stale.status).toBe(409);
    expect(stale.body.error.status).toBe('ABORTED');

    const refused = structuredClone(put.body);
    refused.spec.template.spec.containers[0].image = OTHER;
    const r1 = await server.request('PUT', `${V1}/services/gen`, refused);
    expect(ready(r1.body)).toMatchObject({ status: 'False', reason: 'ContainerImageUnauthorized' });
    expect(r1.body.status.latestReadyRevisionName).toBe(created.status.latestReadyRevisionName);
    // The same template again is tried again (it never became a revision) ...
    const r2 = await server.request('PUT', `${V1}/services/gen`, r1.body);
    expect(ready(r2.body).status).toBe('False');
    // ... and the serving template again needs no new revision: Ready.
    const back = structuredClone(r2.body);
    back.spec.template = created.spec.template;
    const r3 = await server.request('PUT', `${V1}/services/gen`, back);
    expect(ready(r3.body).status).toBe('True');
    expect(r3.body.metadata.generation).toBe(5);
    const revs = await server.request('GET', `${V1}/revisions?labelSelector=serving.knative.dev/service%3Dgen`);
    expect(revs.body.items).toHaveLength(1);
  });

  it('concurrent PUTs of the same version: one wins, the other is told to retry', async () => {
    const s = (await server.request('POST', `${V1}/services`, service('race', SIGNED))).body;
    const a = structuredClone(s);
    const b = structuredClone(s);
    a.spec.template.metadata.labels['client.knative.dev/nonce'] = 'a';
    b.spec.template.metadata.labels['client.knative.dev/nonce'] = 'b';
    const [ra, rb] = await Promise.all([server.request('PUT', `${V1}/services/race`, a), server.request('PUT', `${V1}/services/race`, b)]);
    expect([ra.status, rb.status].sort()).toEqual([200, 409]);
  });

  it('dryRun=all validates without deciding or storing', async () => {
    const r = await server.request('POST', `${V1}/services?dryRun=all`, service('dry-request', OTHER));
    expect(r.status).toBe(200);
    expect((await server.request('GET', `${V1}/services/dry-request`)).status).toBe(404);
  });
});

describe('hosts, names and validation', () => {
  it('the regional host carries the region; a plain host lists every region and finds a service by name', async () => {
    const eu = await server.request('POST', `${KN}/services`, service('eu-only', SIGNED), { host: `europe-west1-127.0.0.1:${server.port}` });
    expect(eu.status).toBe(200);
    expect(eu.body.metadata.labels['cloud.googleapis.com/location']).toBe('europe-west1');
    expect((await server.request('GET', `${KN}/services/eu-only`, undefined, { host: regional })).status).toBe(404);
    expect((await server.request('GET', `${KN}/services/eu-only`)).body.metadata.name).toBe('eu-only');
    const names = (await server.request('GET', `${KN}/services`)).body.items.map((s: { metadata: { name: string } }) => s.metadata.name);
    expect(names).toContain('eu-only');
    expect(names).toContain('gen');
    const noRegion = await server.request('POST', `${KN}/services`, service('nowhere', SIGNED));
    expect(noRegion.status).toBe(400);
    expect(noRegion.body.error.message).toContain('needs a region');
    // The project number works as the namespace, as Cloud Run answers with it.
    const number = (await server.request('GET', '/v1/projects/demo')).body.projectNumber as string;
    expect((await server.request('GET', `/apis/serving.knative.dev/v1/namespaces/${number}/services/gen`, undefined, { host: regional })).status).toBe(200);
  });

  it('rejects bad names, images, guard values and breakglass without a guard', async () => {
    const bad = async (body: unknown) => {
      const r = await server.request('POST', `${V1}/services`, body);
      expect(r.status).toBe(400);
      return r.body.error.message as string;
    };
    expect(await bad(service('Bad_Name', SIGNED))).toContain('not a valid service name');
    expect(await bad(service('img', 'UPPER/Case:tag'))).toContain('spec.template.spec.containers[0].image');
    expect(await bad(service('pol', SIGNED, { annotations: { 'run.googleapis.com/binary-authorization': 'projects/demo/platforms/cloudRun/policies/p' } }))).toContain('must be "default"');
    expect(await bad(service('glass', SIGNED, { guard: false, annotations: { 'run.googleapis.com/binary-authorization-breakglass': 'why' } }))).toContain('breakglass');
    const dup = await server.request('POST', `${V1}/services`, service('gen', SIGNED));
    expect(dup.status).toBe(409);
  });
});

describe('revisions', () => {
  it('label selectors (service, nonce), paging with continue, and deletion rules', async () => {
    let s = (await server.request('POST', `${V1}/services`, service('revs', SIGNED, { nonce: 'first' }))).body;
    for (const nonce of ['second', 'third']) {
      const next = structuredClone(s);
      next.spec.template.metadata.labels['client.knative.dev/nonce'] = nonce;
      s = (await server.request('PUT', `${V1}/services/revs`, next)).body;
    }
    const byNonce = await server.request('GET', `${KN}/revisions?labelSelector=client.knative.dev/nonce%20%3D%20second`, undefined, { host: regional });
    expect(byNonce.body.items.map((r: { metadata: { name: string } }) => r.metadata.name)).toEqual([expect.stringMatching(/^revs-00002-/)]);
    const page1 = await server.request('GET', `${KN}/revisions?labelSelector=serving.knative.dev/service%3Drevs&limit=2`, undefined, { host: regional });
    expect(page1.body.items).toHaveLength(2);
    const token = page1.body.metadata.continue as string;
    const page2 = await server.request('GET', `${KN}/revisions?labelSelector=serving.knative.dev/service%3Drevs&limit=2&continue=${token}`, undefined, { host: regional });
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.metadata.continue).toBeUndefined();

    const serving = s.status.latestReadyRevisionName as string;
    const del = await server.request('DELETE', `${KN}/revisions/${serving}`, undefined, { host: regional });
    expect(del.status).toBe(400);
    expect(del.body.error.message).toContain('serving traffic');
    const old = page1.body.items.map((r: { metadata: { name: string } }) => r.metadata.name).find((n: string) => n !== serving);
    expect((await server.request('DELETE', `${KN}/revisions/${old}`, undefined, { host: regional })).status).toBe(200);
    expect((await server.request('GET', `${KN}/revisions/${old}`, undefined, { host: regional })).status).toBe(404);
  });
});
