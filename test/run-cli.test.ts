/**
 * `tollgate run deploy|describe|list|delete|settings` (issue 6 §6): the same outcomes as gcloud,
 * through the built CLI (`npm run build` first) against the real `tollgate serve`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './support/server.js';

const SIGNED = 'us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706';
const UNSIGNED = 'us-docker.pkg.dev/demo/apps/web@sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2';
const P = ['--project', 'demo'];
const R = ['--region', 'us-central1'];

let server: TestServer;
/** `tollgate run ARGS` through the built CLI, with the server's URL and admin token. */
const tollgateRun = (args: readonly string[], env: Record<string, string> = {}) => server.tollgate(['run', ...args], { env });

beforeAll(async () => {
  server = await startServer();
  // A policy that denies everything but the signed image's repository.
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

describe('tollgate run', () => {
  it('deploys (exit 0), refuses (exit 1 with the reason), and breaks glass', async () => {
    const ok = await tollgateRun(['deploy', 'web', '--image', SIGNED, ...P, ...R, '--binary-authorization', 'default', '--port', '8080', '--allow-unauthenticated']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Service \[web\] revision \[web-00001-[a-z]{3}\] has been deployed and is serving 100 percent of traffic\.\nService URL: http:\/\/127\.0\.0\.1:\d+\/run\/projects\/demo\/locations\/us-central1\/services\/web\/\n$/);
    const page = await fetch(`${server.url}/run/projects/demo/locations/us-central1/services/web/anything`);
    expect(page.status).toBe(503);

    const denied = await tollgateRun(['deploy', 'web', '--image', UNSIGNED, ...P, ...R]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`Container image '${UNSIGNED}' is not authorized by policy`);
    expect(denied.stderr).toContain('Denied by always_deny admission rule');

    const glass = await tollgateRun(['deploy', 'web', '--image', UNSIGNED, ...P, ...R, '--breakglass', 'incident 7']);
    expect(glass.code, glass.stderr).toBe(0);
    expect(glass.stdout).toContain('web-00002-');
  }, 60_000);

  it('describe, list (every region and one), json output', async () => {
    const d = await tollgateRun(['describe', 'web', ...P, ...R]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('Service web in region us-central1: ready');
    expect(d.stdout).toContain('Binary Authorization: default');
    expect(d.stdout).toMatch(/Latest ready revision: web-00002-/);
    const j = JSON.parse((await tollgateRun(['describe', 'web', ...P, ...R, '--format', 'json'])).stdout);
    expect(j.metadata.generation).toBe(3);
    expect(j.status.observedGeneration).toBe(3);

    const other = await tollgateRun(['deploy', 'eu', '--image', SIGNED, ...P, '--region', 'europe-west1']);
    expect(other.code, other.stderr).toBe(0);
    const all = await tollgateRun(['list', ...P]);
    expect(all.stdout).toMatch(/^SERVICE\s+REGION\s+READY\s+BINARY_AUTHORIZATION\s+URL\s+LAST_DEPLOYED_BY\n/);
    expect(all.stdout).toMatch(/eu\s+europe-west1\s+yes\s+-\s+http/);
    expect(all.stdout).toMatch(/web\s+us-central1\s+yes\s+default\s+http/);
    const one = await tollgateRun(['list', ...P, ...R, '--format', 'json']);
    expect((JSON.parse(one.stdout) as { metadata: { name: string } }[]).map((s) => s.metadata.name)).toEqual(['web']);
  }, 60_000);

  it('settings: requireRunBinaryAuthorization refuses unguarded services', async () => {
    const on = await tollgateRun(['settings', ...P, '--require-binary-authorization', 'true']);
    expect(on.code, on.stderr).toBe(0);
    expect(on.stdout).toBe('Project demo: requireRunBinaryAuthorization true\n');
    const refused = await tollgateRun(['deploy', 'loose', '--image', SIGNED, ...P, ...R]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FAILED_PRECONDITION');
    expect(refused.stderr).toContain('requireRunBinaryAuthorization');
    expect((await tollgateRun(['settings', ...P])).stdout).toBe('Project demo: requireRunBinaryAuthorization true\n');
    expect((await tollgateRun(['settings', ...P, '--require-binary-authorization', 'false'])).code).toBe(0);
    expect((await tollgateRun(['settings', ...P, '--require-binary-authorization', 'maybe'])).code).toBe(2);
  }, 60_000);

  it('delete, then describe fails', async () => {
    const del = await tollgateRun(['delete', 'web', ...P, ...R]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toBe('Deleted service [web].\n');
    const gone = await tollgateRun(['describe', 'web', ...P, ...R]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("NOT_FOUND: Resource 'web' of kind 'SERVICE' in region 'us-central1' in project 'demo' does not exist.");
    // No --project (and no TOLLGATE_PROJECT, whatever the caller's environment holds): a usage error.
    expect((await tollgateRun(['describe', 'web', ...R], { TOLLGATE_PROJECT: '' })).code).toBe(2);
  }, 60_000);
});
