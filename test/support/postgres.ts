/**
 * A real PostgreSQL server for tests (never a mock). With TOLLGATE_TEST_DATABASE_URL set, each
 * call creates a fresh, uniquely named database on that server and drops it on stop. Otherwise
 * each call starts its own throwaway cluster (initdb into a temp dir, trust auth on 127.0.0.1, a
 * free port), so test files running in parallel never share a server.
 *
 * The throwaway clusters use a non-C collation (ICU en-US), as production databases usually do,
 * so that code depending on byte-order comparisons in SQL is caught by the tests.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** `postgres://…` of a database nobody else uses. */
  readonly url: string;
  /** Stops the cluster and removes its files (or drops the database on an external server). */
  stop(): Promise<void>;
  /**
   * Only for throwaway clusters: SIGKILLs the postmaster and every backend, as a crash would,
   * then starts the cluster again (crash recovery runs) on the same port. Undefined when the
   * server is external (TOLLGATE_TEST_DATABASE_URL).
   */
  readonly crashAndRestart?: () => Promise<void>;
  /**
   * Only for throwaway clusters: CPU time (user + system, in seconds) the cluster's processes
   * have used so far — the postmaster, its live children, and the children it has reaped — so
   * the bench can say what the database costs per review on the machine it shares.
   */
  readonly cpuSeconds?: () => number;
}

export interface StartPostgresOptions {
  /**
   * Keep fsync, synchronous_commit and full_page_writes on (the durability test). By default
   * they are off: tests of behaviour do not need the disk flushes and start faster.
   */
  readonly durable?: boolean;
}

const INSTALL_HINT =
  'PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb. Install the Debian package ' +
  '`postgresql` (`apt-get install -y postgresql`; `.ci/run` installs it), or point ' +
  'TOLLGATE_TEST_DATABASE_URL at a server where the user may CREATE DATABASE.';

export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const external = process.env['TOLLGATE_TEST_DATABASE_URL'];
  if (external !== undefined && external !== '') return createExternalDatabase(external);
  return startCluster(options);
}

// ---------------------------------------------------------------------------------------------
// An existing server: one fresh database per call.

async function createExternalDatabase(serverUrl: string): Promise<TestPostgres> {
  const dbName = `tollgate_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  await adminQuery(serverUrl, `CREATE DATABASE "${dbName}"`);
  const url = new URL(serverUrl);
  url.pathname = `/${dbName}`;
  let stopped = false;
  return {
    url: url.toString(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    },
  };
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// A throwaway cluster per call.

interface Cluster {
  readonly bin: string;
  readonly root: string;
  readonly dataDir: string;
  readonly logFile: string;
  port: number;
  watchdog?: ChildProcess;
}

/** Finds the newest installed PostgreSQL's bin dir (`/usr/lib/postgresql/<major>/bin`). */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const major = majors[0];
  if (major === undefined) throw new Error(INSTALL_HINT);
  return join(base, major, 'bin');
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary as the `postgres` user when we are root (initdb refuses root). */
function runPg(cluster: Pick<Cluster, 'bin'>, tool: string, args: readonly string[], check = true): SpawnSyncReturns<string> {
  const exe = join(cluster.bin, tool);
  const [cmd, argv] = isRoot ? asPostgresUser(exe, args) : [exe, [...args]];
  const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
  if (check && (result.error !== undefined || result.status !== 0)) {
    const why = result.error?.message ?? `exit ${String(result.status ?? result.signal)}`;
    throw new Error(`${tool} ${args.join(' ')} failed (${why}):\n${result.stdout}${result.stderr}`);
  }
  return result;
}

function asPostgresUser(exe: string, args: readonly string[]): [string, string[]] {
  if (existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser')) return ['runuser', ['-u', 'postgres', '--', exe, ...args]];
  const quoted = [exe, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return ['su', ['postgres', '-s', '/bin/sh', '-c', quoted]];
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const fields = line?.split(':');
  if (fields === undefined || fields.length < 4) throw new Error(`no 'postgres' user on this machine. ${INSTALL_HINT}`);
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function startCluster(options: StartPostgresOptions): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const root = mkdtempSync(join(tmpdir(), 'tollgate-pg-'));
  const cluster: Cluster = { bin, root, dataDir: join(root, 'data'), logFile: join(root, 'postgres.log'), port: 0 };
  try {
    if (isRoot) {
      const { uid, gid } = postgresIds();
      chownSync(root, uid, gid);
    }
    // --no-sync only skips flushing the fresh cluster's files once at creation; the server's own
    // fsync setting (below) is what makes commits durable.
    const initdbArgs = ['-D', cluster.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'];
    // ICU en-US where available (PostgreSQL 15+ built with ICU), else a libc locale.
    const localeChoices = [['--locale=C.UTF-8', '--locale-provider=icu', '--icu-locale=en-US'], ['--locale=C.UTF-8'], ['--locale=C']];
    for (const [i, locale] of localeChoices.entries()) {
      const last = i === localeChoices.length - 1;
      if (runPg(cluster, 'initdb', [...initdbArgs, ...locale], last).status === 0) break;
      rmSync(cluster.dataDir, { recursive: true, force: true });
    }
    const settings = [
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''",
      'max_connections = 60',
      'shared_buffers = 32MB',
      ...(options.durable === true
        ? [
            'fsync = on',
            'synchronous_commit = on',
            'full_page_writes = on',
            // Crash recovery flushes the data directory first; syncfs does it in one call (14+).
            ...(Number(bin.split('/').at(-2)) >= 14 ? ['recovery_init_sync_method = syncfs'] : []),
          ]
        : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
    ];
    appendFileSync(join(cluster.dataDir, 'postgresql.conf'), `\n# tollgate test cluster\n${settings.join('\n')}\n`);
    startWatchdog(cluster);
    await startServer(cluster, true);
    const adminUrl = `postgres://postgres@127.0.0.1:${cluster.port}/postgres`;
    await adminQuery(adminUrl, 'CREATE DATABASE tollgate_test');
  } catch (err) {
    stopClusterSync(cluster);
    throw err;
  }
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${cluster.port}/tollgate_test`,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopClusterSync(cluster);
    },
    async crashAndRestart() {
      killClusterProcesses(cluster);
      await startServer(cluster, false);
    },
    cpuSeconds() {
      const pid = postmasterPid(cluster);
      if (pid === undefined) return Number.NaN;
      // A backend that exits moves its time into the postmaster's cutime/cstime when reaped.
      let ticks = statTicks(pid, true);
      for (const child of childrenOf(pid)) ticks += statTicks(child, false);
      return ticks / 100;
    },
  };
}

/** pg_ctl start -w; on a fresh cluster a port taken in the meantime is retried with another. */
async function startServer(cluster: Cluster, pickPort: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (pickPort) cluster.port = await freePort();
    const result = runPg(cluster, 'pg_ctl', ['start', '-w', '-t', '60', '-D', cluster.dataDir, '-l', cluster.logFile, '-o', `-p ${cluster.port}`], false);
    if (result.status === 0) return;
    const log = existsSync(cluster.logFile) ? readFileSync(cluster.logFile, 'utf8') : '';
    const portTaken = /could not bind|Address already in use/.test(log);
    if (!(pickPort && portTaken && attempt < 5)) {
      throw new Error(`pg_ctl start failed (exit ${String(result.status)}):\n${result.stdout}${result.stderr}\n${log.slice(-4000)}`);
    }
    writeFileSync(cluster.logFile, '');
  }
}

function postmasterPid(cluster: Cluster): number | undefined {
  const pidFile = join(cluster.dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** utime + stime of a process (and cutime + cstime, its reaped children's), in clock ticks; 0 once it is gone. */
function statTicks(pid: number, withReaped: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …: utime is field 14, stime 15, cutime 16, cstime 17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (f[11] ?? 0) + (f[12] ?? 0) + (withReaped ? (f[13] ?? 0) + (f[14] ?? 0) : 0);
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}

/** Whether pid is a live process (a zombie waiting to be reaped by whoever adopted it is not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** SIGKILL to the postmaster first (so it cannot restart anything), then to every backend. */
function killClusterProcesses(cluster: Cluster): void {
  const pid = postmasterPid(cluster);
  if (pid === undefined || !alive(pid)) return;
  const backends = childrenOf(pid);
  process.kill(pid, 'SIGKILL');
  for (const child of backends) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 10_000;
  while ([pid, ...backends].some(alive)) {
    if (Date.now() > deadline) throw new Error(`postgres processes ${[pid, ...backends].join(' ')} survived SIGKILL`);
    execFileSync('sleep', ['0.02']);
  }
  // The dead postmaster was adopted by init, which may take its time to reap it; until then its
  // pid still answers kill(0) and the new postmaster would refuse the stale lock file. Everything
  // of the old server is dead (zombies hold no shared memory), so the lock file can go.
  rmSync(join(cluster.dataDir, 'postmaster.pid'), { force: true });
}

function stopClusterSync(cluster: Cluster): void {
  if (existsSync(join(cluster.dataDir, 'postmaster.pid'))) {
    const result = runPg(cluster, 'pg_ctl', ['stop', '-D', cluster.dataDir, '-m', 'immediate', '-w', '-t', '30'], false);
    if (result.status !== 0) killClusterProcesses(cluster);
  }
  rmSync(cluster.root, { recursive: true, force: true });
  cluster.watchdog?.kill('SIGKILL');
}

/**
 * A test process can die without running afterAll (a crash, a timeout, the runner killing its
 * worker): a small detached shell per cluster waits for this process to end, then stops the
 * server and removes its files. stop() ends the watchdog.
 */
function startWatchdog(cluster: Cluster): void {
  const pgCtl = join(cluster.bin, 'pg_ctl');
  const [cmd, argv] = isRoot ? asPostgresUser(pgCtl, []) : [pgCtl, []];
  const script = [
    'owner=$1; data=$2; root=$3; shift 3',
    'while kill -0 "$owner" 2>/dev/null; do sleep 1; done',
    'if [ -f "$data/postmaster.pid" ]; then "$@" stop -D "$data" -m immediate -w -t 30 >/dev/null 2>&1; fi',
    'rm -rf "$root"',
  ].join('\n');
  const watchdog = spawn('sh', ['-c', script, 'tollgate-pg-watchdog', String(process.pid), cluster.dataDir, cluster.root, cmd, ...argv], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  cluster.watchdog = watchdog;
}
