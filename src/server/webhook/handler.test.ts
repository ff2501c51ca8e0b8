import { describe, expect, it } from 'vitest';
import { admissionReview, fixture, type Json } from '../../../test/support/k8s.js';
import { decodeAdmissionReview } from './decode.js';
import { admissionPath, apiServerBudget, methodName, parseGoDuration, resourceName } from './handler.js';

function info(review: Json) {
  const r = decodeAdmissionReview(review);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

describe('webhook handler helpers', () => {
  it.each([
    ['10s', 10_000], ['30s', 30_000], ['1m0s', 60_000], ['1m30s', 90_000], ['2.5s', 2_500], ['500ms', 500], ['1h', 3_600_000], ['1500us', 1.5], ['3µs', 0.003], ['100ns', 0.0001],
  ])('parses the Go duration %s', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 6);
  });

  it.each(['', '10', 's', '10 s', '-1s', '1d', '10s;', 'ten seconds'])('rejects %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });

  it('leaves a margin before the API server\'s timeout', () => {
    expect(apiServerBudget('10s')).toBe(9_000);
    expect(apiServerBudget('30s')).toBe(29_000);
    expect(apiServerBudget('1s')).toBe(900);
    expect(apiServerBudget('150ms')).toBe(75);
    expect(apiServerBudget(null)).toBeUndefined();
    expect(apiServerBudget('soon')).toBeUndefined();
    expect(apiServerBudget('0s')).toBeUndefined();
  });

  it('names methods and resources as GKE audit entries do', () => {
    const pod = info(admissionReview(fixture('pod', { 'metadata.name': 'web-6d9c7b5f4d-q8x2v' })));
    expect(methodName(pod)).toBe('io.k8s.core.v1.pods.create');
    expect(resourceName(pod, { namespace: 'shop' })).toBe('core/v1/namespaces/shop/pods/web-6d9c7b5f4d-q8x2v');

    const generated = info(admissionReview(fixture('pod')));
    expect(resourceName(generated, { namespace: 'shop' })).toBe('core/v1/namespaces/shop/pods/web-6d9c7b5f4d-');

    const deploy = info(admissionReview(fixture('deployment'), { operation: 'UPDATE' }));
    expect(methodName(deploy)).toBe('io.k8s.apps.v1.deployments.update');
    expect(resourceName(deploy, { namespace: 'shop' })).toBe('apps/v1/namespaces/shop/deployments/web');

    const debug = info(admissionReview(fixture('pod-ephemeralcontainers'), { operation: 'UPDATE', subResource: 'ephemeralcontainers' }));
    expect(methodName(debug)).toBe('io.k8s.core.v1.pods.ephemeralcontainers.update');
    expect(resourceName(debug, { namespace: 'shop' })).toBe('core/v1/namespaces/shop/pods/web-6d9c7b5f4d-q8x2v/ephemeralcontainers');

    const ksvc = info(admissionReview(fixture('knative-service')));
    expect(methodName(ksvc)).toBe('io.k8s.serving.knative.dev.v1.services.create');
  });

  it('builds the admission path', () => {
    expect(admissionPath('demo', 'us-central1-a.prod')).toBe('/admission/projects/demo/clusters/us-central1-a.prod');
  });
});
