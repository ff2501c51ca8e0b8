/**
 * The `none` runtime: nothing runs admitted revisions. The service's URL is Tollgate's placeholder
 * page, which says so (503) — Tollgate never pretends that a service runs.
 */
import type { RunRuntime } from './runtime.js';

export function noneRuntime(): RunRuntime {
  return {
    kind: 'none',
    placeholder: true,
    async deploy(revision) {
      return { url: revision.placeholderUrl };
    },
    async remove() {
      // Nothing runs, so nothing to stop.
    },
  };
}
