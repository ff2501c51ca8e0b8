/** `/healthz` (alive) and `/readyz` (the store answers), served without a token. */
import { ApiError } from '../errors.js';
import { Router } from '../http/router.js';
import type { Store } from '../store/store.js';

export function healthRouter(store: Store): Router {
  return new Router('health')
    .get('/healthz', async () => ({ body: { status: 'ok' } }), { public: true })
    .get('/readyz', async () => {
      try {
        await store.ping();
      } catch {
        throw new ApiError('UNAVAILABLE', 'store unreachable');
      }
      return { body: { status: 'ready' } };
    }, { public: true });
}
