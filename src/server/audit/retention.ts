/**
 * Audit retention: entries older than the retention period are removed, as Cloud Logging's
 * `_Required` bucket keeps Admin Activity and System Event audit logs for 400 days (Tollgate's
 * default; `--audit-retention`). A pass runs soon after the server starts and then every hour. It
 * deletes in chunks through the audit writer (its thread, its connection), pausing between
 * chunks so that decision entries keep being written, and stops at the first error (the next pass
 * tries again): a retention that cannot run must never stop the auditing itself.
 */
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface AuditRetentionOptions {
  /** How long entries are kept, in seconds. */
  readonly retentionSeconds: number;
  readonly prune: Store['pruneAudit'];
  readonly logger: Logger;
  readonly now?: () => number;
  /** Before the first pass (default 5 s: after the server's start, not in the middle of it). */
  readonly firstDelayMs?: number;
  /** Between passes (default one hour). */
  readonly intervalMs?: number;
  /** Entries (a range of seq) per chunk (default 5 000). */
  readonly chunkRows?: number;
  /** Between chunks (default 50 ms). */
  readonly pauseMs?: number;
  /** Called with the number of entries each pass removed (metrics). */
  readonly onPruned?: (count: number) => void;
}

export interface AuditRetention {
  /** Runs a pass now (one already running is waited for instead); resolves with what it removed. */
  runNow(): Promise<number>;
  /** Stops the timer and waits for a pass in progress to finish its chunk. */
  stop(): Promise<void>;
}

export function startAuditRetention(opts: AuditRetentionOptions): AuditRetention {
  const now = opts.now ?? Date.now;
  const chunkRows = opts.chunkRows ?? 5_000;
  const pauseMs = opts.pauseMs ?? 50;
  let stopped = false;
  let running: Promise<number> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const pass = async (): Promise<number> => {
    const before = new Date(now() - opts.retentionSeconds * 1000).toISOString();
    let removed = 0;
    let from: number | undefined;
    try {
      for (;;) {
        const { deleted, more, next } = await opts.prune(before, chunkRows, from);
        removed += deleted;
        from = next;
        if (!more || stopped) break;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    } catch (e) {
      opts.logger.error('audit retention: removing old entries failed; the next pass tries again', { before, removed, error: e instanceof Error ? e.message : String(e) });
    }
    if (removed > 0) opts.logger.info('audit retention: removed entries older than the retention period', { before, removed });
    opts.onPruned?.(removed);
    return removed;
  };

  const runNow = (): Promise<number> => {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  };

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      void runNow().then(() => schedule(opts.intervalMs ?? 3_600_000));
    }, ms);
    // A server with nothing else to do may exit: the retention alone does not keep it alive.
    timer.unref();
  };
  schedule(opts.firstDelayMs ?? 5_000);

  return {
    runNow,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
