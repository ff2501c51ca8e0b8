/**
 * The APIs `tollgate gcloud-config` overrides only so that gcloud talks plain HTTP to Tollgate
 * instead of crashing on an HTTPS CONNECT: every call gets a clear Google-form error.
 */
import { ApiError } from '../errors.js';
import { Router, type Handler } from '../http/router.js';

const NAMES: Record<string, string> = {
  artifactregistry: 'the Artifact Registry API (artifactregistry.googleapis.com); push images to your own registry and deploy them by digest',
  container: 'the Kubernetes Engine API (container.googleapis.com); Tollgate enforces on any cluster through its admission webhook instead',
};

const refuse: Handler = async (ctx) => {
  const api = ctx.params['api'] ?? '';
  throw new ApiError('FAILED_PRECONDITION', `Tollgate does not serve ${NAMES[api] ?? `the ${api} API`}.`);
};

export function unsupportedRouter(): Router {
  const r = new Router('unsupported');
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) r.add(method, '/unsupported/{api}/{rest=**}', refuse, { public: true });
  return r;
}
