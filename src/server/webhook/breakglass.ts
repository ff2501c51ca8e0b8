/**
 * GKE breakglass (reference §6.1): the label `image-policy.k8s.io/break-glass: "true"` on the Pod,
 * or the legacy annotation `alpha.image-policy.k8s.io/break-glass: "true"` that older PodSpecs
 * still use. Tollgate reads both on the object's own metadata and on its pod template's metadata
 * (a Deployment's pods carry the template's labels, so the workload and its pods agree).
 */
import type { WorkloadImages } from './images-of.js';

export const BREAKGLASS_LABEL = 'image-policy.k8s.io/break-glass';
export const BREAKGLASS_LEGACY_ANNOTATION = 'alpha.image-policy.k8s.io/break-glass';

export interface Breakglass {
  /** Where it was found, e.g. `label image-policy.k8s.io/break-glass="true" on spec.template.metadata`. */
  readonly justification: string;
  readonly source: 'label' | 'annotation';
  /** `metadata` or the template's metadata path (`spec.template.metadata`). */
  readonly path: string;
}

/**
 * The breakglass request of a workload, if any. The label wins over the legacy annotation, and the
 * object's own metadata over its template's, so the justification names the most direct one.
 */
export function findBreakglass(w: Pick<WorkloadImages, 'workload' | 'metadata' | 'template'>): Breakglass | undefined {
  const places = [{ path: 'metadata', metadata: w.metadata }, ...(w.template === undefined ? [] : [w.template])];
  for (const [source, key, map] of [
    ['label', BREAKGLASS_LABEL, 'labels'],
    ['annotation', BREAKGLASS_LEGACY_ANNOTATION, 'annotations'],
  ] as const) {
    for (const place of places) {
      if (place.metadata[map][key] !== 'true') continue;
      const legacy = source === 'annotation' ? ' (legacy)' : '';
      return {
        source,
        path: place.path,
        justification: `Kubernetes breakglass: ${source}${legacy} ${key}="true" on ${w.workload} ${place.path}`,
      };
    }
  }
  return undefined;
}
