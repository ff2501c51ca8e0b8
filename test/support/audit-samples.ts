/**
 * Sample decisions, decision requests and the LogEntries they become, for the filter, decision-log,
 * logging API and gcloud tests. Denial messages use Google's wording (reference §6.1).
 */
import { DECISION_SCHEMA_VERSION, type AppliedRule, type Decision, type ImageDecision } from '../../src/core/evaluation/decision.js';
import type { DeploymentContext } from '../../src/core/evaluation/request.js';
import { decisionLogEntry } from '../../src/server/audit/decision-log.js';
import type { DecideRequest, DecisionSource } from '../../src/server/services/decision-service.js';
import type { AuditRecord, JsonObject } from '../../src/server/store/store.js';

export const IMAGE = 'us-docker.pkg.dev/demo/apps/web@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706';
export const ATTESTOR = 'projects/demo/attestors/build';

export type Verdict = 'ALLOWED' | 'DENIED' | 'DRY_RUN' | 'BREAKGLASS';

export function denialMessage(image = IMAGE): string {
  return `Image ${image} denied by Binary Authorization default admission rule. Image ${image} denied by ${ATTESTOR}: No attestations found`;
}

/** A one-image decision with the given deployment verdict. */
export function sampleDecision(verdict: Verdict, opts: { image?: string; justification?: string; context?: DeploymentContext } = {}): Decision {
  const image = opts.image ?? IMAGE;
  const context: DeploymentContext = opts.context ?? { platform: 'gke', cluster: 'us-central1-a.prod', namespace: 'default' };
  const rule = (dryRun: boolean): AppliedRule => ({
    type: 'default',
    evaluationMode: 'REQUIRE_ATTESTATION',
    enforcementMode: dryRun ? 'DRYRUN_AUDIT_LOG_ONLY' : 'ENFORCED_BLOCK_AND_AUDIT_LOG',
  });
  const denied = (dryRun: boolean): ImageDecision => ({
    image,
    verdict: 'DENIED',
    reason: 'NOT_ATTESTED',
    rule: rule(dryRun),
    dryRun,
    attestors: [{ attestor: ATTESTOR, satisfied: false, reason: 'NO_ATTESTATIONS', message: `Image ${image} denied by ${ATTESTOR}: No attestations found`, attestations: [] }],
    message: denialMessage(image),
  });
  const allowed: ImageDecision = { image, verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW', rule: { type: 'default', evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } };
  const base = { schemaVersion: DECISION_SCHEMA_VERSION, context } as const;
  switch (verdict) {
    case 'ALLOWED':
      return { ...base, allowed: true, verdict: { kind: 'ALLOWED' }, images: [allowed], messages: [''] };
    case 'DENIED':
      return { ...base, allowed: false, verdict: { kind: 'DENIED' }, images: [denied(false)], messages: [denialMessage(image)] };
    case 'DRY_RUN':
      return { ...base, allowed: true, verdict: { kind: 'DRY_RUN' }, images: [denied(true)], messages: [denialMessage(image)] };
    case 'BREAKGLASS':
      return {
        ...base,
        context: { ...context, breakglass: opts.justification ?? 'incident 42' },
        allowed: true,
        verdict: { kind: 'BREAKGLASS', justification: opts.justification ?? 'incident 42', wouldHaveBeen: 'DENIED' },
        images: [denied(false)],
        messages: [denialMessage(image)],
      };
  }
}

export function admissionSource(opts: { operation?: 'create' | 'update'; pod?: string; namespace?: string; dryRun?: boolean; cluster?: string } = {}): DecisionSource {
  const ns = opts.namespace ?? 'default';
  const pod = opts.pod ?? 'web';
  return {
    kind: 'admission',
    cluster: opts.cluster ?? 'us-central1-a.prod',
    uid: `uid-${pod}`,
    methodName: `io.k8s.core.v1.pods.${opts.operation ?? 'create'}`,
    resourceName: `core/v1/namespaces/${ns}/pods/${pod}`,
    userInfo: { username: 'alice@example.com' },
    dryRun: opts.dryRun ?? false,
  };
}

export const PRINCIPAL = { type: 'user', email: 'ci@example.com', superuser: false } as const;

export function request(source: DecisionSource, project = 'demo', images: readonly string[] = [IMAGE]): DecideRequest {
  const platform = source.kind === 'cloudrun' ? 'cloudrun' : 'gke';
  return { project, images, context: { platform }, source };
}

export function cloudRunSource(revision = 'hello-00002-abc'): DecisionSource {
  return { kind: 'cloudrun', service: 'hello', revision, region: 'us-central1', principal: PRINCIPAL };
}

/** Builds a decision record (audit row) for a verdict and source. */
export function decisionRecord(verdict: Verdict, source: DecisionSource, time: string, insertId: string, project = 'demo'): AuditRecord {
  const decision = sampleDecision(verdict, source.kind === 'cloudrun' ? { context: { platform: 'cloudrun' } } : {});
  return decisionLogEntry(decision, request(source, project), time, insertId);
}

/** An Admin Activity entry exactly as recordAdminActivity writes it. */
export function adminActivityEntry(methodName: string, resourceName: string, time: string, project = 'demo'): JsonObject {
  return {
    logName: `projects/${project}/logs/cloudaudit.googleapis.com%2Factivity`,
    insertId: `admin-${methodName}`,
    timestamp: time,
    receiveTimestamp: time,
    severity: 'NOTICE',
    resource: { type: 'audited_resource', labels: { project_id: project, service: 'containeranalysis.googleapis.com', method: methodName } },
    protoPayload: {
      '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
      serviceName: 'containeranalysis.googleapis.com',
      methodName,
      resourceName,
      authenticationInfo: { principalEmail: 'admin@tollgate.local' },
      status: {},
      request: { noteId: 'build-note', note: { attestation: { hint: { humanReadableName: 'Build attestor' } } } },
    },
  };
}

/** The named sample entries the filter table runs against. */
export function sampleEntries(): Record<string, JsonObject> {
  const t = (s: string) => `2026-11-22T${s}.000000Z`;
  const gkeDenied = decisionRecord('DENIED', admissionSource({ pod: 'web' }), t('08:00:00'), 'gke-denied').entry;
  const legacy = structuredClone(decisionRecord('DENIED', admissionSource({ operation: 'update', pod: 'old' }), t('06:00:00'), 'gke-legacy').entry) as JsonObject;
  // Clusters before Kubernetes 1.18.15 answered with reason Forbidden (reference §6.1).
  ((legacy['protoPayload'] as JsonObject)['response'] as JsonObject)['reason'] = 'Forbidden';
  return {
    gkeDenied,
    gkeLegacyForbidden: legacy,
    gkeAllowed: decisionRecord('ALLOWED', admissionSource({ pod: 'ok' }), t('08:01:00'), 'gke-allowed').entry,
    gkeDryRun: decisionRecord('DRY_RUN', admissionSource({ pod: 'dry' }), t('08:02:00'), 'gke-dry-run').entry,
    gkeBreakglass: decisionRecord('BREAKGLASS', admissionSource({ operation: 'update', pod: 'glass' }), t('08:03:00'), 'gke-breakglass').entry,
    evaluation: decisionRecord('DENIED', { kind: 'evaluate-api', principal: PRINCIPAL }, t('08:04:00'), 'evaluation').entry,
    runDenied: decisionRecord('DENIED', cloudRunSource('hello-00002-abc'), t('08:05:00'), 'run-denied').entry,
    runDryRun: decisionRecord('DRY_RUN', cloudRunSource('hello-00003-def'), t('08:06:00'), 'run-dry-run').entry,
    runBreakglass: decisionRecord('BREAKGLASS', cloudRunSource('hello-00004-ghi'), t('08:07:00'), 'run-breakglass').entry,
    createNote: adminActivityEntry('grafeas.v1.Grafeas.CreateNote', 'projects/demo/notes/build-note', t('07:00:00')),
    webRequest: {
      logName: 'projects/demo/logs/requests',
      insertId: 'web-request',
      timestamp: '2026-11-21T23:59:59.500000Z',
      severity: 'ERROR',
      resource: { type: 'global', labels: { project_id: 'demo' } },
      httpRequest: { requestMethod: 'GET', status: 404, latency: '0.5s' },
      jsonPayload: { '@type': 'type.googleapis.com/example.Request', count: 10, ratio: '9', tags: ['alpha', 'Beta'], ok: false, nothing: null },
    },
  };
}
