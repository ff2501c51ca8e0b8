/**
 * Identity and IAM over the store.
 *
 * Principals are store documents `principal` / `principals/{email}` (k1 = `superuser` for
 * superusers, so "is there one?" is one indexed lookup). Tokens are `token` / `tokens/{id}` with
 * k1 = hex SHA-256 of the whole secret and k2 = the principal's email: the secret itself is never
 * stored, and the id is random, not derived from the secret. IAM policies are `iamPolicy`
 * documents named by the resource they are set on.
 *
 * Nothing is cached: every request resolves its token and reads the policies of the resource and
 * its ancestors (one indexed lookup each), so a revoked token or a removed binding takes effect at
 * once on every replica.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ApiError, invalidArgument } from '../errors.js';
import {
  StoreAlreadyExists,
  StoreVersionConflict,
  type Json,
  type JsonObject,
  type Store,
  type StoreOps,
  type StoredResource,
} from '../store/store.js';
import type { Iam, IamBinding, IamPolicy } from './iam.js';
import { memberOf, type Principal } from './principal.js';
import { permissionsOf } from './roles.js';

/** The principal made on first start when the store has no superuser. */
export const BOOTSTRAP_ADMIN_EMAIL = 'admin@tollgate.local';

const SUPERUSER_KEY = 'superuser';
/** Google's limit on members across all bindings of one policy. */
const MAX_MEMBERS = 1500;

// ---------------------------------------------------------------------------------------------
// Principals and tokens
// ---------------------------------------------------------------------------------------------

export interface PrincipalRecord extends Principal {
  /** `principals/{email}` */
  readonly name: string;
  readonly description?: string;
  readonly createTime: string;
}

export interface TokenRecord {
  /** `tokens/{id}` */
  readonly name: string;
  readonly id: string;
  /** The email of the principal the token acts as. */
  readonly principal: string;
  readonly expireTime?: string;
  readonly description?: string;
  readonly createTime: string;
}

const EMAIL = /^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*$/;

/** Lowercased email, or INVALID_ARGUMENT. */
export function normalizeEmail(email: unknown, what = 'email'): string {
  if (typeof email !== 'string' || email === '') throw invalidArgument(`${what}: required`);
  const e = email.trim().toLowerCase();
  if (e.length > 254 || !EMAIL.test(e)) throw invalidArgument(`${what}: "${email}" is not a valid email address`);
  return e;
}

export function principalName(email: string): string {
  return `principals/${email}`;
}

export function tokenName(id: string): string {
  return `tokens/${id}`;
}

/** Hex SHA-256 of the whole secret: what the store keeps instead of the secret. */
export function hashTokenSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** `tg_` + 43 characters of base64url (32 random bytes). */
function newSecret(): string {
  return `tg_${randomBytes(32).toString('base64url')}`;
}

/** A random id (16 hex digits), independent of the secret. */
function newTokenId(): string {
  return randomBytes(8).toString('hex');
}

function toPrincipalRecord(r: StoredResource): PrincipalRecord {
  const b = r.body;
  return {
    name: r.name,
    type: b['type'] === 'serviceAccount' ? 'serviceAccount' : 'user',
    email: String(b['email']),
    superuser: b['superuser'] === true,
    ...(typeof b['description'] === 'string' ? { description: b['description'] } : {}),
    createTime: r.createTime,
  };
}

function toTokenRecord(r: StoredResource): TokenRecord {
  const b = r.body;
  return {
    name: r.name,
    id: r.name.slice('tokens/'.length),
    principal: String(b['principal']),
    ...(typeof b['expireTime'] === 'string' ? { expireTime: b['expireTime'] } : {}),
    ...(typeof b['description'] === 'string' ? { description: b['description'] } : {}),
    createTime: r.createTime,
  };
}

export interface NewPrincipal {
  readonly email: string;
  readonly type: 'user' | 'serviceAccount';
  readonly superuser?: boolean;
  readonly description?: string;
}

/** Creates a principal; ALREADY_EXISTS if one with that email exists. */
export async function createPrincipal(store: StoreOps, p: NewPrincipal): Promise<PrincipalRecord> {
  const email = normalizeEmail(p.email);
  if (p.type !== 'user' && p.type !== 'serviceAccount') throw invalidArgument(`type: must be user or serviceAccount, not ${String(p.type)}`);
  if (p.description !== undefined && (typeof p.description !== 'string' || p.description.length > 1024)) {
    throw invalidArgument('description: must be a string of at most 1024 characters');
  }
  const superuser = p.superuser === true;
  const body: JsonObject = { type: p.type, email, superuser, ...(p.description === undefined ? {} : { description: p.description }) };
  try {
    return toPrincipalRecord(await store.create({ kind: 'principal', name: principalName(email), parent: '', k1: superuser ? SUPERUSER_KEY : null, body }));
  } catch (e) {
    if (e instanceof StoreAlreadyExists) throw new ApiError('ALREADY_EXISTS', `Principal ${email} already exists`);
    throw e;
  }
}

export async function getPrincipal(store: StoreOps, email: string): Promise<PrincipalRecord | undefined> {
  const r = await store.get('principal', principalName(email.toLowerCase()));
  return r === undefined ? undefined : toPrincipalRecord(r);
}

/** Principals ordered by name, at most `limit`, after the name `after`. */
export async function listPrincipals(store: StoreOps, q: { limit: number; after?: string | undefined }): Promise<PrincipalRecord[]> {
  const rows = await store.list('principal', { limit: q.limit, ...(q.after === undefined ? {} : { after: q.after }) });
  return rows.map(toPrincipalRecord);
}

/**
 * Deletes a principal and every token it holds, atomically. Refuses (FAILED_PRECONDITION) to
 * delete the last superuser. Returns false when there was no such principal. IAM bindings naming
 * the principal are left as they are (they grant nothing while the principal does not exist).
 */
export async function deletePrincipal(store: Store, email: string): Promise<boolean> {
  const name = principalName(email.toLowerCase());
  return store.transaction(async (tx) => {
    const existing = await tx.get('principal', name);
    if (existing === undefined) return false;
    if (existing.k1 === SUPERUSER_KEY) {
      const supers = await tx.list('principal', { k1: SUPERUSER_KEY, limit: 2 });
      if (supers.length < 2) throw new ApiError('FAILED_PRECONDITION', `Principal ${existing.body['email'] as string} is the last superuser and cannot be deleted`);
    }
    for (;;) {
      const tokens = await tx.list('token', { k2: String(existing.body['email']), limit: 500 });
      for (const t of tokens) await tx.delete('token', t.name);
      if (tokens.length < 500) break;
    }
    return tx.delete('principal', name);
  });
}

export interface NewToken {
  /** The principal's email. */
  readonly principal: string;
  /** RFC 3339; none means the token does not expire. */
  readonly expireTime?: string;
  readonly description?: string;
}

/**
 * Issues a token for an existing principal (NOT_FOUND otherwise). The secret is returned here
 * only; the store keeps its hash.
 */
export async function issueToken(store: StoreOps, t: NewToken): Promise<{ token: TokenRecord; secret: string }> {
  const email = normalizeEmail(t.principal, 'principal');
  if ((await store.get('principal', principalName(email))) === undefined) throw new ApiError('NOT_FOUND', `Principal ${email} not found`);
  return writeToken(store, email, t);
}

async function writeToken(store: StoreOps, email: string, t: NewToken): Promise<{ token: TokenRecord; secret: string }> {
  if (t.expireTime !== undefined && Number.isNaN(Date.parse(t.expireTime))) throw invalidArgument(`expireTime: "${t.expireTime}" is not an RFC 3339 time`);
  if (t.description !== undefined && (typeof t.description !== 'string' || t.description.length > 1024)) {
    throw invalidArgument('description: must be a string of at most 1024 characters');
  }
  const secret = newSecret();
  const body: JsonObject = {
    principal: email,
    ...(t.expireTime === undefined ? {} : { expireTime: t.expireTime }),
    ...(t.description === undefined ? {} : { description: t.description }),
  };
  const r = await store.create({ kind: 'token', name: tokenName(newTokenId()), parent: principalName(email), k1: hashTokenSecret(secret), k2: email, body });
  return { token: toTokenRecord(r), secret };
}

/** Tokens (never their secrets), ordered by name; only those of `principal` when given. */
export async function listTokens(store: StoreOps, q: { principal?: string | undefined; limit: number; after?: string | undefined }): Promise<TokenRecord[]> {
  const rows = await store.list('token', {
    limit: q.limit,
    ...(q.principal === undefined ? {} : { k2: q.principal.toLowerCase() }),
    ...(q.after === undefined ? {} : { after: q.after }),
  });
  return rows.map(toTokenRecord);
}

export async function getToken(store: StoreOps, id: string): Promise<TokenRecord | undefined> {
  const r = await store.get('token', tokenName(id));
  return r === undefined ? undefined : toTokenRecord(r);
}

/** Revokes (deletes) a token; false when there was none. Effective at once everywhere. */
export async function revokeToken(store: StoreOps, id: string): Promise<boolean> {
  return store.delete('token', tokenName(id));
}

/**
 * On first start: when the store holds no superuser, creates `admin@tollgate.local` (a superuser)
 * with a non-expiring token and returns the token's secret. Otherwise returns undefined. Two
 * replicas starting together race on the principal's create; the loser returns undefined.
 */
export async function bootstrapAdminToken(store: Store): Promise<string | undefined> {
  const supers = await store.list('principal', { k1: SUPERUSER_KEY, limit: 1 });
  if (supers.length > 0) return undefined;
  try {
    return await store.transaction(async (tx) => {
      // A principal of that email that is not a superuser (made by hand) blocks bootstrap: the
      // create below then conflicts, and we leave it alone.
      await createPrincipal(tx, { email: BOOTSTRAP_ADMIN_EMAIL, type: 'user', superuser: true, description: 'bootstrap administrator' });
      const { secret } = await writeToken(tx, BOOTSTRAP_ADMIN_EMAIL, { principal: BOOTSTRAP_ADMIN_EMAIL, description: 'bootstrap admin token' });
      return secret;
    });
  } catch (e) {
    if (e instanceof ApiError && e.status === 'ALREADY_EXISTS') return undefined;
    if (e instanceof StoreAlreadyExists) return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Resource hierarchy
// ---------------------------------------------------------------------------------------------

/**
 * The resource followed by its ancestors, nearest first:
 * `…/cryptoKeys/K/cryptoKeyVersions/V` → `…/cryptoKeys/K` → `…/keyRings/R` → `projects/P`;
 * any other `projects/P/…` name (attestors, notes, occurrences, the policy, Cloud Run services)
 * → `projects/P`. Knative-style `namespaces/P/…` names (Cloud Run v1) also inherit from `projects/P`.
 */
export function resourceChain(resource: string): string[] {
  const chain = [resource];
  const segs = resource.split('/');
  if ((segs[0] === 'projects' || segs[0] === 'namespaces') && segs.length >= 2 && segs[1] !== '') {
    const project = `projects/${segs[1] as string}`;
    const ring = segs.indexOf('keyRings');
    if (ring > 0 && segs.length > ring + 1) {
      const key = segs.indexOf('cryptoKeys');
      if (key > ring && segs.length > key + 2) chain.push(segs.slice(0, key + 2).join('/'));
      if (segs.length > ring + 2) chain.push(segs.slice(0, ring + 2).join('/'));
    }
    if (resource !== project) chain.push(project);
  }
  return chain;
}

// ---------------------------------------------------------------------------------------------
// IAM policies
// ---------------------------------------------------------------------------------------------

/**
 * A policy's etag: standard base64 of 8 bytes of SHA-256 over the resource name, the stored
 * version and a random seed fixed when the policy document is created (so a policy deleted with
 * its resource and set again never repeats an old etag). A resource with no policy has version 0
 * and no seed.
 */
export function policyEtag(resource: string, version: number, seed = ''): string {
  return etagBytes(resource, version, seed).toString('base64');
}

function etagBytes(resource: string, version: number, seed: string): Buffer {
  return createHash('sha256').update(`iamPolicy\n${resource}\n${version}\n${seed}`).digest().subarray(0, 8);
}

function seedOf(r: StoredResource): string {
  return typeof r.body['seed'] === 'string' ? r.body['seed'] : '';
}

/** Decodes an etag in either base64 alphabet (gcloud sends the URL-safe one). */
function decodeEtag(etag: string): Buffer {
  const std = etag.trim().replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(std)) throw invalidArgument('policy.etag: not valid base64');
  return Buffer.from(std, 'base64');
}

const MEMBER_EMAIL_TYPES = new Set(['user', 'serviceAccount', 'group']);
const DOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;

/** Validates and normalizes one member string (emails and domains lowercased). */
function normalizeMember(member: unknown, where: string): string {
  if (typeof member !== 'string') throw invalidArgument(`${where}: must be a string`);
  if (member === 'allUsers' || member === 'allAuthenticatedUsers') return member;
  const colon = member.indexOf(':');
  const type = colon < 0 ? '' : member.slice(0, colon);
  const value = colon < 0 ? '' : member.slice(colon + 1).trim().toLowerCase();
  if (MEMBER_EMAIL_TYPES.has(type) && EMAIL.test(value)) return `${type}:${value}`;
  if (type === 'domain' && DOMAIN.test(value)) return `domain:${value}`;
  throw invalidArgument(
    `${where}: invalid member "${member}"; use user:EMAIL, serviceAccount:EMAIL, group:EMAIL, domain:DOMAIN, allUsers or allAuthenticatedUsers`,
  );
}

type Condition = NonNullable<IamBinding['condition']>;

function normalizeCondition(c: unknown, where: string): Condition | undefined {
  if (c === undefined || c === null) return undefined;
  if (typeof c !== 'object' || Array.isArray(c)) throw invalidArgument(`${where}: must be an object`);
  const o = c as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const k of ['expression', 'title', 'description', 'location'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw invalidArgument(`${where}.${k}: must be a string`);
    out[k] = v;
  }
  if (out['expression'] === undefined || out['expression'].trim() === '') throw invalidArgument(`${where}.expression: required`);
  return out;
}

/**
 * Validates a policy and brings it to its stored form: known roles only, valid members,
 * duplicate bindings (same role and condition) merged, members deduplicated, empty bindings
 * dropped; version 3 when a binding has a condition, else 1.
 */
export function normalizePolicy(policy: unknown): { version: number; bindings: IamBinding[] } {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) throw invalidArgument('policy: must be an object');
  const p = policy as Record<string, unknown>;
  const requested = p['version'];
  if (requested !== undefined && requested !== null && requested !== 0 && requested !== 1 && requested !== 3) {
    throw invalidArgument(`policy.version: must be 1 or 3, not ${JSON.stringify(requested)}`);
  }
  const raw = p['bindings'] ?? [];
  if (!Array.isArray(raw)) throw invalidArgument('policy.bindings: must be a list');
  const merged = new Map<string, { role: string; members: Set<string>; condition?: Condition }>();
  let total = 0;
  raw.forEach((b: unknown, i) => {
    const where = `policy.bindings[${i}]`;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw invalidArgument(`${where}: must be an object`);
    const o = b as Record<string, unknown>;
    const role = o['role'];
    if (typeof role !== 'string' || role === '') throw invalidArgument(`${where}.role: required`);
    if (permissionsOf(role) === undefined) throw invalidArgument(`Role ${role} is not supported for this resource.`);
    const members = o['members'] ?? [];
    if (!Array.isArray(members)) throw invalidArgument(`${where}.members: must be a list`);
    const condition = normalizeCondition(o['condition'], `${where}.condition`);
    const key = `${role}\n${JSON.stringify(condition ?? null)}`;
    let entry = merged.get(key);
    if (entry === undefined) {
      entry = { role, members: new Set(), ...(condition === undefined ? {} : { condition }) };
      merged.set(key, entry);
    }
    members.forEach((m: unknown, j) => {
      const n = normalizeMember(m, `${where}.members[${j}]`);
      if (!entry.members.has(n)) total++;
      entry.members.add(n);
    });
  });
  if (total > MAX_MEMBERS) throw invalidArgument(`policy: a policy may have at most ${MAX_MEMBERS} members, this one has ${total}`);
  const bindings: IamBinding[] = [...merged.values()]
    .filter((b) => b.members.size > 0)
    .map((b) => ({ role: b.role, members: [...b.members], ...(b.condition === undefined ? {} : { condition: b.condition }) }));
  const hasConditions = bindings.some((b) => b.condition !== undefined);
  if (hasConditions && (requested === 1 || requested === 0)) {
    throw invalidArgument('policy.version: a policy with conditional bindings must be version 3');
  }
  return { version: hasConditions ? 3 : 1, bindings };
}

function storedBindings(r: StoredResource | undefined): IamBinding[] {
  const raw = r?.body['bindings'];
  return Array.isArray(raw) ? (raw as unknown as IamBinding[]) : [];
}

function policyFrom(resource: string, r: StoredResource | undefined): IamPolicy {
  if (r === undefined) return { version: 1, etag: policyEtag(resource, 0) };
  const bindings = storedBindings(r);
  const version = typeof r.body['version'] === 'number' ? r.body['version'] : 1;
  return { version, ...(bindings.length > 0 ? { bindings } : {}), etag: policyEtag(resource, r.version, seedOf(r)) };
}

function parentOf(resource: string): string {
  return resourceChain(resource)[1] ?? '';
}

// ---------------------------------------------------------------------------------------------
// The Iam implementation
// ---------------------------------------------------------------------------------------------

function permissionDenied(permission: string, resource: string): ApiError {
  return new ApiError('PERMISSION_DENIED', `Permission '${permission}' denied on resource '${resource}' (or it may not exist).`);
}

/**
 * Whether a binding's member list applies to `member`. `allUsers` matches everyone;
 * `allAuthenticatedUsers` every principal (and itself); `domain:D` users whose email is in D.
 * Groups have no membership in Tollgate, so `group:` members match nothing.
 */
function memberMatches(bindingMembers: readonly string[], member: string): boolean {
  for (const m of bindingMembers) {
    if (m === member || m === 'allUsers') return true;
    if (m === 'allAuthenticatedUsers' && member !== 'allUsers') return true;
    if (m.startsWith('domain:') && member.startsWith('user:') && member.endsWith(`@${m.slice('domain:'.length)}`)) return true;
  }
  return false;
}

export function createIam(store: Store): Iam {
  /**
   * The subset of `permissions` that `member` holds on `resource` through bindings on it or its
   * ancestors. Bindings with a condition are not honoured (fail closed): Tollgate stores them so
   * policies round-trip, but does not evaluate CEL.
   */
  async function held(member: string, permissions: readonly string[], resource: string): Promise<Set<string>> {
    const out = new Set<string>();
    if (permissions.length === 0) return out;
    const wanted = new Set(permissions);
    for (const name of resourceChain(resource)) {
      const doc = await store.get('iamPolicy', name);
      for (const b of storedBindings(doc)) {
        if (b.condition !== undefined) continue;
        const perms = permissionsOf(b.role);
        if (perms === undefined || !memberMatches(b.members, member)) continue;
        for (const p of wanted) if (perms.has(p)) out.add(p);
      }
      for (const p of out) wanted.delete(p);
      if (wanted.size === 0) break;
    }
    return out;
  }

  /** A member naming a superuser principal holds everything. */
  async function isSuperuserMember(member: string): Promise<boolean> {
    const m = /^(user|serviceAccount):(.+)$/.exec(member);
    if (m === null) return false;
    const r = await store.get('principal', principalName((m[2] as string).toLowerCase()));
    return r !== undefined && r.body['type'] === m[1] && r.body['superuser'] === true;
  }

  function normalizeQueryMember(member: string): string {
    const colon = member.indexOf(':');
    return colon < 0 ? member : `${member.slice(0, colon)}:${member.slice(colon + 1).toLowerCase()}`;
  }

  return {
    async authenticate(token: string): Promise<Principal | undefined> {
      if (token === '' || token.length > 512) return undefined;
      const [t] = await store.list('token', { k1: hashTokenSecret(token), limit: 1 });
      if (t === undefined) return undefined;
      const expire = t.body['expireTime'];
      if (typeof expire === 'string' && Date.now() > Date.parse(expire)) return undefined;
      const p = await store.get('principal', principalName(String(t.body['principal'])));
      if (p === undefined) return undefined;
      const r = toPrincipalRecord(p);
      return { type: r.type, email: r.email, superuser: r.superuser };
    },

    async require(principal: Principal, permission: string, resource: string): Promise<void> {
      if (principal.superuser) return;
      const got = await held(memberOf(principal), [permission], resource);
      if (!got.has(permission)) throw permissionDenied(permission, resource);
    },

    async memberHas(member: string, permission: string, resource: string): Promise<boolean> {
      const m = normalizeQueryMember(member);
      if ((await held(m, [permission], resource)).has(permission)) return true;
      return isSuperuserMember(m);
    },

    async testPermissions(principal: Principal, permissions: readonly string[], resource: string): Promise<string[]> {
      if (principal.superuser) return [...new Set(permissions)];
      const got = await held(memberOf(principal), permissions, resource);
      return [...new Set(permissions)].filter((p) => got.has(p));
    },

    async getPolicy(resource: string): Promise<IamPolicy> {
      return policyFrom(resource, await store.get('iamPolicy', resource));
    },

    async setPolicy(resource: string, policy: IamPolicy): Promise<IamPolicy> {
      const { version, bindings } = normalizePolicy(policy);
      const current = await store.get('iamPolicy', resource);
      const seed = current === undefined ? randomBytes(8).toString('hex') : seedOf(current);
      const body: JsonObject = { version, bindings: bindings as unknown as Json[], seed };
      if (policy.etag !== undefined && policy.etag !== null && policy.etag !== '') {
        const expected = current === undefined ? etagBytes(resource, 0, '') : etagBytes(resource, current.version, seedOf(current));
        if (!decodeEtag(policy.etag).equals(expected)) throw stale(resource);
      }
      try {
        const r =
          current === undefined
            ? await store.create({ kind: 'iamPolicy', name: resource, parent: parentOf(resource), body })
            : await store.update('iamPolicy', resource, { body, expectVersion: current.version });
        return policyFrom(resource, r);
      } catch (e) {
        if (e instanceof StoreAlreadyExists || e instanceof StoreVersionConflict) throw stale(resource);
        throw e;
      }
    },

    async deletePolicy(resource: string): Promise<void> {
      await store.delete('iamPolicy', resource);
    },
  };
}

function stale(resource: string): ApiError {
  return new ApiError('ABORTED', `The IAM policy of ${resource} was changed concurrently (etag mismatch); read it again and retry.`);
}
