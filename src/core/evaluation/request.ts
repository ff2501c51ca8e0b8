/** What is being deployed, and where: the input of an evaluation besides policy and evidence. */

export type Platform = 'gke' | 'cloudrun';

export interface DeploymentContext {
  readonly platform: Platform;
  /** `location.clusterId`, for clusterAdmissionRules. */
  readonly cluster?: string;
  readonly namespace?: string;
  /** Service account name; with `namespace` it forms the `namespace:name` rule key. `ns:name` is also accepted. */
  readonly serviceAccount?: string;
  /** Istio / Cloud Service Mesh identity (`spiffe://DOMAIN/ns/NS/sa/SA` or without the scheme). */
  readonly istioIdentity?: string;
  /** Breakglass justification; present means breakglass was requested. */
  readonly breakglass?: string;
}

export interface EvaluationRequest {
  /** Images as written in the deployment (tag, digest or both). */
  readonly images: readonly string[];
  readonly context: DeploymentContext;
}

/** The `namespace:name` key of kubernetesServiceAccountAdmissionRules for a context, if any. */
export function serviceAccountKey(ctx: DeploymentContext): string | undefined {
  if (ctx.serviceAccount === undefined || ctx.serviceAccount === '') return undefined;
  if (ctx.serviceAccount.includes(':')) return ctx.serviceAccount;
  return ctx.namespace === undefined ? undefined : `${ctx.namespace}:${ctx.serviceAccount}`;
}
