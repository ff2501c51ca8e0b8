/**
 * The Cloud Run Admin API v1 surface gcloud 528 uses (gcloud-compat §1.3, §5), behind Binary
 * Authorization (issue 6; the logic is in services/run-deploy.ts):
 *
 * - Knative `serving.knative.dev/v1` on the regional host: `/apis/serving.knative.dev/v1/namespaces/P/
 *   services[/S]` (GET, POST, PUT, DELETE) and `…/revisions[/R]` (GET, DELETE). These paths carry no
 *   region: it is the Host prefix (`us-central1-127.0.0.1:PORT` → `us-central1`), which gcloud
 *   sends through its HTTP proxy setting. A host without a region prefix lists every region and
 *   finds a named service in whichever region holds it.
 * - The same resources under `/v1/projects/P/locations/L/services[/S]` and `…/revisions[/R]`
 *   (`L` = `-` lists every region: `gcloud run services list` without `--region`), and the
 *   service IAM methods `…/services/S:getIamPolicy|setIamPolicy|testIamPermissions`
 *   (`--allow-unauthenticated` grants `roles/run.invoker` to `allUsers`).
 * - Tollgate's own: `GET|PATCH /tollgate/v1/projects/P/runSettings` (`requireRunBinaryAuthorization`),
 *   and the `none` runtime's placeholder page `/run/projects/P/locations/L/services/S/…`, which
 *   answers 503 saying which revision and digest were admitted and that nothing runs them.
 */
import type { AppDeps } from '../app-deps.js';
import { invalidArgument } from '../errors.js';
import { Router, type Handler, type RequestContext } from '../http/router.js';
import { iamMethodHandlers } from '../iam/iam-methods.js';
import { createRegistryClient } from '../registry/registry-client.js';
import { createTagResolver, type TagResolver } from '../registry/tag-resolver.js';
import type { RunRuntime } from '../run/runtime.js';
import type { DecisionService } from '../services/decision-service.js';
import { createRunDeployService, REGION_NAME, serviceResourceName, type ListPage, type PlaceholderInfo, type RunDeployService } from '../services/run-deploy.js';
import { field, objectBody, principalOf } from './common.js';

export interface RunRouterOptions {
  /** The decision service (the same `decide` the webhook and evaluate API use). */
  readonly decisions: DecisionService;
  /** Where admitted revisions run (`createRunRuntime` in src/server/run/). */
  readonly runtime: RunRuntime;
  /**
   * Tag → digest resolution over the server's registry client (credentials, insecure registries,
   * CA, deadlines). Cloud Run deploys always resolve tags, whether or not `--resolve-tags` is on.
   * Without one, an anonymous client is used.
   */
  readonly tags?: TagResolver;
  /** The server's base URL (self links, placeholder URLs, and the host the regional prefix is on). */
  readonly publicUrl: string;
  /** The most time one deploy spends resolving tags. Default 10 000 ms. */
  readonly tagDeadlineMs?: number;
}

const KNATIVE = '/apis/serving.knative.dev/v1/namespaces/{namespace}';
const V1 = '/v1/projects/{project}/locations/{location}';
const DEFAULT_LIST_LIMIT = 1000;

/**
 * The region of a regional host: `us-central1-127.0.0.1:7420` → `us-central1` when the server is
 * `http://127.0.0.1:7420`; also `REGION-anything` (a reverse proxy, Google's own
 * `us-central1-run.googleapis.com`). Undefined for a host without a region prefix.
 */
export function regionFromHost(host: string, publicUrl: string): string | undefined {
  const h = host.trim().toLowerCase();
  if (h === '') return undefined;
  let base: URL | undefined;
  try {
    base = new URL(publicUrl);
  } catch {
    base = undefined;
  }
  const candidates: string[] = [];
  if (base !== undefined) {
    candidates.push(`-${base.host.toLowerCase()}`);
    const hostOnly = h.replace(/:\d+$/, '');
    const baseName = base.hostname.toLowerCase();
    if (hostOnly.endsWith(`-${baseName}`)) return checkRegion(hostOnly.slice(0, -baseName.length - 1));
  }
  for (const suffix of candidates) if (h.endsWith(suffix)) return checkRegion(h.slice(0, -suffix.length));
  const m = /^([a-z]+-[a-z]+[0-9]+)-[^:]+/.exec(h);
  return m === null ? undefined : m[1];
}

function checkRegion(region: string): string | undefined {
  return REGION_NAME.test(region) ? region : undefined;
}

function listPage(ctx: RequestContext): ListPage {
  const raw = ctx.query.get('limit') ?? ctx.query.get('pageSize');
  let limit = DEFAULT_LIST_LIMIT;
  if (raw !== null && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw invalidArgument(`limit: must be a non-negative integer, got ${raw}`);
    if (n > 0) limit = Math.min(n, DEFAULT_LIST_LIMIT);
  }
  const token = ctx.query.get('continue') ?? ctx.query.get('pageToken');
  return { limit, continueToken: token === null || token === '' ? undefined : token };
}

function dryRun(ctx: RequestContext): boolean {
  const v = ctx.query.get('dryRun');
  return v !== null && v !== '';
}

export function runRouter(deps: AppDeps, opts: RunRouterOptions): Router {
  const tags = opts.tags ?? createTagResolver({ client: createRegistryClient() });
  const svc: RunDeployService = createRunDeployService(deps, {
    decisions: opts.decisions,
    runtime: opts.runtime,
    tags,
    publicUrl: opts.publicUrl,
    ...(opts.tagDeadlineMs === undefined ? {} : { tagDeadlineMs: opts.tagDeadlineMs }),
  });

  /** A Knative namespace is the project id (a project number is also accepted). */
  async function projectOf(ns: string): Promise<string> {
    if (/^[0-9]+$/.test(ns)) {
      const [p] = await deps.store.list('project', { k1: ns, limit: 1 });
      if (p !== undefined) return String(p.body['projectId']);
    }
    return ns;
  }

  const hostRegion = (ctx: RequestContext) => regionFromHost(ctx.host, opts.publicUrl);

  function requireRegion(ctx: RequestContext): string {
    const region = hostRegion(ctx);
    if (region === undefined) {
      throw invalidArgument(
        `The Knative API needs a region: send the request to the regional host REGION-${new URL(opts.publicUrl).host} (gcloud does this with --region and the proxy settings of \`tollgate gcloud-config\`), or use /v1/projects/PROJECT/locations/REGION/services.`,
      );
    }
    return region;
  }

  /** The region of a named service: from the host, else the one region that holds it. */
  async function regionOfService(ctx: RequestContext, project: string, name: string): Promise<string> {
    const region = hostRegion(ctx);
    if (region !== undefined) return region;
    const found = await svc.findService(principalOf(ctx), project, name);
    const label = ((found['metadata'] as Record<string, unknown>)['labels'] as Record<string, string> | undefined)?.['cloud.googleapis.com/location'];
    if (label === undefined) throw invalidArgument('the service has no region');
    return label;
  }

  function location(ctx: RequestContext): { project: string; region: string } {
    const region = ctx.params['location'] as string;
    if (region === '-') throw invalidArgument('a region is required here (locations/-) is only for listing');
    if (!REGION_NAME.test(region)) throw invalidArgument(`"${region}" is not a region`);
    return { project: ctx.params['project'] as string, region };
  }

  const iam = iamMethodHandlers(deps, {
    getPermission: 'run.services.getIamPolicy',
    setPermission: 'run.services.setIamPolicy',
    serviceName: 'run.googleapis.com',
    methodPrefix: 'google.cloud.run.v1.Services',
    exists: (name) => svc.serviceExists(name),
  });

  const placeholderPage: Handler = async (ctx) => {
    const loc = { project: ctx.params['project'] as string, region: ctx.params['location'] as string };
    const name = ctx.params['service'] as string;
    const resource = serviceResourceName(loc, name);
    const text = (status: number, body: string) => ({ status, raw: { contentType: 'text/plain; charset=utf-8', data: `${body}\n` } });
    // Invoking follows the service's IAM, as on Cloud Run: allUsers with roles/run.invoker makes it public.
    if (!(await deps.iam.memberHas('allUsers', 'run.routes.invoke', resource))) {
      const header = ctx.headers.authorization;
      const token = header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      const principal = token === undefined ? undefined : await deps.iam.authenticate(token);
      let allowed = false;
      if (principal !== undefined) {
        try {
          await deps.iam.require(principal, 'run.routes.invoke', resource);
          allowed = true;
        } catch {
          allowed = false;
        }
      }
      if (!allowed) return text(403, `Error: Forbidden\nYour client does not have permission to invoke ${resource} (run.routes.invoke; deploy with --allow-unauthenticated to make it public).`);
    }
    const info = await svc.placeholder(loc, name);
    if (info === undefined) return text(404, `Error: Page not found\nThere is no service ${resource}.`);
    return text(503, placeholderText(info, opts.runtime));
  };

  const r = new Router('run');

  // Knative, regional host.
  r.get(`${KNATIVE}/services`, async (ctx) => {
    const project = await projectOf(ctx.params['namespace'] as string);
    return { body: await svc.listServices(principalOf(ctx), project, hostRegion(ctx), listPage(ctx)) };
  })
    .post(`${KNATIVE}/services`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      const region = requireRegion(ctx);
      return { body: await svc.createService(principalOf(ctx), { project, region }, await ctx.json(), { dryRun: dryRun(ctx) }) };
    })
    .get(`${KNATIVE}/services/{service}`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      const region = hostRegion(ctx);
      const name = ctx.params['service'] as string;
      return { body: region === undefined ? await svc.findService(principalOf(ctx), project, name) : await svc.getService(principalOf(ctx), { project, region }, name) };
    })
    .put(`${KNATIVE}/services/{service}`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      const name = ctx.params['service'] as string;
      const region = await regionOfService(ctx, project, name);
      return { body: await svc.replaceService(principalOf(ctx), { project, region }, name, await ctx.json(), { dryRun: dryRun(ctx) }) };
    })
    .delete(`${KNATIVE}/services/{service}`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      const name = ctx.params['service'] as string;
      const region = await regionOfService(ctx, project, name);
      return { body: await svc.deleteService(principalOf(ctx), { project, region }, name) };
    })
    .get(`${KNATIVE}/revisions`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      return { body: await svc.listRevisions(principalOf(ctx), project, hostRegion(ctx), ctx.query.get('labelSelector') ?? undefined, listPage(ctx)) };
    })
    .get(`${KNATIVE}/revisions/{revision}`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      return { body: await svc.getRevision(principalOf(ctx), project, hostRegion(ctx), ctx.params['revision'] as string) };
    })
    .delete(`${KNATIVE}/revisions/{revision}`, async (ctx) => {
      const project = await projectOf(ctx.params['namespace'] as string);
      return { body: await svc.deleteRevision(principalOf(ctx), project, requireRegion(ctx), ctx.params['revision'] as string) };
    });

  // One Platform paths (global or regional host).
  r.get(`${V1}/services`, async (ctx) => {
    const region = ctx.params['location'] as string;
    return { body: await svc.listServices(principalOf(ctx), ctx.params['project'] as string, region === '-' ? undefined : location(ctx).region, listPage(ctx)) };
  })
    .post(`${V1}/services`, async (ctx) => ({ body: await svc.createService(principalOf(ctx), location(ctx), await ctx.json(), { dryRun: dryRun(ctx) }) }))
    .get(`${V1}/services/{service}`, async (ctx) => ({ body: await svc.getService(principalOf(ctx), location(ctx), ctx.params['service'] as string) }))
    .put(`${V1}/services/{service}`, async (ctx) => ({ body: await svc.replaceService(principalOf(ctx), location(ctx), ctx.params['service'] as string, await ctx.json(), { dryRun: dryRun(ctx) }) }))
    .delete(`${V1}/services/{service}`, async (ctx) => ({ body: await svc.deleteService(principalOf(ctx), location(ctx), ctx.params['service'] as string) }))
    .get('/v1/{resource=projects/*/locations/*/services/*}:getIamPolicy', iam.getIamPolicy)
    .post('/v1/{resource=projects/*/locations/*/services/*}:getIamPolicy', iam.getIamPolicy)
    .post('/v1/{resource=projects/*/locations/*/services/*}:setIamPolicy', iam.setIamPolicy)
    .post('/v1/{resource=projects/*/locations/*/services/*}:testIamPermissions', iam.testIamPermissions)
    .get(`${V1}/revisions`, async (ctx) => {
      const region = ctx.params['location'] as string;
      return { body: await svc.listRevisions(principalOf(ctx), ctx.params['project'] as string, region === '-' ? undefined : location(ctx).region, ctx.query.get('labelSelector') ?? undefined, listPage(ctx)) };
    })
    .get(`${V1}/revisions/{revision}`, async (ctx) => ({ body: await svc.getRevision(principalOf(ctx), ctx.params['project'] as string, location(ctx).region, ctx.params['revision'] as string) }))
    .delete(`${V1}/revisions/{revision}`, async (ctx) => ({ body: await svc.deleteRevision(principalOf(ctx), ctx.params['project'] as string, location(ctx).region, ctx.params['revision'] as string) }));

  // Tollgate's project setting.
  r.get('/tollgate/v1/projects/{project}/runSettings', async (ctx) => ({ body: await svc.getSettings(principalOf(ctx), ctx.params['project'] as string) }))
    .patch('/tollgate/v1/projects/{project}/runSettings', async (ctx) => {
      const body = await objectBody(ctx);
      for (const k of Object.keys(body)) if (k !== 'requireRunBinaryAuthorization' && k !== 'require_run_binary_authorization') throw invalidArgument(`${k}: unknown field (expected requireRunBinaryAuthorization)`);
      const v = field(body, 'requireRunBinaryAuthorization');
      if (v !== undefined && typeof v !== 'boolean') throw invalidArgument('requireRunBinaryAuthorization: must be true or false');
      return { body: await svc.updateSettings(principalOf(ctx), ctx.params['project'] as string, v === undefined ? {} : { requireRunBinaryAuthorization: v }) };
    });

  // The `none` runtime's placeholder page (any method, any path below the service).
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    r.add(method, '/run/projects/{project}/locations/{location}/services/{service}', placeholderPage, { public: true });
    r.add(method, '/run/projects/{project}/locations/{location}/services/{service}/{rest=**}', placeholderPage, { public: true });
  }
  return r;
}

function placeholderText(info: PlaceholderInfo, runtime: RunRuntime): string {
  const lines = [`Service unavailable: ${info.service} (project ${info.project}, region ${info.region})`, ''];
  if (info.revision !== undefined) {
    lines.push(`Tollgate admitted revision ${info.revision}, pinned to:`);
    for (const image of info.images) lines.push(`  ${image}`);
  } else {
    lines.push('No revision of this service has been admitted.');
  }
  if (!info.ready && info.message !== undefined) lines.push('', `The service is not ready: ${info.message}`);
  lines.push('');
  if (runtime.placeholder) {
    lines.push('No runtime is configured on this Tollgate server, so nothing runs the revision.');
    lines.push('Tollgate is the deploy gate, not a container runtime: start it with --run-runtime exec --run-runtime-exec CMD');
    lines.push('to hand admitted revisions to Docker, a Knative cluster or another platform (see docs/cloud-run.md).');
  } else if (info.url !== undefined) {
    lines.push(`The revision is served by the ${runtime.kind} runtime at ${info.url}`);
  }
  return lines.join('\n');
}
