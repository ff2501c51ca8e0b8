import { describe, expect, it } from 'vitest';
import type { ImageReference } from '../../core/image/reference.js';
import { err, ok, problem, type Problem, type Result } from '../../core/result.js';
import { REGISTRY_PROBLEM, type RegistryClient, type ResolvedDigest } from './registry-client.js';
import { createTagResolver } from './tag-resolver.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

/** A client answering from `digests` (`name:tag` → digest), recording calls. */
function fakeClient(
  digests: Record<string, string>,
  opts: { delayMs?: number; hang?: boolean } = {},
): RegistryClient & { calls: string[]; maxInFlight: number } {
  let inFlight = 0;
  const client = {
    calls: [] as string[],
    maxInFlight: 0,
    async resolveDigest(ref: ImageReference): Promise<Result<ResolvedDigest, Problem>> {
      const key = `${ref.name}:${ref.tag ?? ''}`;
      client.calls.push(key);
      inFlight++;
      client.maxInFlight = Math.max(client.maxInFlight, inFlight);
      try {
        if (opts.hang === true) await new Promise(() => undefined);
        if (opts.delayMs !== undefined) await new Promise((r) => setTimeout(r, opts.delayMs));
        const digest = digests[key];
        return digest === undefined
          ? err(problem(REGISTRY_PROBLEM.MANIFEST_UNKNOWN, `manifest unknown: no ${key}`))
          : ok({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      } finally {
        inFlight--;
      }
    },
  };
  return client;
}

describe('TagResolver', () => {
  it('resolves tags to name:tag@digest, leaves digested and invalid images alone, records failures', async () => {
    const client = fakeClient({ 'docker.io/library/nginx:1.25': D1, 'reg.example/app:latest': D2 });
    const resolver = createTagResolver({ client });
    const pinned = `reg.example/app@${D1}`;
    const out = await resolver.resolve(['nginx:1.25', pinned, 'reg.example/app', 'reg.example/gone:v1', 'Not/Valid'], 1000);
    expect(out.images).toEqual([
      `docker.io/library/nginx:1.25@${D1}`,
      pinned,
      `reg.example/app:latest@${D2}`,
      'reg.example/gone:v1',
      'Not/Valid',
    ]);
    expect(out.resolved).toEqual([
      { from: 'nginx:1.25', to: `docker.io/library/nginx:1.25@${D1}` },
      { from: 'reg.example/app', to: `reg.example/app:latest@${D2}` },
    ]);
    expect(out.failures).toEqual([{ image: 'reg.example/gone:v1', reason: 'manifest unknown: no reg.example/gone:v1' }]);
    expect(client.calls.sort()).toEqual(['docker.io/library/nginx:1.25', 'reg.example/app:latest', 'reg.example/gone:v1']);
  });

  it('makes no call at all when every image is digested', async () => {
    const client = fakeClient({});
    const images = [`a.example/x@${D1}`, `b.example/y:v1@${D2}`];
    expect(await createTagResolver({ client }).resolve(images, 1000)).toEqual({ images, resolved: [], failures: [] });
    expect(client.calls).toEqual([]);
  });

  it('asks once for the same tag spelled differently', async () => {
    const client = fakeClient({ 'docker.io/library/nginx:1': D1 });
    const out = await createTagResolver({ client }).resolve(['nginx:1', 'docker.io/library/nginx:1', 'index.docker.io/nginx:1'], 1000);
    expect(out.images).toEqual([`docker.io/library/nginx:1@${D1}`, `docker.io/library/nginx:1@${D1}`, `docker.io/library/nginx:1@${D1}`]);
    expect(client.calls).toHaveLength(1);
  });

  it('caches answers for the TTL, not failures', async () => {
    let clock = 1_000_000;
    const digests: Record<string, string> = { 'reg.example/app:v1': D1 };
    const client = fakeClient(digests);
    const resolver = createTagResolver({ client, cacheTtlMs: 30_000, now: () => clock });
    await resolver.resolve(['reg.example/app:v1', 'reg.example/none:v1'], 1000);
    await resolver.resolve(['reg.example/app:v1', 'reg.example/none:v1'], 1000);
    expect(client.calls).toEqual(['reg.example/app:v1', 'reg.example/none:v1', 'reg.example/none:v1']);
    expect(resolver.stats()).toEqual({ cacheHits: 1, cacheMisses: 3, cacheSize: 1 });
    digests['reg.example/app:v1'] = D2; // the tag moves
    clock += 29_999;
    expect((await resolver.resolve(['reg.example/app:v1'], 1000)).images).toEqual([`reg.example/app:v1@${D1}`]);
    clock += 1;
    expect((await resolver.resolve(['reg.example/app:v1'], 1000)).images).toEqual([`reg.example/app:v1@${D2}`]);
  });

  it('resolves concurrently up to the limit', async () => {
    const digests = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`reg.example/app${i}:v1`, D1]));
    const client = fakeClient(digests, { delayMs: 20 });
    const started = Date.now();
    const out = await createTagResolver({ client, concurrency: 5 }).resolve(Object.keys(digests), 5000);
    expect(out.failures).toEqual([]);
    expect(client.maxInFlight).toBe(5);
    expect(Date.now() - started).toBeLessThan(20 * 20);
  });

  it('bounds a call that joins another call’s resolution by its own deadline', async () => {
    const client = fakeClient({}, { hang: true });
    const resolver = createTagResolver({ client });
    void resolver.resolve(['reg.example/slow:v1'], 60_000);
    const started = Date.now();
    const out = await resolver.resolve(['reg.example/slow:v1'], 100);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(out.images).toEqual(['reg.example/slow:v1']);
    expect(out.failures).toEqual([{ image: 'reg.example/slow:v1', reason: 'deadline exceeded after 100 ms resolving reg.example/slow:v1' }]);
    expect(client.calls).toHaveLength(1);
  });

  it('turns a client that throws into a failure', async () => {
    const client: RegistryClient = {
      resolveDigest: () => Promise.reject(new Error('boom')),
    };
    const out = await createTagResolver({ client }).resolve(['reg.example/app:v1'], 1000);
    expect(out.failures).toEqual([{ image: 'reg.example/app:v1', reason: 'registry error resolving reg.example/app:v1: boom' }]);
  });
});
