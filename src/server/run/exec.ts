/**
 * The `exec` runtime: `--run-runtime-exec CMD` runs CMD (through `/bin/sh -c`) once per admitted
 * revision, with the revision as one JSON document on stdin (AdmittedRevision, `action: "deploy"`),
 * and once per deleted service (RemovedService, `action: "delete"`). The environment also carries
 * TOLLGATE_RUN_ACTION, TOLLGATE_RUN_PROJECT, TOLLGATE_RUN_REGION, TOLLGATE_RUN_SERVICE and (deploy)
 * TOLLGATE_RUN_REVISION.
 *
 * - deploy: exit 0 and print the URL the revision serves at as the last non-empty line of stdout
 *   (http:// or https://). Anything else fails the revision; the message is the command's stderr
 *   (or why the output was not usable).
 * - delete: exit 0 once whatever ran the service is gone. A non-zero exit fails the deletion, so
 *   Tollgate never says a service is gone while something may still run it.
 * - Every call is bounded (`timeoutMs`, default 5 minutes): the command and everything it started
 *   in its process group is killed, and the call fails.
 */
import { spawn } from 'node:child_process';
import { RuntimeFailure, type AdmittedRevision, type RemovedService, type RunRuntime } from './runtime.js';

const MAX_OUTPUT = 64 * 1024;
export const DEFAULT_EXEC_TIMEOUT_MS = 300_000;

export interface ExecRuntimeOptions {
  readonly command: string;
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
}

interface ExecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export function execRuntime(opts: ExecRuntimeOptions): RunRuntime {
  if (opts.command.trim() === '') throw new Error('the exec runtime needs a command (--run-runtime-exec CMD)');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;

  function call(input: AdmittedRevision | RemovedService): Promise<ExecResult> {
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...opts.env,
      TOLLGATE_RUN_ACTION: input.action,
      TOLLGATE_RUN_PROJECT: input.project,
      TOLLGATE_RUN_REGION: input.region,
      TOLLGATE_RUN_SERVICE: input.service,
      ...(input.action === 'deploy' ? { TOLLGATE_RUN_REVISION: input.revision } : {}),
    };
    return new Promise((resolve) => {
      // Its own process group, so a timeout also kills what the command started.
      const child = spawn('/bin/sh', ['-c', opts.command], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const take = (current: string, chunk: Buffer) => (current.length >= MAX_OUTPUT ? current : (current + chunk.toString('utf8')).slice(0, MAX_OUTPUT));
      child.stdout.on('data', (d: Buffer) => { stdout = take(stdout, d); });
      child.stderr.on('data', (d: Buffer) => { stderr = take(stderr, d); });
      const kill = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: null, signal: null, stdout, stderr: `${stderr}${e.message}`, timedOut });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, timedOut });
      });
      // A command that does not read its stdin closes the pipe early: that is not a failure.
      child.stdin.on('error', () => undefined);
      child.stdin.end(`${JSON.stringify(input)}\n`);
    });
  }

  function failure(what: string, r: ExecResult): RuntimeFailure {
    const err = r.stderr.trim();
    const limit = timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`;
    if (r.timedOut) return new RuntimeFailure(`The runtime command did not finish ${what} within ${limit} and was stopped.${err === '' ? '' : ` Its stderr: ${err}`}`);
    if (err !== '') return new RuntimeFailure(err);
    return new RuntimeFailure(`The runtime command failed ${what} (${r.signal !== null ? `killed by ${r.signal}` : `exit code ${String(r.code)}`}) and wrote nothing to stderr.`);
  }

  return {
    kind: 'exec',
    placeholder: false,
    async deploy(revision) {
      const r = await call(revision);
      if (r.timedOut || r.code !== 0) throw failure(`starting revision ${revision.revision}`, r);
      const lines = r.stdout.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
      const last = lines[lines.length - 1];
      if (last === undefined) throw new RuntimeFailure(`The runtime command started revision ${revision.revision} but printed no URL (it must print the URL as the last line of its output).`);
      let url: URL;
      try {
        url = new URL(last);
      } catch {
        throw new RuntimeFailure(`The runtime command printed "${last.slice(0, 200)}" as its last line, which is not a URL (it must print the http:// or https:// URL the revision serves at).`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RuntimeFailure(`The runtime command printed ${last.slice(0, 200)}, which is not an http:// or https:// URL.`);
      return { url: last };
    },
    async remove(service) {
      const r = await call(service);
      if (r.timedOut || r.code !== 0) throw failure(`removing service ${service.service}`, r);
    },
  };
}
