/**
 * Google's three IAM methods (`:getIamPolicy`, `:setIamPolicy`, `:testIamPermissions`) as
 * reusable handlers, so each API router serves them for its resources in one line:
 *
 *   const iam = iamMethodHandlers(deps, { getPermission, setPermission, serviceName, methodPrefix, exists });
 *   router.get('/v1/{resource=projects/*\/attestors/*}:getIamPolicy', iam.getIamPolicy);
 *
 * The resource name is the route's `resource` variable.
 */
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { ApiError, invalidArgument } from '../errors.js';
import type { Handler, RequestContext } from '../http/router.js';
import { field, objectBody, principalOf } from '../api/common.js';
import type { IamBinding, IamPolicy } from './iam.js';

export interface IamMethodOptions {
  /** Needed for getIamPolicy, e.g. `binaryauthorization.attestors.getIamPolicy`. */
  readonly getPermission: string;
  /** Needed for setIamPolicy, e.g. `binaryauthorization.attestors.setIamPolicy`. */
  readonly setPermission: string;
  /** For the Admin Activity entry, e.g. `binaryauthorization.googleapis.com`. */
  readonly serviceName: string;
  /** e.g. `google.cloud.binaryauthorization.v1.BinauthzManagementServiceV1`; `.SetIamPolicy` is appended. */
  readonly methodPrefix: string;
  /** Whether the resource exists (NOT_FOUND for get/set otherwise, after the permission check). */
  exists(name: string): Promise<boolean>;
}

export interface IamMethodHandlers {
  readonly getIamPolicy: Handler;
  readonly setIamPolicy: Handler;
  readonly testIamPermissions: Handler;
}

function resourceOf(ctx: RequestContext): string {
  const r = ctx.params['resource'];
  if (r === undefined || r === '') throw new Error('IAM method route without a {resource} variable');
  return r;
}

function notFound(resource: string): ApiError {
  return new ApiError('NOT_FOUND', `Resource ${resource} not found.`);
}

/** `options.requestedPolicyVersion`: 0, 1 or 3 (Google rejects anything else). */
function requestedVersion(raw: unknown): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (n !== 0 && n !== 1 && n !== 3) throw invalidArgument(`options.requestedPolicyVersion: must be 0, 1 or 3, not ${JSON.stringify(raw)}`);
  return n;
}

/** The paths of an `updateMask` given as `"bindings,etag"` or `{paths: [...]}`. */
function maskPaths(raw: unknown): Set<string> | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  let paths: unknown[];
  if (typeof raw === 'string') paths = raw.split(',');
  else if (typeof raw === 'object' && !Array.isArray(raw) && Array.isArray((raw as Record<string, unknown>)['paths'])) paths = (raw as { paths: unknown[] }).paths;
  else throw invalidArgument('updateMask: must be a comma-separated list of field paths');
  const out = new Set<string>();
  for (const p of paths) {
    const path = typeof p === 'string' ? p.trim().replace(/^policy\./, '') : '';
    if (path === '') continue;
    if (path !== 'bindings' && path !== 'etag' && path !== 'version' && path !== 'auditConfigs' && path !== 'audit_configs') {
      throw invalidArgument(`updateMask: unknown field path "${String(p)}" (Tollgate supports bindings and etag)`);
    }
    out.add(path);
  }
  return out;
}

/** The project of a resource name, for the audit log (`projects/P/…`, `namespaces/P/…`). */
function auditProject(resource: string): string {
  return /^(?:projects|namespaces)\/([^/]+)/.exec(resource)?.[1] ?? '';
}

export function iamMethodHandlers(deps: AppDeps, opts: IamMethodOptions): IamMethodHandlers {
  const getIamPolicy: Handler = async (ctx) => {
    const principal = principalOf(ctx);
    const resource = resourceOf(ctx);
    // GET carries options in the query (Binary Authorization); POST in the body (Container
    // Analysis, KMS, Resource Manager). The version is validated only: a stored policy is served
    // as it is (version 3 exactly when it has conditional bindings).
    requestedVersion(ctx.query.get('options.requestedPolicyVersion') ?? ctx.query.get('options.requested_policy_version'));
    if (ctx.method === 'POST') {
      const body = await objectBody(ctx);
      const options = field(body, 'options');
      if (options !== undefined && options !== null) {
        if (typeof options !== 'object' || Array.isArray(options)) throw invalidArgument('options: must be an object');
        requestedVersion(field(options as Record<string, unknown>, 'requestedPolicyVersion'));
      }
    }
    await deps.iam.require(principal, opts.getPermission, resource);
    if (!(await opts.exists(resource))) throw notFound(resource);
    return { body: await deps.iam.getPolicy(resource) };
  };

  const setIamPolicy: Handler = async (ctx) => {
    const principal = principalOf(ctx);
    const resource = resourceOf(ctx);
    const body = await objectBody(ctx);
    const policy = field(body, 'policy');
    if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) throw invalidArgument('policy: required');
    const mask = maskPaths(field(body, 'updateMask'));
    await deps.iam.require(principal, opts.setPermission, resource);
    if (!(await opts.exists(resource))) throw notFound(resource);

    let next = policy as IamPolicy;
    if (mask !== undefined) {
      // Only the masked fields change; without `bindings` in the mask the current bindings stay.
      const current = await deps.iam.getPolicy(resource);
      const bindings: readonly IamBinding[] | undefined = mask.has('bindings') ? next.bindings : current.bindings;
      next = {
        ...(next.version === undefined ? {} : { version: next.version }),
        ...(bindings === undefined ? {} : { bindings }),
        ...(mask.has('etag') && next.etag !== undefined ? { etag: next.etag } : {}),
      };
    }
    const result = await deps.iam.setPolicy(resource, next);
    await recordAdminActivity(deps.store, {
      serviceName: opts.serviceName,
      methodName: `${opts.methodPrefix}.SetIamPolicy`,
      resourceName: resource,
      project: auditProject(resource),
      principal,
      request: { resource, policy, ...(mask === undefined ? {} : { updateMask: [...mask].join(',') }) },
      response: result,
    });
    return { body: result };
  };

  const testIamPermissions: Handler = async (ctx) => {
    const principal = principalOf(ctx);
    const resource = resourceOf(ctx);
    const body = await objectBody(ctx);
    const raw = field(body, 'permissions') ?? [];
    if (!Array.isArray(raw)) throw invalidArgument('permissions: must be a list');
    const permissions: string[] = [];
    for (const p of raw) {
      if (typeof p !== 'string' || p === '') throw invalidArgument('permissions: every entry must be a permission name');
      if (p.includes('*')) throw invalidArgument(`Permissions with wildcards (such as '*' or 'storage.*') are not allowed in testIamPermissions: ${p}`);
      permissions.push(p);
    }
    // Never NOT_FOUND: a missing resource grants nothing.
    if (permissions.length === 0 || !(await opts.exists(resource))) return { body: { permissions: [] } };
    return { body: { permissions: await deps.iam.testPermissions(principal, permissions, resource) } };
  };

  return { getIamPolicy, setIamPolicy, testIamPermissions };
}
