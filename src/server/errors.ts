/**
 * Google status errors: the one error type the server's edges speak. Handlers throw ApiError;
 * the HTTP layer turns it into `{"error":{"code","message","status"}}` with the right HTTP status.
 */
export const STATUS_HTTP = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
} as const;
export type GoogleStatus = keyof typeof STATUS_HTTP;

export class ApiError extends Error {
  constructor(
    readonly status: GoogleStatus,
    message: string,
    readonly details?: readonly unknown[],
  ) {
    super(message);
  }

  get httpStatus(): number {
    return STATUS_HTTP[this.status];
  }

  toBody(): { error: { code: number; message: string; status: GoogleStatus; details?: readonly unknown[] } } {
    return { error: { code: this.httpStatus, message: this.message, status: this.status, ...(this.details ? { details: this.details } : {}) } };
  }
}

export const invalidArgument = (message: string) => new ApiError('INVALID_ARGUMENT', message);
export const notFound = (message: string) => new ApiError('NOT_FOUND', message);
export const alreadyExists = (message: string) => new ApiError('ALREADY_EXISTS', message);
export const failedPrecondition = (message: string) => new ApiError('FAILED_PRECONDITION', message);
export const permissionDenied = (message: string) => new ApiError('PERMISSION_DENIED', message);
export const aborted = (message: string) => new ApiError('ABORTED', message);
