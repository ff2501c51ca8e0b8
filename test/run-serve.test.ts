/**
 * Cloud Run-style deploys through the real `tollgate serve` (the standard harness) with the real
 * gcloud: the signed example image deploys, an unsigned digest is refused with the reason, and
 * breakglass deploys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNED_IMAGE, UNSIGNED_IMAGE } from './support/k8s.js';
import { ok, seedExampleEvidence } from './support/seed.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;
const P = 'demo';

beforeAll(async () => {
  server = await startServer();
  await seedExampleEvidence(server);
  await ok(server, 'PUT', `/v1/projects/${P}/policy`, {
    defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/build-attestor'] },
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const deploy = (name: string, image: string, ...extra: string[]) =>
  server.gcloud(['run', 'deploy', name, `--image=${image}`, '--region=us-central1', '--platform=managed', '--port=8080', '--binary-authorization=default', ...extra]);

describe('gcloud run deploy --binary-authorization=default against tollgate serve', () => {
  it('deploys the signed image and refuses an unsigned one with the reason', async () => {
    const signed = await deploy('web', SIGNED_IMAGE);
    expect(signed.code, signed.stderr).toBe(0);
    const url = await server.gcloud(['run', 'services', 'describe', 'web', '--region=us-central1', '--format=value(status.url)']);
    expect(url.stdout.trim()).toBe(`${server.url}/run/projects/demo/locations/us-central1/services/web/`);
    const unsigned = await deploy('web-unsigned', UNSIGNED_IMAGE);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain(UNSIGNED_IMAGE);
    expect(unsigned.stderr).toContain('projects/demo/attestors/build-attestor');
  }, 120_000);

  it('breakglass deploys, and is audited', async () => {
    const r = await deploy('web-glass', UNSIGNED_IMAGE, '--breakglass=INC-7 hotfix');
    expect(r.code, r.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 300));
    const logs = await server.gcloud(['logging', 'read', 'resource.type="cloud_run_revision"\n"breakglass"', `--project=${P}`, '--format=json']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('INC-7 hotfix');
  }, 120_000);

  it('tollgate projects update --require-run-binary-authorization refuses unguarded services', async () => {
    const set = await server.tollgate(['projects', 'update', P, '--require-run-binary-authorization']);
    expect(set.code, set.stderr).toBe(0);
    const r = await server.gcloud(['run', 'deploy', 'plain', `--image=${SIGNED_IMAGE}`, '--region=us-central1', '--platform=managed']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/requireRunBinaryAuthorization|require-run-binary-authorization/);
    expect((await server.tollgate(['projects', 'update', P, '--require-run-binary-authorization=false'])).code).toBe(0);
  }, 120_000);
});
