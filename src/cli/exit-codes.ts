/** Exit codes every tollgate command uses: scripts gate deploys on them. */
export const EXIT = {
  /** Success, or the deployment is allowed (dry run and breakglass included). */
  OK: 0,
  /** Denied, or a check failed (an invalid policy). */
  DENIED: 1,
  /** Bad input or usage: unreadable file, invalid policy given to evaluate, malformed image. */
  USAGE: 2,
  /** No decision could be had (server unreachable, 401, 403). */
  NO_DECISION: 3,
} as const;

/** Thrown by commands to stop with a message and an exit code; caught once, in main. */
export class CliExit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}
