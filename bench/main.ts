/**
 * `npm run bench` — Tollgate's admission webhook under load, next to two floors measured in the
 * same run (docs/performance.md says what each scenario means and what the figures were).
 *
 *   npm run bench                      full mode: a few seconds per scenario, 100 000 attestations
 *   npm run bench -- --short           CI mode: ~1 s per scenario, a small store (npm run bench:ci)
 *
 * Options: --connections N (default 16), --duration SECONDS (per scenario), --no-postgres,
 * --cpu-prof DIR (profile the measured Tollgate servers), --json FILE (results as JSON), --keep
 * (keep the temporary folder).
 *
 * Exit code: 1 when any review got an error or a wrong verdict, when a decision's audit entry is
 * missing, or when a scenario could not run; the speed targets are reported (PASS/MISS) but never
 * fail the run.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresBinDir, startPostgres, type TestPostgres } from '../test/support/postgres.js';
import type { LoadJob, LoadResult } from './load.js';
import { cpuSeconds, LoadGenerator, mainThreadCpuSeconds, startFloor, startTollgate, type Tollgate } from './procs.js';
import { attest, buildKey, checkShapes, countAuditRows, insertAttestations, insertBackground, loadDist, makeBackground, seedThroughApi, settleAfterBulkLoad, type Attestation, type Dist, type SigningKey } from './seed.js';
import { ADMISSION_PATH, backgroundImage, coldImage, findRoot, NOTE, signedIndexes, WARM_SIGNED } from './workload.js';

// ---------------------------------------------------------------------------------------------
// Settings

interface Settings {
  readonly short: boolean;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Request indexes of the cold scenarios (9 in 10 with an attestation). */
  readonly pool: number;
  readonly backgroundAttestations: number;
  readonly attestors: number;
  readonly postgres: boolean;
  readonly cpuProfDir?: string;
  readonly jsonFile?: string;
  readonly keep: boolean;
}

function parseArgs(argv: readonly string[]): Settings {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  const known = new Set(['--short', '--connections', '--duration', '--no-postgres', '--cpu-prof', '--json', '--keep']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (known: ${[...known].join(' ')})`);
  const short = argv.includes('--short');
  const seconds = value('--duration');
  const durationMs = seconds === undefined ? (short ? 1_000 : 5_000) : Math.round(Number(seconds) * 1000);
  const connections = Number(value('--connections') ?? 16);
  if (!(durationMs > 0 && durationMs <= 120_000)) throw new Error('--duration must be 0 < s <= 120');
  if (!(Number.isInteger(connections) && connections >= 1 && connections <= 256)) throw new Error('--connections must be 1..256');
  const cpuProfDir = value('--cpu-prof');
  const jsonFile = value('--json');
  return {
    short,
    connections,
    warmupMs: short ? 300 : 1_000,
    durationMs,
    // Enough new images for the fastest cold run seen here (its warm-up included), with room: a
    // run that uses them all up ends early (and says so) rather than repeat an image.
    pool: Math.ceil(8_000 * ((durationMs + (short ? 300 : 1_000)) / 1000)) + 2_000,
    backgroundAttestations: short ? 2_000 : 100_000,
    attestors: short ? 50 : 1_000,
    postgres: !argv.includes('--no-postgres'),
    ...(cpuProfDir === undefined ? {} : { cpuProfDir }),
    ...(jsonFile === undefined ? {} : { jsonFile }),
    keep: argv.includes('--keep'),
  };
}

// ---------------------------------------------------------------------------------------------
// Output

interface Scenario {
  readonly id: string;
  readonly label: string;
  result?: LoadResult;
  /** The unmeasured run before it (JIT, caches), checked like the rest. */
  warmup?: LoadResult;
  /** Server CPU time (user + system) per answered review in the measured part, in µs. */
  cpuUs?: number;
  /** The same for the server's main thread alone (the event loop). */
  mainCpuUs?: number;
  /** The main thread's CPU time as a share of the measured wall time (1 = the event loop never waited). */
  mainBusy?: number;
  /** PostgreSQL's CPU time (every process of the bench's cluster) per answered review, in µs. */
  dbCpuUs?: number;
  skipped?: string;
  failed?: string;
}

/** A load job as the orchestrator states it; the warm-up runs as a job of its own before it. */
type Job = Omit<LoadJob, 'root' | 'path' | 'connections'> & {
  readonly warmupMs: number;
  /**
   * Where the warm-up's request indexes start (it may use up to `warmupRequests` of them).
   * Default: far past the measured ones, which suits the warm workload (the same images
   * whatever the index); a cold job's warm-up needs new images of its own, from the pool.
   */
  readonly warmupStartIndex?: number;
  readonly warmupRequests?: number;
};

const out = (line = '') => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');
const since = (t: number) => `${((Date.now() - t) / 1000).toFixed(1)} s`;

function scenarioLine(s: Scenario): string {
  const head = s.label.padEnd(50);
  if (s.skipped !== undefined) return `${head} skipped: ${s.skipped}`;
  if (s.failed !== undefined) return `${head} FAILED: ${s.failed}`;
  const r = s.result as LoadResult;
  const errors = r.errors + (s.warmup?.errors ?? 0);
  const wrong = r.wrong + (s.warmup?.wrong ?? 0);
  return `${head} ${fmt(r.perSecond).padStart(7)}/s  p50 ${fmt(r.p50, 2).padStart(6)} ms  p99 ${fmt(r.p99, 2).padStart(6)} ms  cpu ${fmt(s.cpuUs ?? Number.NaN).padStart(5)} µs/review (main thread ${fmt(s.mainCpuUs ?? Number.NaN).padStart(3)}, busy ${fmt(100 * (s.mainBusy ?? Number.NaN)).padStart(3)}%; loader ${fmt(r.loaderCpuUs).padStart(3)}${s.dbCpuUs === undefined ? '' : `; database ${fmt(s.dbCpuUs).padStart(3)}`})  ${fmt(r.requests).padStart(7)} reviews  ${errors} errors  ${wrong} wrong${r.exhausted ? '  (pool used up)' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Build

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs `npm run build` when dist/ is missing or older than src/. */
function ensureBuilt(root: string): void {
  const bin = join(root, 'dist', 'cli', 'main.js');
  if (existsSync(bin) && statSync(bin).mtimeMs >= newestSource(join(root, 'src'))) return;
  out('dist/ is missing or older than src/: npm run build');
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status === 0) return;
  if (!existsSync(bin)) throw new Error('npm run build failed and there is no dist/ to run');
  out('npm run build failed; measuring the dist/ that is there (it may be stale)');
}

// ---------------------------------------------------------------------------------------------
// The run

interface DialectReport {
  readonly dialect: 'sqlite' | 'postgres';
  rssSmallMB?: number;
  rssLargeMB?: number;
  seedSeconds?: number;
  auditProblems: string[];
}

/**
 * A rate-limited (open-loop) run right after the one whose rate it halves: no warm-up, and its
 * own request indexes from startIndex, enough for the whole run at that rate.
 */
function openLoop(rate: number, startIndex: number, durationMs: number): Partial<Job> {
  return { rate, warmupMs: 0, startIndex, maxRequests: Math.ceil((rate * durationMs) / 1000) + 100 };
}

async function main(): Promise<number> {
  const settings = parseArgs(process.argv.slice(2));
  const root = findRoot();
  const here = dirname(fileURLToPath(import.meta.url));
  ensureBuilt(root);
  const dist = await loadDist(root);
  const started = Date.now();
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  out(`Tollgate bench (${settings.short ? 'short' : 'full'} mode): ${availableParallelism()} cores (${cpu}), Node ${process.version}, ${settings.connections} connections, ${settings.durationMs / 1000} s per scenario`);
  // Everything here shares the machine's cores: a busy machine shows in the figures.
  out(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  out('');

  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const scenarios: Scenario[] = [];
  const dialects: DialectReport[] = [];
  const loader = new LoadGenerator(join(here, 'load.js'));
  const base = { root, path: ADMISSION_PATH, connections: settings.connections };

  const run = async (id: string, label: string, job: Job, pid: number, databaseCpu?: () => number): Promise<Scenario> => {
    const s: Scenario = { id, label };
    scenarios.push(s);
    try {
      const { warmupMs, warmupStartIndex, warmupRequests, ...measured } = job;
      if (warmupMs > 0) {
        s.warmup = await loader.run({
          ...base,
          ...measured,
          durationMs: warmupMs,
          rate: undefined,
          startIndex: warmupStartIndex ?? measured.startIndex + 5_000_000,
          maxRequests: warmupRequests ?? measured.maxRequests,
        });
      }
      const cpu0 = cpuSeconds(pid);
      const main0 = mainThreadCpuSeconds(pid);
      const db0 = databaseCpu?.();
      const t0 = process.hrtime.bigint();
      s.result = await loader.run({ ...base, ...measured });
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const answered = Math.max(1, s.result.requests + s.result.errors);
      const mainSeconds = mainThreadCpuSeconds(pid) - main0;
      s.cpuUs = ((cpuSeconds(pid) - cpu0) * 1e6) / answered;
      s.mainCpuUs = (mainSeconds * 1e6) / answered;
      s.mainBusy = mainSeconds / wallSeconds;
      if (databaseCpu !== undefined && db0 !== undefined) s.dbCpuUs = ((databaseCpu() - db0) * 1e6) / answered;
    } catch (e) {
      s.failed = e instanceof Error ? e.message : String(e);
    }
    out(scenarioLine(s));
    for (const sample of [...(s.warmup?.samples ?? []), ...(s.result?.samples ?? [])].slice(0, 5)) out(`    ${sample}`);
    return s;
  };
  const skip = (id: string, label: string, why: string) => {
    const s: Scenario = { id, label, skipped: why };
    scenarios.push(s);
    out(scenarioLine(s));
  };
  const warmJob = (url: string, ca: string, expect: LoadJob['expect'], extra: Partial<Job> = {}): Job => ({
    url,
    ca,
    workload: 'warm',
    expect,
    warmupMs: settings.warmupMs,
    durationMs: settings.durationMs,
    startIndex: 0,
    maxRequests: Math.ceil((60_000 * settings.durationMs) / 1000),
    ...extra,
  });
  // The cold jobs are warmed up like every other scenario (the floors included), on new images
  // of their own: the pool's last indexes, enough for the warm-up at the pool's top speed. So a
  // server is measured on its cold path with that path's code compiled, as it runs in a cluster
  // that keeps deploying new images, not in its first second on it.
  const coldWarmupRequests = Math.ceil(8_000 * (settings.warmupMs / 1000));
  const coldJob = (url: string, ca: string): Job => ({
    url,
    ca,
    workload: 'cold',
    expect: 'policy',
    warmupMs: settings.warmupMs,
    warmupStartIndex: settings.pool - coldWarmupRequests,
    warmupRequests: coldWarmupRequests,
    durationMs: settings.durationMs,
    startIndex: 0,
    maxRequests: settings.pool - coldWarmupRequests,
  });

  try {
    // --- Floors --------------------------------------------------------------------------------
    const certs = await dist.ensureWebhookCertificates(join(tmp, 'floor'), []);
    const cert = join(tmp, 'floor', 'webhook', 'tls.crt');
    const key = join(tmp, 'floor', 'webhook', 'tls.key');
    for (const verify of [false, true]) {
      const floor = await startFloor(join(here, 'floor.js'), cert, key, verify);
      try {
        // The floors get the cold workload's bodies when they verify (same sizes either way).
        const full = await run(
          verify ? 'floor-cold' : 'floor-transport',
          verify ? 'cold floor (+1 ECDSA P-256 verify)' : 'transport floor (bare HTTPS + JSON parse)',
          warmJob(floor.url, certs.caPem, 'allow-all', verify ? { workload: 'cold' } : {}),
          floor.pid,
        );
        if (!verify) {
          // The machine's own tail: the bare server at half its load, beside Tollgate's p99 at half of its own.
          const rate = Math.max(50, Math.round((full.result?.perSecond ?? 1000) / 2));
          const job = warmJob(floor.url, certs.caPem, 'allow-all', openLoop(rate, 1_000_000, settings.durationMs));
          await run('floor-half', `transport floor at 50% load, ${fmt(rate)}/s`, job, floor.pid);
        }
      } finally {
        await floor.stop();
      }
    }

    // --- Evidence (signed once, stored in each dialect) ---------------------------------------
    let t = Date.now();
    const build = buildKey(tmp);
    const warm = WARM_SIGNED.map((image) => attest(dist, image, NOTE, build));
    const pool = signedIndexes(settings.pool).map((k) => attest(dist, coldImage(k), NOTE, build));
    const background = makeBackground(dist, build, settings.attestors, settings.backgroundAttestations, backgroundImage);
    out(`\nsigned ${fmt(pool.length + warm.length)} attestations for the cold pool and ${fmt(background.attestations.length)} for the background (${settings.attestors} attestors) in ${since(t)}`);

    // --- Tollgate, per dialect ----------------------------------------------------------------
    for (const dialect of ['sqlite', 'postgres'] as const) {
      const report: DialectReport = { dialect, auditProblems: [] };
      dialects.push(report);
      const labels = {
        warm: `${dialect} (a) warm: same signed images`,
        half: `${dialect} (a) warm at 50% load (rate-limited)`,
        cold: `${dialect} (b) every image new`,
        warmLarge: `${dialect} warm, ${fmt(settings.backgroundAttestations)} attestations in store`,
        coldLarge: `${dialect} (c) every image new, ${fmt(settings.backgroundAttestations)} attestations`,
      };
      out('');
      let pgServer: TestPostgres | undefined;
      let database: string | undefined;
      const env: Record<string, string> = {};
      if (dialect === 'postgres') {
        const why = postgresUnavailable(settings);
        if (why !== undefined) {
          for (const [k, label] of Object.entries(labels)) skip(`${dialect}-${k}`, label, why);
          continue;
        }
        t = Date.now();
        pgServer = await startPostgres({ durable: true });
        database = pgServer.url;
        env['TOLLGATE_MASTER_KEY'] = randomBytes(32).toString('base64');
        out(`started PostgreSQL (fsync on, as in production) in ${since(t)}`);
      }
      try {
        await benchDialect({ dialect, settings, root, tmp, dist, build, warm, pool, background, database, ...(pgServer?.cpuSeconds === undefined ? {} : { databaseCpu: pgServer.cpuSeconds }), env, report, run, warmJob, coldJob, labels });
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        for (const [k, label] of Object.entries(labels)) {
          if (!scenarios.some((s) => s.id === `${dialect}-${k}`)) {
            scenarios.push({ id: `${dialect}-${k}`, label, failed: why });
            out(scenarioLine(scenarios[scenarios.length - 1] as Scenario));
          }
        }
      } finally {
        await pgServer?.stop();
      }
    }

    // --- The machine's tail at Tollgate's own half-load rates ------------------------------------
    // The floor at half of its load runs at a higher rate than Tollgate's half load, so it says
    // little about Tollgate's p99. The same bare server at each dialect's rate does: what is left
    // above it is the server's own.
    const halves = dialects.flatMap((d) => {
      const half = scenarios.find((s) => s.id === `${d.dialect}-half`)?.result;
      return half === undefined ? [] : [{ dialect: d.dialect, rate: Math.max(50, Math.round(half.perSecond)) }];
    });
    if (halves.length > 0) {
      const floor = await startFloor(join(here, 'floor.js'), cert, key, false);
      try {
        for (const { dialect, rate } of halves) {
          const job = warmJob(floor.url, certs.caPem, 'allow-all', openLoop(rate, 2_000_000, settings.durationMs));
          await run(`floor-${dialect}-half`, `transport floor at ${dialect}'s 50% rate, ${fmt(rate)}/s`, job, floor.pid);
        }
      } finally {
        await floor.stop();
      }
    }
  } finally {
    await loader.close();
    if (settings.keep) out(`\nkept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }

  return summarize(settings, scenarios, dialects, started);
}

function postgresUnavailable(settings: Settings): string | undefined {
  if (!settings.postgres) return '--no-postgres';
  if ((process.env['TOLLGATE_TEST_DATABASE_URL'] ?? '') !== '') return undefined;
  try {
    postgresBinDir();
    return undefined;
  } catch {
    return 'PostgreSQL is not installed (apt-get install postgresql)';
  }
}

interface DialectRun {
  readonly dialect: 'sqlite' | 'postgres';
  readonly settings: Settings;
  readonly root: string;
  readonly tmp: string;
  readonly dist: Dist;
  readonly build: SigningKey;
  readonly warm: readonly Attestation[];
  readonly pool: readonly Attestation[];
  readonly background: ReturnType<typeof makeBackground>;
  readonly database: string | undefined;
  /** CPU time used so far by the PostgreSQL cluster the bench started (absent for SQLite or an external server). */
  readonly databaseCpu?: () => number;
  readonly env: Record<string, string>;
  readonly report: DialectReport;
  readonly run: (id: string, label: string, job: Job, pid: number, databaseCpu?: () => number) => Promise<Scenario>;
  readonly warmJob: (url: string, ca: string, expect: LoadJob['expect'], extra?: Partial<Job>) => Job;
  readonly coldJob: (url: string, ca: string) => Job;
  readonly labels: Record<'warm' | 'half' | 'cold' | 'warmLarge' | 'coldLarge', string>;
}

async function benchDialect(d: DialectRun): Promise<void> {
  const { dialect, settings, dist, report } = d;
  // Every measured run of this dialect also reads its database's CPU, where the bench can.
  const run = (id: string, label: string, job: Job, pid: number) => d.run(id, label, job, pid, d.databaseCpu);
  const dataDir = join(d.tmp, dialect);
  mkdirSync(dataDir, { recursive: true });
  const storeUrl = d.database ?? join(dataDir, 'tollgate.db');
  const auditDb = d.database === undefined ? { sqliteFile: storeUrl } : { postgresUrl: d.database };
  let serverRuns = 0;
  const start = async (): Promise<Tollgate> => {
    serverRuns++;
    const prof = settings.cpuProfDir === undefined || serverRuns === 1 ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(settings.cpuProfDir, dialect)}`];
    return startTollgate({ root: d.root, dataDir, logFile: join(dataDir, `server-${serverRuns}.log`), env: d.env, nodeFlags: prof, ...(d.database === undefined ? {} : { database: d.database }) });
  };
  /** Runs scenarios on a server; afterwards every answered review must have its audit entry. */
  const measured = async (what: string, body: (server: Tollgate) => Promise<Scenario[]>): Promise<number> => {
    const before = await countAuditRows(auditDb);
    const server = await start();
    let rss = Number.NaN;
    let answered = 0;
    try {
      const done = await body(server);
      answered = done.reduce((n, s) => n + (s.result?.requests ?? 0) + (s.warmup?.requests ?? 0), 0);
      rss = server.peakRssMB();
    } finally {
      await server.stop();
    }
    const stored = (await countAuditRows(auditDb)) - before;
    // One entry per admission decision today; more would not be a loss, fewer is.
    if (stored < answered) report.auditProblems.push(`${what}: ${answered} decisions answered, only ${stored} audit entries stored`);
    out(`  ${dialect} ${what}: peak RSS ${fmt(rss, 1)} MB; ${fmt(stored)} decision audit entries stored for ${fmt(answered)} answers`);
    return rss;
  };

  // 1. Shape the store through the APIs, then bulk-load the cold pool with the server stopped.
  let t = Date.now();
  const setup = await start();
  try {
    await seedThroughApi(setup, d.build, d.warm);
  } finally {
    await setup.stop();
  }
  let delegation: string;
  const store = await dist.openStore(storeUrl);
  try {
    ({ delegation } = await checkShapes(store, d.build, d.warm[0] as Attestation));
    const n = await insertAttestations(store, d.pool);
    await settleAfterBulkLoad(auditDb);
    out(`${dialect}: note, attestor, policy and ${d.warm.length} warm attestations through the APIs; ${fmt(n)} cold-pool attestations into the store; ${since(t)}`);
  } finally {
    await store.close();
  }

  // 2. (a) warm, (a) at half load, (b) cold — one server.
  report.rssSmallMB = await measured('server for (a) and (b)', async (server) => {
    const warm = await run(`${dialect}-warm`, d.labels.warm, d.warmJob(server.webhookUrl, server.ca, 'policy'), server.pid);
    const rate = Math.max(50, Math.round((warm.result?.perSecond ?? 1000) / 2));
    const halfJob = d.warmJob(server.webhookUrl, server.ca, 'policy', openLoop(rate, 1_000_000, settings.durationMs));
    const half = await run(`${dialect}-half`, d.labels.half.replace('50% load', `50% load, ${fmt(rate)}/s`), halfJob, server.pid);
    const cold = await run(`${dialect}-cold`, d.labels.cold, d.coldJob(server.webhookUrl, server.ca), server.pid);
    return [warm, half, cold];
  });

  // 3. The background: 1 000 attestors, 100 000 attestations; then (c) on a fresh server.
  t = Date.now();
  const big = await dist.openStore(storeUrl);
  try {
    await insertBackground(big, d.background, delegation);
    await settleAfterBulkLoad(auditDb);
    report.seedSeconds = (Date.now() - t) / 1000;
    out(`${dialect}: ${fmt(d.background.attestations.length)} attestations and ${d.background.keys.length} more attestors (with notes) into the store in ${since(t)}`);
  } finally {
    await big.close();
  }
  report.rssLargeMB = await measured('server for (c)', async (server) => {
    // Warm first: the JIT and the warm images' cache, as (b) had them after (a).
    const warm = await run(`${dialect}-warmLarge`, d.labels.warmLarge, d.warmJob(server.webhookUrl, server.ca, 'policy'), server.pid);
    const cold = await run(`${dialect}-coldLarge`, d.labels.coldLarge, d.coldJob(server.webhookUrl, server.ca), server.pid);
    return [warm, cold];
  });
}

// ---------------------------------------------------------------------------------------------
// Summary

function summarize(settings: Settings, scenarios: readonly Scenario[], dialects: readonly DialectReport[], started: number): number {
  const get = (id: string) => scenarios.find((s) => s.id === id)?.result;
  const transport = get('floor-transport');
  const coldFloor = get('floor-cold');
  interface Ratio {
    readonly name: string;
    readonly value: number;
    readonly target: string;
    readonly pass: boolean;
  }
  const ratios: Ratio[] = [];
  for (const d of dialects) {
    const warm = get(`${d.dialect}-warm`);
    const half = get(`${d.dialect}-half`);
    const cold = get(`${d.dialect}-cold`);
    const coldLarge = get(`${d.dialect}-coldLarge`);
    if (warm !== undefined && transport !== undefined) {
      const v = warm.perSecond / transport.perSecond;
      ratios.push({ name: `${d.dialect}: warm / transport floor`, value: v, target: '>= 0.60', pass: v >= 0.6 });
    }
    if (cold !== undefined && coldFloor !== undefined) {
      const v = cold.perSecond / coldFloor.perSecond;
      ratios.push({ name: `${d.dialect}: (b) every image new / cold floor`, value: v, target: '>= 0.60', pass: v >= 0.6 });
    }
    if (cold !== undefined && coldLarge !== undefined) {
      const v = cold.perSecond / coldLarge.perSecond;
      ratios.push({ name: `${d.dialect}: (b) / (c) decisions/s (big store slowdown)`, value: v, target: '<= 1.20', pass: v <= 1.2 });
    }
    if (half !== undefined) ratios.push({ name: `${d.dialect}: p99 at 50% of warm load (ms)`, value: half.p99, target: '< 5', pass: half.p99 < 5 });
    const rss = Math.max(d.rssSmallMB ?? Number.NaN, d.rssLargeMB ?? Number.NaN);
    if (Number.isFinite(rss)) ratios.push({ name: `${d.dialect}: server peak RSS (MB)`, value: rss, target: '< 200', pass: rss < 200 });
  }

  const errors = scenarios.reduce((n, s) => n + (s.result?.errors ?? 0) + (s.warmup?.errors ?? 0), 0);
  const wrong = scenarios.reduce((n, s) => n + (s.result?.wrong ?? 0) + (s.warmup?.wrong ?? 0), 0);
  const failed = scenarios.filter((s) => s.failed !== undefined);
  const auditProblems = dialects.flatMap((d) => d.auditProblems);

  out('\n=== Results ===');
  for (const s of scenarios) out(scenarioLine(s));
  out('\n=== Targets (ratios from this run; informative, they do not set the exit code) ===');
  for (const r of ratios) out(`${r.name.padEnd(50)} ${fmt(r.value, 2).padStart(8)}  target ${r.target.padEnd(8)} ${r.pass ? 'PASS' : 'MISS'}`);
  const floorHalf = get('floor-half');
  const atRates = dialects.flatMap((d) => {
    const f = get(`floor-${d.dialect}-half`);
    return f === undefined ? [] : [`at ${d.dialect}'s 50% rate ${fmt(f.p99, 2)} ms`];
  });
  if (floorHalf !== undefined) out(`(for the p99 targets: the transport floor's own p99 at 50% of its load was ${fmt(floorHalf.p99, 2)} ms${atRates.length > 0 ? `; ${atRates.join(', ')}` : ''})`);
  out('\n=== Correctness ===');
  out(`${errors} errors, ${wrong} wrong verdicts, ${failed.length} scenarios failed, ${auditProblems.length} audit-count problems`);
  for (const p of auditProblems) out(`  audit: ${p}`);
  for (const s of failed) out(`  failed: ${s.label}: ${s.failed}`);
  const ok = errors === 0 && wrong === 0 && failed.length === 0 && auditProblems.length === 0;
  out(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  out(`${ok ? 'OK' : 'FAILED'} in ${since(started)}`);

  const json = {
    mode: settings.short ? 'short' : 'full',
    machine: { cores: availableParallelism(), node: process.version, loadavgAtEnd: loadavg() },
    connections: settings.connections,
    durationMs: settings.durationMs,
    scenarios: scenarios.map((s) => ({ id: s.id, label: s.label, ...(s.skipped === undefined ? {} : { skipped: s.skipped }), ...(s.failed === undefined ? {} : { failed: s.failed }), ...(s.result === undefined ? {} : { result: { ...s.result, samples: undefined }, cpuUsPerReview: s.cpuUs, mainThreadCpuUsPerReview: s.mainCpuUs, mainThreadBusy: s.mainBusy, ...(s.dbCpuUs === undefined ? {} : { databaseCpuUsPerReview: s.dbCpuUs }) }), ...(s.warmup === undefined ? {} : { warmup: { requests: s.warmup.requests, errors: s.warmup.errors, wrong: s.warmup.wrong } }) })),
    ratios,
    dialects,
    errors,
    wrong,
    ok,
  };
  if (settings.jsonFile !== undefined) writeFileSync(settings.jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
