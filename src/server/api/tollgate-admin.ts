/**
 * Tollgate's own identity API (`/tollgate/v1/principals`, `/tollgate/v1/tokens`): who may call
 * the server. Superusers only. Token secrets are returned once, on creation, and never again
 * (the store keeps only their SHA-256). Every write is recorded as Admin Activity under the
 * pseudo-project `_tollgate` (no real project id can start with `_`).
 */
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { ApiError, invalidArgument } from '../errors.js';
import { durationSeconds } from '../duration.js';
import { Router, type RequestContext } from '../http/router.js';
import {
  createPrincipal,
  deletePrincipal,
  getPrincipal,
  getToken,
  issueToken,
  listPrincipals,
  listTokens,
  normalizeEmail,
  revokeToken,
  type PrincipalRecord,
  type TokenRecord,
} from '../iam/iam-service.js';
import type { Principal } from '../iam/principal.js';
import { field, objectBody, pageOf, pageResult, principalOf } from './common.js';

/** The audit log's project for identity changes, which belong to no project. */
export const ADMIN_AUDIT_PROJECT = '_tollgate';
const SERVICE = 'tollgate.dev';
const METHOD = 'tollgate.v1.Identity';

/** The longest token lifetime `expiresIn` accepts: ten years. */
const MAX_EXPIRES_SECONDS = 10 * 366 * 24 * 3600;

function superuser(ctx: RequestContext): Principal {
  const p = principalOf(ctx);
  if (!p.superuser) throw new ApiError('PERMISSION_DENIED', 'Only Tollgate administrators may manage principals and tokens.');
  return p;
}

/**
 * A duration such as `3600s`, `90m`, `24h`, `30d` or `1h30m` (duration.ts). Returns seconds;
 * INVALID_ARGUMENT otherwise.
 */
export function parseDuration(text: string, what = 'expiresIn'): number {
  const seconds = durationSeconds(text);
  if (seconds === undefined) throw invalidArgument(`${what}: "${text}" is not a duration like 3600s, 90m, 24h or 30d`);
  if (!(seconds >= 1)) throw invalidArgument(`${what}: must be at least 1s`);
  if (seconds > MAX_EXPIRES_SECONDS) throw invalidArgument(`${what}: must be at most ten years`);
  return seconds;
}

function principalView(p: PrincipalRecord) {
  return {
    name: p.name,
    email: p.email,
    type: p.type,
    superuser: p.superuser,
    ...(p.description === undefined ? {} : { description: p.description }),
    createTime: p.createTime,
  };
}

function tokenView(t: TokenRecord) {
  return {
    name: t.name,
    principal: t.principal,
    ...(t.expireTime === undefined ? {} : { expireTime: t.expireTime }),
    ...(t.description === undefined ? {} : { description: t.description }),
    createTime: t.createTime,
  };
}

function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const v = field(body, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${name}: must be a string`);
  return v;
}

function optionalBool(body: Record<string, unknown>, name: string): boolean | undefined {
  const v = field(body, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalidArgument(`${name}: must be true or false`);
  return v;
}

export function tollgateAdminRouter(deps: AppDeps): Router {
  const { store } = deps;
  const audit = (principal: Principal, method: string, resourceName: string, request: unknown, response?: unknown) =>
    recordAdminActivity(store, {
      serviceName: SERVICE,
      methodName: `${METHOD}.${method}`,
      resourceName,
      project: ADMIN_AUDIT_PROJECT,
      principal,
      request,
      ...(response === undefined ? {} : { response }),
    });

  return new Router('tollgate')
    .post('/tollgate/v1/principals', async (ctx) => {
      const caller = superuser(ctx);
      const body = await objectBody(ctx);
      const type = field(body, 'type') ?? 'user';
      if (type !== 'user' && type !== 'serviceAccount') throw invalidArgument('type: must be user or serviceAccount');
      const description = optionalString(body, 'description');
      const su = optionalBool(body, 'superuser');
      const p = await createPrincipal(store, {
        email: normalizeEmail(field(body, 'email')),
        type,
        ...(su === undefined ? {} : { superuser: su }),
        ...(description === undefined ? {} : { description }),
      });
      const view = principalView(p);
      await audit(caller, 'CreatePrincipal', p.name, body, view);
      return { body: view };
    })
    .get('/tollgate/v1/principals', async (ctx) => {
      superuser(ctx);
      const page = pageOf(ctx.query, { size: 100 });
      const rows = await listPrincipals(store, { limit: page.limit + 1, after: page.after });
      const { items, nextPageToken } = pageResult(rows, page);
      return { body: { principals: items.map(principalView), ...(nextPageToken === undefined ? {} : { nextPageToken }) } };
    })
    .get('/tollgate/v1/principals/{email}', async (ctx) => {
      superuser(ctx);
      const email = ctx.params['email'] as string;
      const p = await getPrincipal(store, email);
      if (p === undefined) throw new ApiError('NOT_FOUND', `Principal ${email} not found`);
      return { body: principalView(p) };
    })
    .delete('/tollgate/v1/principals/{email}', async (ctx) => {
      const caller = superuser(ctx);
      const email = (ctx.params['email'] as string).toLowerCase();
      if (!(await deletePrincipal(store, email))) throw new ApiError('NOT_FOUND', `Principal ${email} not found`);
      await audit(caller, 'DeletePrincipal', `principals/${email}`, { name: `principals/${email}` });
      return { body: {} };
    })
    .post('/tollgate/v1/tokens', async (ctx) => {
      const caller = superuser(ctx);
      const body = await objectBody(ctx);
      const principal = normalizeEmail(field(body, 'principal'), 'principal');
      const expiresIn = optionalString(body, 'expiresIn');
      const description = optionalString(body, 'description');
      const expireTime = expiresIn === undefined ? undefined : new Date(Date.now() + parseDuration(expiresIn) * 1000).toISOString().replace(/Z$/, '000Z');
      const { token, secret } = await issueToken(store, {
        principal,
        ...(expireTime === undefined ? {} : { expireTime }),
        ...(description === undefined ? {} : { description }),
      });
      const view = tokenView(token);
      // The audit entry names the token, never its secret.
      await audit(caller, 'CreateToken', token.name, body, view);
      return { body: { token: view, secret } };
    })
    .get('/tollgate/v1/tokens', async (ctx) => {
      superuser(ctx);
      const page = pageOf(ctx.query, { size: 100 });
      const p = ctx.query.get('principal');
      const principal = p === null || p === '' ? undefined : normalizeEmail(p, 'principal');
      const rows = await listTokens(store, { principal, limit: page.limit + 1, after: page.after });
      const { items, nextPageToken } = pageResult(rows, page);
      return { body: { tokens: items.map(tokenView), ...(nextPageToken === undefined ? {} : { nextPageToken }) } };
    })
    .get('/tollgate/v1/tokens/{id}', async (ctx) => {
      superuser(ctx);
      const id = ctx.params['id'] as string;
      const t = await getToken(store, id);
      if (t === undefined) throw new ApiError('NOT_FOUND', `Token ${id} not found`);
      return { body: tokenView(t) };
    })
    .delete('/tollgate/v1/tokens/{id}', async (ctx) => {
      const caller = superuser(ctx);
      const id = ctx.params['id'] as string;
      if (!(await revokeToken(store, id))) throw new ApiError('NOT_FOUND', `Token ${id} not found`);
      await audit(caller, 'DeleteToken', `tokens/${id}`, { name: `tokens/${id}` });
      return { body: {} };
    });
}
