/**
 * Tollgate's evaluate API: `POST /tollgate/v1/projects/{project}:evaluate` takes images and a
 * deployment context and answers the decision in the documented schema (docs/decision-schema.md),
 * the same JSON as `tollgate evaluate --offline --format json`. Permission
 * `binaryauthorization.policy.evaluate` on the project's policy.
 */
import type { DeploymentContext } from '../../core/evaluation/request.js';
import { parseImageReference } from '../../core/image/reference.js';
import type { AppDeps } from '../app-deps.js';
import { invalidArgument } from '../errors.js';
import { Router } from '../http/router.js';
import type { DecisionService } from '../services/decision-service.js';
import { field, objectBody, principalOf } from './common.js';

const MAX_IMAGES = 256;
const CONTEXT_FIELDS = ['platform', 'cluster', 'namespace', 'serviceAccount', 'istioIdentity', 'breakglass'] as const;

export function evaluateRouter(deps: AppDeps, decisions: DecisionService): Router {
  return new Router('tollgate-evaluate').post('/tollgate/v1/projects/{project}:evaluate', async (ctx) => {
    const project = ctx.params['project'] as string;
    const principal = principalOf(ctx);
    await deps.iam.require(principal, 'binaryauthorization.policy.evaluate', `projects/${project}/policy`);
    const body = await objectBody(ctx);
    for (const k of Object.keys(body)) if (k !== 'images' && k !== 'context') throw invalidArgument(`${k}: unknown field (expected images and context)`);
    const images = field(body, 'images');
    if (!Array.isArray(images) || images.length === 0) throw invalidArgument('images: a non-empty list of image references is required');
    if (images.length > MAX_IMAGES) throw invalidArgument(`images: at most ${MAX_IMAGES} images per evaluation`);
    images.forEach((image, i) => {
      if (typeof image !== 'string') throw invalidArgument(`images[${i}]: must be a string`);
      const r = parseImageReference(image);
      if (!r.ok) throw invalidArgument(`images[${i}]: ${r.error.message}`);
    });
    const context = parseContext(field(body, 'context') ?? {});
    const decision = await decisions.decide({ project, images: images as string[], context, source: { kind: 'evaluate-api', principal } });
    return { body: decision };
  });
}

function parseContext(raw: unknown): DeploymentContext {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('context: must be an object');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!(CONTEXT_FIELDS as readonly string[]).includes(k)) throw invalidArgument(`context.${k}: unknown field (expected one of ${CONTEXT_FIELDS.join(', ')})`);
  }
  const platform = obj['platform'] ?? 'gke';
  if (platform !== 'gke' && platform !== 'cloudrun') throw invalidArgument('context.platform: must be gke or cloudrun');
  const out: Record<string, string> = { platform };
  for (const k of CONTEXT_FIELDS) {
    if (k === 'platform' || obj[k] === undefined) continue;
    if (typeof obj[k] !== 'string' || obj[k] === '') throw invalidArgument(`context.${k}: must be a non-empty string`);
    out[k] = obj[k] as string;
  }
  if (out['cluster'] !== undefined && !/^[^.\s]+\.[^.\s]+$/.test(out['cluster'])) throw invalidArgument('context.cluster: must be LOCATION.CLUSTER_ID');
  return out as unknown as DeploymentContext;
}
