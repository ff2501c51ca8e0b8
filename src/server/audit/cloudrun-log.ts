/**
 * Cloud Run audit entries (issue 6 §4). Each decision on a new revision of a guarded service
 * becomes two LogEntries:
 *
 * 1. The entry Cloud Run writes: resource `cloud_run_revision`, log
 *    `cloudaudit.googleapis.com/system_event`, service `run.googleapis.com`, the revision as
 *    `protoPayload.response` with its `status.conditions[]`. A refused revision carries the reason
 *    `ContainerImageUnauthorized`; a dry-run would-deny carries the text "dry run"; breakglass
 *    carries the annotation `run.googleapis.com/binary-authorization-breakglass` with the
 *    justification. These are what the console walkthrough's (seed 002) three queries find.
 * 2. A Binary Authorization entry for the same revision: resource `cloud_run_revision`, service
 *    `binaryauthorization.googleapis.com`, log `cloudaudit.googleapis.com/activity` (so the
 *    system-event queries list each revision once), with the whole Tollgate decision in
 *    `protoPayload.metadata.tollgateDecision`. Seed 001's query finds these.
 *
 * The rest are not decisions and are written by the Cloud Run service itself (run-deploy.ts):
 * `cloudRunRevisionEvent` for revisions deployed without a check (unguarded service), images that
 * could not be resolved to a digest and runtime failures (system_event), and
 * `cloudRunActivityEntry` for the Admin Activity of CreateService / ReplaceService / DeleteService,
 * which also records switching the Binary Authorization guard on or off.
 *
 * Texts are chosen so that the seed queries stay exact: only dry-run entries contain "dry run",
 * only breakglass entries contain the breakglass annotation's name, only refused revisions carry
 * the reason `ContainerImageUnauthorized`.
 */
import type { Decision } from '../../core/evaluation/decision.js';
import type { Principal } from '../iam/principal.js';
import type { DecideRequest } from '../services/decision-service.js';
import type { AuditRecord, Json, JsonObject } from '../store/store.js';
import {
  ACTIVITY_LOG_ID,
  AUDIT_LOG_TYPE,
  auditDecision,
  BINAUTHZ_SERVICE,
  CLOUD_RUN_BREAKGLASS_ANNOTATION,
  CLOUD_RUN_METHOD,
  decisionLogEntry,
  LABEL_VERDICT,
  logNameOf,
  severityOf,
  SYSTEM_EVENT_LOG_ID,
} from './decision-log.js';

export const RUN_SERVICE = 'run.googleapis.com';
/** The Service/Revision annotation that guards a service (reference §6.2). */
export const CLOUD_RUN_BINAUTHZ_ANNOTATION = 'run.googleapis.com/binary-authorization';
export { CLOUD_RUN_BREAKGLASS_ANNOTATION };
/** methodName of the system-event entry of a revision. */
export const RUN_REVISION_METHOD = '/Revisions.CreateRevision';
/** Admin Activity methodNames (Cloud Run Admin API v1). */
export const RUN_SERVICE_METHODS = {
  create: 'google.cloud.run.v1.Services.CreateService',
  replace: 'google.cloud.run.v1.Services.ReplaceService',
  delete: 'google.cloud.run.v1.Services.DeleteService',
  setSettings: 'tollgate.v1.CloudRun.UpdateProjectSettings',
} as const;

/** Condition reasons (Knative / Cloud Run v1 spelling). */
export const RUN_REASON = {
  /** Refused by the Binary Authorization policy (reference §6.2). */
  UNAUTHORIZED: 'ContainerImageUnauthorized',
  /** No decision could be made (store failure, missing project): refused, fail closed. */
  CHECK_FAILED: 'ContainerImageAuthorizationCheckFailed',
  /** An image tag could not be resolved to a digest: refused whatever the policy says. */
  UNRESOLVED: 'ContainerMissing',
  /** The runtime could not start the revision. */
  REVISION_FAILED: 'RevisionFailed',
  /** Refused by the project setting requireRunBinaryAuthorization. */
  REQUIRED: 'BinaryAuthorizationRequired',
} as const;

/** Tollgate's label on its Cloud Run entries: ALLOWED, DENIED, DRY_RUN, BREAKGLASS, UNCHECKED, REFUSED or FAILED. */
export const LABEL_RUN_VERDICT = LABEL_VERDICT;
/** Label on ReplaceService entries that switched the guard: `enabled` or `disabled`. */
export const LABEL_BINAUTHZ_CHANGE = 'tollgate.dev/binary-authorization-change';

interface RevisionRef {
  readonly project: string;
  readonly region: string;
  readonly service: string;
  readonly revision: string;
}

function revisionResource(r: RevisionRef): JsonObject {
  return {
    type: 'cloud_run_revision',
    labels: { project_id: r.project, service_name: r.service, revision_name: r.revision, configuration_name: r.service, location: r.region },
  };
}

/** The denial texts of a decision (enforced and dry-run), without the blanks of allowed images. */
function denialMessages(decision: Decision): string[] {
  return decision.messages.filter((m) => m !== '');
}

/**
 * The message a refused revision carries (and gcloud prints): Cloud Run's sentence, then Google's
 * denial text for each image, which names the image, the rule and each failing attestor and why.
 */
export function cloudRunDenialMessage(decision: Decision, revision: string): string {
  const denied = decision.images.filter((i) => i.verdict === 'DENIED');
  const first = denied[0]?.image ?? decision.images[0]?.image ?? '';
  if (denied.length > 0 && denied.every((i) => i.reason === 'EVALUATION_FAILED')) {
    return `Revision '${revision}' could not be checked against the Binary Authorization policy, so it was refused (fail closed). ${denialMessages(decision).join(' ')}`.trim();
  }
  return `Revision '${revision}' uses an unauthorized container image. Container image '${first}' is not authorized by policy. ${denialMessages(decision).join(' ')}`.trim();
}

/** The condition reason of a refused decision. */
export function cloudRunDenialReason(decision: Decision): string {
  const denied = decision.images.filter((i) => i.verdict === 'DENIED');
  return denied.length > 0 && denied.every((i) => i.reason === 'EVALUATION_FAILED') ? RUN_REASON.CHECK_FAILED : RUN_REASON.UNAUTHORIZED;
}

/** What a dry run or breakglass overrode, in words ('' when nothing was overridden). */
function wouldHaveBeen(decision: Decision): string {
  const messages = denialMessages(decision).join(' ');
  const v = decision.verdict;
  if (v.kind === 'DRY_RUN') return messages;
  if (v.kind === 'BREAKGLASS' && v.wouldHaveBeen === 'DENIED') return `Without breakglass it would have been refused: ${messages}`;
  if (v.kind === 'BREAKGLASS' && v.wouldHaveBeen === 'DRY_RUN') return `Without breakglass it would have been allowed by a dry run policy that would have refused it: ${messages}`;
  return '';
}

interface ConditionInput {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason?: string;
  readonly message?: string;
  readonly severity?: string;
}

function condition(c: ConditionInput, time: string): JsonObject {
  return {
    type: c.type,
    status: c.status,
    ...(c.reason === undefined ? {} : { reason: c.reason }),
    ...(c.message === undefined ? {} : { message: c.message }),
    ...(c.severity === undefined ? {} : { severity: c.severity }),
    lastTransitionTime: time,
  };
}

/** The revision as Cloud Run's system-event entry shows it in `protoPayload.response`. */
function revisionResponse(r: RevisionRef, annotations: Record<string, string>, conditions: readonly JsonObject[], extraStatus: JsonObject = {}): JsonObject {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Revision',
    metadata: {
      name: r.revision,
      namespace: r.project,
      labels: { 'serving.knative.dev/service': r.service, 'serving.knative.dev/configuration': r.service, 'cloud.googleapis.com/location': r.region },
      annotations,
    },
    status: { conditions: [...conditions], ...extraStatus },
  };
}

function systemEventRecord(
  r: RevisionRef,
  p: { time: string; insertId: string; severity: string; verdict: string; status: JsonObject; response: JsonObject },
): AuditRecord {
  const entry: JsonObject = {
    logName: logNameOf(r.project, SYSTEM_EVENT_LOG_ID),
    insertId: p.insertId,
    timestamp: p.time,
    receiveTimestamp: p.time,
    severity: p.severity,
    resource: revisionResource(r),
    labels: { [LABEL_RUN_VERDICT]: p.verdict },
    protoPayload: {
      '@type': AUDIT_LOG_TYPE,
      serviceName: RUN_SERVICE,
      methodName: RUN_REVISION_METHOD,
      resourceName: `namespaces/${r.project}/revisions/${r.revision}`,
      status: p.status,
      response: p.response,
    },
  };
  return { time: p.time, project: r.project, logId: SYSTEM_EVENT_LOG_ID, entry };
}

/**
 * The audit records of one decision. For a `cloudrun` source: the Cloud Run system-event entry
 * and the Binary Authorization entry (insertIds `<insertId>.run` and `<insertId>.binauthz`). For
 * any other source: the one entry of decisionLogEntry, so callers may route every decision here.
 * Pure: time and insertId come from the caller.
 */
export function cloudRunLogEntries(decision: Decision, request: DecideRequest, time: string, insertId: string): AuditRecord[] {
  const source = request.source;
  if (source.kind !== 'cloudrun') return [decisionLogEntry(decision, request, time, insertId)];
  const ref: RevisionRef = { project: request.project, region: source.region, service: source.service, revision: source.revision };
  const v = decision.verdict;
  const annotations: Record<string, string> = { [CLOUD_RUN_BINAUTHZ_ANNOTATION]: 'default' };
  if (v.kind === 'BREAKGLASS') annotations[CLOUD_RUN_BREAKGLASS_ANNOTATION] = v.justification;

  let status: JsonObject;
  let conditions: JsonObject[];
  if (v.kind === 'DENIED') {
    const message = cloudRunDenialMessage(decision, source.revision);
    const reason = cloudRunDenialReason(decision);
    // google.rpc.Code 7: PERMISSION_DENIED.
    status = { code: 7, message: `Ready condition status changed to False for Revision ${source.revision} with message: ${message}` };
    conditions = [condition({ type: 'Ready', status: 'False', reason, message }, time)];
  } else if (v.kind === 'DRY_RUN') {
    const message = `Binary Authorization dry run: revision '${source.revision}' was deployed, but the policy would have refused it. ${wouldHaveBeen(decision)}`.trim();
    status = { message };
    conditions = [condition({ type: 'Ready', status: 'True', reason: 'ContainerImageAuthorizedDryRun', message }, time)];
  } else if (v.kind === 'BREAKGLASS') {
    const message = `Binary Authorization breakglass: revision '${source.revision}' was deployed whatever the policy says, with the ${CLOUD_RUN_BREAKGLASS_ANNOTATION} justification "${v.justification}". ${wouldHaveBeen(decision)}`.trim();
    status = { message };
    conditions = [condition({ type: 'Ready', status: 'True', reason: 'Breakglass', message }, time)];
  } else {
    const message = `Container images of revision '${source.revision}' are authorized by the Binary Authorization policy.`;
    status = { message };
    conditions = [condition({ type: 'Ready', status: 'True', reason: 'ContainerImageAuthorized', message }, time)];
  }
  const run = systemEventRecord(ref, {
    time,
    insertId: `${insertId}.run`,
    severity: severityOf(v.kind),
    verdict: v.kind,
    status,
    response: revisionResponse(ref, annotations, conditions, { imageDigests: decision.images.map((i) => i.image) }),
  });

  const messages = denialMessages(decision);
  const binauthzStatus: JsonObject = v.kind === 'DENIED' ? { code: 7, message: cloudRunDenialMessage(decision, source.revision) } : {};
  const binauthz: JsonObject = {
    logName: logNameOf(request.project, ACTIVITY_LOG_ID),
    insertId: `${insertId}.binauthz`,
    timestamp: time,
    receiveTimestamp: time,
    severity: severityOf(v.kind),
    resource: revisionResource(ref),
    labels: { [LABEL_VERDICT]: v.kind },
    protoPayload: {
      '@type': AUDIT_LOG_TYPE,
      serviceName: BINAUTHZ_SERVICE,
      methodName: CLOUD_RUN_METHOD,
      resourceName: `namespaces/${request.project}/revisions/${source.revision}`,
      authenticationInfo: { principalEmail: source.principal.email },
      status: binauthzStatus,
      request: {
        images: [...request.images],
        context: request.context as unknown as JsonObject,
        annotations,
      },
      response: {
        allowed: decision.allowed,
        verdict: v.kind,
        ...(v.kind === 'BREAKGLASS' ? { breakglassJustification: v.justification, wouldHaveBeen: v.wouldHaveBeen } : {}),
        messages,
      },
      metadata: { tollgateDecision: auditDecision(decision) },
    },
  };
  return [run, { time, project: request.project, logId: ACTIVITY_LOG_ID, entry: binauthz }];
}

/** A Cloud Run revision event that is not a policy decision. */
export interface RevisionEvent extends RevisionRef {
  readonly time: string;
  readonly insertId: string;
  /**
   * `UNCHECKED`: deployed without a check (the service is not guarded); `REFUSED`: refused before
   * any decision (an image could not be resolved); `FAILED`: admitted, but the runtime failed.
   */
  readonly kind: 'UNCHECKED' | 'REFUSED' | 'FAILED';
  readonly reason?: string;
  readonly message: string;
  readonly images: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The system-event entry of a revision event that is not a decision (see RevisionEvent). */
export function cloudRunRevisionEvent(e: RevisionEvent): AuditRecord {
  const ready = e.kind === 'UNCHECKED';
  const c = condition({ type: 'Ready', status: ready ? 'True' : 'False', ...(e.reason === undefined ? {} : { reason: e.reason }), message: e.message }, e.time);
  const status: JsonObject = ready ? { message: e.message } : { code: 9, message: `Ready condition status changed to False for Revision ${e.revision} with message: ${e.message}` };
  return systemEventRecord(e, {
    time: e.time,
    insertId: e.insertId,
    severity: ready ? 'NOTICE' : 'ERROR',
    verdict: e.kind,
    status,
    response: revisionResponse(e, { ...e.annotations }, [c], { images: [...e.images] }),
  });
}

/** An Admin Activity entry of the Cloud Run API. */
export interface ServiceActivity {
  readonly project: string;
  readonly region: string;
  readonly service: string;
  readonly method: keyof typeof RUN_SERVICE_METHODS;
  readonly principal: Principal;
  readonly time: string;
  readonly insertId: string;
  /** The request as received (the Service object for create and replace). */
  readonly request?: Json;
  /** A short form of the result (generation, revision, Ready). */
  readonly response?: Json;
  /** Set when the request switched the Binary Authorization guard on or off. */
  readonly binaryAuthorizationChange?: { readonly previous: string | null; readonly current: string | null };
}

export function cloudRunActivityEntry(a: ServiceActivity): AuditRecord {
  const labels: Record<string, string> = {};
  const change = a.binaryAuthorizationChange;
  if (change !== undefined) labels[LABEL_BINAUTHZ_CHANGE] = change.current === null ? 'disabled' : 'enabled';
  const entry: JsonObject = {
    logName: logNameOf(a.project, ACTIVITY_LOG_ID),
    insertId: a.insertId,
    timestamp: a.time,
    receiveTimestamp: a.time,
    severity: 'NOTICE',
    resource: { type: 'cloud_run_revision', labels: { project_id: a.project, service_name: a.service, revision_name: '', configuration_name: a.service, location: a.region } },
    labels,
    protoPayload: {
      '@type': AUDIT_LOG_TYPE,
      serviceName: RUN_SERVICE,
      methodName: RUN_SERVICE_METHODS[a.method],
      resourceName: a.method === 'setSettings' ? `projects/${a.project}` : `namespaces/${a.project}/services/${a.service}`,
      authenticationInfo: { principalEmail: a.principal.email },
      status: {},
      ...(a.request === undefined ? {} : { request: a.request }),
      ...(a.response === undefined ? {} : { response: a.response }),
      ...(change === undefined ? {} : { metadata: { binaryAuthorization: { previous: change.previous, current: change.current } } }),
    },
  };
  return { time: a.time, project: a.project, logId: ACTIVITY_LOG_ID, entry };
}
