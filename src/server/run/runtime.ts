/**
 * Where admitted Cloud Run-style revisions run. Tollgate is the gate, not a container runtime:
 * once a revision is admitted (and pinned to its image digests), a runtime adapter is asked to run
 * it and to say at which URL it serves. Adapters sit behind this one interface:
 *
 * - `none` (the default): nothing runs the revision. The service's URL is Tollgate's own
 *   `/run/projects/P/locations/R/services/S/`, which answers 503 with a page naming the admitted
 *   revision and digest and saying that no runtime is configured. Nothing pretends to serve.
 * - `exec`: an operator command (`--run-runtime-exec CMD`) is run with the revision as JSON on its
 *   stdin; it starts the revision wherever it likes (docker, a Knative cluster, …) and prints the
 *   URL. A non-zero exit fails the revision with the command's stderr as the message.
 *   examples/runtimes/ has ready-made scripts; docs/cloud-run.md documents the JSON.
 */

/** One container of an admitted revision, with the digest it was admitted at. */
export interface RuntimeContainer {
  /** The container name from the template ('' when the client gave none). */
  readonly name: string;
  /** The image as the client wrote it (tag, digest or both). */
  readonly image: string;
  /** `registry/repository@sha256:…`: what must be run (the tag may have moved since). */
  readonly imageDigest: string;
  /** `containerPort`s from the template. */
  readonly ports: readonly number[];
  /** The container's spec as the client sent it (env, args, command, resources, …). */
  readonly spec: Readonly<Record<string, unknown>>;
}

/** What a runtime is given to run: the admitted revision, as JSON on an `exec` command's stdin. */
export interface AdmittedRevision {
  readonly action: 'deploy';
  readonly project: string;
  readonly region: string;
  readonly service: string;
  readonly revision: string;
  /** `ALLOWED`, `DRY_RUN`, `BREAKGLASS` (the policy verdict) or `UNCHECKED` (service not guarded). */
  readonly verdict: 'ALLOWED' | 'DRY_RUN' | 'BREAKGLASS' | 'UNCHECKED';
  readonly breakglassJustification?: string;
  readonly containers: readonly RuntimeContainer[];
  /** The revision template's `spec` (containerConcurrency, timeoutSeconds, serviceAccountName, …). */
  readonly templateSpec: Readonly<Record<string, unknown>>;
  /** Template labels and annotations, for runtimes that copy them. */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** Tollgate's own placeholder URL for the service (what the `none` runtime serves). */
  readonly placeholderUrl: string;
}

/** What a runtime is given when a service is deleted. */
export interface RemovedService {
  readonly action: 'delete';
  readonly project: string;
  readonly region: string;
  readonly service: string;
  /** The revisions Tollgate knew for the service, newest first. */
  readonly revisions: readonly string[];
}

/** The runtime could not run (or remove) the revision; `message` is shown to the deployer. */
export class RuntimeFailure extends Error {
  constructor(message: string) {
    super(message);
  }
}

export interface RunRuntime {
  readonly kind: 'none' | 'exec';
  /**
   * Runs an admitted revision and answers the URL the service serves at. Throws RuntimeFailure
   * when the revision could not be started (the revision then fails with that message).
   */
  deploy(revision: AdmittedRevision): Promise<{ url: string }>;
  /** Stops whatever runs the service. Throws RuntimeFailure when it could not. */
  remove(service: RemovedService): Promise<void>;
  /** Whether the service's URL is Tollgate's placeholder page (nothing runs the revision). */
  readonly placeholder: boolean;
}

export type RuntimeConfig =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'exec';
      /** Run with `/bin/sh -c`. */
      readonly command: string;
      /** How long one call may take before it is killed and fails. Default 300 000 ms. */
      readonly timeoutMs?: number;
      /** Extra environment for the command. */
      readonly env?: Readonly<Record<string, string>>;
    };
