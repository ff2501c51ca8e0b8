/**
 * The load generator: a child process of the bench (forked, so it never shares a CPU thread
 * with the server it measures or with the orchestrator). It takes one job at a time over IPC,
 * drives an HTTPS endpoint with AdmissionReviews over keep-alive connections, checks every
 * verdict and answers with the counts and latencies.
 *
 * Closed loop (no rate): `connections` requests in flight, each connection sends its next
 * review as soon as the previous answer arrives — maximum throughput. Open loop (`rate`):
 * reviews are sent on a fixed schedule; a review that must wait for a free connection is timed
 * from when it was due (no coordinated omission), one sent on time from when it was sent.
 */
import { performance } from 'node:perf_hooks';
import { Connection } from './client.js';
import { ReviewFactory, type ReviewRequest, type Workload } from './workload.js';

export interface LoadJob {
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  readonly path: string;
  /** PEM the client trusts. */
  readonly ca: string;
  readonly root: string;
  readonly workload: Workload;
  /** `policy`: signed allowed, unsigned denied; `allow-all`: the floors answer allowed to all. */
  readonly expect: 'policy' | 'allow-all';
  readonly connections: number;
  readonly durationMs: number;
  /** Request indexes used: [startIndex, startIndex + maxRequests). */
  readonly startIndex: number;
  readonly maxRequests: number;
  /** Reviews per second (open loop); absent: closed loop. */
  readonly rate?: number;
}

export interface LoadResult {
  /** Answers received (each one a decision the server made and audited). */
  readonly requests: number;
  readonly errors: number;
  readonly wrong: number;
  readonly allowed: number;
  readonly denied: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** The load generator's own CPU time per answered review, in µs (it shares the machine). */
  readonly loaderCpuUs: number;
  /** The pool of request indexes ran out before the time did. */
  readonly exhausted: boolean;
  readonly samples: readonly string[];
}

interface Outcome {
  readonly kind: 'ok' | 'error' | 'wrong';
  readonly allowed?: boolean;
  readonly detail?: string;
}

class Recorder {
  readonly latencies: Float64Array;
  count = 0;
  errors = 0;
  wrong = 0;
  allowed = 0;
  denied = 0;
  readonly samples: string[] = [];

  constructor(max: number) {
    this.latencies = new Float64Array(max);
  }

  add(ms: number, o: Outcome): void {
    if (o.kind === 'error') this.errors++;
    else if (o.kind === 'wrong') this.wrong++;
    if (o.allowed === true) this.allowed++;
    if (o.allowed === false) this.denied++;
    if (o.detail !== undefined && this.samples.length < 5) this.samples.push(o.detail);
    if (o.kind !== 'error' && this.count < this.latencies.length) this.latencies[this.count++] = ms;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export async function runJob(job: LoadJob): Promise<LoadResult> {
  const target = new URL(job.url);
  // Connections not carrying a request, oldest first: a review takes the one idle longest and
  // gives it back when answered, so every connection stays in use (none idles into the server's
  // keep-alive timeout). At most `connections` are in flight, so one is always free.
  const idle = Array.from({ length: job.connections }, () => new Connection(target.hostname, Number(target.port), job.ca, 15_000));
  const all = [...idle];
  const factory = new ReviewFactory(job.root);
  let next = job.startIndex;
  const end = job.startIndex + job.maxRequests;

  const post = async (body: string): Promise<{ status: number; text: string }> => {
    const connection = idle.shift();
    if (connection === undefined) throw new Error('no free connection (more reviews in flight than connections)');
    try {
      return await connection.post(job.path, body);
    } finally {
      idle.push(connection);
    }
  };

  const check = (spec: ReviewRequest, status: number, text: string): Outcome => {
    if (status !== 200) return { kind: 'error', detail: `HTTP ${status}: ${text.slice(0, 300)}` };
    let response: { uid?: unknown; allowed?: unknown; warnings?: unknown; status?: { code?: unknown; reason?: unknown; message?: unknown } };
    try {
      response = (JSON.parse(text) as { response: typeof response }).response;
    } catch {
      return { kind: 'error', detail: `not JSON: ${text.slice(0, 300)}` };
    }
    if (typeof response !== 'object' || response === null || response.uid !== spec.uid) return { kind: 'error', detail: `uid ${String(response?.uid)} answers ${spec.uid}` };
    const allowed = response.allowed === true;
    if (job.expect === 'allow-all') return allowed ? { kind: 'ok', allowed } : { kind: 'wrong', allowed, detail: `floor denied: ${text.slice(0, 300)}` };
    if (spec.expectAllowed) {
      return allowed && response.warnings === undefined ? { kind: 'ok', allowed } : { kind: 'wrong', allowed, detail: `expected allowed for ${spec.app}: ${text.slice(0, 400)}` };
    }
    const s = response.status;
    const right = !allowed && s?.code === 403 && s.reason === 'VIOLATES_POLICY' && typeof s.message === 'string' && s.message.includes(spec.app);
    return right ? { kind: 'ok', allowed } : { kind: 'wrong', allowed, detail: `expected VIOLATES_POLICY for ${spec.app}: ${text.slice(0, 400)}` };
  };

  const one = async (k: number, rec: Recorder, started?: number): Promise<void> => {
    const spec = factory.make(job.workload, k);
    const t0 = started ?? performance.now();
    let outcome: Outcome;
    try {
      const r = await post(spec.body);
      outcome = check(spec, r.status, r.text);
    } catch (e) {
      outcome = { kind: 'error', detail: e instanceof Error ? e.message : String(e) };
    }
    rec.add(performance.now() - t0, outcome);
  };

  const closedLoop = async (until: number, rec: Recorder): Promise<void> => {
    const worker = async () => {
      while (performance.now() < until && next < end) await one(next++, rec);
    };
    await Promise.all(Array.from({ length: job.connections }, worker));
  };

  const openLoop = (until: number, rate: number, rec: Recorder): Promise<void> =>
    new Promise((resolve) => {
      const start = performance.now();
      const interval = 1000 / rate;
      let sent = 0;
      let inflight = 0;
      let finished = false;
      let timer: NodeJS.Timeout | undefined;
      const done = () => next >= end || performance.now() >= until;
      const launch = (dueAt: number | undefined) => {
        sent++;
        inflight++;
        void one(next++, rec, dueAt).then(() => {
          inflight--;
          // Reviews that fell due while every connection was busy go now, timed from when they were due.
          if (!done()) {
            const now = performance.now();
            while (inflight < job.connections && next < end && start + sent * interval <= now) launch(start + sent * interval);
          }
          if (done() && inflight === 0 && !finished) {
            finished = true;
            if (timer !== undefined) clearTimeout(timer);
            resolve();
          }
        });
      };
      const tick = () => {
        timer = undefined;
        const now = performance.now();
        if (done()) {
          if (inflight === 0 && !finished) {
            finished = true;
            resolve();
          }
          return;
        }
        while (inflight < job.connections && next < end && start + sent * interval <= now) launch(undefined);
        timer = setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
      };
      tick();
    });

  try {
    await Promise.all(all.map((c) => c.connect()));
    const rec = new Recorder(Math.max(0, end - next));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    if (job.rate === undefined) await closedLoop(t0 + job.durationMs, rec);
    else await openLoop(t0 + job.durationMs, job.rate, rec);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const sorted = rec.latencies.slice(0, rec.count).sort();
    return {
      requests: rec.count,
      errors: rec.errors,
      wrong: rec.wrong,
      allowed: rec.allowed,
      denied: rec.denied,
      seconds,
      perSecond: rec.count / seconds,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: rec.count === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
      loaderCpuUs: (cpu.user + cpu.system) / Math.max(1, rec.count + rec.errors),
      exhausted: next >= end,
      samples: rec.samples,
    };
  } finally {
    for (const c of all) c.close();
  }
}

// As a forked child: one job per message.
if (process.send !== undefined && process.argv.includes('--load-child')) {
  process.on('message', (msg: { type: 'run'; id: number; job: LoadJob } | { type: 'exit' }) => {
    if (msg.type === 'exit') process.exit(0);
    runJob(msg.job).then(
      (result) => process.send?.({ type: 'result', id: msg.id, result }),
      (e: unknown) => process.send?.({ type: 'failed', id: msg.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
