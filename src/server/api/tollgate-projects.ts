/**
 * Tollgate's own project endpoints (`/tollgate/v1/projects`): create a project explicitly (a
 * superuser's first write also creates one), list them, and read or change Tollgate settings.
 */
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { ApiError, invalidArgument } from '../errors.js';
import { Router, type RequestContext } from '../http/router.js';
import type { Principal } from '../iam/principal.js';
import { binauthzServiceAgent, computeDefaultServiceAccount, ensureProject, getProject, isValidProjectId, type Project } from '../services/projects.js';
import { field, objectBody, pageOf, pageResult, principalOf } from './common.js';

function superuser(ctx: RequestContext): Principal {
  const p = principalOf(ctx);
  if (!p.superuser) throw new ApiError('PERMISSION_DENIED', 'Only Tollgate administrators may manage projects.');
  return p;
}

function view(p: Project) {
  return {
    name: `projects/${p.projectId}`,
    projectId: p.projectId,
    projectNumber: p.projectNumber,
    createTime: p.createTime,
    binaryAuthorizationServiceAgent: binauthzServiceAgent(p),
    computeDefaultServiceAccount: computeDefaultServiceAccount(p),
  };
}

export function tollgateProjectsRouter(deps: AppDeps): Router {
  return new Router('tollgate-projects')
    .post('/tollgate/v1/projects', async (ctx) => {
      const principal = superuser(ctx);
      const id = field(await objectBody(ctx), 'projectId');
      if (typeof id !== 'string' || !isValidProjectId(id)) throw invalidArgument('projectId: a lowercase letter, then up to 29 lowercase letters, digits or hyphens');
      if ((await getProject(deps.store, id)) !== undefined) throw new ApiError('ALREADY_EXISTS', `Project ${id} already exists`);
      const p = await ensureProject(deps.store, id);
      await recordAdminActivity(deps.store, { serviceName: 'tollgate.dev', methodName: 'tollgate.v1.Projects.CreateProject', resourceName: `projects/${id}`, project: id, principal, request: { projectId: id } });
      return { body: view(p) };
    })
    .get('/tollgate/v1/projects', async (ctx) => {
      superuser(ctx);
      const page = pageOf(ctx.query, { size: 100 });
      const rows = await deps.store.list('project', { parent: '', after: page.after, limit: page.limit + 1 });
      const { items, nextPageToken } = pageResult(rows, page);
      return { body: { projects: items.map((r) => view({ projectId: String(r.body['projectId']), projectNumber: String(r.body['projectNumber']), createTime: r.createTime })), ...(nextPageToken ? { nextPageToken } : {}) } };
    })
    .get('/tollgate/v1/projects/{projectId}', async (ctx) => {
      superuser(ctx);
      const p = await getProject(deps.store, ctx.params['projectId'] as string);
      if (p === undefined) throw new ApiError('NOT_FOUND', `Project ${ctx.params['projectId']} not found`);
      return { body: view(p) };
    });
}
