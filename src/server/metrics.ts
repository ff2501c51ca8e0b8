/**
 * Prometheus text-format metrics, kept in-process (no dependency): counters and histograms with
 * labels, rendered on `GET /metrics`.
 */
type Labels = Readonly<Record<string, string>>;

/** A series' identity: its labels in name order (cheap: it is built on every observation). */
const key = (labels: Labels): string => {
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  let k = '';
  for (const n of names) k += `${n}\u0000${labels[n] as string}\u0001`;
  return k;
};
const render = (labels: Labels) => {
  const e = Object.entries(labels);
  return e.length === 0 ? '' : `{${e.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
};

/**
 * A hot path's series, resolved once per combination of label values: `key` names the
 * combination, `make` resolves its series (or several) the first time it is met.
 */
export function seriesBy<A extends readonly unknown[], S>(key: (...values: A) => string, make: (...values: A) => S): (...values: A) => S {
  const known = new Map<string, S>();
  return (...values) => {
    const k = key(...values);
    let s = known.get(k);
    if (s === undefined) known.set(k, (s = make(...values)));
    return s;
  };
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const v = this.values.get(k);
    if (v) v.value += by;
    else this.values.set(k, { labels, value: by });
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.value ?? 0;
  }
  /** One series, its labels resolved once: for counting on a hot path. */
  series(labels: Labels): { inc(by?: number): void } {
    const k = key(labels);
    let v = this.values.get(k);
    if (v === undefined) this.values.set(k, (v = { labels, value: 0 }));
    const entry = v;
    return { inc: (by = 1) => void (entry.value += by) };
  }
  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${render(labels)} ${value}`);
    return lines.join('\n');
  }
}

export class Histogram {
  private readonly entries = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]) {}
  observe(value: number, labels: Labels = {}): void {
    this.record(this.entry(labels), value);
  }
  /** One series, its labels resolved once: for observing on a hot path. */
  series(labels: Labels): { observe(value: number): void } {
    const e = this.entry(labels);
    return { observe: (value) => this.record(e, value) };
  }
  private entry(labels: Labels): { labels: Labels; counts: number[]; sum: number; count: number } {
    const k = key(labels);
    let e = this.entries.get(k);
    if (e === undefined) this.entries.set(k, (e = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    return e;
  }
  private record(e: { counts: number[]; sum: number; count: number }, value: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) e.counts[i] = (e.counts[i] as number) + 1;
    e.sum += value;
    e.count += 1;
  }
  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.entries.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${render({ ...s.labels, le: String(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${render({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${render(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${render(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

export interface Metrics {
  readonly decisions: Counter;
  readonly decisionSeconds: Histogram;
  readonly httpRequests: Counter;
  readonly httpSeconds: Histogram;
  readonly storeErrors: Counter;
  readonly auditLost: Counter;
  readonly auditPruned: Counter;
  readonly cache: Counter;
  readonly signatureChecks: Counter;
  text(): string;
}

export function createMetrics(): Metrics {
  const m = {
    decisions: new Counter('tollgate_decisions_total', 'Decisions by verdict, source and reason.'),
    decisionSeconds: new Histogram('tollgate_decision_seconds', 'Time to decide, from request to answer, by source.'),
    httpRequests: new Counter('tollgate_http_requests_total', 'API requests by route and status.'),
    httpSeconds: new Histogram('tollgate_http_request_seconds', 'API request latency by route.'),
    storeErrors: new Counter('tollgate_store_errors_total', 'Store reads of the decision service that failed, by operation (those decisions fail closed).'),
    auditLost: new Counter('tollgate_audit_entries_lost_total', 'Decision audit entries that could not be written after a retry.'),
    auditPruned: new Counter('tollgate_audit_entries_removed_total', 'Audit entries removed because they were older than the retention period (--audit-retention).'),
    cache: new Counter('tollgate_cache_total', 'Decision service cache lookups by cache (decisions, images, policies, attestors, attestation-lookups, signatures) and result (hit or miss).'),
    signatureChecks: new Counter('tollgate_signature_checks_total', 'Attestation signature checks made (a verified signature reused is not one), by the placement in use for P-256 and RSA verifications: in_place or pool (--verify-placement; PGP, P-384 and P-521 checks are counted under it but do not follow it).'),
  };
  return {
    ...m,
    text: () => `${Object.values(m).map((x) => x.text()).join('\n')}\n${processText()}`,
  };
}

/** When this process started, in Unix seconds (read once: the uptime's clock and the wall clock drift apart). */
const startSeconds = Math.round(Date.now() / 1000 - process.uptime());

/**
 * The process's own gauges under the names Prometheus client libraries use (prom-client's
 * defaults), so that dashboards and alerts written for any Node service read them unchanged:
 * memory (resident, the V8 heap, memory held outside it), CPU time and the start time. Read at
 * scrape time, nothing on the hot path.
 */
function processText(): string {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  const series: readonly (readonly [name: string, type: 'gauge' | 'counter', help: string, value: number])[] = [
    ['process_cpu_user_seconds_total', 'counter', 'User CPU time spent, in seconds.', cpu.user / 1e6],
    ['process_cpu_system_seconds_total', 'counter', 'System CPU time spent, in seconds.', cpu.system / 1e6],
    ['process_cpu_seconds_total', 'counter', 'User and system CPU time spent, in seconds.', (cpu.user + cpu.system) / 1e6],
    ['process_start_time_seconds', 'gauge', 'When the process started, in seconds since the Unix epoch.', startSeconds],
    ['process_resident_memory_bytes', 'gauge', 'Resident memory size, in bytes.', mem.rss],
    ['nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size (every space), in bytes.', mem.heapTotal],
    ['nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use, in bytes.', mem.heapUsed],
    ['nodejs_external_memory_bytes', 'gauge', 'Memory held outside the V8 heap by objects it references (buffers, native objects), in bytes.', mem.external],
  ];
  return series.map(([name, type, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`).join('');
}
