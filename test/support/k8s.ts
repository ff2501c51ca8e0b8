/**
 * Kubernetes fixtures (testdata/k8s/, see generate.sh) wrapped in admission.k8s.io/v1
 * AdmissionReviews as the API server posts them to a validating webhook.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadEvidenceDir } from '../../src/cli/evidence-dir.js';
import type { Decision } from '../../src/core/evaluation/decision.js';
import { buildEvidence } from '../../src/core/evaluation/evidence.js';
import { compilePatterns, compilePolicy, evaluate, failedDecision } from '../../src/core/evaluation/evaluate.js';
import { DEFAULT_SYSTEM_IMAGE_PATTERNS } from '../../src/core/evaluation/system-policy.js';
import { parsePolicyText } from '../../src/core/policy/parse-text.js';
import type { DecideRequest, DecisionService } from '../../src/server/services/decision-service.js';
import { ROOT, TESTDATA } from './fixtures.js';

export const SIGNED_IMAGE = 'us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706';
/** A digest with no attestation (sha256 of "web"). */
export const UNSIGNED_IMAGE = 'us-docker.pkg.dev/demo/apps/web@sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2';
/** Matches examples/policy.yaml's `gcr.io/google-samples/*`. */
export const EXEMPT_IMAGE = 'gcr.io/google-samples/hello-app:1.0';
export const SYSTEM_IMAGE = 'gke.gcr.io/gke-metrics-agent:1.15.3-gke.0';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** group, version and plural resource of each fixture kind (written out here, independent of the code under test). */
const RESOURCES: Record<string, { group: string; version: string; resource: string }> = {
  'v1/Pod': { group: '', version: 'v1', resource: 'pods' },
  'v1/ReplicationController': { group: '', version: 'v1', resource: 'replicationcontrollers' },
  'apps/v1/Deployment': { group: 'apps', version: 'v1', resource: 'deployments' },
  'apps/v1/ReplicaSet': { group: 'apps', version: 'v1', resource: 'replicasets' },
  'apps/v1/StatefulSet': { group: 'apps', version: 'v1', resource: 'statefulsets' },
  'apps/v1/DaemonSet': { group: 'apps', version: 'v1', resource: 'daemonsets' },
  'batch/v1/Job': { group: 'batch', version: 'v1', resource: 'jobs' },
  'batch/v1/CronJob': { group: 'batch', version: 'v1', resource: 'cronjobs' },
  'serving.knative.dev/v1/Service': { group: 'serving.knative.dev', version: 'v1', resource: 'services' },
  'v1/ConfigMap': { group: '', version: 'v1', resource: 'configmaps' },
  'v1/Service': { group: '', version: 'v1', resource: 'services' },
};

/** A fixture object; kubectl-made ones get what the API server adds before admission (uid, managedFields). */
export function loadObject(name: string): Json {
  const o = JSON.parse(readFileSync(join(TESTDATA, 'k8s', `${name}.json`), 'utf8')) as Json;
  const meta = o['metadata'] as Json;
  meta['uid'] ??= randomUUID();
  if (meta['creationTimestamp'] === null) meta['creationTimestamp'] = '2026-11-23T10:00:00Z';
  meta['managedFields'] ??= [
    { manager: 'kubectl-create', operation: 'Update', apiVersion: o['apiVersion'], time: '2026-11-23T10:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } },
  ];
  return o;
}

export interface ReviewOptions {
  readonly operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  readonly subResource?: string;
  readonly dryRun?: boolean;
  readonly uid?: string;
  readonly username?: string;
  readonly oldObject?: Json;
  /** Defaults to the object's metadata.namespace. */
  readonly namespace?: string;
}

export function admissionReview(object: Json, opts: ReviewOptions = {}): Json {
  const apiVersion = String(object['apiVersion']);
  const kind = String(object['kind']);
  const gvr = RESOURCES[`${apiVersion}/${kind}`];
  if (gvr === undefined) throw new Error(`no resource for ${apiVersion}/${kind}`);
  const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
  const meta = (object['metadata'] ?? {}) as Json;
  const namespace = opts.namespace ?? meta['namespace'];
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: opts.uid ?? randomUUID(),
      kind: { group, version, kind },
      resource: gvr,
      ...(opts.subResource === undefined ? {} : { subResource: opts.subResource }),
      requestKind: { group, version, kind },
      requestResource: gvr,
      ...(opts.subResource === undefined ? {} : { requestSubResource: opts.subResource }),
      ...(meta['name'] === undefined ? {} : { name: meta['name'] }),
      ...(namespace === undefined ? {} : { namespace }),
      operation: opts.operation ?? 'CREATE',
      userInfo: { username: opts.username ?? 'dev@example.com', groups: ['system:authenticated'] },
      object,
      oldObject: opts.oldObject ?? null,
      dryRun: opts.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: opts.operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions', fieldManager: 'kubectl-client-side-apply', fieldValidation: 'Strict' },
    },
  };
}

/** Sets a value at a dotted path with `[i]` indexes: `spec.template.spec.containers[0].image`. */
export function setPath(object: Json, path: string, value: unknown): Json {
  const keys = path.split('.').flatMap((k) => {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(k);
    if (m === null) throw new Error(`bad path ${path}`);
    return [m[1] as string, ...[...(m[2] as string).matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1]))];
  });
  let o: any = object; // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const k of keys.slice(0, -1)) {
    if (o[k] === undefined) throw new Error(`no ${String(k)} on the way to ${path}`);
    o = o[k];
  }
  o[keys[keys.length - 1] as string | number] = value;
  return object;
}

/** A deep copy of a fixture with some fields set. */
export function fixture(name: string, set: Record<string, unknown> = {}): Json {
  const o = loadObject(name);
  for (const [path, value] of Object.entries(set)) setPath(o, path, value);
  return o;
}

export interface RecordingDecisionService extends DecisionService {
  /** Every request, in order. */
  readonly calls: DecideRequest[];
  /** Delay before answering (deadline tests). */
  delayMs: number;
  /** Set, every decision fails with it (as the server's service does when a breakglass entry cannot be committed). */
  failWith: Error | undefined;
  /** Decisions returned as they are, not promised (as the server's service returns one it has at hand). */
  sync: boolean;
}

/**
 * A small, real DecisionService for webhook tests: the core `evaluate` over policies given per
 * project (YAML) and the evidence of examples/evidence (the attestor and the attestation for
 * SIGNED_IMAGE). An unknown project gets core's failed decision, as the server's service gives.
 */
export async function coreDecisionService(policies: Record<string, string>): Promise<RecordingDecisionService> {
  const compiled = new Map(Object.entries(policies).map(([project, text]) => {
    const p = parsePolicyText(text);
    if (!p.ok) throw new Error(`policy of ${project}: ${p.error.map((e) => e.message).join('; ')}`);
    const c = compilePolicy(p.value);
    if (!c.ok) throw new Error(`policy of ${project}: ${c.error.map((e) => e.message).join('; ')}`);
    return [project, c.value] as const;
  }));
  const system = compilePatterns(DEFAULT_SYSTEM_IMAGE_PATTERNS);
  if (!system.ok) throw new Error('system patterns');
  const loaded = await loadEvidenceDir(join(ROOT, 'examples', 'evidence'));
  const evidence = await buildEvidence(loaded.attestors, loaded.occurrences, new Date());
  const service: RecordingDecisionService = {
    calls: [],
    delayMs: 0,
    failWith: undefined,
    sync: false,
    decide(request: DecideRequest): Decision | Promise<Decision> {
      service.calls.push(request);
      const decide = (): Decision => {
        const policy = compiled.get(request.project);
        const req = { images: request.images, context: request.context };
        if (policy === undefined) return failedDecision(req, `project ${request.project} does not exist`);
        return evaluate(policy, system.value, req, evidence);
      };
      if (service.sync && service.delayMs === 0 && service.failWith === undefined) return decide();
      return (async () => {
        if (service.delayMs > 0) await new Promise((r) => setTimeout(r, service.delayMs));
        if (service.failWith !== undefined) throw service.failWith;
        return decide();
      })();
    },
  };
  return service;
}

export const EXAMPLE_POLICY = readFileSync(join(ROOT, 'examples', 'policy.yaml'), 'utf8');

const ATTESTED = `globalPolicyEvaluationMode: ENABLE
admissionWhitelistPatterns:
- namePattern: gcr.io/google-samples/*
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [projects/demo/attestors/build-attestor]
`;

/** Policies for the webhook tests, by project. */
export const TEST_POLICIES: Record<string, string> = {
  demo: EXAMPLE_POLICY,
  dryrun: ATTESTED.replace('ENFORCED_BLOCK_AND_AUDIT_LOG', 'DRYRUN_AUDIT_LOG_ONLY'),
  clusters: `${ATTESTED}clusterAdmissionRules:
  us-east1-b.lockdown: {evaluationMode: ALWAYS_DENY, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  us-east1-b.sandbox: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
`,
  namespaces: `${ATTESTED}kubernetesNamespaceAdmissionRules:
  sandbox: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  canary:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: DRYRUN_AUDIT_LOG_ONLY
    requireAttestationsBy: [projects/demo/attestors/build-attestor]
`,
  serviceaccounts: `${ATTESTED}kubernetesServiceAccountAdmissionRules:
  shop:web: {evaluationMode: ALWAYS_DENY, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  shop:db: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
`,
};
