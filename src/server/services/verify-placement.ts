/**
 * Where the server runs its ECDSA P-256 and RSA verifications: in place on the event loop, or on
 * libuv's thread pool. Neither is better everywhere (docs/performance.md items 38, 42 and 49):
 * the pool takes ~55 µs per verification off the event loop but costs the process more CPU in
 * all, so it wins where the event loop is the limit and a core is free, and loses where every
 * core is busy (a database or other pods on the same cores). Nothing the process can read in the
 * moment told the two apart (item 44), so this measures what the choice is for: reviews answered
 * per second. It tries each placement for a short window, keeps the one that answered more, and
 * tries again a few seconds later. (Not the reviews' own time: measured from when the handler
 * gets a review, it misses the wait in the socket behind a verification in place, which is
 * where in place loses; item 49.)
 *
 * A server that keeps up with what arrives answers as many reviews either way: then the
 * difference is within the margin and it stays in place, which uses less CPU. In place is also
 * what is chosen when a window saw too few verifications or reviews to tell (idle, warm caches).
 * The placement never changes a result, only where the same `crypto.verify` runs.
 */
import type { VerifyPlacementMode } from '../config.js';

export interface VerifyPlacement {
  /**
   * Where the signature check about to be made runs: true for the thread pool. Called once per
   * check, so it also counts them (a window without enough decides nothing).
   */
  place(): boolean;
  /** A review was answered. */
  answered(): void;
  /** The placement in use and the last comparison, for logs and tests. */
  state(): PlacementState;
}

export interface PlacementState {
  readonly phase: 'trial-in-place' | 'trial-pool' | 'settled';
  readonly onPool: boolean;
  /** The last two trials' reviews answered per second (undefined: too few reviews or verifications). */
  readonly lastTrial?: { readonly inPlacePerSecond: number | undefined; readonly poolPerSecond: number | undefined };
}

export interface PlacementOptions {
  /** Length of each trial window (default 250 ms). */
  readonly trialMs?: number;
  /** How long a choice stands before the next trials (default 2 500 ms). */
  readonly settleMs?: number;
  /** Verifications and reviews a trial needs for its rate to count (default 100 and 200). */
  readonly minVerifications?: number;
  readonly minReviews?: number;
  /** How many more reviews a second the pool must answer to be chosen (default 0.05: 5%). */
  readonly margin?: number;
  /** Called after each pair of trials with the outcome, and whether the placement moved (for the server's log). */
  readonly onTrial?: (state: PlacementState, moved: boolean) => void;
}

/** Always in place: the server's choice when adaptive placement is switched off. */
export const IN_PLACE: VerifyPlacement = {
  place: () => false,
  answered: () => undefined,
  state: () => ({ phase: 'settled', onPool: false }),
};

/** Always on the pool. */
export const ON_POOL: VerifyPlacement = {
  place: () => true,
  answered: () => undefined,
  state: () => ({ phase: 'settled', onPool: true }),
};

/** The placement `--verify-placement` names. */
export function placementFor(mode: VerifyPlacementMode, onTrial?: PlacementOptions['onTrial']): VerifyPlacement {
  switch (mode) {
    case 'in-place':
      return IN_PLACE;
    case 'pool':
      return ON_POOL;
    case 'adaptive':
      return adaptivePlacement(() => performance.now(), onTrial === undefined ? {} : { onTrial });
  }
}

interface Window {
  readonly startedAt: number;
  reviews: number;
  verifications: number;
}

/** Trials in alternating order (so neither placement always follows the other), then a settled choice. */
export function adaptivePlacement(nowMs: () => number, options: PlacementOptions = {}): VerifyPlacement {
  const trialMs = options.trialMs ?? 250;
  const settleMs = options.settleMs ?? 2_500;
  const minVerifications = options.minVerifications ?? 100;
  const minReviews = options.minReviews ?? 200;
  const margin = options.margin ?? 0.05;

  let phase: PlacementState['phase'] = 'settled';
  let pool = false;
  /** The placement the last comparison settled on (pool changes during the trials). */
  let settledOnPool = false;
  let poolFirst = false;
  let endsAt = nowMs() + settleMs;
  let current: Window = { startedAt: nowMs(), reviews: 0, verifications: 0 };
  let first: { readonly window: Window; readonly endedAt: number } | undefined;
  let lastTrial: PlacementState['lastTrial'];

  // A window ends at the first event after its time is up, so its rate is over its real length.
  const perSecond = (w: Window, endedAt: number): number | undefined =>
    w.verifications < minVerifications || w.reviews < minReviews ? undefined : (1000 * w.reviews) / Math.max(endedAt - w.startedAt, 1);

  function advance(now: number): void {
    if (now < endsAt) return;
    const ended = current;
    current = { startedAt: now, reviews: 0, verifications: 0 };
    if (phase === 'settled') {
      // Trials only when there is something to compare: verifications during the settled time.
      // Until then it looks again every two trials' length, so a burst of new images is compared
      // within half a second of its start rather than after a whole settled period.
      if (ended.verifications < minVerifications) {
        endsAt = now + 2 * trialMs;
        return;
      }
      pool = poolFirst;
      phase = pool ? 'trial-pool' : 'trial-in-place';
      first = undefined;
      endsAt = now + trialMs;
      return;
    }
    if (first === undefined) {
      first = { window: ended, endedAt: now };
      pool = !pool;
      phase = pool ? 'trial-pool' : 'trial-in-place';
      endsAt = now + trialMs;
      return;
    }
    const a = perSecond(first.window, first.endedAt);
    const b = perSecond(ended, now);
    const [inPlacePerSecond, poolPerSecond] = poolFirst ? [b, a] : [a, b];
    lastTrial = { inPlacePerSecond, poolPerSecond };
    pool = inPlacePerSecond !== undefined && poolPerSecond !== undefined && poolPerSecond > inPlacePerSecond * (1 + margin);
    const moved = pool !== settledOnPool;
    settledOnPool = pool;
    poolFirst = !poolFirst;
    phase = 'settled';
    endsAt = now + settleMs;
    options.onTrial?.({ phase, onPool: pool, lastTrial }, moved);
  }

  return {
    place() {
      advance(nowMs());
      current.verifications++;
      return pool;
    },
    answered() {
      advance(nowMs());
      current.reviews++;
    },
    state: () => ({ phase, onPool: pool, ...(lastTrial === undefined ? {} : { lastTrial }) }),
  };
}
