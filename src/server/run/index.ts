/** The runtime adapters for Cloud Run-style deploys, and the one factory serve uses. */
import { execRuntime } from './exec.js';
import { noneRuntime } from './none.js';
import type { RunRuntime, RuntimeConfig } from './runtime.js';

export { execRuntime, DEFAULT_EXEC_TIMEOUT_MS } from './exec.js';
export { noneRuntime } from './none.js';
export { RuntimeFailure, type AdmittedRevision, type RemovedService, type RunRuntime, type RuntimeConfig, type RuntimeContainer } from './runtime.js';

/** `--run-runtime none|exec` with `--run-runtime-exec CMD` (and `--run-runtime-timeout` seconds). */
export function createRunRuntime(config: RuntimeConfig): RunRuntime {
  switch (config.kind) {
    case 'none':
      return noneRuntime();
    case 'exec':
      return execRuntime({
        command: config.command,
        ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
        ...(config.env === undefined ? {} : { env: config.env }),
      });
  }
}

/**
 * `--run-runtime none|exec`, `--run-runtime-exec CMD`, `--run-runtime-timeout SECONDS` (flags win
 * over TOLLGATE_RUN_RUNTIME, TOLLGATE_RUN_RUNTIME_EXEC, TOLLGATE_RUN_RUNTIME_TIMEOUT). Throws an
 * Error with a usage message for bad values; `exec` without a command is an error, and a command
 * given alone implies `exec`.
 */
export function parseRunRuntimeConfig(
  flags: { runRuntime?: string; runRuntimeExec?: string; runRuntimeTimeout?: string },
  env: NodeJS.ProcessEnv = {},
): RuntimeConfig {
  const command = flags.runRuntimeExec ?? env['TOLLGATE_RUN_RUNTIME_EXEC'];
  const kind = flags.runRuntime ?? env['TOLLGATE_RUN_RUNTIME'] ?? (command !== undefined && command !== '' ? 'exec' : 'none');
  if (kind !== 'none' && kind !== 'exec') throw new Error(`--run-runtime must be none or exec, not ${kind}`);
  if (kind === 'none') {
    if (command !== undefined && command !== '' && flags.runRuntime !== undefined) throw new Error('--run-runtime-exec needs --run-runtime exec');
    return { kind: 'none' };
  }
  if (command === undefined || command.trim() === '') throw new Error('--run-runtime exec needs --run-runtime-exec CMD');
  const rawTimeout = flags.runRuntimeTimeout ?? env['TOLLGATE_RUN_RUNTIME_TIMEOUT'];
  if (rawTimeout === undefined || rawTimeout === '') return { kind: 'exec', command };
  const seconds = Number(rawTimeout);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new Error(`--run-runtime-timeout must be a number of seconds from 1 to 3600, not ${rawTimeout}`);
  return { kind: 'exec', command, timeoutMs: Math.round(seconds * 1000) };
}
