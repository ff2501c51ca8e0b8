/**
 * Cloud Run-style services behind Binary Authorization (issue 6): Knative `serving.knative.dev/v1`
 * Services and Revisions, stored, gated and handed to a runtime adapter.
 *
 * - A Service is stored as `runService` `projects/P/locations/R/services/S` (parent
 *   `projects/P/locations/R`, k1 `projects/P` for listing every region). Its body holds the Knative
 *   object as last written (metadata, spec, status) and Tollgate's bookkeeping (revision counter,
 *   the template of the latest created revision, which revision is ready and serving).
 * - A Revision is stored as `runRevision` `projects/P/locations/R/revisions/REV` (parent the
 *   location, k1 the service's name, k2 the client's nonce label, so gcloud's nonce lookups are one
 *   indexed query).
 * - Every write bumps `metadata.generation`, and the answer carries the final state with
 *   `status.observedGeneration == metadata.generation` and a terminal `Ready` condition: gcloud
 *   never polls for ever (gcloud-compat §5). `metadata.resourceVersion` is derived from the stored
 *   version; a PUT carrying a stale one is refused (409 ABORTED), as Kubernetes does.
 * - A create, or a PUT whose template differs from the latest created revision's, attempts a new
 *   revision: every image is resolved to a digest (tags through the registry client; an image that
 *   cannot be resolved is refused whatever the policy says), then — when the service carries
 *   `run.googleapis.com/binary-authorization: default` — the decision service evaluates the
 *   pinned images against the project policy's default rule. Allowed (also dry run, breakglass) →
 *   the runtime adapter runs the revision and the service routes 100% of traffic to it; refused →
 *   no revision, and `Ready` / `ConfigurationsReady` are False with the reason and a message that
 *   names the image and each failing attestor. A PUT that changes only metadata creates no revision.
 * - The breakglass annotation never stays on the stored service: it applies to the revision made
 *   by the request that carries it (and is kept on that revision), so a later deploy that sends
 *   the service back as it read it does not break glass again.
 * - The project setting `requireRunBinaryAuthorization` (the counterpart of the organization policy
 *   `run.allowedBinaryAuthorizationPolicies`) refuses any service written without the annotation.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseImageReference } from '../../core/image/reference.js';
import type { AppDeps } from '../app-deps.js';
import {
  CLOUD_RUN_BINAUTHZ_ANNOTATION,
  CLOUD_RUN_BREAKGLASS_ANNOTATION,
  cloudRunActivityEntry,
  cloudRunDenialMessage,
  cloudRunDenialReason,
  cloudRunRevisionEvent,
  RUN_REASON,
  type ServiceActivity,
} from '../audit/cloudrun-log.js';
import { ApiError, invalidArgument } from '../errors.js';
import type { Principal } from '../iam/principal.js';
import type { TagResolver } from '../registry/tag-resolver.js';
import { RuntimeFailure, type AdmittedRevision, type RunRuntime, type RuntimeContainer } from '../run/runtime.js';
import { nowTimestamp } from '../store/columns.js';
import { StoreAlreadyExists, StoreVersionConflict, type Json, type JsonObject, type StoredResource } from '../store/store.js';
import type { DecisionService } from './decision-service.js';
import { getProject, projectForWrite } from './projects.js';
import { isJsonObject } from '../../core/json.js';

export { CLOUD_RUN_BINAUTHZ_ANNOTATION, CLOUD_RUN_BREAKGLASS_ANNOTATION };

export const KNATIVE_API_VERSION = 'serving.knative.dev/v1';
export const NONCE_LABEL = 'client.knative.dev/nonce';
export const SERVICE_LABEL = 'serving.knative.dev/service';
export const LOCATION_LABEL = 'cloud.googleapis.com/location';
const CONFIGURATION_LABEL = 'serving.knative.dev/configuration';
const CONFIGURATION_GENERATION_LABEL = 'serving.knative.dev/configurationGeneration';
const ROUTE_LABEL = 'serving.knative.dev/route';
const SERVICE_UID_LABEL = 'serving.knative.dev/serviceUid';
const CREATOR_ANNOTATION = 'serving.knative.dev/creator';
const LAST_MODIFIER_ANNOTATION = 'serving.knative.dev/lastModifier';
/** On revisions: ALLOWED, DRY_RUN, BREAKGLASS (the policy's verdict) or UNCHECKED (service not guarded). */
export const VERDICT_ANNOTATION = 'tollgate.dev/binary-authorization-verdict';
/** On revisions: the runtime adapter that was asked to run it (`none` or `exec`). */
export const RUNTIME_ANNOTATION = 'tollgate.dev/runtime';
/** Annotations only the server writes; what a client sends for them is ignored. */
const SERVER_ANNOTATIONS = new Set([CREATOR_ANNOTATION, LAST_MODIFIER_ANNOTATION, VERDICT_ANNOTATION, RUNTIME_ANNOTATION, 'run.googleapis.com/operation-id']);

/** Cloud Run service names: lower-case letters, digits and hyphens, a letter first, at most 49. */
const SERVICE_NAME = /^[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?$/;
const REVISION_NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
export const REGION_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const DEFAULT_TAG_DEADLINE_MS = 10_000;

export interface RunDeployOptions {
  readonly decisions: DecisionService;
  readonly runtime: RunRuntime;
  /** Tag → digest resolution (the server's registry client, with its credentials and deadlines). */
  readonly tags: TagResolver;
  /** The server's base URL: the `none` runtime's placeholder URLs hang off it. */
  readonly publicUrl: string;
  /** The most time one deploy spends resolving tags. Default 10 000 ms. */
  readonly tagDeadlineMs?: number;
}

export interface RunSettings {
  /** Refuse services written without `run.googleapis.com/binary-authorization`. */
  readonly requireRunBinaryAuthorization: boolean;
}

/** Where a service lives. */
export interface ServiceLocation {
  readonly project: string;
  readonly region: string;
}

export interface ListPage {
  readonly limit: number;
  /** Opaque `continue` token from the previous page. */
  readonly continueToken?: string | undefined;
}

/** What the `none` runtime's page says about a service. */
export interface PlaceholderInfo {
  readonly service: string;
  readonly project: string;
  readonly region: string;
  readonly url?: string;
  readonly revision?: string;
  readonly images: readonly string[];
  readonly ready: boolean;
  readonly message?: string;
}

export interface RunDeployService {
  getService(principal: Principal, loc: ServiceLocation, name: string): Promise<JsonObject>;
  /** A service by name in any region (Knative calls on a host without a region prefix). */
  findService(principal: Principal, project: string, name: string): Promise<JsonObject>;
  /** `region` `-` (or undefined) lists every region. */
  listServices(principal: Principal, project: string, region: string | undefined, page: ListPage): Promise<JsonObject>;
  createService(principal: Principal, loc: ServiceLocation, body: unknown, opts?: { dryRun?: boolean }): Promise<JsonObject>;
  replaceService(principal: Principal, loc: ServiceLocation, name: string, body: unknown, opts?: { dryRun?: boolean }): Promise<JsonObject>;
  deleteService(principal: Principal, loc: ServiceLocation, name: string): Promise<JsonObject>;
  listRevisions(principal: Principal, project: string, region: string | undefined, labelSelector: string | undefined, page: ListPage): Promise<JsonObject>;
  getRevision(principal: Principal, project: string, region: string | undefined, name: string): Promise<JsonObject>;
  deleteRevision(principal: Principal, project: string, region: string | undefined, name: string): Promise<JsonObject>;
  /** Whether `projects/P/locations/R/services/S` exists (for the IAM methods). */
  serviceExists(resource: string): Promise<boolean>;
  getSettings(principal: Principal, project: string): Promise<RunSettings & { project: string }>;
  updateSettings(principal: Principal, project: string, patch: Partial<RunSettings>): Promise<RunSettings & { project: string }>;
  /** What the placeholder page says; undefined when there is no such service. */
  placeholder(loc: ServiceLocation, name: string): Promise<PlaceholderInfo | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Names

export function serviceResourceName(loc: ServiceLocation, service: string): string {
  return `projects/${loc.project}/locations/${loc.region}/services/${service}`;
}

function locationName(loc: ServiceLocation): string {
  return `projects/${loc.project}/locations/${loc.region}`;
}

function revisionResourceName(loc: ServiceLocation, revision: string): string {
  return `projects/${loc.project}/locations/${loc.region}/revisions/${revision}`;
}

function locationOf(resourceName: string): ServiceLocation {
  const m = /^projects\/([^/]+)\/locations\/([^/]+)\//.exec(resourceName);
  return { project: m?.[1] ?? '', region: m?.[2] ?? '' };
}

/** The URL the `none` runtime answers at for a service. */
export function placeholderUrl(publicUrl: string, loc: ServiceLocation, service: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/run/projects/${loc.project}/locations/${loc.region}/services/${service}/`;
}

function notFoundService(loc: { project: string; region?: string }, name: string): ApiError {
  return new ApiError('NOT_FOUND', `Resource '${name}' of kind 'SERVICE' in region '${loc.region ?? '-'}' in project '${loc.project}' does not exist.`);
}

function notFoundRevision(project: string, region: string | undefined, name: string): ApiError {
  return new ApiError('NOT_FOUND', `Resource '${name}' of kind 'REVISION' in region '${region ?? '-'}' in project '${project}' does not exist.`);
}

/** An opaque resourceVersion for a stored row: it changes on every write. */
function resourceVersionOf(r: StoredResource): string {
  return Buffer.from(`${r.version}:${r.updateTime}`).toString('base64url');
}

function encodeContinue(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

function decodeContinue(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  const name = Buffer.from(token, 'base64url').toString('utf8');
  if (name === '' || encodeContinue(name) !== token) throw invalidArgument('continue: invalid continue token');
  return name;
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

function obj(v: unknown): JsonObject {
  return isJsonObject(v) ? (v as JsonObject) : {};
}

function stringMap(v: unknown, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isJsonObject(v)) throw invalidArgument(`${where}: must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw invalidArgument(`${where}.${k}: must be a string`);
    out[k] = val;
  }
  return out;
}

/**
 * A canonical text of a template: keys sorted, empty values (null, '', {}, []) dropped, so a
 * template read back and sent again (as gcloud does) compares equal to what was stored.
 */
export function templateKey(template: unknown): string {
  const clean = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      const items = v.map(clean).filter((x) => x !== undefined);
      return items.length === 0 ? undefined : items;
    }
    if (isJsonObject(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const c = clean(v[k]);
        if (c !== undefined) out[k] = c;
      }
      return Object.keys(out).length === 0 ? undefined : out;
    }
    if (v === null || v === '' || v === undefined) return undefined;
    return v;
  };
  const t = clean(template);
  // The revision name is not part of what runs.
  if (isJsonObject(t) && isJsonObject(t['metadata'])) delete t['metadata']['name'];
  return JSON.stringify(t ?? {});
}

// ---------------------------------------------------------------------------------------------
// Stored shapes

interface LatestCreated {
  readonly name: string;
  readonly ready: boolean;
  readonly reason?: string;
  readonly message?: string;
}

interface LatestReady {
  readonly name: string;
  readonly url: string;
  readonly images: readonly string[];
}

interface Refusal {
  readonly revision: string;
  readonly reason: string;
  readonly message: string;
}

/** Tollgate's bookkeeping next to the Knative object in a runService document. */
interface ServiceState {
  readonly revisionCount: number;
  readonly latestTemplateKey: string | null;
  readonly latestCreated: LatestCreated | null;
  readonly latestReady: LatestReady | null;
  /** Set when the last attempt (at the current generation) was refused before a revision existed. */
  readonly refusal: Refusal | null;
  /** The policy verdict of the latest created revision (or UNCHECKED). */
  readonly latestVerdict: string | null;
  readonly verdictMessage: string | null;
}

interface ServiceDoc {
  readonly object: JsonObject;
  readonly state: ServiceState;
}

function readServiceDoc(r: StoredResource): ServiceDoc {
  const body = r.body;
  const s = obj(body['state']);
  const lc = isJsonObject(s['latestCreated']) ? s['latestCreated'] : null;
  const lr = isJsonObject(s['latestReady']) ? s['latestReady'] : null;
  const rf = isJsonObject(s['refusal']) ? s['refusal'] : null;
  return {
    object: obj(body['object']),
    state: {
      revisionCount: typeof s['revisionCount'] === 'number' ? s['revisionCount'] : 0,
      latestTemplateKey: typeof s['latestTemplateKey'] === 'string' ? s['latestTemplateKey'] : null,
      latestCreated: lc === null ? null : {
        name: String(lc['name']),
        ready: lc['ready'] === true,
        ...(typeof lc['reason'] === 'string' ? { reason: lc['reason'] } : {}),
        ...(typeof lc['message'] === 'string' ? { message: lc['message'] } : {}),
      },
      latestReady: lr === null ? null : { name: String(lr['name']), url: String(lr['url']), images: Array.isArray(lr['images']) ? lr['images'].map(String) : [] },
      refusal: rf === null ? null : { revision: String(rf['revision']), reason: String(rf['reason']), message: String(rf['message']) },
      latestVerdict: typeof s['latestVerdict'] === 'string' ? s['latestVerdict'] : null,
      verdictMessage: typeof s['verdictMessage'] === 'string' ? s['verdictMessage'] : null,
    },
  };
}

function stateJson(s: ServiceState): JsonObject {
  return s as unknown as JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Request parsing

interface ParsedContainer {
  readonly name: string;
  readonly image: string;
  readonly ports: number[];
  readonly spec: JsonObject;
}

interface ParsedService {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly template: JsonObject;
  readonly templateLabels: Record<string, string>;
  readonly templateAnnotations: Record<string, string>;
  readonly templateName: string | undefined;
  readonly containers: ParsedContainer[];
  readonly traffic: Json | undefined;
  readonly resourceVersion: string | undefined;
}

function parseServiceBody(body: unknown, project: { projectId: string; projectNumber?: string }): ParsedService {
  if (!isJsonObject(body)) throw invalidArgument('Invalid JSON payload received: expected a Service object');
  const kind = body['kind'];
  if (kind !== undefined && kind !== 'Service') throw invalidArgument(`kind: must be Service, not ${JSON.stringify(kind)}`);
  const apiVersion = body['apiVersion'];
  if (apiVersion !== undefined && apiVersion !== KNATIVE_API_VERSION) throw invalidArgument(`apiVersion: must be ${KNATIVE_API_VERSION}, not ${JSON.stringify(apiVersion)}`);
  const metadata = body['metadata'];
  if (!isJsonObject(metadata)) throw invalidArgument('metadata: required');
  const name = metadata['name'];
  if (typeof name !== 'string' || name === '') throw invalidArgument('metadata.name: required');
  if (!SERVICE_NAME.test(name)) {
    throw invalidArgument(`metadata.name: "${name}" is not a valid service name: use only lowercase letters, digits and hyphens, begin with a letter, do not end with a hyphen, and use at most 49 characters`);
  }
  const ns = metadata['namespace'];
  if (ns !== undefined && ns !== null && ns !== '' && ns !== project.projectId && ns !== project.projectNumber) {
    throw invalidArgument(`metadata.namespace: "${String(ns)}" does not match the project in the request (${project.projectId})`);
  }
  const labels = stringMap(metadata['labels'], 'metadata.labels');
  const annotations = stringMap(metadata['annotations'], 'metadata.annotations');
  for (const k of SERVER_ANNOTATIONS) delete annotations[k];
  const spec = body['spec'];
  if (!isJsonObject(spec)) throw invalidArgument('spec: required');
  const template = spec['template'];
  if (!isJsonObject(template)) throw invalidArgument('spec.template: required');
  const tmeta = obj(template['metadata']);
  const templateLabels = stringMap(tmeta['labels'], 'spec.template.metadata.labels');
  const templateAnnotations = stringMap(tmeta['annotations'], 'spec.template.metadata.annotations');
  const templateName = typeof tmeta['name'] === 'string' && tmeta['name'] !== '' ? tmeta['name'] : undefined;
  if (templateName !== undefined && (!REVISION_NAME.test(templateName) || !templateName.startsWith(`${name}-`))) {
    throw invalidArgument(`spec.template.metadata.name: "${templateName}" must start with "${name}-" and use only lowercase letters, digits and hyphens`);
  }
  const tspec = template['spec'];
  if (!isJsonObject(tspec)) throw invalidArgument('spec.template.spec: required');
  const rawContainers = tspec['containers'];
  if (!Array.isArray(rawContainers) || rawContainers.length === 0) throw invalidArgument('spec.template.spec.containers: at least one container is required');
  if (rawContainers.length > 10) throw invalidArgument('spec.template.spec.containers: at most 10 containers');
  const containers = rawContainers.map((c, i): ParsedContainer => {
    const where = `spec.template.spec.containers[${i}]`;
    if (!isJsonObject(c)) throw invalidArgument(`${where}: must be an object`);
    const image = c['image'];
    if (typeof image !== 'string' || image.trim() === '') throw invalidArgument(`${where}.image: Required`);
    const parsed = parseImageReference(image.trim());
    if (!parsed.ok) throw invalidArgument(`${where}.image: ${parsed.error.message}`);
    const ports: number[] = [];
    if (Array.isArray(c['ports'])) {
      for (const p of c['ports']) {
        const n = isJsonObject(p) ? Number(p['containerPort']) : NaN;
        if (Number.isInteger(n) && n > 0 && n < 65536) ports.push(n);
      }
    }
    return { name: typeof c['name'] === 'string' ? c['name'] : '', image: image.trim(), ports, spec: c as JsonObject };
  });
  const rv = metadata['resourceVersion'];
  return {
    name,
    labels,
    annotations,
    template: template as JsonObject,
    templateLabels,
    templateAnnotations,
    templateName,
    containers,
    traffic: spec['traffic'] as Json | undefined,
    resourceVersion: typeof rv === 'string' && rv !== '' ? rv : undefined,
  };
}

/** The guard annotation's value, checked: undefined (unguarded) or 'default'. */
function guardOf(annotations: Record<string, string>): string | undefined {
  const v = annotations[CLOUD_RUN_BINAUTHZ_ANNOTATION];
  if (v === undefined) return undefined;
  if (v !== 'default') {
    throw invalidArgument(
      `metadata.annotations["${CLOUD_RUN_BINAUTHZ_ANNOTATION}"]: "${v}" is not supported; Tollgate evaluates the project policy's default rule, so the value must be "default" (gcloud: --binary-authorization=default)`,
    );
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Settings

export async function getRunSettings(store: AppDeps['store'], project: string): Promise<RunSettings> {
  const r = await store.get('project', `projects/${project}`);
  return { requireRunBinaryAuthorization: r?.body['requireRunBinaryAuthorization'] === true };
}

// ---------------------------------------------------------------------------------------------
// The service

type AttemptOutcome =
  | { readonly kind: 'refused'; readonly revision: string; readonly reason: string; readonly message: string }
  | { readonly kind: 'created'; readonly revision: StoredRevisionInput; readonly url: string; readonly images: string[]; readonly verdict: string; readonly verdictMessage: string }
  | { readonly kind: 'failed'; readonly revision: StoredRevisionInput; readonly reason: string; readonly message: string; readonly verdict: string; readonly verdictMessage: string };

interface StoredRevisionInput {
  readonly name: string;
  readonly nonce: string | null;
  readonly object: JsonObject;
}

export function createRunDeployService(deps: AppDeps, opts: RunDeployOptions): RunDeployService {
  const { store, iam } = deps;
  const tagDeadlineMs = opts.tagDeadlineMs ?? DEFAULT_TAG_DEADLINE_MS;
  const locks = new Map<string, Promise<void>>();

  /** Serializes writes to one service within this process (replicas are kept apart by compare-and-set). */
  async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = locks.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const mine = new Promise<void>((r) => { release = r; });
    const chained = previous.then(() => mine);
    locks.set(key, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (locks.get(key) === chained) locks.delete(key);
    }
  }

  async function audit(records: Parameters<typeof store.appendAudit>[0]): Promise<void> {
    try {
      await store.appendAudit(records);
    } catch (e) {
      deps.logger.error('Cloud Run audit entry not written', { error: e instanceof Error ? e.message : String(e) });
    }
  }

  async function activity(a: Omit<ServiceActivity, 'time' | 'insertId'>): Promise<void> {
    await audit([cloudRunActivityEntry({ ...a, time: nowTimestamp(), insertId: randomUUID() })]);
  }

  // -------------------------------------------------------------------------------------------
  // Views

  function serviceView(r: StoredResource): JsonObject {
    const doc = readServiceDoc(r);
    const o = structuredClone(doc.object);
    const meta = obj(o['metadata']);
    meta['resourceVersion'] = resourceVersionOf(r);
    o['metadata'] = meta;
    return o;
  }

  function revisionView(r: StoredResource, serving: ReadonlySet<string>): JsonObject {
    const o = structuredClone(obj(r.body['object']));
    const meta = obj(o['metadata']);
    meta['resourceVersion'] = resourceVersionOf(r);
    o['metadata'] = meta;
    const status = obj(o['status']);
    const conditions = Array.isArray(status['conditions']) ? (status['conditions'] as JsonObject[]).filter((c) => c['type'] !== 'Active') : [];
    const active = serving.has(r.name);
    conditions.push({
      type: 'Active',
      status: active ? 'True' : 'False',
      severity: 'Info',
      ...(active ? {} : { reason: 'Reserve', message: 'Revision is not serving traffic.' }),
      lastTransitionTime: r.updateTime,
    });
    status['conditions'] = conditions;
    o['status'] = status;
    return o;
  }

  /** The revisions that serve traffic, among the services of these locations. */
  async function servingRevisions(loc: { project: string; region?: string | undefined }): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of await allServices(loc.project, loc.region)) {
      const lr = readServiceDoc(r).state.latestReady;
      if (lr !== null) out.add(revisionResourceName(locationOf(r.name), lr.name));
    }
    return out;
  }

  async function allServices(project: string, region: string | undefined): Promise<StoredResource[]> {
    const out: StoredResource[] = [];
    let after: string | undefined;
    for (;;) {
      const q = region === undefined ? { k1: `projects/${project}` } : { parent: locationName({ project, region }) };
      const rows = await store.list('runService', { ...q, limit: 500, ...(after === undefined ? {} : { after }) });
      out.push(...rows);
      if (rows.length < 500) return out;
      after = rows[rows.length - 1]?.name;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Status

  function conditionsOf(state: ServiceState, guarded: boolean, time: string, previous: JsonObject[]): JsonObject[] {
    // lastTransitionTime changes only when a condition's status does.
    const at = (type: string, status: string) => {
      const old = previous.find((c) => c['type'] === type);
      return old !== undefined && old['status'] === status && typeof old['lastTransitionTime'] === 'string' ? old['lastTransitionTime'] : time;
    };
    const c = (type: string, status: 'True' | 'False' | 'Unknown', extra: { reason?: string; message?: string; severity?: string } = {}): JsonObject => ({
      type,
      status,
      ...(extra.reason === undefined ? {} : { reason: extra.reason }),
      ...(extra.message === undefined ? {} : { message: extra.message }),
      ...(extra.severity === undefined ? {} : { severity: extra.severity }),
      lastTransitionTime: at(type, status),
    });
    const out: JsonObject[] = [];
    const routes = state.latestReady !== null
      ? c('RoutesReady', 'True')
      : c('RoutesReady', 'False', { reason: 'RevisionMissing', message: 'No revision of this service is ready to serve traffic.' });
    if (state.refusal !== null) {
      out.push(c('Ready', 'False', { reason: state.refusal.reason, message: state.refusal.message }));
      out.push(c('ConfigurationsReady', 'False', { reason: state.refusal.reason, message: state.refusal.message }));
      out.push(routes);
    } else if (state.latestCreated !== null && !state.latestCreated.ready) {
      const reason = state.latestCreated.reason ?? RUN_REASON.REVISION_FAILED;
      const message = state.latestCreated.message ?? `Revision '${state.latestCreated.name}' is not ready and cannot serve traffic.`;
      out.push(c('Ready', 'False', { reason, message }));
      out.push(c('ConfigurationsReady', 'False', { reason, message }));
      out.push(routes);
    } else if (state.latestReady !== null) {
      out.push(c('Ready', 'True'), c('ConfigurationsReady', 'True'), c('RoutesReady', 'True'));
    } else {
      out.push(c('Ready', 'False', { reason: 'RevisionMissing', message: 'The service has no revision.' }), c('ConfigurationsReady', 'False', { reason: 'RevisionMissing' }), routes);
    }
    // Visible on the service (non-terminal: gcloud does not wait for them).
    if (guarded) {
      out.push(c('BinaryAuthorization', 'True', {
        severity: 'Info',
        reason: 'PolicyDefault',
        message: `New revisions are checked against the project's Binary Authorization policy (default rule).${state.verdictMessage === null ? '' : ` ${state.verdictMessage}`}`,
      }));
    } else {
      out.push(c('BinaryAuthorization', 'False', {
        severity: 'Warning',
        reason: 'NotEnabled',
        message: `Binary Authorization is not enabled on this service (no ${CLOUD_RUN_BINAUTHZ_ANNOTATION} annotation): its revisions are deployed without a policy check. Enable it with: gcloud run services update SERVICE --binary-authorization=default`,
      }));
    }
    if (opts.runtime.placeholder && state.latestReady !== null) {
      out.push(c('Serving', 'False', {
        severity: 'Warning',
        reason: 'NoRuntime',
        message: `No runtime is configured on this Tollgate server: revision '${state.latestReady.name}' (${state.latestReady.images.join(', ')}) was admitted, but nothing runs it; its URL answers 503. Start the server with --run-runtime exec --run-runtime-exec CMD to run admitted revisions.`,
      }));
    }
    return out;
  }

  function statusOf(state: ServiceState, generation: number, guarded: boolean, time: string, previous: JsonObject): JsonObject {
    const previousConditions = Array.isArray(previous['conditions']) ? (previous['conditions'] as JsonObject[]) : [];
    const url = state.latestReady?.url;
    return {
      observedGeneration: generation,
      conditions: conditionsOf(state, guarded, time, previousConditions),
      ...(state.latestCreated === null ? {} : { latestCreatedRevisionName: state.latestCreated.name }),
      ...(state.latestReady === null ? {} : { latestReadyRevisionName: state.latestReady.name }),
      traffic: state.latestReady === null ? [] : [{ revisionName: state.latestReady.name, percent: 100, latestRevision: true }],
      ...(url === undefined ? {} : { url, address: { url } }),
    };
  }

  // -------------------------------------------------------------------------------------------
  // A new revision

  function newRevisionName(service: string, count: number, requested: string | undefined): string {
    if (requested !== undefined) return requested;
    const suffix = Array.from(randomBytes(3), (b) => String.fromCharCode(97 + (b % 26))).join('');
    return `${service}-${String(count + 1).padStart(5, '0')}-${suffix}`;
  }

  async function attemptRevision(p: {
    principal: Principal;
    loc: ServiceLocation;
    parsed: ParsedService;
    serviceUid: string;
    generation: number;
    revisionCount: number;
    guarded: boolean;
    breakglass: string | undefined;
  }): Promise<AttemptOutcome> {
    const { loc, parsed } = p;
    const service = parsed.name;
    const revision = newRevisionName(service, p.revisionCount, parsed.templateName);
    if (parsed.templateName !== undefined && (await store.get('runRevision', revisionResourceName(loc, revision))) !== undefined) {
      throw new ApiError('ALREADY_EXISTS', `Revision named '${revision}' with different configuration already exists.`);
    }
    const time = nowTimestamp();

    // 1. Digests: every image is pinned; one that cannot be resolved is refused, whatever the policy says.
    const written = parsed.containers.map((c) => c.image);
    const resolution = await opts.tags.resolve(written, tagDeadlineMs);
    if (resolution.failures.length > 0) {
      const why = resolution.failures.map((f) => `Image '${f.image}' could not be resolved to a digest: ${f.reason}.`).join(' ');
      const message = `Revision '${revision}' cannot be created. ${why} Tollgate pins every revision to the digest its tag names and refuses an image it cannot resolve (fail closed); deploy by digest (IMAGE@sha256:…) or check the registry and its credentials.`;
      await audit([cloudRunRevisionEvent({ ...loc, service, revision, time, insertId: randomUUID(), kind: 'REFUSED', reason: RUN_REASON.UNRESOLVED, message, images: written })]);
      return { kind: 'refused', revision, reason: RUN_REASON.UNRESOLVED, message };
    }
    const pinned = resolution.images;
    const digests = pinned.map((image) => {
      const r = parseImageReference(image);
      if (!r.ok || r.value.digest === undefined) throw new Error(`image ${image} has no digest after resolution`);
      return `${r.value.name}@${r.value.digest}`;
    });

    // 2. The gate.
    let verdict = 'UNCHECKED';
    let verdictMessage = `Revision '${revision}' was deployed without a Binary Authorization check (the service is not guarded).`;
    if (p.guarded) {
      const decision = await opts.decisions.decide({
        project: loc.project,
        images: pinned,
        context: { platform: 'cloudrun', ...(p.breakglass === undefined ? {} : { breakglass: p.breakglass }) },
        source: { kind: 'cloudrun', service, revision, region: loc.region, principal: p.principal },
      });
      if (!decision.allowed) {
        return { kind: 'refused', revision, reason: cloudRunDenialReason(decision), message: cloudRunDenialMessage(decision, revision) };
      }
      verdict = decision.verdict.kind;
      const denials = decision.messages.filter((m) => m !== '').join(' ');
      verdictMessage =
        decision.verdict.kind === 'DRY_RUN'
          ? `Revision '${revision}' was admitted by a dry run policy that would have refused it: ${denials}`
          : decision.verdict.kind === 'BREAKGLASS'
            ? `Revision '${revision}' was admitted by breakglass (justification: ${decision.verdict.justification}).${denials === '' ? '' : ` Without it: ${denials}`}`
            : `Revision '${revision}' was admitted: its images are authorized by the policy.`;
    } else {
      await audit([cloudRunRevisionEvent({ ...loc, service, revision, time, insertId: randomUUID(), kind: 'UNCHECKED', reason: 'BinaryAuthorizationNotEnabled', message: verdictMessage, images: pinned })]);
    }

    // 3. The revision, pinned to its digests.
    const containers: RuntimeContainer[] = parsed.containers.map((c, i) => ({ name: c.name, image: c.image, imageDigest: digests[i] as string, ports: c.ports, spec: c.spec }));
    const annotations: Record<string, string> = {
      ...parsed.templateAnnotations,
      [CREATOR_ANNOTATION]: p.principal.email,
      [VERDICT_ANNOTATION]: verdict,
      [RUNTIME_ANNOTATION]: opts.runtime.kind,
      ...(p.guarded ? { [CLOUD_RUN_BINAUTHZ_ANNOTATION]: 'default' } : {}),
      ...(p.breakglass === undefined ? {} : { [CLOUD_RUN_BREAKGLASS_ANNOTATION]: p.breakglass }),
    };
    const labels: Record<string, string> = {
      ...parsed.templateLabels,
      [SERVICE_LABEL]: service,
      [CONFIGURATION_LABEL]: service,
      [CONFIGURATION_GENERATION_LABEL]: String(p.generation),
      [ROUTE_LABEL]: service,
      [SERVICE_UID_LABEL]: p.serviceUid,
      [LOCATION_LABEL]: loc.region,
    };
    const admitted: AdmittedRevision = {
      action: 'deploy',
      project: loc.project,
      region: loc.region,
      service,
      revision,
      verdict: verdict as AdmittedRevision['verdict'],
      ...(p.breakglass === undefined ? {} : { breakglassJustification: p.breakglass }),
      containers,
      templateSpec: obj(parsed.template['spec']),
      labels,
      annotations,
      placeholderUrl: placeholderUrl(opts.publicUrl, loc, service),
    };

    // 4. The runtime.
    let url: string | undefined;
    let failure: string | undefined;
    try {
      url = (await opts.runtime.deploy(admitted)).url;
    } catch (e) {
      failure = e instanceof RuntimeFailure ? e.message : `the runtime failed: ${e instanceof Error ? e.message : String(e)}`;
      deps.logger.warn('Cloud Run runtime failed', { service: serviceResourceName(loc, service), revision, error: failure });
    }
    const readyCondition: JsonObject = failure === undefined
      ? { type: 'Ready', status: 'True', lastTransitionTime: time }
      : { type: 'Ready', status: 'False', reason: RUN_REASON.REVISION_FAILED, message: failure, lastTransitionTime: time };
    const object: JsonObject = {
      apiVersion: KNATIVE_API_VERSION,
      kind: 'Revision',
      metadata: {
        name: revision,
        namespace: loc.project,
        selfLink: `/apis/${KNATIVE_API_VERSION}/namespaces/${loc.project}/revisions/${revision}`,
        uid: randomUUID(),
        generation: 1,
        creationTimestamp: time,
        labels,
        annotations,
        ownerReferences: [{ kind: 'Configuration', name: service, uid: p.serviceUid, apiVersion: KNATIVE_API_VERSION, controller: true, blockOwnerDeletion: true }],
      },
      spec: obj(parsed.template['spec']),
      status: {
        observedGeneration: 1,
        conditions: [
          readyCondition,
          { ...readyCondition, type: 'ContainerHealthy' },
          { type: 'ResourcesAvailable', status: 'True', lastTransitionTime: time },
        ],
        imageDigest: digests[0] as string,
        containerStatuses: containers.map((c) => ({ name: c.name, imageDigest: c.imageDigest })),
      },
    };
    const stored: StoredRevisionInput = { name: revision, nonce: parsed.templateLabels[NONCE_LABEL] ?? null, object };
    if (failure !== undefined) {
      const message = `Revision '${revision}' is not ready and cannot serve traffic. ${failure}`;
      await audit([cloudRunRevisionEvent({ ...loc, service, revision, time: nowTimestamp(), insertId: randomUUID(), kind: 'FAILED', reason: RUN_REASON.REVISION_FAILED, message, images: pinned, annotations })]);
      return { kind: 'failed', revision: stored, reason: RUN_REASON.REVISION_FAILED, message, verdict, verdictMessage };
    }
    return { kind: 'created', revision: stored, url: url as string, images: digests, verdict, verdictMessage };
  }

  /** Applies an attempt's outcome to the service state. */
  function nextState(state: ServiceState, outcome: AttemptOutcome | undefined, tkey: string): ServiceState {
    if (outcome === undefined) return { ...state, refusal: null };
    switch (outcome.kind) {
      case 'refused':
        return { ...state, refusal: { revision: outcome.revision, reason: outcome.reason, message: outcome.message } };
      case 'created':
        return {
          ...state,
          revisionCount: state.revisionCount + 1,
          latestTemplateKey: tkey,
          latestCreated: { name: outcome.revision.name, ready: true },
          latestReady: { name: outcome.revision.name, url: outcome.url, images: outcome.images },
          refusal: null,
          latestVerdict: outcome.verdict,
          verdictMessage: outcome.verdictMessage,
        };
      case 'failed':
        return {
          ...state,
          revisionCount: state.revisionCount + 1,
          latestTemplateKey: tkey,
          latestCreated: { name: outcome.revision.name, ready: false, reason: outcome.reason, message: outcome.message },
          refusal: null,
          latestVerdict: outcome.verdict,
          verdictMessage: outcome.verdictMessage,
        };
    }
  }

  function revisionResource(loc: ServiceLocation, service: string, r: StoredRevisionInput) {
    return {
      kind: 'runRevision' as const,
      name: revisionResourceName(loc, r.name),
      parent: locationName(loc),
      k1: serviceResourceName(loc, service),
      k2: r.nonce,
      body: { object: r.object },
    };
  }

  async function checkRequired(project: string, service: string, guarded: boolean): Promise<void> {
    if (guarded) return;
    const settings = await getRunSettings(store, project);
    if (settings.requireRunBinaryAuthorization) {
      throw new ApiError(
        'FAILED_PRECONDITION',
        `Service '${service}' must use Binary Authorization: project '${project}' has the Tollgate setting requireRunBinaryAuthorization (the counterpart of the organization policy constraint run.allowedBinaryAuthorizationPolicies), which refuses services without the ${CLOUD_RUN_BINAUTHZ_ANNOTATION} annotation. Deploy with --binary-authorization=default.`,
      );
    }
  }

  function breakglassOf(annotations: Record<string, string>, guarded: boolean): string | undefined {
    const j = annotations[CLOUD_RUN_BREAKGLASS_ANNOTATION];
    if (j === undefined) return undefined;
    if (!guarded) {
      throw invalidArgument(`metadata.annotations: a breakglass justification needs Binary Authorization on the service (${CLOUD_RUN_BINAUTHZ_ANNOTATION}: default); without it nothing is checked, so there is nothing to break`);
    }
    if (j.trim() === '') throw invalidArgument('metadata.annotations: the breakglass justification must not be empty');
    return j;
  }

  function buildObject(p: {
    loc: ServiceLocation;
    parsed: ParsedService;
    uid: string;
    creationTimestamp: string;
    creator: string;
    modifier: string;
    generation: number;
    status: JsonObject;
  }): JsonObject {
    const annotations: Record<string, string> = { ...p.parsed.annotations, [CREATOR_ANNOTATION]: p.creator, [LAST_MODIFIER_ANNOTATION]: p.modifier };
    // Breakglass applies to the revision of the request that carried it, never to later ones.
    delete annotations[CLOUD_RUN_BREAKGLASS_ANNOTATION];
    return {
      apiVersion: KNATIVE_API_VERSION,
      kind: 'Service',
      metadata: {
        name: p.parsed.name,
        namespace: p.loc.project,
        selfLink: `/apis/${KNATIVE_API_VERSION}/namespaces/${p.loc.project}/services/${p.parsed.name}`,
        uid: p.uid,
        generation: p.generation,
        creationTimestamp: p.creationTimestamp,
        labels: { ...p.parsed.labels, [LOCATION_LABEL]: p.loc.region },
        annotations,
      },
      spec: {
        template: p.parsed.template,
        // Tollgate routes all traffic to the latest ready revision.
        traffic: [{ percent: 100, latestRevision: true }],
      },
      status: p.status,
    };
  }

  async function requireProject(principal: Principal, project: string) {
    const p = await projectForWrite(store, project, principal);
    return p;
  }

  // -------------------------------------------------------------------------------------------

  return {
    async getService(principal, loc, name) {
      const resource = serviceResourceName(loc, name);
      await iam.require(principal, 'run.services.get', resource);
      const r = await store.get('runService', resource);
      if (r === undefined) throw notFoundService(loc, name);
      return serviceView(r);
    },

    async findService(principal, project, name) {
      const found = (await allServices(project, undefined)).filter((r) => r.name.endsWith(`/services/${name}`));
      if (found.length === 0) {
        await iam.require(principal, 'run.services.get', `projects/${project}`);
        throw notFoundService({ project }, name);
      }
      if (found.length > 1) {
        throw new ApiError('FAILED_PRECONDITION', `Service '${name}' exists in several regions (${found.map((r) => locationOf(r.name).region).join(', ')}); address the regional endpoint (REGION-host).`);
      }
      const r = found[0] as StoredResource;
      await iam.require(principal, 'run.services.get', r.name);
      return serviceView(r);
    },

    async listServices(principal, project, region, page) {
      const all = region === undefined || region === '-';
      await iam.require(principal, 'run.services.list', all ? `projects/${project}` : locationName({ project, region }));
      const after = decodeContinue(page.continueToken);
      const q = all ? { k1: `projects/${project}` } : { parent: locationName({ project, region }) };
      const rows = await store.list('runService', { ...q, limit: page.limit + 1, ...(after === undefined ? {} : { after }) });
      const items = rows.slice(0, page.limit);
      const more = rows.length > page.limit;
      return {
        apiVersion: KNATIVE_API_VERSION,
        kind: 'ServiceList',
        metadata: (more ? { continue: encodeContinue((items[items.length - 1] as StoredResource).name) } : {}) as JsonObject,
        items: items.map(serviceView),
      };
    },

    async createService(principal, loc, body, o = {}) {
      await iam.require(principal, 'run.services.create', locationName(loc));
      const project = await requireProject(principal, loc.project);
      const parsed = parseServiceBody(body, project);
      const guarded = guardOf(parsed.annotations) !== undefined;
      const breakglass = breakglassOf(parsed.annotations, guarded);
      await checkRequired(loc.project, parsed.name, guarded);
      const resource = serviceResourceName(loc, parsed.name);
      return withLock(resource, async () => {
        if ((await store.get('runService', resource)) !== undefined) throw new ApiError('ALREADY_EXISTS', `Resource '${parsed.name}' already exists.`);
        const uid = randomUUID();
        const time = nowTimestamp();
        const empty: ServiceState = { revisionCount: 0, latestTemplateKey: null, latestCreated: null, latestReady: null, refusal: null, latestVerdict: null, verdictMessage: null };
        if (o.dryRun === true) {
          return buildObject({ loc, parsed, uid, creationTimestamp: time, creator: principal.email, modifier: principal.email, generation: 1, status: {} });
        }
        const tkey = templateKey(parsed.template);
        const outcome = await attemptRevision({ principal, loc, parsed, serviceUid: uid, generation: 1, revisionCount: 0, guarded, breakglass });
        const state = nextState(empty, outcome, tkey);
        const object = buildObject({ loc, parsed, uid, creationTimestamp: time, creator: principal.email, modifier: principal.email, generation: 1, status: statusOf(state, 1, guarded, time, {}) });
        let created: StoredResource;
        try {
          created = await store.transaction(async (tx) => {
            const row = await tx.create({ kind: 'runService', name: resource, parent: locationName(loc), k1: `projects/${loc.project}`, body: { object, state: stateJson(state) } });
            if (outcome.kind !== 'refused') await tx.create(revisionResource(loc, parsed.name, outcome.revision));
            return row;
          });
        } catch (e) {
          if (e instanceof StoreAlreadyExists) throw new ApiError('ALREADY_EXISTS', `Resource '${parsed.name}' already exists.`);
          throw e;
        }
        await activity({
          ...loc,
          service: parsed.name,
          method: 'create',
          principal,
          request: body as Json,
          response: { generation: 1, ...(outcome.kind === 'refused' ? { refused: outcome.message } : { revision: outcome.revision.name }) },
          ...(guarded ? { binaryAuthorizationChange: { previous: null, current: 'default' } } : {}),
        });
        return serviceView(created);
      });
    },

    async replaceService(principal, loc, name, body, o = {}) {
      const resource = serviceResourceName(loc, name);
      await iam.require(principal, 'run.services.update', resource);
      const project = await getProject(store, loc.project);
      if (project === undefined) throw notFoundService(loc, name);
      const parsed = parseServiceBody(body, project);
      if (parsed.name !== name) throw invalidArgument(`metadata.name: "${parsed.name}" does not match the service in the request path (${name})`);
      const guard = guardOf(parsed.annotations);
      const guarded = guard !== undefined;
      const breakglass = breakglassOf(parsed.annotations, guarded);
      await checkRequired(loc.project, name, guarded);
      return withLock(resource, async () => {
        const current = await store.get('runService', resource);
        if (current === undefined) throw notFoundService(loc, name);
        if (parsed.resourceVersion !== undefined && parsed.resourceVersion !== resourceVersionOf(current)) {
          throw new ApiError('ABORTED', `Operation cannot be fulfilled on services.serving.knative.dev "${name}": the object has been modified; please apply your changes to the latest version and try again`);
        }
        const doc = readServiceDoc(current);
        const meta = obj(doc.object['metadata']);
        const previousGuard = stringMap(meta['annotations'], 'stored annotations')[CLOUD_RUN_BINAUTHZ_ANNOTATION] ?? null;
        const generation = (typeof meta['generation'] === 'number' ? meta['generation'] : 1) + 1;
        const uid = typeof meta['uid'] === 'string' ? meta['uid'] : randomUUID();
        const creationTimestamp = typeof meta['creationTimestamp'] === 'string' ? meta['creationTimestamp'] : current.createTime;
        const creator = stringMap(meta['annotations'], 'stored annotations')[CREATOR_ANNOTATION] ?? principal.email;
        const time = nowTimestamp();
        const tkey = templateKey(parsed.template);
        const newTemplate = tkey !== doc.state.latestTemplateKey;
        if (o.dryRun === true) {
          return buildObject({ loc, parsed, uid, creationTimestamp, creator, modifier: principal.email, generation, status: obj(doc.object['status']) });
        }
        const outcome = newTemplate
          ? await attemptRevision({ principal, loc, parsed, serviceUid: uid, generation, revisionCount: doc.state.revisionCount, guarded, breakglass })
          : undefined;
        const state = nextState(doc.state, outcome, tkey);
        const object = buildObject({ loc, parsed, uid, creationTimestamp, creator, modifier: principal.email, generation, status: statusOf(state, generation, guarded, time, obj(doc.object['status'])) });
        let updated: StoredResource;
        try {
          updated = await store.transaction(async (tx) => {
            const row = await tx.update('runService', resource, { body: { object, state: stateJson(state) }, expectVersion: current.version });
            if (outcome !== undefined && outcome.kind !== 'refused') await tx.create(revisionResource(loc, name, outcome.revision));
            return row;
          });
        } catch (e) {
          if (e instanceof StoreVersionConflict) throw new ApiError('ABORTED', `Operation cannot be fulfilled on services.serving.knative.dev "${name}": the object has been modified; please apply your changes to the latest version and try again`);
          if (e instanceof StoreAlreadyExists) throw new ApiError('ALREADY_EXISTS', `Revision named '${outcome?.kind === 'refused' ? '' : outcome?.revision.name}' already exists.`);
          throw e;
        }
        const currentGuard = guarded ? 'default' : null;
        await activity({
          ...loc,
          service: name,
          method: 'replace',
          principal,
          request: body as Json,
          response: {
            generation,
            ...(outcome === undefined ? { revision: null } : outcome.kind === 'refused' ? { refused: outcome.message } : { revision: outcome.revision.name }),
          },
          ...(previousGuard !== currentGuard ? { binaryAuthorizationChange: { previous: previousGuard, current: currentGuard } } : {}),
        });
        return serviceView(updated);
      });
    },

    async deleteService(principal, loc, name) {
      const resource = serviceResourceName(loc, name);
      await iam.require(principal, 'run.services.delete', resource);
      return withLock(resource, async () => {
        const current = await store.get('runService', resource);
        if (current === undefined) throw notFoundService(loc, name);
        const revisions = await store.list('runRevision', { k1: resource, limit: 10_000 });
        try {
          await opts.runtime.remove({
            action: 'delete',
            project: loc.project,
            region: loc.region,
            service: name,
            revisions: revisions.map((r) => r.name.slice(r.name.lastIndexOf('/') + 1)).reverse(),
          });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          throw new ApiError('FAILED_PRECONDITION', `Service '${name}' was not deleted: the runtime could not remove it: ${message}`);
        }
        await store.transaction(async (tx) => {
          for (const r of revisions) await tx.delete('runRevision', r.name);
          await tx.delete('runService', resource);
        });
        await iam.deletePolicy(resource);
        await activity({ ...loc, service: name, method: 'delete', principal, request: { name: `namespaces/${loc.project}/services/${name}` } });
        const uid = obj(readServiceDoc(current).object['metadata'])['uid'];
        return { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Success', details: { name, group: 'serving.knative.dev', kind: 'services', uid: typeof uid === 'string' ? uid : '' } };
      });
    },

    async listRevisions(principal, project, region, labelSelector, page) {
      const all = region === undefined || region === '-';
      await iam.require(principal, 'run.revisions.list', all ? `projects/${project}` : locationName({ project, region }));
      const selector = parseLabelSelector(labelSelector);
      const serviceSel = selector.find((s) => s.key === SERVICE_LABEL);
      const nonceSel = selector.find((s) => s.key === NONCE_LABEL);
      let after = decodeContinue(page.continueToken);
      const serving = await servingRevisions({ project, region: all ? undefined : region });
      const items: StoredResource[] = [];
      let more = false;
      const locations = all ? [...new Set((await allServices(project, undefined)).map((r) => locationName(locationOf(r.name))))].sort() : [locationName({ project, region: region as string })];
      for (const parent of locations) {
        for (;;) {
          const q =
            serviceSel !== undefined ? { k1: `${parent}/services/${serviceSel.value}` } : nonceSel !== undefined ? { parent, k2: nonceSel.value } : { parent };
          const rows = await store.list('runRevision', { ...q, limit: 200, ...(after === undefined ? {} : { after }) });
          for (const r of rows) {
            if (!r.name.startsWith(`${parent}/`)) continue;
            const labels = obj(obj(obj(r.body['object'])['metadata'])['labels']);
            if (!selector.every((s) => labels[s.key] === s.value)) continue;
            if (items.length === page.limit) {
              more = true;
              break;
            }
            items.push(r);
          }
          if (more || rows.length < 200) break;
          after = rows[rows.length - 1]?.name;
        }
        if (more) break;
        after = undefined;
      }
      return {
        apiVersion: KNATIVE_API_VERSION,
        kind: 'RevisionList',
        metadata: (more ? { continue: encodeContinue((items[items.length - 1] as StoredResource).name) } : {}) as JsonObject,
        items: items.map((r) => revisionView(r, serving)),
      };
    },

    async getRevision(principal, project, region, name) {
      let row: StoredResource | undefined;
      if (region !== undefined && region !== '-') {
        await iam.require(principal, 'run.revisions.get', revisionResourceName({ project, region }, name));
        row = await store.get('runRevision', revisionResourceName({ project, region }, name));
      } else {
        await iam.require(principal, 'run.revisions.get', `projects/${project}`);
        for (const parent of new Set((await allServices(project, undefined)).map((r) => locationName(locationOf(r.name))))) {
          row = await store.get('runRevision', `${parent}/revisions/${name}`);
          if (row !== undefined) break;
        }
      }
      if (row === undefined) throw notFoundRevision(project, region, name);
      return revisionView(row, await servingRevisions({ project, region: locationOf(row.name).region }));
    },

    async deleteRevision(principal, project, region, name) {
      if (region === undefined || region === '-') throw invalidArgument('a region is required to delete a revision');
      const loc = { project, region };
      const resourceName = revisionResourceName(loc, name);
      await iam.require(principal, 'run.revisions.delete', resourceName);
      const row = await store.get('runRevision', resourceName);
      if (row === undefined) throw notFoundRevision(project, region, name);
      if ((await servingRevisions(loc)).has(resourceName)) {
        throw new ApiError('FAILED_PRECONDITION', `Revision '${name}' is serving traffic and cannot be deleted.`);
      }
      await store.delete('runRevision', resourceName);
      return { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Success', details: { name, group: 'serving.knative.dev', kind: 'revisions' } };
    },

    async serviceExists(resource) {
      return (await store.get('runService', resource)) !== undefined;
    },

    async getSettings(principal, project) {
      await iam.require(principal, 'resourcemanager.projects.get', `projects/${project}`);
      if ((await getProject(store, project)) === undefined) throw new ApiError('NOT_FOUND', `Project ${project} not found`);
      return { project, ...(await getRunSettings(store, project)) };
    },

    async updateSettings(principal, project, patch) {
      if (!principal.superuser) throw new ApiError('PERMISSION_DENIED', 'Only Tollgate administrators may change project settings.');
      await projectForWrite(store, project, principal);
      const name = `projects/${project}`;
      for (let attempt = 0; ; attempt++) {
        const row = await store.get('project', name);
        if (row === undefined) throw new ApiError('NOT_FOUND', `Project ${project} not found`);
        const body: JsonObject = { ...row.body };
        if (patch.requireRunBinaryAuthorization !== undefined) body['requireRunBinaryAuthorization'] = patch.requireRunBinaryAuthorization;
        try {
          await store.update('project', name, { body, expectVersion: row.version });
          break;
        } catch (e) {
          if (e instanceof StoreVersionConflict && attempt < 3) continue;
          throw e;
        }
      }
      const settings = await getRunSettings(store, project);
      await activity({ project, region: '', service: '', method: 'setSettings', principal, request: { ...patch }, response: { ...settings } });
      return { project, ...settings };
    },

    async placeholder(loc, name) {
      const r = await store.get('runService', serviceResourceName(loc, name));
      if (r === undefined) return undefined;
      const doc = readServiceDoc(r);
      const ready = doc.state.latestReady;
      const status = obj(doc.object['status']);
      const readyCondition = (Array.isArray(status['conditions']) ? (status['conditions'] as JsonObject[]) : []).find((c) => c['type'] === 'Ready');
      return {
        service: name,
        project: loc.project,
        region: loc.region,
        ...(ready === null ? {} : { url: ready.url, revision: ready.name }),
        images: ready?.images ?? [],
        ready: readyCondition?.['status'] === 'True',
        ...(typeof readyCondition?.['message'] === 'string' ? { message: readyCondition['message'] } : {}),
      };
    },
  };
}

/** `key = value` / `key=value` / `key==value`, comma-separated (equality only). */
export function parseLabelSelector(selector: string | undefined): { key: string; value: string }[] {
  if (selector === undefined || selector.trim() === '') return [];
  return selector.split(',').map((term) => {
    const m = /^\s*([A-Za-z0-9._/-]+)\s*(?:==|=)\s*([A-Za-z0-9._-]*)\s*$/.exec(term);
    if (m === null) throw invalidArgument(`labelSelector: "${term.trim()}" is not supported (Tollgate supports key=value terms)`);
    return { key: m[1] as string, value: m[2] as string };
  });
}
