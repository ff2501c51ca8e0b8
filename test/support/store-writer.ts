/**
 * Drives test/support/durability-writer.mjs (a child Node process writing through the built
 * store) and checks what it left behind: every acknowledged transaction present, every
 * transaction all-or-nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Store, StoredAuditRecord, StoredResource } from '../../src/server/store/store.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WRITER = join(ROOT, 'test', 'support', 'durability-writer.mjs');
export const DURABILITY_PROJECT = 'projects/durability';
export const DURABILITY_COUNTER = `${DURABILITY_PROJECT}/notes/counter`;

/**
 * The writer imports dist/server/store/*.js. `npm test` builds before vitest runs; when the test
 * runs on its own and dist is missing or older than the store's sources, build first.
 */
export function ensureBuiltStore(): void {
  const pairs = ['sql-store', 'migrations', 'store'].map((m) => [join(ROOT, 'src/server/store', `${m}.ts`), join(ROOT, 'dist/server/store', `${m}.js`)] as const);
  const stale = () => pairs.some(([src, out]) => !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs);
  if (!stale()) return;
  const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  // tsc still emits when other files have type errors; what matters is a fresh store in dist.
  if (stale()) throw new Error(`npm run build did not produce the store in dist/:\n${result.stdout}${result.stderr}`);
}

export interface WriterExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** The `done …` line when the writer finished by itself. */
  readonly done: string | undefined;
}

export interface WriterRun {
  /** Ids whose commit returned, in order. */
  readonly acked: string[];
  /** Resolves once at least n transactions are acknowledged (rejects if the writer exits first). */
  waitForAcks(n: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<WriterExit>;
}

export function startWriter(url: string, writerId: string, transactions: number, concurrency: number): WriterRun {
  const child = spawn(process.execPath, [WRITER, url, writerId, String(transactions), String(concurrency)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: string[] = [];
  let done: string | undefined;
  let stderr = '';
  let buffered = '';
  const waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  const wake = () => {
    for (const w of [...waiters]) {
      if (acked.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('ack ')) acked.push(line.slice(4));
      else if (line.startsWith('done')) done = line;
    }
    wake();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<WriterExit>((resolve) => {
    child.on('close', (code, signal) => {
      // A partial last line was never acknowledged (the process died mid-write): ignore it.
      const exit = { code, signal, stderr, done };
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`writer ${writerId} exited (${String(code ?? signal)}) after ${acked.length} acks, before ${w.n}:\n${stderr}`));
      }
      resolve(exit);
    });
  });
  return {
    acked,
    waitForAcks(n) {
      if (acked.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ n, resolve, reject }));
    },
    kill(signal) {
      child.kill(signal);
    },
    exited,
  };
}

export interface DurabilitySummary {
  readonly count: number;
  readonly occurrences: number;
  readonly audit: number;
}

async function allOccurrences(store: Store): Promise<StoredResource[]> {
  const all: StoredResource[] = [];
  for (let after: string | undefined; ; ) {
    const page = await store.list('occurrence', { parent: DURABILITY_PROJECT, limit: 500, ...(after === undefined ? {} : { after }) });
    if (page.length === 0) return all;
    all.push(...page);
    after = page[page.length - 1]!.name;
  }
}

async function allAudit(store: Store): Promise<StoredAuditRecord[]> {
  const all: StoredAuditRecord[] = [];
  for (let beforeSeq: number | undefined; ; ) {
    const page = await store.queryAudit({ projects: [DURABILITY_PROJECT], limit: 500, ...(beforeSeq === undefined ? {} : { beforeSeq }) });
    if (page.length === 0) return all;
    all.push(...page);
    beforeSeq = page[page.length - 1]!.seq;
  }
}

/**
 * Checks the writers' invariants and returns what is there; throws a descriptive error on the
 * first violation. `acked` are all ids acknowledged so far; at most `inFlight` more may have
 * committed without their acknowledgement being read (killed between commit and print).
 */
export async function checkDurability(store: Store, acked: readonly string[], inFlight: number): Promise<DurabilitySummary> {
  const problems: string[] = [];
  const counter = await store.get('note', DURABILITY_COUNTER);
  if (counter === undefined) throw new Error('the counter is missing');
  const count = counter.body['count'] as number;
  if (counter.version !== count + 1) problems.push(`counter version ${counter.version} != count ${count} + 1: a counter step without its transaction`);

  const occurrences = await allOccurrences(store);
  const audit = await allAudit(store);
  const occById = new Map(occurrences.map((o) => [o.body['id'] as string, o.body['count'] as number]));
  const auditById = new Map(audit.map((a) => [a.entry['id'] as string, a.entry['count'] as number]));

  const expectCounts = Array.from({ length: count }, (_, i) => i + 1).join(',');
  const occCounts = [...occById.values()].sort((a, b) => a - b).join(',');
  const auditCounts = [...auditById.values()].sort((a, b) => a - b).join(',');
  if (occurrences.length !== count || occCounts !== expectCounts) problems.push(`occurrences carry counts [${occCounts.slice(0, 200)}…] (${occurrences.length}), counter is at ${count}`);
  if (audit.length !== count || auditCounts !== expectCounts) problems.push(`audit records carry counts [${auditCounts.slice(0, 200)}…] (${audit.length}), counter is at ${count}`);
  for (const [id, c] of occById) {
    if (auditById.get(id) !== c) problems.push(`occurrence ${id} (count ${c}) has audit ${String(auditById.get(id))}`);
  }
  const lost = acked.filter((id) => !occById.has(id));
  if (lost.length > 0) problems.push(`${lost.length} acknowledged transactions lost: ${lost.slice(0, 10).join(' ')}`);
  const ackedSet = new Set(acked);
  const unacked = [...occById.keys()].filter((id) => !ackedSet.has(id));
  if (unacked.length > inFlight) problems.push(`${unacked.length} committed but unacknowledged transactions, at most ${inFlight} can be in flight: ${unacked.slice(0, 10).join(' ')}`);
  if (problems.length > 0) throw new Error(`durability violated:\n${problems.slice(0, 20).join('\n')}`);
  return { count, occurrences: occurrences.length, audit: audit.length };
}
