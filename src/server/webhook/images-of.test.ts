import { describe, expect, it } from 'vitest';
import { admissionReview, EXEMPT_IMAGE, fixture, SIGNED_IMAGE, SYSTEM_IMAGE, UNSIGNED_IMAGE, type Json, type ReviewOptions } from '../../../test/support/k8s.js';
import { decodeAdmissionReview, type AdmissionRequestInfo } from './decode.js';
import { imagesOf, WORKLOAD_KINDS, type ImagesOf } from './images-of.js';

function request(object: Json, opts: ReviewOptions = {}): AdmissionRequestInfo {
  const r = decodeAdmissionReview(admissionReview(object, opts));
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

function workload(r: ImagesOf) {
  if (r.kind !== 'workload') throw new Error(`expected a workload, got ${JSON.stringify(r)}`);
  return r;
}

describe('imagesOf', () => {
  const table: [string, string, [string, string][], string, string][] = [
    ['pod', 'Pod', [
      ['spec.containers[0].image', SIGNED_IMAGE],
      ['spec.containers[1].image', EXEMPT_IMAGE],
      ['spec.initContainers[0].image', SIGNED_IMAGE],
    ], 'web', 'shop'],
    ['deployment', 'apps/Deployment', [
      ['spec.template.spec.containers[0].image', SIGNED_IMAGE],
      ['spec.template.spec.containers[1].image', EXEMPT_IMAGE],
    ], 'default', 'shop'],
    ['replicaset', 'apps/ReplicaSet', [
      ['spec.template.spec.containers[0].image', SIGNED_IMAGE],
      ['spec.template.spec.containers[1].image', EXEMPT_IMAGE],
      ['spec.template.spec.initContainers[0].image', SIGNED_IMAGE],
    ], 'web', 'shop'],
    ['statefulset', 'apps/StatefulSet', [
      ['spec.template.spec.containers[0].image', SIGNED_IMAGE],
      ['spec.template.spec.containers[1].image', EXEMPT_IMAGE],
      ['spec.template.spec.initContainers[0].image', EXEMPT_IMAGE],
    ], 'db', 'shop'],
    ['daemonset', 'apps/DaemonSet', [
      ['spec.template.spec.containers[0].image', SIGNED_IMAGE],
      ['spec.template.spec.containers[1].image', SYSTEM_IMAGE],
    ], 'node-agent', 'monitoring'],
    ['job', 'batch/Job', [['spec.template.spec.containers[0].image', SIGNED_IMAGE]], 'default', 'default'],
    ['cronjob', 'batch/CronJob', [['spec.jobTemplate.spec.template.spec.containers[0].image', SIGNED_IMAGE]], 'default', 'shop'],
    ['replicationcontroller', 'ReplicationController', [
      ['spec.template.spec.containers[0].image', SIGNED_IMAGE],
      ['spec.template.spec.containers[1].image', EXEMPT_IMAGE],
    ], 'default', 'shop'],
    ['knative-service', 'serving.knative.dev/Service', [
      ['spec.template.spec.containers[0].image', SIGNED_IMAGE],
      ['spec.template.spec.containers[1].image', EXEMPT_IMAGE],
    ], 'default', 'shop'],
  ];

  it.each(table)('%s: every image with its field path, the service account and namespace', (name, kind, images, sa, ns) => {
    const object = fixture(name);
    // kubectl create job sets no namespace: the API server fills request.namespace from the URL.
    const w = workload(imagesOf(request(object, name === 'job' ? { namespace: 'default' } : {})));
    expect(w.workload).toBe(kind);
    expect(w.images.map((i) => [i.path, i.image])).toEqual(images);
    expect(w.serviceAccount).toBe(sa);
    expect(w.namespace).toBe(ns);
  });

  it('covers every kind in its table with a fixture', () => {
    const covered = new Set(table.map((t) => t[1]));
    for (const k of WORKLOAD_KINDS) expect(covered.has(k.group === '' ? k.kind : `${k.group}/${k.kind}`), k.kind).toBe(true);
  });

  it('reads the pod template metadata (for breakglass) and the object metadata', () => {
    const w = workload(imagesOf(request(fixture('cronjob', { 'spec.jobTemplate.spec.template.metadata.labels': { team: 'reports' } }))));
    expect(w.template).toEqual({ path: 'spec.jobTemplate.spec.template.metadata', metadata: { labels: { team: 'reports' }, annotations: {} } });
    const rs = workload(imagesOf(request(fixture('replicaset'))));
    expect(rs.metadata.annotations['deployment.kubernetes.io/revision']).toBe('1');
    expect(rs.template?.metadata.annotations).toEqual({ 'kubectl.kubernetes.io/restartedAt': '2026-11-23T09:59:00Z' });
    expect(workload(imagesOf(request(fixture('pod')))).template).toBeUndefined();
  });

  it('pods/ephemeralcontainers: only the ephemeral containers, with the pod\'s service account', () => {
    const pod = fixture('pod-ephemeralcontainers', { 'spec.ephemeralContainers[0].image': UNSIGNED_IMAGE });
    const w = workload(imagesOf(request(pod, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: fixture('pod') })));
    expect(w.workload).toBe('Pod (ephemeralcontainers)');
    expect(w.images).toEqual([{ image: UNSIGNED_IMAGE, path: 'spec.ephemeralContainers[0].image', container: 'debugger-7tq4n', field: 'ephemeralContainers' }]);
    expect(w.serviceAccount).toBe('web');
  });

  it('a Pod created with ephemeral containers has them evaluated with the rest', () => {
    const pod = fixture('pod-ephemeralcontainers');
    const w = workload(imagesOf(request(pod)));
    expect(w.images.map((i) => i.path)).toEqual(['spec.containers[0].image', 'spec.containers[1].image', 'spec.initContainers[0].image', 'spec.ephemeralContainers[0].image']);
  });

  it('the legacy EphemeralContainers object (Kubernetes 1.16–1.21)', () => {
    const object = { apiVersion: 'v1', kind: 'EphemeralContainers', metadata: { name: 'web-1', namespace: 'shop' }, ephemeralContainers: [{ name: 'debug', image: UNSIGNED_IMAGE }] };
    const info: AdmissionRequestInfo = {
      uid: 'u', kind: { group: '', version: 'v1', kind: 'EphemeralContainers' }, resource: { group: '', version: 'v1', resource: 'pods' },
      subResource: 'ephemeralcontainers', operation: 'UPDATE', namespace: 'shop', name: 'web-1', object, dryRun: false,
    };
    expect(workload(imagesOf(info)).images).toEqual([{ image: UNSIGNED_IMAGE, path: 'ephemeralContainers[0].image', container: 'debug', field: 'ephemeralContainers' }]);
  });

  it('uses the deprecated serviceAccount field when serviceAccountName is unset', () => {
    const pod = fixture('pod');
    delete pod['spec'].serviceAccountName;
    pod['spec'].serviceAccount = 'legacy-sa';
    expect(workload(imagesOf(request(pod))).serviceAccount).toBe('legacy-sa');
  });

  it.each([
    ['an unknown kind', () => request({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' }, data: { image: UNSIGNED_IMAGE } }), 'ConfigMap has no pod spec'],
    ['a core Service (not Knative)', () => request({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'shop' }, spec: { template: { spec: { containers: [{ image: UNSIGNED_IMAGE }] } } } }), 'Service has no pod spec'],
    ['pods/status', () => request(fixture('pod'), { operation: 'UPDATE', subResource: 'status' }), 'pods/status'],
    ['deployments/scale', () => request(fixture('deployment'), { operation: 'UPDATE', subResource: 'scale' }), 'deployments/scale'],
    ['a DELETE', () => request(fixture('pod'), { operation: 'DELETE' }), 'DELETE'],
    ['a CONNECT (exec)', () => request(fixture('pod'), { operation: 'CONNECT' }), 'CONNECT'],
    ['an object being deleted', () => request(fixture('deployment', { 'metadata.deletionTimestamp': '2026-11-23T12:00:00Z' }), { operation: 'UPDATE' }), 'being deleted'],
  ])('%s is not a workload (allowed without evaluation)', (_name, make, reason) => {
    const r = imagesOf(make());
    expect(r.kind).toBe('not-a-workload');
    if (r.kind === 'not-a-workload') expect(r.reason).toContain(reason);
  });

  it.each([
    ['no pod spec', (o: Json) => { delete o['spec'].template.spec; }, 'spec.template.spec: missing'],
    ['containers not a list', (o: Json) => { o['spec'].template.spec.containers = { image: 'x' }; }, 'spec.template.spec.containers: not a list'],
    ['a container not an object', (o: Json) => { o['spec'].template.spec.containers[1] = 'nginx'; }, 'spec.template.spec.containers[1]: not an object'],
    ['an image missing', (o: Json) => { delete o['spec'].template.spec.containers[0].image; }, 'spec.template.spec.containers[0].image: missing'],
    ['an image not a string', (o: Json) => { o['spec'].template.spec.containers[0].image = 42; }, 'containers[0].image: missing or empty'],
    ['an empty init image', (o: Json) => { o['spec'].template.spec.initContainers = [{ name: 'i', image: ' ' }]; }, 'initContainers[0].image'],
  ])('a malformed pod spec (%s) is invalid, naming the field', (_name, mutate, message) => {
    const o = fixture('deployment');
    mutate(o);
    const r = imagesOf(request(o));
    expect(r.kind).toBe('invalid');
    if (r.kind === 'invalid') expect(r.problem.message).toContain(message);
  });
});
