/**
 * The IAM method handlers behind a real HTTP listener and a real SQLite store, with the request
 * shapes gcloud and the tutorials' curl calls send.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../app-deps.js';
import { createRequestListener } from '../http/http-server.js';
import { Router } from '../http/router.js';
import { jsonLogger } from '../log.js';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import { createIam, createPrincipal, issueToken } from './iam-service.js';
import { iamMethodHandlers } from './iam-methods.js';

let dir: string;
let store: Store;
let server: Server;
let base: string;
let admin: string;
let alice: string;
const existing = new Set(['projects/demo/attestors/a', 'projects/demo/notes/n']);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-iam-methods-'));
  store = await openStore(join(dir, 'tollgate.db'));
  const iam = createIam(store);
  const logger = jsonLogger('error', () => undefined);
  const deps: AppDeps = { store, iam, logger, settings: { publicUrl: 'http://127.0.0.1', dataDir: dir } };
  const exists = async (name: string) => existing.has(name);
  const attestors = iamMethodHandlers(deps, {
    getPermission: 'binaryauthorization.attestors.getIamPolicy',
    setPermission: 'binaryauthorization.attestors.setIamPolicy',
    serviceName: 'binaryauthorization.googleapis.com',
    methodPrefix: 'google.cloud.binaryauthorization.v1.BinauthzManagementServiceV1',
    exists,
  });
  const notes = iamMethodHandlers(deps, {
    getPermission: 'containeranalysis.notes.getIamPolicy',
    setPermission: 'containeranalysis.notes.setIamPolicy',
    serviceName: 'containeranalysis.googleapis.com',
    methodPrefix: 'grafeas.v1.Grafeas',
    exists,
  });
  const router = new Router('test')
    .get('/v1/{resource=projects/*/attestors/*}:getIamPolicy', attestors.getIamPolicy)
    .post('/v1/{resource=projects/*/attestors/*}:setIamPolicy', attestors.setIamPolicy)
    .post('/v1/{resource=projects/*/attestors/*}:testIamPermissions', attestors.testIamPermissions)
    .post('/v1/{resource=projects/*/notes/*}:getIamPolicy', notes.getIamPolicy)
    .post('/v1/{resource=projects/*/notes/*}:setIamPolicy', notes.setIamPolicy)
    .post('/v1/{resource=projects/*/notes/*}:testIamPermissions', notes.testIamPermissions);
  server = createServer(createRequestListener({ routers: [router], authenticate: (t) => iam.authenticate(t), maxBodyBytes: 1 << 20, logger }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await createPrincipal(store, { email: 'root@tollgate.local', type: 'user', superuser: true });
  await createPrincipal(store, { email: 'alice@example.com', type: 'user' });
  admin = (await issueToken(store, { principal: 'root@tollgate.local' })).secret;
  alice = (await issueToken(store, { principal: 'alice@example.com' })).secret;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

describe('IAM methods', () => {
  it('serves gcloud add-iam-policy-binding: GET with options, then POST with the URL-safe etag', async () => {
    const got = await call('GET', '/v1/projects/demo/attestors/a:getIamPolicy?options.requestedPolicyVersion=3', admin);
    expect(got.status).toBe(200);
    expect(got.body.version).toBe(1);
    expect(Buffer.from(got.body.etag, 'base64')).toHaveLength(8);
    const etag = (got.body.etag as string).replace(/\+/g, '-').replace(/\//g, '_');
    const set = await call('POST', '/v1/projects/demo/attestors/a:setIamPolicy', admin, {
      policy: { bindings: [{ role: 'roles/binaryauthorization.attestorsVerifier', members: ['user:alice@example.com'] }], etag, version: 3 },
    });
    expect(set.status).toBe(200);
    expect(set.body.bindings).toEqual([{ role: 'roles/binaryauthorization.attestorsVerifier', members: ['user:alice@example.com'] }]);
    // The same etag again is stale.
    const again = await call('POST', '/v1/projects/demo/attestors/a:setIamPolicy', admin, { policy: { bindings: [], etag } });
    expect(again.status).toBe(409);
    expect(again.body.error.status).toBe('ABORTED');
  });

  it('records the change as Admin Activity', async () => {
    const [entry] = await store.queryAudit({ projects: ['demo'], limit: 1 });
    const payload = entry?.entry['protoPayload'] as Record<string, unknown>;
    expect(payload['methodName']).toBe('google.cloud.binaryauthorization.v1.BinauthzManagementServiceV1.SetIamPolicy');
    expect(payload['resourceName']).toBe('projects/demo/attestors/a');
    expect(payload['authenticationInfo']).toEqual({ principalEmail: 'root@tollgate.local' });
  });

  it('serves the tutorial curl call on notes (POST bodies, resource in the body, single quotes)', async () => {
    const body = `{'resource': 'projects/demo/notes/n', 'policy': {'bindings': [{'role': 'roles/containeranalysis.notes.occurrences.viewer', 'members': ['serviceAccount:service-1@gcp-sa-binaryauthorization.iam.gserviceaccount.com']}]}}`;
    const set = await call('POST', '/v1/projects/demo/notes/n:setIamPolicy', admin, body);
    expect(set.status).toBe(200);
    const got = await call('POST', '/v1/projects/demo/notes/n:getIamPolicy', admin, { options: { requestedPolicyVersion: 1 } });
    expect(got.body.bindings[0].role).toBe('roles/containeranalysis.notes.occurrences.viewer');
    expect(got.body.etag).toBe(set.body.etag);
  });

  it('checks the permission before existence, then says NOT_FOUND', async () => {
    const denied = await call('GET', '/v1/projects/demo/attestors/missing:getIamPolicy', alice);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toBe("Permission 'binaryauthorization.attestors.getIamPolicy' denied on resource 'projects/demo/attestors/missing' (or it may not exist).");
    const missing = await call('GET', '/v1/projects/demo/attestors/missing:getIamPolicy', admin);
    expect(missing.status).toBe(404);
    const set = await call('POST', '/v1/projects/demo/attestors/missing:setIamPolicy', admin, { policy: { bindings: [] } });
    expect(set.status).toBe(404);
  });

  it('requires the set permission for setIamPolicy', async () => {
    const r = await call('POST', '/v1/projects/demo/attestors/a:setIamPolicy', alice, { policy: { bindings: [{ role: 'roles/owner', members: ['user:alice@example.com'] }] } });
    expect(r.status).toBe(403);
    expect(r.body.error.status).toBe('PERMISSION_DENIED');
  });

  it('tests permissions, with an empty answer for a missing resource', async () => {
    const perms = ['binaryauthorization.attestors.get', 'binaryauthorization.attestors.verifyImageAttested', 'binaryauthorization.attestors.delete'];
    const held = await call('POST', '/v1/projects/demo/attestors/a:testIamPermissions', alice, { permissions: perms });
    expect(held.body).toEqual({ permissions: ['binaryauthorization.attestors.get', 'binaryauthorization.attestors.verifyImageAttested'] });
    const missing = await call('POST', '/v1/projects/demo/attestors/missing:testIamPermissions', admin, { permissions: perms });
    expect(missing.status).toBe(200);
    expect(missing.body).toEqual({ permissions: [] });
    const wildcard = await call('POST', '/v1/projects/demo/attestors/a:testIamPermissions', alice, { permissions: ['binaryauthorization.*'] });
    expect(wildcard.status).toBe(400);
  });

  it('keeps the bindings when the update mask leaves them out, and rejects unknown roles and versions', async () => {
    const before = await call('GET', '/v1/projects/demo/attestors/a:getIamPolicy', admin);
    const masked = await call('POST', '/v1/projects/demo/attestors/a:setIamPolicy', admin, { policy: { bindings: [] }, updateMask: 'etag' });
    expect(masked.status).toBe(200);
    expect(masked.body.bindings).toEqual(before.body.bindings);
    const unknown = await call('POST', '/v1/projects/demo/attestors/a:setIamPolicy', admin, { policy: { bindings: [{ role: 'roles/nope', members: ['allUsers'] }] } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('roles/nope');
    const version = await call('GET', '/v1/projects/demo/attestors/a:getIamPolicy?options.requestedPolicyVersion=2', admin);
    expect(version.status).toBe(400);
  });
});
