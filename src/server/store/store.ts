/**
 * The store: one narrow interface over SQLite (embedded default) and PostgreSQL (replicas).
 * Every Google resource is a document keyed by (kind, name) with a parent for listing, two
 * secondary lookup keys, and a version that increments on every write (etags derive from it,
 * and compare-and-set on it is how concurrent writers never lose an update).
 */
import type { AuditPruneResult } from './audit-prune.js';

export const RESOURCE_KINDS = [
  'project',
  'service',
  'policy',
  'systemPolicy',
  'attestor',
  'note',
  'occurrence',
  'keyRing',
  'cryptoKey',
  'cryptoKeyVersion',
  'iamPolicy',
  'principal',
  'token',
  'runService',
  'runRevision',
] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface StoredResource {
  readonly kind: ResourceKind;
  /** Full resource name, unique within the kind (`projects/p/attestors/a`). */
  readonly name: string;
  /** What the resource is listed under (`projects/p`, `projects/p/locations/l/keyRings/r`, …). */
  readonly parent: string;
  /** Secondary lookup keys; their meaning is per kind (occurrences: k1 note name, k2 image digest). */
  readonly k1: string | null;
  readonly k2: string | null;
  readonly body: JsonObject;
  /** 1 on create, +1 on every update. */
  readonly version: number;
  /** RFC 3339 with microseconds, set by the store. */
  readonly createTime: string;
  readonly updateTime: string;
}

export interface NewResource {
  readonly kind: ResourceKind;
  readonly name: string;
  readonly parent: string;
  readonly k1?: string | null;
  readonly k2?: string | null;
  readonly body: JsonObject;
}

export interface ResourceUpdate {
  readonly body: JsonObject;
  /** Compare-and-set: fail with StoreVersionConflict unless the stored version is this one. */
  readonly expectVersion?: number;
  readonly k1?: string | null;
  readonly k2?: string | null;
}

export interface ListQuery {
  readonly parent?: string;
  readonly k1?: string;
  readonly k2?: string;
  /** Only names strictly greater than this (keyset paging). */
  readonly after?: string;
  /** At most this many, ordered by name. */
  readonly limit: number;
}

export interface AuditRecord {
  /** RFC 3339 time of the event. */
  readonly time: string;
  readonly project: string;
  /** `admin_activity`, `policy_decision`, `system_event`, … */
  readonly logId: string;
  /** The whole LogEntry-shaped document. */
  readonly entry: JsonObject;
}

/**
 * An audit record whose entry was serialized when it was recorded (the decision audit writer does
 * this, so its buffer holds one string per entry instead of an object graph). `entryJson` must be
 * `JSON.stringify` of a JSON object; the store writes it as is.
 */
export interface EncodedAuditRecord {
  readonly time: string;
  readonly project: string;
  readonly logId: string;
  readonly entryJson: string;
}

export interface StoredAuditRecord extends AuditRecord {
  readonly seq: number;
}

export interface AuditQuery {
  readonly projects?: readonly string[];
  readonly since?: string;
  readonly until?: string;
  readonly beforeSeq?: number;
  readonly limit: number;
}

/** Operations available inside and outside a transaction. */
export interface StoreOps {
  get(kind: ResourceKind, name: string): Promise<StoredResource | undefined>;
  list(kind: ResourceKind, query: ListQuery): Promise<StoredResource[]>;
  /**
   * Rows of `kind` whose k1 is `k1` and whose k2 is one of `k2s`, ordered by k2 then name (bytes),
   * at most `limit`: the lookups of several digests under one note at once (one round trip on
   * PostgreSQL, one indexed lookup per key on SQLite).
   */
  listByK2s(kind: ResourceKind, k1: string, k2s: readonly string[], limit: number): Promise<StoredResource[]>;
  /** Throws StoreAlreadyExists. */
  create(resource: NewResource): Promise<StoredResource>;
  /** Throws StoreNotFound or StoreVersionConflict. */
  update(kind: ResourceKind, name: string, update: ResourceUpdate): Promise<StoredResource>;
  /** Returns whether something was deleted. */
  delete(kind: ResourceKind, name: string): Promise<boolean>;
  appendAudit(records: readonly (AuditRecord | EncodedAuditRecord)[]): Promise<void>;
  /** Newest first. */
  queryAudit(query: AuditQuery): Promise<StoredAuditRecord[]>;
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
}

export interface Store extends StoreOps {
  readonly dialect: 'sqlite' | 'postgres';
  /** Runs fn atomically: every write inside commits together or not at all. */
  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T>;
  /**
   * A mark that changes whenever any resource is created, updated or deleted, by this process or
   * any other sharing the database (replicas), and only once the change is committed. Caches of
   * resources read after the mark was read are valid until it changes; one cheap read.
   */
  changeMark(): Promise<string>;
  /**
   * Removes audit entries (decisions and Admin Activity alike) older than `before` (an RFC 3339
   * time), the oldest first, at most a range of `maxRows` of them per call: call again from
   * `next` while `more` (audit-prune.ts says how the range is found without an index on time).
   */
  pruneAudit(before: string, maxRows: number, from?: number): Promise<AuditPruneResult>;
  /** Cheap round trip, for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreAlreadyExists extends Error {
  constructor(readonly kind: ResourceKind, readonly resourceName: string) {
    super(`${kind} ${resourceName} already exists`);
  }
}

export class StoreNotFound extends Error {
  constructor(readonly kind: ResourceKind, readonly resourceName: string) {
    super(`${kind} ${resourceName} not found`);
  }
}

export class StoreVersionConflict extends Error {
  constructor(readonly kind: ResourceKind, readonly resourceName: string, readonly expected: number, readonly actual: number) {
    super(`${kind} ${resourceName} was changed concurrently (version ${actual}, expected ${expected})`);
  }
}
