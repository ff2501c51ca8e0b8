/**
 * Helpers for the authorization matrix (test/authz-matrix.test.ts): principals with tokens made
 * through the admin API, IAM grants made through each resource's own `setIamPolicy`, and the
 * assertions for Google's error envelope. Nothing here knows which role grants what: that is
 * written by hand in the test, from the reference (shared/binauthz-reference.md §7).
 */
import { expect } from 'vitest';
import type { TestServer } from './server.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = any;

export interface Req {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

export interface Res {
  readonly status: number;
  readonly body: Body;
}

export interface Caller {
  readonly email: string;
  /** IAM member string, e.g. `user:alice@example.com`. */
  readonly member: string;
  readonly token: string;
  /** The token's id (`tokens/ID` → `ID`), to revoke it. */
  readonly tokenId: string;
}

export interface CallerOptions {
  readonly type?: 'user' | 'serviceAccount';
  readonly superuser?: boolean;
  readonly expiresIn?: string;
}

/** A principal and one token for it, made by the bootstrap admin over `/tollgate/v1`. */
export async function createCaller(server: TestServer, email: string, opts: CallerOptions = {}): Promise<Caller> {
  const type = opts.type ?? 'user';
  const p = await server.request('POST', '/tollgate/v1/principals', { email, type, ...(opts.superuser ? { superuser: true } : {}) });
  expect(p.status, `create principal ${email}: ${JSON.stringify(p.body)}`).toBe(200);
  const t = await server.request('POST', '/tollgate/v1/tokens', { principal: email, ...(opts.expiresIn ? { expiresIn: opts.expiresIn } : {}) });
  expect(t.status, `create token for ${email}: ${JSON.stringify(t.body)}`).toBe(200);
  return { email, member: `${type}:${email}`, token: t.body.secret as string, tokenId: String(t.body.token.name).replace(/^tokens\//, '') };
}

/** Sends a request as `token` (`null`: no Authorization header). */
export function send(server: TestServer, req: Req, token: string | null): Promise<Res> {
  return server.request(req.method, req.path, req.body, token);
}

/**
 * The IAM methods of a resource, at the path and in the form its API serves them: Binary
 * Authorization's getIamPolicy is a GET (attestors and the policy), every other API's a POST.
 */
export function iamMethodsOf(resource: string, version = 'v1'): { get: Req; set(policy: unknown): Req; test(permissions: readonly string[]): Req } {
  const binauthz = /^projects\/[^/]+\/(attestors\/[^/]+|policy)$/.test(resource);
  const v = binauthz ? version : 'v1';
  return {
    get: binauthz ? { method: 'GET', path: `/${v}/${resource}:getIamPolicy` } : { method: 'POST', path: `/${v}/${resource}:getIamPolicy`, body: {} },
    set: (policy) => ({ method: 'POST', path: `/${v}/${resource}:setIamPolicy`, body: { policy } }),
    test: (permissions) => ({ method: 'POST', path: `/${v}/${resource}:testIamPermissions`, body: { permissions } }),
  };
}

/** The resource's current IAM policy, read as the admin. */
export async function readPolicy(server: TestServer, resource: string): Promise<Body> {
  const r = await send(server, iamMethodsOf(resource).get, server.adminToken);
  expect(r.status, `getIamPolicy ${resource}: ${JSON.stringify(r.body)}`).toBe(200);
  return r.body;
}

/**
 * Adds bindings to the policy set on `resource` itself (read, modify, write with the etag, as
 * the admin), the way `gcloud … add-iam-policy-binding` does.
 */
export async function grant(server: TestServer, resource: string, bindings: ReadonlyArray<readonly [member: string, role: string]>): Promise<void> {
  const current = await readPolicy(server, resource);
  const merged: Array<{ role: string; members: string[] }> = (current.bindings ?? []).map((b: { role: string; members: string[] }) => ({ role: b.role, members: [...b.members] }));
  for (const [member, role] of bindings) {
    const b = merged.find((x) => x.role === role);
    if (b === undefined) merged.push({ role, members: [member] });
    else if (!b.members.includes(member)) b.members.push(member);
  }
  const r = await send(server, iamMethodsOf(resource).set({ bindings: merged, etag: current.etag }), server.adminToken);
  expect(r.status, `setIamPolicy ${resource}: ${JSON.stringify(r.body)}`).toBe(200);
}

/** A request whose body is the resource's current IAM policy, unchanged (a harmless setIamPolicy). */
export async function rewritePolicyRequest(server: TestServer, resource: string, version = 'v1'): Promise<Req> {
  const current = await readPolicy(server, resource);
  return iamMethodsOf(resource, version).set({ bindings: current.bindings ?? [], etag: current.etag });
}

/** `PERMISSION_DENIED` in Google's envelope, naming the permission and the resource as asked. */
export function expectDenied(res: Res, permission: string, resource: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(403);
  expect(res.body?.error, JSON.stringify(res.body)).toMatchObject({
    code: 403,
    status: 'PERMISSION_DENIED',
    message: `Permission '${permission}' denied on resource '${resource}' (or it may not exist).`,
  });
}

/** `PERMISSION_DENIED` in Google's envelope, whatever the message (Tollgate's superuser-only methods). */
export function expectForbidden(res: Res): void {
  expect(res.status, JSON.stringify(res.body)).toBe(403);
  expect(res.body?.error, JSON.stringify(res.body)).toMatchObject({ code: 403, status: 'PERMISSION_DENIED', message: expect.any(String) });
}

export function expectUnauthenticated(res: Res): void {
  expect(res.status, JSON.stringify(res.body)).toBe(401);
  expect(res.body?.error, JSON.stringify(res.body)).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', message: expect.any(String) });
}

export function expectOk(res: Res): void {
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body?.error).toBeUndefined();
}

/** `roles/binaryauthorization.attestorsViewer` → `binaryauthorization.attestorsviewer` (usable in an email). */
export function roleSlug(role: string): string {
  return role.replace(/^roles\//, '').toLowerCase().replace(/[^a-z0-9.]/g, '-');
}
