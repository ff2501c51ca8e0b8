/**
 * The one way Tollgate decides a deployment: load the project's policy, the system policy,
 * attestors and attestations from the store (through caches) → core `evaluate` → audit → answer.
 * The evaluate API, the Kubernetes webhook, Cloud Run deploys and the CLI's server mode are thin
 * doors onto `decide`.
 */
import type { Decision } from '../../core/evaluation/decision.js';
import type { DeploymentContext } from '../../core/evaluation/request.js';
import type { Principal } from '../iam/principal.js';

/** Who asked, which decides how the decision is logged. */
export type DecisionSource =
  /** Tollgate's evaluate API (and `tollgate evaluate --project`): logged as an evaluation, never as a deployment. */
  | { readonly kind: 'evaluate-api'; readonly principal: Principal }
  /** A Kubernetes AdmissionReview. */
  | {
      readonly kind: 'admission';
      /** `location.clusterId` from the webhook path. */
      readonly cluster: string;
      readonly uid: string;
      /** `pods.create`, `deployments.update`, … as `io.k8s.<group>.<version>.<resource>.<operation>`. */
      readonly methodName: string;
      /** `core/v1/namespaces/NS/pods/NAME` style resource name for the audit entry. */
      readonly resourceName: string;
      readonly userInfo?: { readonly username?: string };
      /** `dryRun: true` reviews are answered but not audited as deployments. */
      readonly dryRun: boolean;
    }
  /** A Cloud Run-style revision (the Cloud Run issue). */
  | { readonly kind: 'cloudrun'; readonly service: string; readonly revision: string; readonly region: string; readonly principal: Principal };

export interface DecideRequest {
  readonly project: string;
  readonly images: readonly string[];
  readonly context: DeploymentContext;
  readonly source: DecisionSource;
  /**
   * When the caller stops waiting (`at`, ms since the epoch on `Date.now()`'s clock, `budgetMs`
   * after the request arrived): the webhook's deadline. A decision made after it is the caller's "could not decide" (denied, or allowed by
   * breakglass), which is what the audit log and the metrics then record, not the late verdict
   * nobody was told.
   */
  readonly deadline?: { readonly at: number; readonly budgetMs: number };
}

/** Why a decision that missed its caller's deadline denies; the webhook tells the cluster the same. */
export function lateDecisionMessage(budgetMs: number): string {
  return `the decision did not complete within ${formatBudget(budgetMs)} (the webhook's deadline)`;
}

/** `900 ms`, `9 s`, `2.5 s`. */
export function formatBudget(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

export interface DecisionService {
  /**
   * Never throws for a decision that could not be made: a store error, a missing project or a
   * deadline yields a DENIED decision whose reasons say what failed (fail closed).
   *
   * A decision that needs nothing awaited (the same images in the same context again, against a
   * store known unchanged, with nothing to commit before the answer) comes back as is, audited
   * like any other: the webhook answers it without arming a deadline timer. Callers that `await`
   * need not care.
   */
  decide(request: DecideRequest): Decision | Promise<Decision>;
}
