/**
 * Cloud Run-style deploys behind Binary Authorization with the real gcloud 528 against the real
 * `tollgate serve` (issue 6; test/support/server.ts, with `--insecure-registry` for the local
 * registry): seed 000's and 001's Cloud Run steps, deploys by tag from a real local registry (Debian's
 * docker-registry, an OCI image built from scratch and pushed with skopeo), breakglass, dry run,
 * the guard switched on and off, redeploys, lists, revisions, delete, the project setting, and the
 * seeds' audit queries through `gcloud logging read`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushTestImage, registryToolsInstalled, startRegistry, type TestRegistry } from './support/registry.js';
import { BINAUTHZ_QUERY, BLOCKED_QUERY, BREAKGLASS_QUERY, DRY_RUN_QUERY } from './support/run-queries.js';
import { startServer, type CommandResult, type TestServer } from './support/server.js';

const P = 'demo';
const REGION = '--region=us-central1';
const digestOf = (seed: string) => `sha256:${Buffer.from(seed.padEnd(32, '.')).toString('hex').slice(0, 64)}`;
/** Seed 000's image, by digest (signed below with a KMS key, as the seed does). */
const IMAGE = `us-central1-docker.pkg.dev/${P}/secure-docker-repo/python-flask-secure-app@${digestOf('flask-app')}`;
const UNSIGNED = `us-central1-docker.pkg.dev/${P}/secure-docker-repo/python-flask-secure-app@${digestOf('unsigned')}`;
const ATTESTOR = `projects/${P}/attestors/secure-app-attestor`;
const KEY = ['--keyversion-project=demo', '--keyversion-location=us-central1', '--keyversion-keyring=binauthz-keyring', '--keyversion-key=binauthz-signing-key', '--keyversion=1'];

const haveRegistry = registryToolsInstalled();
let server: TestServer;
let registry: TestRegistry | undefined;
let work: string;
let signedTagDigest = '';

function ok(r: CommandResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}\n--- server output ---\n${server.output().slice(-3000)}`);
  return r.stdout;
}

async function g(args: string[]): Promise<string> {
  return ok(await server.gcloud(args), `gcloud ${args.slice(0, 4).join(' ')}`);
}

async function deploy(service: string, image: string, extra: string[] = ['--binary-authorization=default']): Promise<CommandResult> {
  return server.gcloud(['run', 'deploy', service, `--image=${image}`, REGION, '--platform=managed', ...extra]);
}

async function describeJson(service: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await g(['run', 'services', 'describe', service, REGION, '--format=json']));
}

async function revisionsOf(service: string): Promise<any[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await g(['run', 'revisions', 'list', REGION, `--service=${service}`, '--format=json'])) as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function logs(filter: string): Promise<any[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  await sleep(300); // decision entries are group-committed within 100 ms
  return JSON.parse(await g(['logging', 'read', filter, '--limit=200', '--format=json'])) as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function policy(enforcement: 'ENFORCED_BLOCK_AND_AUDIT_LOG' | 'DRYRUN_AUDIT_LOG_ONLY'): Promise<void> {
  const file = join(work, `policy-${enforcement}.yaml`);
  writeFileSync(file, [
    'admissionWhitelistPatterns:',
    '- namePattern: gcr.io/google_containers/*',
    'defaultAdmissionRule:',
    `  enforcementMode: ${enforcement}`,
    '  evaluationMode: REQUIRE_ATTESTATION',
    '  requireAttestationsBy:',
    `  - ${ATTESTOR}`,
    'globalPolicyEvaluationMode: ENABLE',
    `name: projects/${P}/policy`,
    '',
  ].join('\n'));
  await g(['container', 'binauthz', 'policy', 'import', file]);
  // A policy change reaches the decision service within 250 ms (docs/evaluate.md); allow one second.
  await sleep(1000);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tollgate-run-test-'));
  if (haveRegistry) {
    registry = await startRegistry();
    signedTagDigest = (await pushTestImage(registry.host, 'apps/hello', 'v1')).digest;
  }
  // The local registry speaks plain HTTP: `tollgate serve --insecure-registry HOST:PORT`.
  server = await startServer({ args: registry === undefined ? [] : ['--insecure-registry', registry.host] });
  // Seed 000: a KMS key, a note made with curl (REST here), an attestor with the KMS public key, the policy.
  await g(['kms', 'keyrings', 'create', 'binauthz-keyring', '--location=us-central1']);
  await g(['kms', 'keys', 'create', 'binauthz-signing-key', '--keyring=binauthz-keyring', '--location=us-central1', '--purpose=asymmetric-signing', '--default-algorithm=ec-sign-p256-sha256']);
  expect((await server.request('POST', `/v1/projects/${P}/notes?noteId=secure-app-attestor-note`, { attestation: { hint: { human_readable_name: 'Attestor for secure Flask app' } } })).status).toBe(200);
  await g(['container', 'binauthz', 'attestors', 'create', 'secure-app-attestor', '--attestation-authority-note=secure-app-attestor-note', `--attestation-authority-note-project=${P}`]);
  await g(['beta', 'container', 'binauthz', 'attestors', 'public-keys', 'add', '--attestor=secure-app-attestor', ...KEY]);
  await policy('ENFORCED_BLOCK_AND_AUDIT_LOG');
  const signed = [IMAGE, ...(registry === undefined ? [] : [`${registry.host}/apps/hello@${signedTagDigest}`])];
  for (const url of signed) {
    await g(['beta', 'container', 'binauthz', 'attestations', 'sign-and-create', `--artifact-url=${url}`, '--attestor=secure-app-attestor', `--attestor-project=${P}`, ...KEY]);
  }
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await registry?.stop();
});

describe('seed 000: deploy the signed image to Cloud Run with --binary-authorization=default', () => {
  it('deploys the signed image by digest; describe prints the URL; the URL says what was admitted and that nothing runs it', async () => {
    await g(['services', 'enable', 'run.googleapis.com']);
    const r = await deploy('python-flask-secure-service', IMAGE, ['--allow-unauthenticated', '--port=8080', '--binary-authorization=default']);
    ok(r, 'run deploy');
    expect(r.stderr).toMatch(/Service \[.*python-flask-secure-service.*\] revision \[.*python-flask-secure-service-00001-[a-z]{3}.*\] has been deployed and is serving .*100.* percent of traffic/);
    const url = (await g(['run', 'services', 'describe', 'python-flask-secure-service', REGION, '--format=value(status.url)'])).trim();
    expect(url).toBe(`${server.url}/run/projects/${P}/locations/us-central1/services/python-flask-secure-service/`);
    // --allow-unauthenticated: roles/run.invoker for allUsers, so the URL answers without a token.
    const iam = JSON.parse(await g(['run', 'services', 'get-iam-policy', 'python-flask-secure-service', REGION, '--format=json']));
    expect(iam.bindings).toEqual([{ role: 'roles/run.invoker', members: ['allUsers'] }]);
    const page = await fetch(url);
    expect(page.status).toBe(503);
    const text = await page.text();
    expect(text).toContain('python-flask-secure-service-00001-');
    expect(text).toContain(IMAGE);
    expect(text).toContain('No runtime is configured');
    const svc = await describeJson('python-flask-secure-service');
    expect(svc.metadata.generation).toBe(1);
    expect(svc.status.observedGeneration).toBe(1);
    expect(svc.metadata.annotations['run.googleapis.com/binary-authorization']).toBe('default');
    const [rev] = await revisionsOf('python-flask-secure-service');
    expect(rev.status.imageDigest).toBe(IMAGE);
    expect(rev.metadata.annotations['tollgate.dev/binary-authorization-verdict']).toBe('ALLOWED');
  }, 120_000);

  it('refuses an unsigned image: exit 1, the message names the image and the attestor and why', async () => {
    const r = await deploy('test-unsigned-service', UNSIGNED, ['--allow-unauthenticated', '--binary-authorization=default']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ERROR: (gcloud.run.deploy) Revision 'test-unsigned-service-00001-`);
    expect(r.stderr).toContain(`Container image '${UNSIGNED}' is not authorized by policy`);
    expect(r.stderr).toContain(`denied by attestor ${ATTESTOR}: No attestations found`);
    const svc = await describeJson('test-unsigned-service');
    const ready = svc.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ContainerImageUnauthorized' });
    expect(svc.status.conditions.find((c: { type: string }) => c.type === 'ConfigurationsReady')).toMatchObject({ status: 'False', reason: 'ContainerImageUnauthorized' });
    expect(svc.status.observedGeneration).toBe(svc.metadata.generation);
    expect(await revisionsOf('test-unsigned-service')).toEqual([]);
  }, 60_000);

  it("the seed's public hello image cannot be resolved offline: refused, fail closed, with the reason", async () => {
    const r = await deploy('seed-hello', 'us-docker.pkg.dev/cloudrun/container/hello', ['--allow-unauthenticated', '--binary-authorization=default']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Image 'us-docker.pkg.dev/cloudrun/container/hello' could not be resolved to a digest");
  }, 60_000);
});

describe.runIf(haveRegistry)('deploys by tag from a real registry', () => {
  it('resolves the tag, pins the revision to the digest and deploys; a moved tag is checked again', async () => {
    const host = (registry as TestRegistry).host;
    ok(await deploy('by-tag', `${host}/apps/hello:v1`), 'deploy by tag');
    const [rev] = await revisionsOf('by-tag');
    expect(rev.status.imageDigest).toBe(`${host}/apps/hello@${signedTagDigest}`);
    expect(rev.spec.containers[0].image).toBe(`${host}/apps/hello:v1`);
    // The tag now names other (unsigned) bytes: a redeploy resolves it again and is refused.
    const moved = await pushTestImage(host, 'apps/hello', 'v1');
    const r = await deploy('by-tag', `${host}/apps/hello:v1`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${host}/apps/hello:v1@${moved.digest}`);
    expect(r.stderr).toContain('No attestations found');
    // The admitted revision still serves, pinned to the signed digest.
    const svc = await describeJson('by-tag');
    expect(svc.status.latestReadyRevisionName).toBe(rev.metadata.name);
    expect(svc.status.traffic).toEqual([{ revisionName: rev.metadata.name, percent: 100, latestRevision: true }]);
  }, 120_000);

  it('a tag that does not resolve is refused whatever the policy says (guarded or not)', async () => {
    const host = (registry as TestRegistry).host;
    for (const extra of [['--binary-authorization=default'], []]) {
      const r = await deploy(`no-tag-${extra.length}`, `${host}/apps/hello:nope`, extra);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`Image '${host}/apps/hello:nope' could not be resolved to a digest: manifest unknown`);
    }
  }, 60_000);
});

describe('breakglass, the guard, redeploys, lists and revisions', () => {
  it('--breakglass deploys an unsigned image, keeps the justification on the revision, and does not stick to the service', async () => {
    ok(await deploy('glass', UNSIGNED, ['--binary-authorization=default', '--breakglass=incident 42: hotfix']), 'breakglass deploy');
    const svc = await describeJson('glass');
    expect(svc.metadata.annotations['run.googleapis.com/binary-authorization-breakglass']).toBeUndefined();
    const [rev] = await revisionsOf('glass');
    expect(rev.metadata.annotations).toMatchObject({ 'run.googleapis.com/binary-authorization-breakglass': 'incident 42: hotfix', 'tollgate.dev/binary-authorization-verdict': 'BREAKGLASS' });
    // gcloud sends the service back as it read it: no breakglass any more, so refused.
    const again = await deploy('glass', UNSIGNED);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is not authorized by policy');
    // `services update --breakglass` on the refused service retries that template with breakglass.
    ok(await server.gcloud(['run', 'services', 'update', 'glass', REGION, '--breakglass=incident 43']), 'services update --breakglass');
    const revs = await revisionsOf('glass');
    expect(revs).toHaveLength(2);
    expect(revs.map((r) => r.metadata.annotations['run.googleapis.com/binary-authorization-breakglass']).sort()).toEqual(['incident 42: hotfix', 'incident 43']);
    expect((await describeJson('glass')).metadata.annotations['run.googleapis.com/binary-authorization-breakglass']).toBeUndefined();
  }, 90_000);

  it('a service without the annotation deploys unchecked (and says so); services update switches the guard on and off', async () => {
    ok(await deploy('plain', UNSIGNED, []), 'unguarded deploy');
    let svc = await describeJson('plain');
    expect(svc.status.conditions.find((c: { type: string }) => c.type === 'BinaryAuthorization')).toMatchObject({ status: 'False', severity: 'Warning', reason: 'NotEnabled' });
    expect((await revisionsOf('plain'))[0].metadata.annotations['tollgate.dev/binary-authorization-verdict']).toBe('UNCHECKED');

    ok(await server.gcloud(['run', 'services', 'update', 'plain', REGION, '--binary-authorization=default']), 'services update --binary-authorization');
    svc = await describeJson('plain');
    expect(svc.metadata.annotations['run.googleapis.com/binary-authorization']).toBe('default');
    expect(svc.metadata.generation).toBe(2);
    expect(svc.status.observedGeneration).toBe(2);
    // Only metadata changed: no new revision, and the running one is untouched by the policy.
    expect(await revisionsOf('plain')).toHaveLength(1);
    expect(svc.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    // A new revision is now checked.
    expect((await deploy('plain', UNSIGNED, [])).code).toBe(1);

    ok(await server.gcloud(['run', 'services', 'update', 'plain', REGION, '--clear-binary-authorization']), 'services update --clear-binary-authorization');
    svc = await describeJson('plain');
    expect(svc.metadata.annotations['run.googleapis.com/binary-authorization']).toBeUndefined();

    const switched = await logs('labels."tollgate.dev/binary-authorization-change":*');
    expect(switched.filter((e) => e.resource.labels.service_name === 'plain').map((e) => e.labels['tollgate.dev/binary-authorization-change']).sort()).toEqual(['disabled', 'enabled']);
  }, 120_000);

  it('a redeploy PUTs the service: generation bumped, a new revision, traffic moved; lists and revisions', async () => {
    ok(await deploy('python-flask-secure-service', IMAGE, ['--port=8080']), 'redeploy');
    const svc = await describeJson('python-flask-secure-service');
    expect(svc.metadata.generation).toBe(2);
    expect(svc.status.observedGeneration).toBe(2);
    const revs = await revisionsOf('python-flask-secure-service');
    expect(revs).toHaveLength(2);
    expect(svc.status.latestReadyRevisionName).toMatch(/-00002-[a-z]{3}$/);
    const active = revs.filter((r) => r.status.conditions.some((c: { type: string; status: string }) => c.type === 'Active' && c.status === 'True'));
    expect(active.map((r) => r.metadata.name)).toEqual([svc.status.latestReadyRevisionName]);

    const described = JSON.parse(await g(['run', 'revisions', 'describe', svc.status.latestReadyRevisionName, REGION, '--format=json']));
    expect(described.status.imageDigest).toBe(IMAGE);

    const regional = await g(['run', 'services', 'list', REGION, '--format=value(metadata.name)']);
    const everywhere = await g(['run', 'services', 'list', '--format=value(metadata.name,metadata.labels."cloud.googleapis.com/location")']);
    for (const out of [regional, everywhere]) expect(out).toContain('python-flask-secure-service');
    expect(everywhere).toContain('us-central1');
    const table = await g(['run', 'services', 'list']);
    expect(table).toMatch(/python-flask-secure-service\s+us-central1\s+http/);
  }, 120_000);
});

describe('dry run and the project setting', () => {
  it('a dry-run policy deploys the unsigned image and logs a would-deny entry', async () => {
    await policy('DRYRUN_AUDIT_LOG_ONLY');
    try {
      ok(await deploy('dry', UNSIGNED), 'dry-run deploy');
      const [rev] = await revisionsOf('dry');
      expect(rev.metadata.annotations['tollgate.dev/binary-authorization-verdict']).toBe('DRY_RUN');
    } finally {
      await policy('ENFORCED_BLOCK_AND_AUDIT_LOG');
    }
  }, 90_000);

  it('requireRunBinaryAuthorization refuses services without the annotation, naming the setting', async () => {
    const on = await server.request('PATCH', `/tollgate/v1/projects/${P}/runSettings`, { requireRunBinaryAuthorization: true });
    expect(on.body).toEqual({ project: P, requireRunBinaryAuthorization: true });
    try {
      const r = await deploy('unguarded-required', IMAGE, []);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('FAILED_PRECONDITION');
      expect(r.stderr).toContain('requireRunBinaryAuthorization');
      const cleared = await server.gcloud(['run', 'services', 'update', 'python-flask-secure-service', REGION, '--clear-binary-authorization']);
      expect(cleared.code).toBe(1);
      ok(await deploy('guarded-required', IMAGE), 'guarded deploy with the setting on');
    } finally {
      await server.request('PATCH', `/tollgate/v1/projects/${P}/runSettings`, { requireRunBinaryAuthorization: false });
    }
  }, 90_000);
});

describe("the seeds' audit queries through gcloud logging read", () => {
  const revisionOf = (e: any) => e.resource.labels.revision_name as string; // eslint-disable-line @typescript-eslint/no-explicit-any
  const serviceOf = (e: any) => e.resource.labels.service_name as string; // eslint-disable-line @typescript-eslint/no-explicit-any

  it('seed 002: blocked deployments', async () => {
    const hits = await logs(BLOCKED_QUERY);
    expect(hits.length).toBeGreaterThanOrEqual(3);
    for (const e of hits) {
      expect(e.protoPayload.serviceName).toBe('run.googleapis.com');
      expect(e.logName).toBe(`projects/${P}/logs/cloudaudit.googleapis.com%2Fsystem_event`);
      expect(e.protoPayload.response.status.conditions[0].reason).toBe('ContainerImageUnauthorized');
    }
    const services = new Set(hits.map(serviceOf));
    for (const s of ['test-unsigned-service', 'glass', 'plain']) expect(services).toContain(s);
    for (const s of ['python-flask-secure-service', 'dry', 'seed-hello']) expect(services).not.toContain(s);
  });

  it('seed 002: dry run', async () => {
    const hits = await logs(DRY_RUN_QUERY);
    expect(hits.map(serviceOf)).toEqual(['dry']);
    expect(JSON.stringify(hits[0])).toContain(`denied by attestor ${ATTESTOR}`);
  });

  it('seed 002: breakglass, with the justification', async () => {
    const hits = await logs(BREAKGLASS_QUERY);
    expect(hits.length).toBeGreaterThanOrEqual(2);
    expect(new Set(hits.map(serviceOf))).toEqual(new Set(['glass']));
    const run = hits.find((e) => e.protoPayload.serviceName === 'run.googleapis.com' && e.logName.endsWith('system_event'));
    expect(['incident 42: hotfix', 'incident 43']).toContain(run.protoPayload.response.metadata.annotations['run.googleapis.com/binary-authorization-breakglass']);
    expect(hits.some((e) => e.protoPayload.serviceName === 'binaryauthorization.googleapis.com')).toBe(true);
  });

  it("seed 001: Binary Authorization's entries for Cloud Run revisions", async () => {
    const hits = await logs(BINAUTHZ_QUERY);
    for (const e of hits) expect(e.protoPayload.serviceName).toBe('binaryauthorization.googleapis.com');
    const verdicts = new Set(hits.map((e) => e.labels['tollgate.dev/verdict']));
    for (const v of ['ALLOWED', 'DENIED', 'DRY_RUN', 'BREAKGLASS']) expect(verdicts).toContain(v);
    // One entry per decision, each naming its revision.
    expect(new Set(hits.map(revisionOf)).size).toBe(hits.length);
  });
});

describe('delete', () => {
  it('deletes the service (then 404) and its revisions', async () => {
    const r = await server.gcloud(['run', 'services', 'delete', 'python-flask-secure-service', REGION, '--quiet']);
    ok(r, 'services delete');
    expect(r.stderr).toContain('Deleted service [python-flask-secure-service].');
    const after = await server.gcloud(['run', 'services', 'describe', 'python-flask-secure-service', REGION]);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('Cannot find service [python-flask-secure-service]');
    const api = await server.request('GET', `/v1/projects/${P}/locations/us-central1/services/python-flask-secure-service`);
    expect(api.status).toBe(404);
    expect(await revisionsOf('python-flask-secure-service')).toEqual([]);
    // The IAM policy went with it.
    expect((await fetch(`${server.url}/run/projects/${P}/locations/us-central1/services/python-flask-secure-service/`)).status).toBe(403);
  }, 60_000);
});
