/**
 * Errors as values. Everything in `core` that reads untrusted input returns a Result instead of
 * throwing, so a malformed policy, key or signature can never surface as a raw TypeError.
 */
export interface Problem {
  /** Stable, machine-readable code (UPPER_SNAKE). */
  readonly code: string;
  /** Human-readable message; for field problems it starts with the field path. */
  readonly message: string;
  /** Dotted field path of the offending value, when there is one (`defaultAdmissionRule.evaluationMode`). */
  readonly path?: string;
}

export type Result<T, E = Problem> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function err<E = Problem>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

export function problem(code: string, message: string, path?: string): Problem {
  return path === undefined ? { code, message } : { code, message, path };
}

/** Runs `fn`, turning anything it throws into a Problem. For wrapping third-party parsers only. */
export function attempt<T>(code: string, what: string, fn: () => T): Result<T> {
  try {
    return ok(fn());
  } catch (e) {
    return err(problem(code, `${what}: ${describeError(e)}`));
  }
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
