/**
 * The yaml library, loaded when first asked for rather than imported at the top of a module: it
 * costs megabytes of resident memory and a running server almost never needs it (a single-quoted
 * request body, `tollgate k8s manifests`). require() keeps callers synchronous; yaml ships a
 * CommonJS build. test/startup-imports.test.ts checks that neither the server nor the CLI loads it
 * at startup.
 */
import { createRequire } from 'node:module';

export function yamlOnUse(): typeof import('yaml') {
  return createRequire(import.meta.url)('yaml') as typeof import('yaml');
}
