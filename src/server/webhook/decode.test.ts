import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admissionReview, fixture, type Json } from '../../../test/support/k8s.js';
import { decodeAdmissionReview } from './decode.js';

describe('decodeAdmissionReview', () => {
  it('decodes what the API server sends for a Deployment made by kubectl', () => {
    const object = fixture('deployment');
    const body = admissionReview(object, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', username: 'alice@example.com', dryRun: true });
    const r = decodeAdmissionReview(body);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      requestKind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      operation: 'CREATE',
      namespace: 'shop',
      name: 'web',
      dryRun: true,
      userInfo: { username: 'alice@example.com', groups: ['system:authenticated'] },
    });
    expect(r.value.object).toBe(object);
    expect(r.value.oldObject).toBeUndefined();
    expect(r.value.subResource).toBeUndefined();
  });

  it('decodes the core group as "" and a subresource', () => {
    const pod = fixture('pod-ephemeralcontainers');
    const r = decodeAdmissionReview(admissionReview(pod, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: fixture('pod') }));
    expect(r.ok && r.value.kind.group === '' && r.value.subResource === 'ephemeralcontainers' && r.value.oldObject !== undefined).toBe(true);
  });

  it('accepts a DELETE without an object', () => {
    const body = admissionReview(fixture('pod'), { operation: 'DELETE' });
    body['request'].object = null;
    const r = decodeAdmissionReview(body);
    expect(r.ok && r.value.operation === 'DELETE' && r.value.object === undefined).toBe(true);
  });

  const base = (): Json => admissionReview(fixture('pod'));
  const cases: [string, (b: Json) => unknown, string][] = [
    ['not an object', () => 'hello', 'not a JSON object'],
    ['an array', () => [1], 'not a JSON object'],
    ['another kind', (b) => ({ ...b, kind: 'ImageReview' }), 'kind: must be "AdmissionReview"'],
    ['v1beta1', (b) => ({ ...b, apiVersion: 'admission.k8s.io/v1beta1' }), 'apiVersion: must be "admission.k8s.io/v1"'],
    ['no request', (b) => ({ ...b, request: undefined }), 'request: missing'],
    ['no uid', (b) => { b['request'].uid = ''; return b; }, 'request.uid'],
    ['uid a number', (b) => { b['request'].uid = 7; return b; }, 'request.uid'],
    ['kind a string', (b) => { b['request'].kind = 'Pod'; return b; }, 'request.kind'],
    ['kind without version', (b) => { delete b['request'].kind.version; return b; }, 'request.kind.version'],
    ['resource without resource', (b) => { b['request'].resource = { group: '', version: 'v1' }; return b; }, 'request.resource.resource'],
    ['bad operation', (b) => { b['request'].operation = 'PATCH'; return b; }, 'request.operation'],
    ['namespace a number', (b) => { b['request'].namespace = 3; return b; }, 'request.namespace'],
    ['object an array', (b) => { b['request'].object = []; return b; }, 'request.object'],
    ['CREATE without object', (b) => { b['request'].object = null; return b; }, 'request.object: missing'],
    ['dryRun a string', (b) => { b['request'].dryRun = 'true'; return b; }, 'request.dryRun'],
    ['userInfo a string', (b) => { b['request'].userInfo = 'alice'; return b; }, 'request.userInfo'],
  ];
  it.each(cases)('rejects %s with a message naming the field', (_name, mutate, message) => {
    const r = decodeAdmissionReview(mutate(base()));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('INVALID_ADMISSION_REVIEW');
      expect(r.error.message).toContain(message);
    }
  });

  it('never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = decodeAdmissionReview(v);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('uid', 'kind', 'resource', 'operation', 'object', 'namespace', 'dryRun', 'userInfo', 'subResource'), fc.jsonValue()), (request) => {
        const r = decodeAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });
});
