/**
 * Service Usage v1, as far as the tutorials go: `gcloud services enable` records the services
 * (Tollgate serves what it serves either way), `gcloud services list` shows them.
 */
import { randomUUID } from 'node:crypto';
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { invalidArgument } from '../errors.js';
import { Router, type RequestContext } from '../http/router.js';
import { projectForWrite } from '../services/projects.js';
import { StoreAlreadyExists } from '../store/store.js';
import { field, objectBody, pageOf, pageResult, principalOf } from './common.js';

const SERVICE = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;

export function serviceUsageRouter(deps: AppDeps): Router {
  const enable = async (projectId: string, services: string[], ctx: RequestContext) => {
    const principal = principalOf(ctx);
    await deps.iam.require(principal, 'serviceusage.services.enable', `projects/${projectId}`);
    for (const s of services) if (!SERVICE.test(s)) throw invalidArgument(`serviceIds: "${s}" is not a service name such as binaryauthorization.googleapis.com`);
    await projectForWrite(deps.store, projectId, principal);
    await deps.store.transaction(async (tx) => {
      for (const s of services) {
        const name = `projects/${projectId}/services/${s}`;
        try {
          await tx.create({ kind: 'service', name, parent: `projects/${projectId}`, body: { name, config: { name: s }, state: 'ENABLED', parent: `projects/${projectId}` } });
        } catch (e) {
          if (!(e instanceof StoreAlreadyExists)) throw e;
        }
      }
      await recordAdminActivity(tx, {
        serviceName: 'serviceusage.googleapis.com',
        methodName: services.length === 1 ? 'google.api.serviceusage.v1.ServiceUsage.EnableService' : 'google.api.serviceusage.v1.ServiceUsage.BatchEnableServices',
        resourceName: `projects/${projectId}`,
        project: projectId,
        principal,
        request: { serviceIds: services },
      });
    });
    // Enabling is immediate, so the operation is born done (gcloud then does not poll).
    return { body: { name: `operations/tollgate.${randomUUID()}`, done: true, response: { '@type': 'type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse', services: services.map((s) => ({ name: `projects/${projectId}/services/${s}`, state: 'ENABLED' })) } } };
  };

  return new Router('serviceusage')
    .post('/v1/projects/{projectId}/services:batchEnable', async (ctx) => {
      const ids = field(await objectBody(ctx), 'serviceIds');
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((s) => typeof s === 'string')) throw invalidArgument('serviceIds: a non-empty list of service names is required');
      return enable(ctx.params['projectId'] as string, ids as string[], ctx);
    })
    .post('/v1/projects/{projectId}/services/{service}:enable', async (ctx) => enable(ctx.params['projectId'] as string, [ctx.params['service'] as string], ctx))
    .get('/v1/projects/{projectId}/services', async (ctx) => {
      const projectId = ctx.params['projectId'] as string;
      await deps.iam.require(principalOf(ctx), 'serviceusage.services.list', `projects/${projectId}`);
      const page = pageOf(ctx.query, { size: 50, max: 200 });
      const rows = await deps.store.list('service', { parent: `projects/${projectId}`, after: page.after, limit: page.limit + 1 });
      const { items, nextPageToken } = pageResult(rows, page);
      return { body: { services: items.map((r) => r.body), ...(nextPageToken ? { nextPageToken } : {}) } };
    })
    .get('/v1/operations/{id}', async (ctx) => {
      principalOf(ctx);
      return { body: { name: `operations/${ctx.params['id']}`, done: true, response: {} } };
    });
}
