/** The IAM service against a real SQLite store in a temporary file. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import type { Iam } from './iam.js';
import {
  BOOTSTRAP_ADMIN_EMAIL,
  bootstrapAdminToken,
  createIam,
  createPrincipal,
  deletePrincipal,
  getPrincipal,
  hashTokenSecret,
  issueToken,
  listTokens,
  policyEtag,
  resourceChain,
  revokeToken,
} from './iam-service.js';
import type { Principal } from './principal.js';

let dir: string;
let store: Store;
let iam: Iam;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-iam-'));
  store = await openStore(join(dir, 'tollgate.db'));
  iam = createIam(store);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const alice: Principal = { type: 'user', email: 'alice@example.com', superuser: false };
const ci: Principal = { type: 'serviceAccount', email: 'ci@demo.iam.gserviceaccount.com', superuser: false };

async function statusOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof ApiError) return e.status;
    throw e;
  }
}

async function grant(resource: string, role: string, ...members: string[]): Promise<void> {
  const current = await iam.getPolicy(resource);
  await iam.setPolicy(resource, { bindings: [...(current.bindings ?? []), { role, members }], ...(current.etag === undefined ? {} : { etag: current.etag }) });
}

describe('tokens', () => {
  it('issues tg_ secrets that authenticate, stored only as a hash', async () => {
    await createPrincipal(store, { email: 'Alice@Example.com', type: 'user', description: 'Alice' });
    const { token, secret } = await issueToken(store, { principal: 'alice@example.com', description: 'laptop' });
    expect(secret).toMatch(/^tg_[A-Za-z0-9_-]{43}$/);
    expect(token.name).toBe(`tokens/${token.id}`);
    expect(secret).not.toContain(token.id);
    expect(await iam.authenticate(secret)).toEqual({ type: 'user', email: 'alice@example.com', superuser: false });
    expect(await iam.authenticate(`${secret}x`)).toBeUndefined();
    expect(await iam.authenticate('')).toBeUndefined();

    const row = await store.get('token', token.name);
    expect(row?.k1).toBe(hashTokenSecret(secret));
    expect(JSON.stringify(row)).not.toContain(secret);

    // Nowhere on disk either: the database file and its WAL.
    await store.close();
    const raw = readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('');
    expect(raw).toContain(hashTokenSecret(secret));
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(secret.slice(3));
    store = await openStore(join(dir, 'tollgate.db'));
  });

  it('refuses expired tokens', async () => {
    await createPrincipal(store, { email: 'alice@example.com', type: 'user' });
    const past = await issueToken(store, { principal: 'alice@example.com', expireTime: new Date(Date.now() - 1000).toISOString() });
    const future = await issueToken(store, { principal: 'alice@example.com', expireTime: new Date(Date.now() + 3_600_000).toISOString() });
    expect(await iam.authenticate(past.secret)).toBeUndefined();
    expect((await iam.authenticate(future.secret))?.email).toBe('alice@example.com');
  });

  it('revocation and principal deletion take effect at once', async () => {
    await createPrincipal(store, { email: 'alice@example.com', type: 'user' });
    await createPrincipal(store, { email: 'root@example.com', type: 'user', superuser: true });
    const a = await issueToken(store, { principal: 'alice@example.com' });
    const b = await issueToken(store, { principal: 'alice@example.com' });
    expect(await iam.authenticate(a.secret)).toBeDefined();
    expect(await revokeToken(store, a.token.id)).toBe(true);
    expect(await revokeToken(store, a.token.id)).toBe(false);
    expect(await iam.authenticate(a.secret)).toBeUndefined();
    expect(await iam.authenticate(b.secret)).toBeDefined();

    expect(await deletePrincipal(store, 'alice@example.com')).toBe(true);
    expect(await iam.authenticate(b.secret)).toBeUndefined();
    expect(await listTokens(store, { principal: 'alice@example.com', limit: 10 })).toEqual([]);
  });

  it('needs an existing principal and validates input', async () => {
    expect(await statusOf(issueToken(store, { principal: 'nobody@example.com' }))).toBe('NOT_FOUND');
    expect(await statusOf(createPrincipal(store, { email: 'not an email', type: 'user' }))).toBe('INVALID_ARGUMENT');
    await createPrincipal(store, { email: 'alice@example.com', type: 'user' });
    expect(await statusOf(createPrincipal(store, { email: 'ALICE@example.com', type: 'user' }))).toBe('ALREADY_EXISTS');
    expect(await statusOf(issueToken(store, { principal: 'alice@example.com', expireTime: 'tomorrow' }))).toBe('INVALID_ARGUMENT');
  });
});

describe('bootstrap admin', () => {
  it('creates the superuser and its token once', async () => {
    const secret = await bootstrapAdminToken(store);
    expect(secret).toMatch(/^tg_/);
    expect(await iam.authenticate(secret as string)).toEqual({ type: 'user', email: BOOTSTRAP_ADMIN_EMAIL, superuser: true });
    expect((await listTokens(store, { principal: BOOTSTRAP_ADMIN_EMAIL, limit: 10 }))[0]?.expireTime).toBeUndefined();
    expect(await bootstrapAdminToken(store)).toBeUndefined();
    expect(await listTokens(store, { limit: 10 })).toHaveLength(1);
  });

  it('is safe when several start at once: one wins, the create conflict stops the others', async () => {
    const results = await Promise.all([bootstrapAdminToken(store), bootstrapAdminToken(store), bootstrapAdminToken(store)]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect(await listTokens(store, { limit: 10 })).toHaveLength(1);
    // A second replica on the same database finds the superuser.
    const other = await openStore(join(dir, 'tollgate.db'));
    try {
      expect(await bootstrapAdminToken(other)).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('returns undefined when it loses the race on the principal (the create conflicts)', async () => {
    // What a replica sees when another created admin@tollgate.local after its check: the
    // principal create conflicts, the transaction rolls back, no token is made.
    await createPrincipal(store, { email: BOOTSTRAP_ADMIN_EMAIL, type: 'user' });
    expect(await bootstrapAdminToken(store)).toBeUndefined();
    expect(await listTokens(store, { limit: 10 })).toEqual([]);
  });

  it('does nothing when a superuser exists, and the last superuser cannot be deleted', async () => {
    await createPrincipal(store, { email: 'root@example.com', type: 'user', superuser: true });
    expect(await bootstrapAdminToken(store)).toBeUndefined();
    expect(await getPrincipal(store, BOOTSTRAP_ADMIN_EMAIL)).toBeUndefined();
    expect(await statusOf(deletePrincipal(store, 'root@example.com'))).toBe('FAILED_PRECONDITION');
  });
});

describe('resource hierarchy', () => {
  it('walks to the project through KMS parents', () => {
    const v = 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1';
    expect(resourceChain(v)).toEqual([
      v,
      'projects/p/locations/global/keyRings/r/cryptoKeys/k',
      'projects/p/locations/global/keyRings/r',
      'projects/p',
    ]);
    expect(resourceChain('projects/p/locations/global/keyRings/r')).toEqual(['projects/p/locations/global/keyRings/r', 'projects/p']);
    expect(resourceChain('projects/p/attestors/a')).toEqual(['projects/p/attestors/a', 'projects/p']);
    expect(resourceChain('projects/p/policy')).toEqual(['projects/p/policy', 'projects/p']);
    expect(resourceChain('projects/p/notes/n')).toEqual(['projects/p/notes/n', 'projects/p']);
    expect(resourceChain('projects/p/occurrences/o')).toEqual(['projects/p/occurrences/o', 'projects/p']);
    expect(resourceChain('projects/p/locations/us-central1/services/s')).toEqual(['projects/p/locations/us-central1/services/s', 'projects/p']);
    expect(resourceChain('projects/p')).toEqual(['projects/p']);
  });
});

describe('authorization', () => {
  it('grants through bindings on the resource or its ancestors only', async () => {
    await grant('projects/p', 'roles/binaryauthorization.attestorsViewer', 'user:alice@example.com');
    await iam.require(alice, 'binaryauthorization.attestors.get', 'projects/p/attestors/a');
    await iam.require(alice, 'binaryauthorization.attestors.list', 'projects/p');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.attestors.update', 'projects/p/attestors/a'))).toBe('PERMISSION_DENIED');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.attestors.get', 'projects/q/attestors/a'))).toBe('PERMISSION_DENIED');
    // A binding on one attestor does not reach its siblings or the project.
    await grant('projects/q/attestors/a', 'roles/binaryauthorization.attestorsAdmin', 'user:alice@example.com');
    await iam.require(alice, 'binaryauthorization.attestors.update', 'projects/q/attestors/a');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.attestors.update', 'projects/q/attestors/b'))).toBe('PERMISSION_DENIED');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.attestors.list', 'projects/q'))).toBe('PERMISSION_DENIED');
  });

  it('walks crypto key versions up to the key ring and project', async () => {
    const ring = 'projects/p/locations/global/keyRings/r';
    const version = `${ring}/cryptoKeys/k/cryptoKeyVersions/1`;
    expect(await iam.memberHas('serviceAccount:ci@demo.iam.gserviceaccount.com', 'cloudkms.cryptoKeyVersions.useToSign', version)).toBe(false);
    await grant(ring, 'roles/cloudkms.signer', 'serviceAccount:ci@demo.iam.gserviceaccount.com');
    await iam.require(ci, 'cloudkms.cryptoKeyVersions.useToSign', version);
    expect(await statusOf(iam.require(ci, 'cloudkms.cryptoKeyVersions.useToSign', 'projects/p/locations/global/keyRings/other/cryptoKeys/k/cryptoKeyVersions/1'))).toBe('PERMISSION_DENIED');
    // cloudkms.admin manages keys but may not sign with them.
    await grant('projects/p', 'roles/cloudkms.admin', 'user:alice@example.com');
    await iam.require(alice, 'cloudkms.cryptoKeyVersions.destroy', version);
    expect(await statusOf(iam.require(alice, 'cloudkms.cryptoKeyVersions.useToSign', version))).toBe('PERMISSION_DENIED');
  });

  it('never reveals whether the resource exists', async () => {
    const e = await iam.require(alice, 'binaryauthorization.attestors.get', 'projects/p/attestors/secret').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).message).toBe(
      "Permission 'binaryauthorization.attestors.get' denied on resource 'projects/p/attestors/secret' (or it may not exist).",
    );
  });

  it('lets superusers do everything', async () => {
    await iam.require({ type: 'user', email: 'root@example.com', superuser: true }, 'cloudkms.cryptoKeyVersions.useToSign', 'projects/x/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1');
    await createPrincipal(store, { email: 'root@example.com', type: 'user', superuser: true });
    expect(await iam.memberHas('user:root@example.com', 'binaryauthorization.policy.update', 'projects/x/policy')).toBe(true);
  });

  it('matches service agents, allUsers and allAuthenticatedUsers, and no groups', async () => {
    const agent = 'serviceAccount:service-123456789012@gcp-sa-binaryauthorization.iam.gserviceaccount.com';
    await grant('projects/p/notes/n', 'roles/containeranalysis.notes.occurrences.viewer', agent);
    expect(await iam.memberHas(agent, 'containeranalysis.notes.listOccurrences', 'projects/p/notes/n')).toBe(true);
    expect(await iam.memberHas(agent, 'containeranalysis.notes.listOccurrences', 'projects/p/notes/m')).toBe(false);

    const service = 'projects/p/locations/us-central1/services/web';
    expect(await iam.memberHas('allUsers', 'run.routes.invoke', service)).toBe(false);
    await grant(service, 'roles/run.invoker', 'allUsers');
    expect(await iam.memberHas('allUsers', 'run.routes.invoke', service)).toBe(true);
    expect(await iam.memberHas('user:anyone@example.com', 'run.routes.invoke', service)).toBe(true);

    await grant('projects/p', 'roles/binaryauthorization.policyViewer', 'allAuthenticatedUsers');
    await iam.require(ci, 'binaryauthorization.policy.get', 'projects/p/policy');
    expect(await iam.memberHas('allUsers', 'binaryauthorization.policy.get', 'projects/p/policy')).toBe(false);

    await grant('projects/g', 'roles/owner', 'group:admins@example.com');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.policy.get', 'projects/g/policy'))).toBe('PERMISSION_DENIED');
  });

  it('does not honour conditional bindings (fails closed)', async () => {
    const p = await iam.setPolicy('projects/p', {
      version: 3,
      bindings: [{ role: 'roles/owner', members: ['user:alice@example.com'], condition: { expression: 'request.time < timestamp("2999-01-01T00:00:00Z")', title: 'until 2999' } }],
    });
    expect(p.version).toBe(3);
    expect(p.bindings?.[0]?.condition?.title).toBe('until 2999');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.policy.get', 'projects/p/policy'))).toBe('PERMISSION_DENIED');
  });

  it('tests permissions as a subset', async () => {
    await grant('projects/p', 'roles/containeranalysis.notes.attacher', 'user:alice@example.com');
    expect(
      await iam.testPermissions(alice, ['containeranalysis.notes.attachOccurrence', 'containeranalysis.notes.delete', 'containeranalysis.notes.get'], 'projects/p/notes/n'),
    ).toEqual(['containeranalysis.notes.attachOccurrence', 'containeranalysis.notes.get']);
  });

  it('maps the basic roles', async () => {
    await grant('projects/p', 'roles/viewer', 'user:alice@example.com');
    await grant('projects/p', 'roles/editor', 'serviceAccount:ci@demo.iam.gserviceaccount.com');
    await iam.require(alice, 'binaryauthorization.policy.get', 'projects/p/policy');
    expect(await statusOf(iam.require(alice, 'binaryauthorization.policy.update', 'projects/p/policy'))).toBe('PERMISSION_DENIED');
    await iam.require(ci, 'binaryauthorization.policy.update', 'projects/p/policy');
    expect(await statusOf(iam.require(ci, 'resourcemanager.projects.setIamPolicy', 'projects/p'))).toBe('PERMISSION_DENIED');
  });
});

describe('IAM policies', () => {
  it('starts empty with a valid base64 etag that changes on every write', async () => {
    const empty = await iam.getPolicy('projects/p/attestors/a');
    expect(empty).toEqual({ version: 1, etag: policyEtag('projects/p/attestors/a', 0) });
    expect(empty.etag).toMatch(/^[A-Za-z0-9+/]{11}=$/);
    expect(Buffer.from(empty.etag as string, 'base64')).toHaveLength(8);

    const set = await iam.setPolicy('projects/p/attestors/a', { etag: empty.etag as string, bindings: [{ role: 'roles/binaryauthorization.attestorsVerifier', members: ['serviceAccount:CI@demo.iam.gserviceaccount.com'] }] });
    expect(set.version).toBe(1);
    expect(set.bindings).toEqual([{ role: 'roles/binaryauthorization.attestorsVerifier', members: ['serviceAccount:ci@demo.iam.gserviceaccount.com'] }]);
    expect(set.etag).not.toBe(empty.etag);
    expect(await iam.getPolicy('projects/p/attestors/a')).toEqual(set);
  });

  it('refuses a stale etag with ABORTED and accepts the URL-safe spelling of the current one', async () => {
    const r = 'projects/p/notes/n';
    const first = await iam.setPolicy(r, { bindings: [{ role: 'roles/containeranalysis.notes.viewer', members: ['user:alice@example.com'] }] });
    const second = await iam.setPolicy(r, { etag: first.etag as string, bindings: [] });
    expect(await statusOf(iam.setPolicy(r, { etag: first.etag as string, bindings: [] }))).toBe('ABORTED');
    const urlSafe = (second.etag as string).replace(/\+/g, '-').replace(/\//g, '_');
    await iam.setPolicy(r, { etag: urlSafe, bindings: [] });
    // No etag: unconditional overwrite, as in Google.
    await iam.setPolicy(r, { bindings: [] });
  });

  it('names an unknown role and rejects malformed members', async () => {
    const e = await iam.setPolicy('projects/p', { bindings: [{ role: 'roles/binaryauthorization.superPowers', members: ['user:alice@example.com'] }] }).catch((x: unknown) => x);
    expect((e as ApiError).status).toBe('INVALID_ARGUMENT');
    expect((e as ApiError).message).toContain('roles/binaryauthorization.superPowers');
    for (const m of ['alice@example.com', 'user:', 'robot:x@example.com', 'domain:not a domain', 'serviceAccount:nope']) {
      expect(await statusOf(iam.setPolicy('projects/p', { bindings: [{ role: 'roles/viewer', members: [m] }] }))).toBe('INVALID_ARGUMENT');
    }
    for (const m of ['user:a@example.com', 'serviceAccount:s@p.iam.gserviceaccount.com', 'group:g@example.com', 'domain:example.com', 'allUsers', 'allAuthenticatedUsers']) {
      await iam.setPolicy('projects/p', { bindings: [{ role: 'roles/viewer', members: [m] }] });
    }
  });

  it('merges duplicate bindings and drops empty ones; the notesEditor alias is accepted', async () => {
    const p = await iam.setPolicy('projects/p', {
      bindings: [
        { role: 'roles/viewer', members: ['user:a@example.com'] },
        { role: 'roles/containeranalysis.notesEditor', members: [] },
        { role: 'roles/viewer', members: ['user:b@example.com', 'user:A@example.com'] },
      ],
    });
    expect(p.bindings).toEqual([{ role: 'roles/viewer', members: ['user:a@example.com', 'user:b@example.com'] }]);
    const cleared = await iam.setPolicy('projects/p', { bindings: [{ role: 'roles/containeranalysis.notesEditor', members: [] }] });
    expect(cleared.bindings).toBeUndefined();
  });

  it('forgets the policy of a deleted resource, and a recreated one gets a fresh etag', async () => {
    const r = 'projects/p/attestors/a';
    const set = await iam.setPolicy(r, { bindings: [{ role: 'roles/binaryauthorization.attestorsAdmin', members: ['user:alice@example.com'] }] });
    await iam.deletePolicy(r);
    expect((await iam.getPolicy(r)).bindings).toBeUndefined();
    expect(await statusOf(iam.require(alice, 'binaryauthorization.attestors.get', r))).toBe('PERMISSION_DENIED');
    const again = await iam.setPolicy(r, { bindings: [{ role: 'roles/binaryauthorization.attestorsAdmin', members: ['user:alice@example.com'] }] });
    expect(again.etag).not.toBe(set.etag);
  });
});
