/**
 * The processes the bench starts: a real `tollgate serve --webhook-listen` (the built binary, as
 * users run it), the floor servers, and the load generator. Each is a child process; the bench
 * ends only what it started, by pid.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadJob, LoadResult } from './load.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Peak resident set size (VmHWM) of a live process, in MB (10^6 bytes, as the target is stated). */
export function peakRssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  if (m === null) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return (Number(m[1]) * 1024) / 1e6;
}

/** CPU time (user + system) a live process has used, in seconds (Linux clock ticks: 1/100 s). */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/**
 * CPU time of a live process's main thread only (its event loop, where JavaScript runs), in
 * seconds: the thread whose id is the process id. Next to the wall time it says whether the
 * event loop, rather than the machine's cores, is what limits a scenario.
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // pid (comm) state ppid … utime is field 14, stime 15; comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface Tollgate {
  readonly pid: number;
  readonly url: string;
  readonly webhookUrl: string;
  readonly ca: string;
  readonly adminToken: string;
  /** Server output so far (stdout and stderr go to a file, so a chatty server never blocks on a pipe). */
  log(): string;
  peakRssMB(): number;
  stop(): Promise<void>;
}

export interface TollgateOptions {
  readonly root: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly database?: string;
  readonly env?: Record<string, string>;
  /** Node flags for the server (e.g. `--cpu-prof --cpu-prof-dir=DIR`). */
  readonly nodeFlags?: readonly string[];
}

export async function startTollgate(opts: TollgateOptions): Promise<Tollgate> {
  const bin = join(opts.root, 'dist', 'cli', 'main.js');
  // Default settings except `--audit-log off`: decision entries are still stored (group commits);
  // only their copy on stdout is off, so the log file is not flooded.
  const args = [...(opts.nodeFlags ?? []), bin, 'serve', '--data-dir', opts.dataDir, '--listen', '127.0.0.1:0', '--webhook-listen', '127.0.0.1:0', '--audit-log', 'off', ...(opts.database === undefined ? [] : ['--database', opts.database])];
  const fd = openSync(opts.logFile, 'w');
  const child = spawn(process.execPath, args, { cwd: opts.root, env: { ...process.env, ...opts.env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const log = () => (existsSync(opts.logFile) ? readFileSync(opts.logFile, 'utf8') : '');
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  let webhookUrl: string | undefined;
  while (url === undefined || webhookUrl === undefined) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`tollgate serve exited (${child.exitCode ?? child.signalCode}):\n${log().slice(-3000)}`);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`tollgate serve did not start within 60 s:\n${log().slice(-3000)}`);
    }
    await sleep(25);
    const text = log();
    url = /Tollgate is listening on (\S+)/.exec(text)?.[1];
    webhookUrl = /Admission webhook is listening on (\S+)/.exec(text)?.[1];
  }
  const pid = child.pid as number;
  return {
    pid,
    url,
    webhookUrl,
    ca: readFileSync(join(opts.dataDir, 'webhook', 'ca.crt'), 'utf8'),
    adminToken: readFileSync(join(opts.dataDir, 'admin-token'), 'utf8').trim(),
    log,
    peakRssMB: () => peakRssMB(pid),
    stop: () => stopChild(child),
  };
}

export interface Floor {
  readonly pid: number;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startFloor(script: string, cert: string, key: string, verify: boolean): Promise<Floor> {
  const child = spawn(process.execPath, [script, '--cert', cert, '--key', key, ...(verify ? ['--verify'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('floor server did not start within 20 s')), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`floor server exited with ${code}`));
    });
  });
  child.stdout?.resume();
  return { pid: child.pid as number, url: `https://127.0.0.1:${port}`, stop: () => stopChild(child, 5_000) };
}

/** The load generator child; runs one job at a time. */
export class LoadGenerator {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();

  constructor(script: string) {
    this.child = fork(script, ['--load-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (msg: { type: 'result'; id: number; result: LoadResult } | { type: 'failed'; id: number; error: string }) => {
      const w = this.waiting.get(msg.id);
      if (w === undefined) return;
      this.waiting.delete(msg.id);
      if (msg.type === 'result') w.resolve(msg.result);
      else w.reject(new Error(`load generator failed: ${msg.error}`));
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`load generator exited with ${code}`));
      this.waiting.clear();
    });
  }

  run(job: LoadJob): Promise<LoadResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ type: 'run', id, job });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
