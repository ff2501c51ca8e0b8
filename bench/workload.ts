/**
 * What the bench sends: AdmissionReviews as the Kubernetes API server posts them (full Pod and
 * Deployment objects with managedFields, three images each: the app and two sidecars), and which
 * verdict each one must get. Shared by the orchestrator (which seeds the attestations) and the
 * load generator (which builds the reviews), so both derive the same images from a request index.
 *
 * Request k carries the app image of index k; every tenth request (k % 10 === 9) carries an
 * unsigned app image and must be denied, the rest must be allowed. The sidecars are always the
 * same two signed images.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT = 'bench';
export const CLUSTER = 'us-central1-a.bench';
export const ADMISSION_PATH = `/admission/projects/${PROJECT}/clusters/${CLUSTER}`;
export const NOTE = `projects/${PROJECT}/notes/build`;
export const ATTESTOR = `projects/${PROJECT}/attestors/build`;
export const KEY_ID = `//cloudkms.googleapis.com/v1/projects/${PROJECT}/locations/global/keyRings/bench/cryptoKeys/build/cryptoKeyVersions/1`;

const REGISTRY = 'us-docker.pkg.dev/bench/apps';

export function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

export const SIDECARS = [`${REGISTRY}/envoy@${digestOf('sidecar-1')}`, `${REGISTRY}/config-init@${digestOf('sidecar-2')}`] as const;
/** Signed app images the warm scenario cycles through. */
export const WARM_APPS = [0, 1, 2, 3].map((i) => `${REGISTRY}/web-${i}@${digestOf(`warm-${i}`)}`);
/** Unsigned app images the warm scenario repeats. */
const WARM_UNSIGNED = [0, 1].map((i) => `${REGISTRY}/unsigned-${i}@${digestOf(`warm-unsigned-${i}`)}`);
/** Every image with an attestation made through the API (the warm set). */
export const WARM_SIGNED = [...WARM_APPS, ...SIDECARS];

export type Workload = 'warm' | 'cold';

export const isUnsigned = (k: number): boolean => k % 10 === 9;

/** The cold pool: request k's app image, new to the server, with its own attestation. */
export function coldImage(k: number): string {
  return `${REGISTRY}/svc-${k % 97}@${digestOf(`cold-${k}`)}`;
}

/** Attestations that only fill the store (scenario c); never asked about. */
export function backgroundImage(j: number): string {
  return `${REGISTRY}/old-${j % 997}@${digestOf(`background-${j}`)}`;
}

export function appImage(workload: Workload, k: number): string {
  if (workload === 'warm') return isUnsigned(k) ? (WARM_UNSIGNED[k % WARM_UNSIGNED.length] as string) : (WARM_APPS[k % WARM_APPS.length] as string);
  return isUnsigned(k) ? `${REGISTRY}/svc-${k % 97}@${digestOf(`cold-unsigned-${k}`)}` : coldImage(k);
}

/** The indexes of the cold pool that need an attestation. */
export function signedIndexes(count: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < count; k++) if (!isUnsigned(k)) out.push(k);
  return out;
}

/** The repository root (the folder whose package.json names `tollgate`). */
export function findRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tollgate') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no tollgate package.json above ${from}`);
    dir = up;
  }
}

export interface ReviewRequest {
  readonly uid: string;
  readonly body: string;
  readonly app: string;
  readonly expectAllowed: boolean;
}

type Json = Record<string, unknown>;

const APP = '@@APP@@';
const SIDE1 = '@@SIDE1@@';
const SIDE2 = '@@SIDE2@@';
const UID = '@@UID@@';

/**
 * Builds review bodies from two pre-serialized templates (a Pod as the ReplicaSet controller
 * creates it, and a Deployment as `kubectl create deployment` sends it), split at the images and
 * the review uid, so a request costs a string join, not a JSON.stringify of the whole object.
 */
export class ReviewFactory {
  private readonly templates: string[][];

  constructor(root: string) {
    const k8s = join(root, 'testdata', 'k8s');
    const pod = JSON.parse(readFileSync(join(k8s, 'pod.json'), 'utf8')) as Json;
    const podSpec = pod['spec'] as Json;
    setImages(podSpec);
    const deployment = JSON.parse(readFileSync(join(k8s, 'deployment.json'), 'utf8')) as Json;
    apiServerMetadata(deployment);
    setImages(((deployment['spec'] as Json)['template'] as Json)['spec'] as Json);
    this.templates = [pod, deployment].map((o) => split(JSON.stringify(wrap(o))));
  }

  make(workload: Workload, k: number): ReviewRequest {
    const app = appImage(workload, k);
    const uid = uidOf(k);
    const parts = this.templates[k % this.templates.length] as string[];
    let body = '';
    for (const p of parts) {
      body += p === APP ? app : p === SIDE1 ? SIDECARS[0] : p === SIDE2 ? SIDECARS[1] : p === UID ? uid : p;
    }
    return { uid, body, app, expectAllowed: !isUnsigned(k) };
  }
}

function uidOf(k: number): string {
  const hex = k.toString(16).padStart(12, '0');
  return `b3e0c1a2-5d4f-4e6a-9b8c-${hex.slice(-12)}`;
}

/** containers[0] is the app, containers[1] a sidecar, initContainers[0] another. */
function setImages(spec: Json): void {
  const containers = spec['containers'] as Json[];
  if (containers.length < 2) throw new Error('bench templates need two containers');
  (containers[0] as Json)['image'] = APP;
  (containers[1] as Json)['image'] = SIDE1;
  const init = (spec['initContainers'] as Json[] | undefined) ?? [];
  if (init.length === 0) {
    init.push({ name: 'config-init', image: SIDE2, command: ['/bin/config-init', '--once'], resources: {}, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' });
    spec['initContainers'] = init;
  } else (init[0] as Json)['image'] = SIDE2;
}

/** What the API server adds to a kubectl-made Deployment before admission. */
function apiServerMetadata(o: Json): void {
  const meta = o['metadata'] as Json;
  meta['uid'] = '7c0d9a8e-2f4b-4c1d-8e3a-5b6f7a8c9d01';
  meta['generation'] = 1;
  meta['creationTimestamp'] = '2026-11-23T10:00:00Z';
  meta['annotations'] = { 'deployment.kubernetes.io/revision': '1', 'kubernetes.io/change-cause': 'kubectl create deployment web --image=…' };
  const container = (name: string) => ({
    [`k:{"name":"${name}"}`]: { '.': {}, 'f:image': {}, 'f:imagePullPolicy': {}, 'f:name': {}, 'f:resources': {}, 'f:terminationMessagePath': {}, 'f:terminationMessagePolicy': {} },
  });
  meta['managedFields'] = [
    {
      manager: 'kubectl-create',
      operation: 'Update',
      apiVersion: 'apps/v1',
      time: '2026-11-23T10:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
        'f:spec': {
          'f:progressDeadlineSeconds': {},
          'f:replicas': {},
          'f:revisionHistoryLimit': {},
          'f:selector': {},
          'f:strategy': { 'f:rollingUpdate': { '.': {}, 'f:maxSurge': {}, 'f:maxUnavailable': {} }, 'f:type': {} },
          'f:template': {
            'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
            'f:spec': {
              'f:containers': { ...container('hello'), ...container('hello-app') },
              'f:initContainers': container('config-init'),
              'f:dnsPolicy': {},
              'f:restartPolicy': {},
              'f:schedulerName': {},
              'f:securityContext': {},
              'f:terminationGracePeriodSeconds': {},
            },
          },
        },
      },
    },
  ];
  const spec = o['spec'] as Json;
  spec['progressDeadlineSeconds'] = 600;
  spec['revisionHistoryLimit'] = 10;
  spec['strategy'] = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
  const template = spec['template'] as Json;
  (template['metadata'] as Json)['creationTimestamp'] = null;
  const podSpec = template['spec'] as Json;
  Object.assign(podSpec, { restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst', securityContext: {}, schedulerName: 'default-scheduler' });
  for (const c of podSpec['containers'] as Json[]) Object.assign(c, { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' });
}

const RESOURCES: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: '', version: 'v1', resource: 'pods' },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments' },
};

/** The AdmissionReview envelope (as test/support/k8s.ts builds it). */
function wrap(object: Json): Json {
  const kind = String(object['kind']);
  const gvr = RESOURCES[kind];
  if (gvr === undefined) throw new Error(`no resource for ${kind}`);
  const meta = object['metadata'] as Json;
  const gvk = { group: gvr.group, version: gvr.version, kind };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: UID,
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      ...(meta['name'] === undefined ? {} : { name: meta['name'] }),
      namespace: meta['namespace'],
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: '3f1c8a2e-8b6d-4f0e-a1c2-9d8e7f6a5b4c', groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions', fieldManager: 'kubectl-create', fieldValidation: 'Strict' },
    },
  };
}

/** Splits serialized JSON at the placeholders, keeping each placeholder as its own part. */
function split(text: string): string[] {
  const parts = text.split(/(@@APP@@|@@SIDE1@@|@@SIDE2@@|@@UID@@)/);
  for (const p of [APP, SIDE1, SIDE2, UID]) if (!parts.includes(p)) throw new Error(`template lost ${p}`);
  return parts;
}
