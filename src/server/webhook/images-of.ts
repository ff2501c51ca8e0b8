/**
 * Which images an admission request deploys. One table says where each kind keeps its pod spec;
 * every image of `containers`, `initContainers` and `ephemeralContainers` there is evaluated,
 * each with its field path so a denial can say exactly which field was refused.
 *
 * Google's GKE enforcement looks at Pods only (reference §6.1). Tollgate also reviews the
 * workload kinds that carry a pod template, so `kubectl apply` of a Deployment is refused at
 * once instead of failing later as a `FailedCreate` event on its ReplicaSet. Anything else (an
 * unknown kind, another subresource, DELETE and CONNECT) is "not a workload" and is allowed
 * without evaluation, exactly as Google's webhook ignores what is not a Pod.
 */
import { problem, type Problem } from '../../core/result.js';
import type { AdmissionRequestInfo, JsonObject } from './decode.js';
import { isJsonObject } from '../../core/json.js';

export interface WorkloadKind {
  /** API group, `''` for core. */
  readonly group: string;
  /** The version the generated webhook rules ask for (matching here ignores the version). */
  readonly version: string;
  readonly kind: string;
  /** Plural resource name, for the webhook rules. */
  readonly resource: string;
  /** Where the pod spec is. */
  readonly podSpec: readonly string[];
  /** Where the pod template's metadata is (absent for a Pod, whose own metadata is the pod's). */
  readonly templateMetadata?: readonly string[];
}

const TEMPLATE = ['spec', 'template', 'spec'] as const;
const TEMPLATE_META = ['spec', 'template', 'metadata'] as const;

/** The one table of kinds with a pod spec, and where it is. */
export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  { group: '', version: 'v1', kind: 'Pod', resource: 'pods', podSpec: ['spec'] },
  { group: '', version: 'v1', kind: 'ReplicationController', resource: 'replicationcontrollers', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
  { group: 'apps', version: 'v1', kind: 'Deployment', resource: 'deployments', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
  { group: 'apps', version: 'v1', kind: 'ReplicaSet', resource: 'replicasets', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
  { group: 'apps', version: 'v1', kind: 'StatefulSet', resource: 'statefulsets', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
  { group: 'apps', version: 'v1', kind: 'DaemonSet', resource: 'daemonsets', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
  { group: 'batch', version: 'v1', kind: 'Job', resource: 'jobs', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
  {
    group: 'batch', version: 'v1', kind: 'CronJob', resource: 'cronjobs',
    podSpec: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
    templateMetadata: ['spec', 'jobTemplate', 'spec', 'template', 'metadata'],
  },
  { group: 'serving.knative.dev', version: 'v1', kind: 'Service', resource: 'services', podSpec: TEMPLATE, templateMetadata: TEMPLATE_META },
];

/** The subresource through which `kubectl debug` adds ephemeral containers to a running Pod. */
export const EPHEMERAL_CONTAINERS_SUBRESOURCE = 'ephemeralcontainers';

export type ContainerField = 'containers' | 'initContainers' | 'ephemeralContainers';
const CONTAINER_FIELDS: readonly ContainerField[] = ['containers', 'initContainers', 'ephemeralContainers'];

export interface ContainerImage {
  /** The image as written in the object. */
  readonly image: string;
  /** Field path, e.g. `spec.template.spec.initContainers[0].image`. */
  readonly path: string;
  /** The container's name (`''` when the kind allows unnamed containers, as Knative does). */
  readonly container: string;
  readonly field: ContainerField;
}

export interface ObjectMetadata {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface WorkloadImages {
  readonly kind: 'workload';
  /** `Pod`, `apps/Deployment`, `serving.knative.dev/Service`, `Pod (ephemeralcontainers)`. */
  readonly workload: string;
  /** Every container image, in field order (containers, initContainers, ephemeralContainers). */
  readonly images: readonly ContainerImage[];
  /** The object's own metadata. */
  readonly metadata: ObjectMetadata;
  /** The pod template's metadata and its path, for kinds with a template. */
  readonly template?: { readonly path: string; readonly metadata: ObjectMetadata };
  /** `serviceAccountName` of the pod spec, `default` when unset (as Kubernetes defaults it). */
  readonly serviceAccount: string;
  readonly namespace?: string;
}

export type ImagesOf =
  | WorkloadImages
  /** Allowed without evaluation; `reason` says why. */
  | { readonly kind: 'not-a-workload'; readonly reason: string }
  /** A kind Tollgate reviews, but its pod spec is malformed: denied (fail closed). */
  | { readonly kind: 'invalid'; readonly problem: Problem };

export function findWorkloadKind(group: string, kind: string): WorkloadKind | undefined {
  return WORKLOAD_KINDS.find((w) => w.group === group && w.kind === kind);
}

export function imagesOf(req: AdmissionRequestInfo): ImagesOf {
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') {
    return { kind: 'not-a-workload', reason: `${req.operation} deploys no image` };
  }
  const object = req.object;
  if (object === undefined) return { kind: 'not-a-workload', reason: 'the review carries no object' };
  const metadata = metadataOf(object['metadata']);
  const namespace = req.namespace ?? stringAt(object, ['metadata', 'namespace']);

  if (req.subResource !== undefined) {
    if (req.subResource !== EPHEMERAL_CONTAINERS_SUBRESOURCE || req.resource.group !== '' || req.resource.resource !== 'pods') {
      return { kind: 'not-a-workload', reason: `subresource ${req.resource.resource}/${req.subResource} deploys no image` };
    }
    // Kubernetes ≥ 1.22 sends the whole Pod; 1.16–1.21 sent an `EphemeralContainers` object
    // with the list at the top. Only the ephemeral containers are new here.
    const legacy = req.kind.kind === 'EphemeralContainers';
    const specPath = legacy ? [] : ['spec'];
    const spec = legacy ? object : valueAt(object, specPath);
    if (!isJsonObject(spec)) return invalid('spec', 'missing or not an object');
    const images = containerImages(spec, specPath, ['ephemeralContainers']);
    if (!Array.isArray(images)) return images;
    return {
      kind: 'workload',
      workload: `Pod (${EPHEMERAL_CONTAINERS_SUBRESOURCE})`,
      images,
      metadata,
      serviceAccount: serviceAccountOf(legacy ? undefined : spec),
      ...(namespace === undefined ? {} : { namespace }),
    };
  }

  const shape = findWorkloadKind(req.kind.group, req.kind.kind);
  if (shape === undefined) {
    const gk = req.kind.group === '' ? req.kind.kind : `${req.kind.group}/${req.kind.kind}`;
    return { kind: 'not-a-workload', reason: `${gk} has no pod spec Tollgate reviews` };
  }
  // An object on its way out (finalizers being removed) deploys nothing new; refusing the update
  // would only keep it from being deleted.
  if (req.operation === 'UPDATE' && stringAt(object, ['metadata', 'deletionTimestamp']) !== undefined) {
    return { kind: 'not-a-workload', reason: 'the object is being deleted' };
  }
  const spec = valueAt(object, shape.podSpec);
  if (!isJsonObject(spec)) return invalid(shape.podSpec.join('.'), 'missing or not an object (the pod spec)');
  const images = containerImages(spec, shape.podSpec, CONTAINER_FIELDS);
  if (!Array.isArray(images)) return images;
  return {
    kind: 'workload',
    workload: shape.group === '' ? shape.kind : `${shape.group}/${shape.kind}`,
    images,
    metadata,
    ...(shape.templateMetadata === undefined
      ? {}
      : { template: { path: shape.templateMetadata.join('.'), metadata: metadataOf(valueAt(object, shape.templateMetadata)) } }),
    serviceAccount: serviceAccountOf(spec),
    ...(namespace === undefined ? {} : { namespace }),
  };
}

function containerImages(spec: Readonly<Record<string, unknown>>, specPath: readonly string[], fields: readonly ContainerField[]): ContainerImage[] | ImagesOf {
  const out: ContainerImage[] = [];
  const prefix = specPath.length === 0 ? '' : `${specPath.join('.')}.`;
  for (const field of fields) {
    const list = spec[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) return invalid(`${prefix}${field}`, 'not a list');
    for (const [i, c] of list.entries()) {
      const path = `${prefix}${field}[${i}]`;
      if (!isJsonObject(c)) return invalid(path, 'not an object');
      const image = c['image'];
      if (typeof image !== 'string' || image.trim() === '') return invalid(`${path}.image`, 'missing or empty');
      const name = typeof c['name'] === 'string' ? c['name'] : '';
      out.push({ image, path: `${path}.image`, container: name, field });
    }
  }
  return out;
}

function invalid(path: string, message: string): ImagesOf {
  return { kind: 'invalid', problem: problem('INVALID_POD_SPEC', `${path}: ${message}`, path) };
}

function serviceAccountOf(spec: Readonly<Record<string, unknown>> | undefined): string {
  // `serviceAccount` is the deprecated alias Kubernetes still honours when the name is unset.
  for (const field of ['serviceAccountName', 'serviceAccount']) {
    const v = spec?.[field];
    if (typeof v === 'string' && v !== '') return v;
  }
  return 'default';
}

function metadataOf(v: unknown): ObjectMetadata {
  const m = isJsonObject(v) ? v : {};
  return { labels: stringMap(m['labels']), annotations: stringMap(m['annotations']) };
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isJsonObject(v)) return out;
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

function valueAt(object: JsonObject, path: readonly string[]): unknown {
  let v: unknown = object;
  for (const key of path) {
    if (!isJsonObject(v) || !Object.prototype.hasOwnProperty.call(v, key)) return undefined;
    v = v[key];
  }
  return v;
}

function stringAt(object: JsonObject, path: readonly string[]): string | undefined {
  const v = valueAt(object, path);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

