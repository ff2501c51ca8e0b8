/**
 * The slice of Cloud Resource Manager v1 the tutorials use: `gcloud projects describe` (for the
 * project number) and the project IAM policy (`gcloud projects add-iam-policy-binding`).
 */
import type { AppDeps } from '../app-deps.js';
import { Router } from '../http/router.js';
import { iamMethodHandlers } from '../iam/iam-methods.js';
import { getProject } from '../services/projects.js';
import { principalOf } from './common.js';
import { ApiError } from '../errors.js';

export function resourceManagerRouter(deps: AppDeps): Router {
  const iam = iamMethodHandlers(deps, {
    getPermission: 'resourcemanager.projects.getIamPolicy',
    setPermission: 'resourcemanager.projects.setIamPolicy',
    serviceName: 'cloudresourcemanager.googleapis.com',
    methodPrefix: 'google.cloudresourcemanager.v1.Projects',
    exists: async (name) => (await deps.store.get('project', name)) !== undefined,
  });
  return new Router('cloudresourcemanager')
    .get('/v1/projects/{projectId}', async (ctx) => {
      const projectId = ctx.params['projectId'] as string;
      await deps.iam.require(principalOf(ctx), 'resourcemanager.projects.get', `projects/${projectId}`);
      const p = await getProject(deps.store, projectId);
      if (p === undefined) throw new ApiError('NOT_FOUND', `Project ${projectId} not found`);
      return { body: { projectNumber: p.projectNumber, projectId: p.projectId, lifecycleState: 'ACTIVE', name: p.projectId, createTime: p.createTime } };
    })
    .post('/v1/{resource=projects/*}:getIamPolicy', iam.getIamPolicy)
    .post('/v1/{resource=projects/*}:setIamPolicy', iam.setIamPolicy)
    .post('/v1/{resource=projects/*}:testIamPermissions', iam.testIamPermissions);
}
