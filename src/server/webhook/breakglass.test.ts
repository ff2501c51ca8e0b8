import { describe, expect, it } from 'vitest';
import { admissionReview, fixture } from '../../../test/support/k8s.js';
import { BREAKGLASS_LABEL, BREAKGLASS_LEGACY_ANNOTATION, findBreakglass } from './breakglass.js';
import { decodeAdmissionReview } from './decode.js';
import { imagesOf } from './images-of.js';

function breakglassOf(name: string, set: Record<string, unknown>) {
  const r = decodeAdmissionReview(admissionReview(fixture(name, set)));
  if (!r.ok) throw new Error(r.error.message);
  const w = imagesOf(r.value);
  if (w.kind !== 'workload') throw new Error(w.kind);
  return findBreakglass(w);
}

describe('findBreakglass', () => {
  const table: [string, string, Record<string, unknown>, { source: string; path: string; justification: string } | undefined][] = [
    ['no marker', 'pod', {}, undefined],
    ['label on a Pod', 'pod', { [`metadata.labels`]: { app: 'web', [BREAKGLASS_LABEL]: 'true' } },
      { source: 'label', path: 'metadata', justification: 'Kubernetes breakglass: label image-policy.k8s.io/break-glass="true" on Pod metadata' }],
    ['legacy annotation on a Pod', 'pod', { [`metadata.annotations`]: { [BREAKGLASS_LEGACY_ANNOTATION]: 'true' } },
      { source: 'annotation', path: 'metadata', justification: 'Kubernetes breakglass: annotation (legacy) alpha.image-policy.k8s.io/break-glass="true" on Pod metadata' }],
    ['label on a Deployment\'s pod template', 'deployment', { 'spec.template.metadata.labels': { app: 'web', [BREAKGLASS_LABEL]: 'true' } },
      { source: 'label', path: 'spec.template.metadata', justification: 'Kubernetes breakglass: label image-policy.k8s.io/break-glass="true" on apps/Deployment spec.template.metadata' }],
    ['label on the Deployment itself', 'deployment', { 'metadata.labels': { [BREAKGLASS_LABEL]: 'true' } },
      { source: 'label', path: 'metadata', justification: 'Kubernetes breakglass: label image-policy.k8s.io/break-glass="true" on apps/Deployment metadata' }],
    ['legacy annotation on a CronJob\'s pod template', 'cronjob', { 'spec.jobTemplate.spec.template.metadata.annotations': { [BREAKGLASS_LEGACY_ANNOTATION]: 'true' } },
      { source: 'annotation', path: 'spec.jobTemplate.spec.template.metadata', justification: 'Kubernetes breakglass: annotation (legacy) alpha.image-policy.k8s.io/break-glass="true" on batch/CronJob spec.jobTemplate.spec.template.metadata' }],
    ['label on a Knative revision template', 'knative-service', { 'spec.template.metadata.labels': { [BREAKGLASS_LABEL]: 'true' } },
      { source: 'label', path: 'spec.template.metadata', justification: 'Kubernetes breakglass: label image-policy.k8s.io/break-glass="true" on serving.knative.dev/Service spec.template.metadata' }],
    ['the label as an annotation does not count', 'pod', { 'metadata.annotations': { [BREAKGLASS_LABEL]: 'true' } }, undefined],
    ['the legacy key as a label does not count', 'pod', { 'metadata.labels': { [BREAKGLASS_LEGACY_ANNOTATION]: 'true' } }, undefined],
    ['"false" does not count', 'pod', { 'metadata.labels': { [BREAKGLASS_LABEL]: 'false' } }, undefined],
    ['"True" is not "true"', 'pod', { 'metadata.labels': { [BREAKGLASS_LABEL]: 'True' } }, undefined],
    ['a boolean is not the string "true"', 'pod', { 'metadata.labels': { [BREAKGLASS_LABEL]: true } }, undefined],
  ];
  it.each(table)('%s', (_name, fixtureName, set, expected) => {
    const b = breakglassOf(fixtureName, set);
    if (expected === undefined) expect(b).toBeUndefined();
    else expect(b).toEqual(expected);
  });

  it('prefers the label to the legacy annotation, and the object to its template', () => {
    const b = breakglassOf('deployment', {
      'metadata.annotations': { [BREAKGLASS_LEGACY_ANNOTATION]: 'true' },
      'spec.template.metadata.labels': { [BREAKGLASS_LABEL]: 'true' },
      'metadata.labels': { [BREAKGLASS_LABEL]: 'true' },
    });
    expect(b).toMatchObject({ source: 'label', path: 'metadata' });
  });
});
