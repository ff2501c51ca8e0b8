/**
 * Tag resolution for decisions (`--resolve-tags`): every image given by tag (or by bare name,
 * which means `:latest`) is resolved to the digest the registry serves for it, and the decision is
 * made on `name:tag@sha256:…`. The Kubernetes object or the request is never rewritten: only the
 * list of images handed to the evaluation changes.
 *
 * - An image that already has a digest passes through untouched, with no network call.
 * - A reference that does not parse passes through untouched (the evaluation reports why it is
 *   invalid); it is not a resolution failure.
 * - A resolution that fails leaves the image as it was and records why; the evaluation then denies
 *   it as tag-only (fail closed).
 * - One deadline bounds the whole call; images are resolved concurrently (at most `concurrency`
 *   registry calls at once) and the same `name:tag` is asked for once, also across concurrent calls.
 * - Successful resolutions are cached for `cacheTtlMs` (default 30 s): a tag moved in the registry
 *   is seen at most that late. Failures are not cached.
 */
import { formatImageReference, parseImageReference, type ImageReference } from '../../core/image/reference.js';
import { REGISTRY_PROBLEM, type RegistryClient, type ResolvedDigest } from './registry-client.js';
import { describeError, err, problem, type Problem, type Result } from '../../core/result.js';
import { BoundedMap } from '../bounded-map.js';

export interface TagResolution {
  /** The images in the order given, resolved ones replaced by `name:tag@digest`. */
  readonly images: string[];
  readonly resolved: { from: string; to: string }[];
  readonly failures: { image: string; reason: string }[];
}

export interface TagResolver {
  resolve(images: readonly string[], deadlineMs: number): Promise<TagResolution>;
}

export interface TagResolverOptions {
  readonly client: RegistryClient;
  /** How long a tag → digest answer is reused. Default 30 000 ms; 0 turns the cache off. */
  readonly cacheTtlMs?: number;
  /** Most cached tags kept (oldest dropped first). Default 1000. */
  readonly maxCacheEntries?: number;
  /** Most registry calls in flight for one `resolve`. Default 8. */
  readonly concurrency?: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

export interface TagResolverStats {
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheSize: number;
}

export const DEFAULT_TAG_CACHE_TTL_MS = 30_000;

export function createTagResolver(opts: TagResolverOptions): TagResolver & { stats(): TagResolverStats } {
  const ttl = Math.max(0, opts.cacheTtlMs ?? DEFAULT_TAG_CACHE_TTL_MS);
  const maxEntries = Math.max(1, opts.maxCacheEntries ?? 1000);
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const now = opts.now ?? Date.now;
  const cache = new BoundedMap<string, { value: ResolvedDigest; expiresAt: number }>(maxEntries);
  const inFlight = new Map<string, Promise<Result<ResolvedDigest, Problem>>>();
  let hits = 0;
  let misses = 0;

  function cached(key: string): ResolvedDigest | undefined {
    const hit = cache.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt <= now()) {
      cache.delete(key);
      return undefined;
    }
    return hit.value;
  }

  function remember(key: string, value: ResolvedDigest): void {
    if (ttl === 0) return;
    // Deleted first so that a renewed answer counts as the newest.
    cache.delete(key);
    cache.set(key, { value, expiresAt: now() + ttl });
  }

  /** `deadline`: when this call's budget ends, and the budget as the caller gave it (for messages). */
  function lookup(key: string, ref: ImageReference, deadline: { at: number; ms: number }): Promise<Result<ResolvedDigest, Problem>> {
    const running = inFlight.get(key);
    // Joining another call's resolution: bounded by this call's own deadline, which may be shorter.
    if (running !== undefined) return withinDeadline(running, deadline, key);
    const p = opts.client
      .resolveDigest(ref, { deadlineMs: Math.max(1, deadline.at - now()) })
      .catch((e: unknown) => err(problem(REGISTRY_PROBLEM.ERROR, `registry error resolving ${key}: ${describeError(e)}`)))
      .then((r) => {
        if (r.ok) remember(key, r.value);
        return r;
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  }

  function withinDeadline(p: Promise<Result<ResolvedDigest, Problem>>, deadline: { at: number; ms: number }, key: string): Promise<Result<ResolvedDigest, Problem>> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Result<ResolvedDigest, Problem>>((resolve) => {
      // The message names the caller's budget, not what was left of it when this lookup began.
      const message = `deadline exceeded after ${deadline.ms} ms resolving ${key}`;
      timer = setTimeout(() => resolve(err(problem(REGISTRY_PROBLEM.DEADLINE_EXCEEDED, message))), Math.max(1, deadline.at - now()));
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  return {
    stats: () => ({ cacheHits: hits, cacheMisses: misses, cacheSize: cache.size }),

    async resolve(images, deadlineMs) {
      const deadline = { at: now() + Math.max(1, deadlineMs), ms: Math.max(1, deadlineMs) };
      const out = [...images];
      /** name:tag → the refs to resolve and the positions of the images that use it. */
      const wanted = new Map<string, { ref: ImageReference; positions: number[] }>();
      images.forEach((image, i) => {
        // With an '@' the image has a digest or is invalid: either way it passes through, unparsed.
        if (image.includes('@')) return;
        const parsed = parseImageReference(image);
        if (!parsed.ok || parsed.value.digest !== undefined) return;
        const ref: ImageReference = { ...parsed.value, tag: parsed.value.tag ?? 'latest' };
        const key = formatImageReference(ref);
        const entry = wanted.get(key);
        if (entry === undefined) wanted.set(key, { ref, positions: [i] });
        else entry.positions.push(i);
      });

      const answers = new Map<string, Result<ResolvedDigest, Problem>>();
      const toFetch: string[] = [];
      for (const key of wanted.keys()) {
        const hit = cached(key);
        if (hit !== undefined) {
          hits++;
          answers.set(key, { ok: true, value: hit });
        } else {
          misses++;
          toFetch.push(key);
        }
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < toFetch.length) {
          const key = toFetch[next++] as string;
          const entry = wanted.get(key);
          if (entry !== undefined) answers.set(key, await lookup(key, entry.ref, deadline));
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, toFetch.length) }, worker));

      const resolved: { from: string; to: string }[] = [];
      const failures: { image: string; reason: string }[] = [];
      for (const [key, { ref, positions }] of wanted) {
        const answer = answers.get(key);
        for (const i of positions) {
          const image = images[i] as string;
          if (answer === undefined) {
            failures.push({ image, reason: 'tag not resolved (internal error)' });
          } else if (answer.ok) {
            const to = formatImageReference({ ...ref, digest: answer.value.digest });
            out[i] = to;
            resolved.push({ from: image, to });
          } else {
            failures.push({ image, reason: answer.error.message });
          }
        }
      }
      return { images: out, resolved, failures };
    },
  };
}
