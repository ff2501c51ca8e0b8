/** Helpers every Google API router shares: principals, paging, names, etags, errors. */
import { createHash } from 'node:crypto';
import { ApiError, invalidArgument } from '../errors.js';
import type { RequestContext } from '../http/router.js';
import type { Principal } from '../iam/principal.js';
import { StoreAlreadyExists, StoreNotFound, StoreVersionConflict } from '../store/store.js';

export function principalOf(ctx: RequestContext): Principal {
  if (ctx.principal === undefined) throw new ApiError('UNAUTHENTICATED', 'Request is missing required authentication credential.');
  return ctx.principal;
}

/** `projects/P/…` → `P`. */
export function projectOf(name: string): string {
  const m = /^projects\/([^/]+)/.exec(name);
  if (m === null) throw invalidArgument(`${name} is not a project-scoped resource name`);
  return m[1] as string;
}

export interface Page {
  readonly limit: number;
  readonly after: string | undefined;
}

/**
 * `pageSize` (default 20 unless given, capped at `max`) and `pageToken` (opaque to clients: the
 * base64url of the last name returned, so paging is keyset-based and stable under writes).
 */
export function pageOf(query: URLSearchParams, defaults: { size?: number; max?: number } = {}): Page {
  const max = defaults.max ?? 1000;
  const rawSize = query.get('pageSize') ?? query.get('page_size');
  let limit = defaults.size ?? 20;
  if (rawSize !== null && rawSize !== '') {
    const n = Number(rawSize);
    if (!Number.isInteger(n) || n < 0) throw invalidArgument(`pageSize: must be a non-negative integer, got ${rawSize}`);
    if (n > 0) limit = Math.min(n, max);
  }
  const token = query.get('pageToken') ?? query.get('page_token');
  let after: string | undefined;
  if (token !== null && token !== '') {
    after = Buffer.from(token, 'base64url').toString('utf8');
    if (after === '' || Buffer.from(after, 'utf8').toString('base64url') !== token) throw invalidArgument('pageToken: invalid page token');
  }
  return { limit, after };
}

/** Builds a list response from `limit + 1` rows: the extra row only says that there is a next page. */
export function pageResult<T extends { name: string }>(rows: readonly T[], page: Page): { items: T[]; nextPageToken?: string } {
  if (rows.length <= page.limit) return { items: [...rows] };
  const items = rows.slice(0, page.limit);
  return { items, nextPageToken: Buffer.from((items[items.length - 1] as T).name, 'utf8').toString('base64url') };
}

/** A resource etag derived from its name and version: changes on every write, opaque to clients. */
export function etagOf(name: string, version: number): string {
  return createHash('sha256').update(`${name}#${version}`).digest('base64url').slice(0, 16);
}

/** Maps store exceptions to Google statuses; anything else is re-thrown (INTERNAL at the edge). */
export function storeError(e: unknown, what: string): never {
  if (e instanceof StoreAlreadyExists) throw new ApiError('ALREADY_EXISTS', `${what} already exists`);
  if (e instanceof StoreNotFound) throw new ApiError('NOT_FOUND', `${what} not found`);
  if (e instanceof StoreVersionConflict) throw new ApiError('ABORTED', `${what} was modified concurrently; read it again and retry`);
  throw e;
}

/** A JSON object body, or INVALID_ARGUMENT. */
export async function objectBody(ctx: RequestContext): Promise<Record<string, unknown>> {
  const body = await ctx.json();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidArgument('Invalid JSON payload received: expected an object');
  return body as Record<string, unknown>;
}

/** Reads a field given in lowerCamelCase or its proto snake_case spelling. */
export function field(obj: Record<string, unknown>, camel: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, camel)) return obj[camel];
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return Object.prototype.hasOwnProperty.call(obj, snake) ? obj[snake] : undefined;
}

/** Resource ids as Google's APIs take them in `?xxxId=`: letters, digits, `-` and `_`, 1–100 chars. */
export function requireResourceId(value: string | null, param: string): string {
  if (value === null || value === '') throw invalidArgument(`${param}: required`);
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(value)) throw invalidArgument(`${param}: "${value}" is not a valid id (1-100 letters, digits, '-' or '_')`);
  return value;
}
