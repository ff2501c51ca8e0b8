/**
 * Decodes an `admission.k8s.io/v1` AdmissionReview as the Kubernetes API server posts it to a
 * validating webhook. The body is untrusted: anything malformed is an error value (the listener
 * answers 400), never a thrown TypeError.
 */
import { err, ok, problem, type Problem, type Result } from '../../core/result.js';
import { isJsonObject } from '../../core/json.js';

export const ADMISSION_REVIEW_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  /** `''` for the core group (Pod, ReplicationController). */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  /** Plural resource name: `pods`, `deployments`, `services`. */
  readonly resource: string;
}

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionUserInfo {
  readonly username?: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
}

/** A JSON object (the Kubernetes object under review, or its previous state). */
export type JsonObject = Readonly<Record<string, unknown>>;

export interface AdmissionRequestInfo {
  /** Echoed in the response; the API server matches answers to requests by it. */
  readonly uid: string;
  /** The kind of `object` (after conversion, with `matchPolicy: Equivalent`). */
  readonly kind: GroupVersionKind;
  readonly resource: GroupVersionResource;
  /** `ephemeralcontainers` for `pods/ephemeralcontainers`, `status`, `scale`, …; absent for the main resource. */
  readonly subResource?: string;
  /** What the client originally asked for, when the API server converted it (matchPolicy Equivalent). */
  readonly requestKind?: GroupVersionKind;
  readonly requestResource?: GroupVersionResource;
  readonly operation: AdmissionOperation;
  readonly namespace?: string;
  /** May be empty on CREATE when the object uses `generateName`. */
  readonly name?: string;
  readonly object?: JsonObject;
  readonly oldObject?: JsonObject;
  /** A server-side dry run (`kubectl apply --dry-run=server`): answered, but nothing is persisted. */
  readonly dryRun: boolean;
  readonly userInfo?: AdmissionUserInfo;
}

const OPERATIONS: readonly AdmissionOperation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

function bad(message: string, path?: string): { ok: false; error: Problem } {
  return err(problem('INVALID_ADMISSION_REVIEW', path === undefined ? message : `${path}: ${message}`, path));
}

export function decodeAdmissionReview(body: unknown): Result<AdmissionRequestInfo, Problem> {
  if (!isJsonObject(body)) return bad('the body is not a JSON object (expected an AdmissionReview)');
  if (body['kind'] !== 'AdmissionReview') {
    return bad(`must be "AdmissionReview", not ${describe(body['kind'])}`, 'kind');
  }
  if (body['apiVersion'] !== ADMISSION_REVIEW_API_VERSION) {
    return bad(`must be "${ADMISSION_REVIEW_API_VERSION}", not ${describe(body['apiVersion'])} (set admissionReviewVersions: [v1] in the webhook configuration)`, 'apiVersion');
  }
  const request = body['request'];
  if (!isJsonObject(request)) return bad('missing or not an object', 'request');

  const uid = request['uid'];
  if (typeof uid !== 'string' || uid === '') return bad('missing or not a non-empty string', 'request.uid');

  const kind = gvk(request['kind'], 'request.kind');
  if (!kind.ok) return kind;
  const resource = gvr(request['resource'], 'request.resource');
  if (!resource.ok) return resource;

  const operation = request['operation'];
  if (typeof operation !== 'string' || !(OPERATIONS as readonly string[]).includes(operation)) {
    return bad(`must be one of ${OPERATIONS.join(', ')}, not ${describe(operation)}`, 'request.operation');
  }

  const out: {
    -readonly [K in keyof AdmissionRequestInfo]: AdmissionRequestInfo[K];
  } = { uid, kind: kind.value, resource: resource.value, operation: operation as AdmissionOperation, dryRun: false };

  for (const field of ['subResource', 'namespace', 'name'] as const) {
    const v = request[field];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') return bad(`not a string: ${describe(v)}`, `request.${field}`);
    out[field] = v;
  }
  if (request['requestKind'] !== undefined && request['requestKind'] !== null) {
    const r = gvk(request['requestKind'], 'request.requestKind');
    if (!r.ok) return r;
    out.requestKind = r.value;
  }
  if (request['requestResource'] !== undefined && request['requestResource'] !== null) {
    const r = gvr(request['requestResource'], 'request.requestResource');
    if (!r.ok) return r;
    out.requestResource = r.value;
  }
  for (const field of ['object', 'oldObject'] as const) {
    const v = request[field];
    if (v === undefined || v === null) continue;
    if (!isJsonObject(v)) return bad(`not an object: ${describe(v)}`, `request.${field}`);
    out[field] = v;
  }
  const dryRun = request['dryRun'];
  if (dryRun !== undefined && dryRun !== null) {
    if (typeof dryRun !== 'boolean') return bad(`not a boolean: ${describe(dryRun)}`, 'request.dryRun');
    out.dryRun = dryRun;
  }
  const userInfo = request['userInfo'];
  if (userInfo !== undefined && userInfo !== null) {
    if (!isJsonObject(userInfo)) return bad(`not an object: ${describe(userInfo)}`, 'request.userInfo');
    const info: { username?: string; uid?: string; groups?: string[] } = {};
    if (typeof userInfo['username'] === 'string') info.username = userInfo['username'];
    if (typeof userInfo['uid'] === 'string') info.uid = userInfo['uid'];
    const groups = userInfo['groups'];
    if (Array.isArray(groups)) info.groups = groups.filter((g): g is string => typeof g === 'string');
    out.userInfo = info;
  }
  // CREATE and UPDATE carry the object; without it there is nothing to decide on.
  if ((out.operation === 'CREATE' || out.operation === 'UPDATE') && out.object === undefined) {
    return bad(`missing: a ${out.operation} review must carry the object`, 'request.object');
  }
  return ok(out);
}

function gvk(v: unknown, path: string): Result<GroupVersionKind, Problem> {
  if (!isJsonObject(v)) return bad(`missing or not an object {group, version, kind}`, path);
  const group = v['group'] ?? '';
  const version = v['version'];
  const kind = v['kind'];
  if (typeof group !== 'string') return bad(`not a string: ${describe(group)}`, `${path}.group`);
  if (typeof version !== 'string' || version === '') return bad('missing or not a non-empty string', `${path}.version`);
  if (typeof kind !== 'string' || kind === '') return bad('missing or not a non-empty string', `${path}.kind`);
  return ok({ group, version, kind });
}

function gvr(v: unknown, path: string): Result<GroupVersionResource, Problem> {
  if (!isJsonObject(v)) return bad(`missing or not an object {group, version, resource}`, path);
  const group = v['group'] ?? '';
  const version = v['version'];
  const resource = v['resource'];
  if (typeof group !== 'string') return bad(`not a string: ${describe(group)}`, `${path}.group`);
  if (typeof version !== 'string' || version === '') return bad('missing or not a non-empty string', `${path}.version`);
  if (typeof resource !== 'string' || resource === '') return bad('missing or not a non-empty string', `${path}.resource`);
  return ok({ group, version, resource });
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}
