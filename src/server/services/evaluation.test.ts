import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { decisionLogEntry, DecisionAuditWriter } from '../audit/decision-log.js';
import { bootstrapAdminToken, createIam } from '../iam/iam-service.js';
import { jsonLogger } from '../log.js';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import { ensureProject } from './projects.js';
import { createDecisionService, type DecisionServiceOptions } from './evaluation.js';
import type { DecideRequest } from './decision-service.js';
import { gpgSigner, opensslSign, readFixtureText, removeGpgSigners } from '../../../test/support/fixtures.js';
import { createSignaturePayload } from '../../core/attestation/payload.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});
afterAll(removeGpgSigners);

type Op = 'get' | 'list' | 'changeMark';

async function setup(failOn: readonly Op[] = [], freshnessMs = 0, maxCachedChecks?: number, observers: Pick<DecisionServiceOptions, 'observeCache' | 'observeStoreError' | 'placement' | 'observeVerification'> = {}) {
  const store = await openStore(join(mkdtempSync(join(tmpdir(), 'tollgate-eval-')), 'db.sqlite'));
  stores.push(store);
  await bootstrapAdminToken(store);
  await ensureProject(store, 'demo');
  await store.create({
    kind: 'policy', name: 'projects/demo/policy', parent: 'projects/demo',
    body: { defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/a'] } },
  });
  await store.create({
    kind: 'attestor', name: 'projects/demo/attestors/a', parent: 'projects/demo', k1: 'projects/demo/notes/n',
    body: { name: 'projects/demo/attestors/a', userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n', publicKeys: [{ id: 'k', pkixPublicKey: { publicKeyPem: readFixtureText('pkix', 'ECDSA_P256_SHA256', 'public.pem'), signatureAlgorithm: 'ECDSA_P256_SHA256' } }] } },
  });
  // A store whose reads start failing: the real store, with one operation broken on demand.
  // It also counts the reads the decision service makes.
  const broken = { on: false };
  // While set, attestation lists wait for it: holds a decision in flight.
  const held: { list?: Promise<void> } = {};
  const reads: Record<Op, number> = { get: 0, list: 0, changeMark: 0 };
  const faulty: Store = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      // listByK2s is the decision service's list (its attestation lookups): counted and held as one.
      const op: Op | undefined = prop === 'listByK2s' ? 'list' : prop === 'get' || prop === 'list' || prop === 'changeMark' ? prop : undefined;
      if (op !== undefined && typeof value === 'function') {
        return (...args: unknown[]) => {
          reads[op]++;
          if (broken.on && failOn.includes(op)) return Promise.reject(new Error('disk I/O error'));
          const run = () => (value as (...a: unknown[]) => unknown).apply(target, args);
          return op === 'list' && held.list !== undefined ? held.list.then(run) : run();
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const recorder = new DecisionAuditWriter({ store });
  const service = createDecisionService({ store: faulty, iam: createIam(store), logger: jsonLogger('error', () => undefined), recorder, logEntries: (d, r, t, id) => [decisionLogEntry(d, r, t, id)], freshnessMs, ...observers, ...(maxCachedChecks === undefined ? {} : { maxCachedChecks }) });
  return { store, service, broken, recorder, reads, held };
}

const request = (images: string[], breakglass?: string): DecideRequest => ({
  project: 'demo',
  images,
  context: { platform: 'gke', ...(breakglass === undefined ? {} : { breakglass }) },
  source: { kind: 'evaluate-api', principal: { type: 'user', email: 'admin@tollgate.local', superuser: true } },
});

const IMAGE = `gcr.io/demo/app@sha256:${'1a'.repeat(32)}`;

/** An attestation as the Container Analysis API stores it: gcloud's payload, signed by openssl with the fixture key. */
async function attest(store: Store, image: string): Promise<void> {
  const payload = createSignaturePayload(image);
  if (!payload.ok) throw new Error(payload.error.message);
  const signature = opensslSign('ECDSA_P256_SHA256', 'ECDSA_P256_SHA256', Buffer.from(payload.value));
  const name = `projects/demo/occurrences/${image.slice(-8)}`;
  await store.create({
    kind: 'occurrence', name, parent: 'projects/demo', k1: 'projects/demo/notes/n', k2: image.slice(image.indexOf('@') + 1),
    body: { name, kind: 'ATTESTATION', noteName: 'projects/demo/notes/n', resourceUri: image, attestation: { serializedPayload: Buffer.from(payload.value).toString('base64'), signatures: [{ publicKeyId: 'k', signature: signature.toString('base64') }] } },
  });
}

describe('the decision service fails closed', () => {
  it('denies with EVALUATION_FAILED, naming the failure, when the store cannot be read', async () => {
    const { service, broken } = await setup(['get', 'changeMark']);
    const before = await service.decide(request([IMAGE]));
    expect(before.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'NOT_ATTESTED' });
    broken.on = true;
    const d = await service.decide(request([IMAGE]));
    expect(d.allowed).toBe(false);
    expect(d.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'EVALUATION_FAILED' });
    expect(d.messages[0]).toContain('disk I/O error');
  });

  it('denies when listing attestations fails, too', async () => {
    const { service, broken } = await setup(['list']);
    broken.on = true;
    const d = await service.decide(request([IMAGE]));
    expect(d.images[0]).toMatchObject({ reason: 'EVALUATION_FAILED' });
  });

  it('still honours breakglass, and commits its audit entry before answering', async () => {
    const { service, broken, store } = await setup(['get', 'changeMark']);
    broken.on = true;
    const d = await service.decide(request([IMAGE], 'INC-9: store outage'));
    expect(d.verdict).toEqual({ kind: 'BREAKGLASS', justification: 'INC-9: store outage', wouldHaveBeen: 'DENIED' });
    const audit = await store.queryAudit({ projects: ['demo'], limit: 5 });
    expect(JSON.stringify(audit[0]?.entry)).toContain('INC-9: store outage');
  });

  it('denies a project Tollgate does not know', async () => {
    const { service } = await setup();
    const d = await service.decide({ ...request([IMAGE]), project: 'unknown' });
    expect(d.images[0]).toMatchObject({ reason: 'EVALUATION_FAILED' });
    expect(d.messages[0]).toContain('project unknown does not exist');
  });
});

describe('a decision made after its caller\'s deadline', () => {
  it('is recorded as the caller answered: denied as too late, or allowed by breakglass, not the late verdict', async () => {
    const { service, store, recorder } = await setup();
    await service.decide(request([IMAGE])); // policy, attestor and project cached
    const policy = await store.get('policy', 'projects/demo/policy');
    await store.update('policy', 'projects/demo/policy', { body: { ...policy!.body, defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } } });
    const late = `gcr.io/demo/app@sha256:${'7c'.repeat(32)}`;
    // ALWAYS_ALLOW reads no attestations; the change mark's read is held instead: the store answers late.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const original = store.changeMark.bind(store);
    store.changeMark = async () => {
      await gate;
      return original();
    };
    const deadline = { at: Date.now() + 30, budgetMs: 30 };
    const pending = [
      service.decide({ ...request([late]), deadline }),
      service.decide({ ...request([late], 'INC-7: registry outage'), deadline }),
    ];
    await new Promise((r) => setTimeout(r, 80));
    release();
    const [denied, glass] = await Promise.all(pending);
    expect(denied!.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'EVALUATION_FAILED' });
    expect(denied!.messages[0]).toContain("the decision did not complete within 30 ms (the webhook's deadline)");
    expect(glass!.verdict).toEqual({ kind: 'BREAKGLASS', justification: 'INC-7: registry outage', wouldHaveBeen: 'DENIED' });
    // In time, the same request gets the policy's verdict.
    expect((await service.decide({ ...request([late]), deadline: { at: Date.now() + 5_000, budgetMs: 5_000 } })).images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW' });
    await recorder.flush();
    const entries = (await store.queryAudit({ projects: ['demo'], limit: 10 })).map((r) => JSON.stringify(r.entry));
    expect(entries.filter((e) => e.includes(late) && e.includes('EVALUATION_FAILED') && e.includes("webhook's deadline"))).toHaveLength(2);
  });
});

describe('the decision service caches what the store holds', () => {
  it('reads nothing but the change mark while nothing changed, and sees a change at once when the window is 0', async () => {
    const { service, store, reads } = await setup();
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
    const after1 = { ...reads };
    expect(after1.get).toBeGreaterThan(0);
    expect(after1.list).toBeGreaterThan(0);
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
    expect(reads).toEqual({ ...after1, changeMark: after1.changeMark + 1 });

    const policy = await store.get('policy', 'projects/demo/policy');
    await store.update('policy', 'projects/demo/policy', { body: { ...policy!.body, defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } } });
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW' });
  });

  it('within the freshness window it neither reads the store nor sees a change; after it, it does', async () => {
    const { service, store, reads } = await setup([], 300);
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
    const marks = reads.changeMark;
    await store.update('policy', 'projects/demo/policy', { body: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } } });
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
    expect(reads.changeMark).toBe(marks);
    await new Promise((r) => setTimeout(r, 320));
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'ALWAYS_ALLOW' });
    expect(reads.changeMark).toBe(marks + 1);
  });

  it('past half the window it reads the mark again without waiting for it, and what that read finds counts from then on', async () => {
    // A 2 s window with 1.1 s waits: a loaded test machine may overshoot a wait by far, not by 0.9 s.
    const { service, store, reads } = await setup([], 2_000);
    const first = await service.decide(request([IMAGE]));
    expect(first.images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
    const marks = reads.changeMark;
    await store.update('policy', 'projects/demo/policy', { body: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } } });
    await new Promise((r) => setTimeout(r, 1_100));
    // Within the window: the decision at hand, at once; the next read has started.
    const meanwhile = service.decide(request([IMAGE]));
    expect(meanwhile).not.toBeInstanceOf(Promise);
    expect(meanwhile).toBe(first);
    expect(reads.changeMark).toBe(marks + 1);
    await new Promise((r) => setTimeout(r, 50));
    // The read found the change: the decision is made again, and no other read was needed.
    expect((await service.decide(request([IMAGE]))).images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW' });
    expect(reads.changeMark).toBe(marks + 1);
  });

  it('a read made ahead that fails harms nothing, and once the window is over decisions fail closed', async () => {
    const failed: string[] = [];
    const { service, broken, reads } = await setup(['changeMark'], 2_000, undefined, { observeStoreError: (op) => void failed.push(op) });
    const first = await service.decide(request([IMAGE]));
    broken.on = true;
    await new Promise((r) => setTimeout(r, 1_100));
    const marks = reads.changeMark;
    // Within the window the mark at hand still holds; the read started ahead fails on its own
    // (no unhandled rejection: vitest would fail the file) and is counted as a store error.
    expect(service.decide(request([IMAGE]))).toBe(first);
    expect(reads.changeMark).toBe(marks + 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(failed).toEqual(['change-mark']);
    await new Promise((r) => setTimeout(r, 1_000));
    const late = await service.decide(request([IMAGE]));
    expect(late.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'EVALUATION_FAILED' });
    expect(late.messages[0]).toContain('disk I/O error');
  });

  it('keeps at most maxCachedChecks attestation lookups: an image pushed out is looked up again', async () => {
    const image = (n: number) => `gcr.io/demo/app@sha256:${String(n).repeat(64)}`;
    for (const [bound, again] of [[undefined, 0], [2, 1]] as const) {
      const { service, reads } = await setup([], 0, bound);
      for (const n of [1, 2, 3]) await service.decide(request([image(n)]));
      expect(reads.list).toBe(3);
      // A new request for an image still held and one held only without a bound, in another
      // namespace: neither the decision nor the image decisions are remembered for it.
      await service.decide({ ...request([image(3), image(1)]), context: { platform: 'gke', namespace: 'other' } });
      expect(reads.list, `bound ${bound}`).toBe(3 + again);
    }
  });

  it('looks up the attestations of decisions made together in one store query, and fails them all closed when it fails', async () => {
    const image = (n: number) => `gcr.io/demo/app@sha256:${String(n).repeat(64)}`;
    const { service, reads, broken } = await setup(['list']);
    await service.decide(request([image(9)])); // the policy, attestor and project are cached now
    const before = reads.list;
    const decisions = await Promise.all([1, 2, 3, 4, 5].map((n) => service.decide(request([image(n)]))));
    expect(reads.list - before).toBe(1);
    expect(decisions.map((d) => d.images[0]!.reason)).toEqual(Array(5).fill('NOT_ATTESTED'));

    broken.on = true;
    const failed = await Promise.all([6, 7, 8].map((n) => service.decide(request([image(n)]))));
    expect(reads.list - before).toBe(2);
    for (const d of failed) {
      expect(d.allowed).toBe(false);
      expect(d.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'EVALUATION_FAILED' });
      expect(d.messages[0]).toContain('disk I/O error');
    }
  });

  it('looks up the attestations of every new image of one decision in one store query', async () => {
    const image = (n: number) => `gcr.io/demo/app@sha256:${String(n).repeat(64)}`;
    const { service, reads } = await setup();
    await service.decide(request([image(9)])); // the policy, attestor and project are cached now
    const before = reads.list;
    const d = await service.decide(request([image(1), image(2), image(3)]));
    expect(reads.list - before).toBe(1);
    expect(d.images.map((i) => i.reason)).toEqual(['NOT_ATTESTED', 'NOT_ATTESTED', 'NOT_ATTESTED']);
  });

  it('makes a decision once for identical requests that arrive while it is being made', async () => {
    const { service, reads, held } = await setup();
    let release!: () => void;
    held.list = new Promise((r) => (release = r));
    const all = Promise.all(Array.from({ length: 5 }, () => service.decide(request([IMAGE]))));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const decisions = await all;
    for (const d of decisions) expect(d.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'NOT_ATTESTED' });
    expect(reads.list).toBe(1);
  });

  it('does not hand a decision begun before a change to a request that arrives after it', async () => {
    const { service, store, held } = await setup();
    let release!: () => void;
    held.list = new Promise((r) => (release = r));
    const before = service.decide(request([IMAGE]));
    await new Promise((r) => setTimeout(r, 50));
    // The first decision is now waiting for its attestations, with the old policy in hand.
    await store.update('policy', 'projects/demo/policy', { body: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } } });
    // Joining the held decision would wait for it; a decision of its own answers at once.
    const after = await Promise.race([service.decide(request([IMAGE])), new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 2000))]);
    release();
    if (after === 'waiting') throw new Error('the request after the change waited for the decision begun before it');
    expect(after.images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW' });
    expect((await before).images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
  });

  it('fails closed when the change mark cannot be read', async () => {
    const { service, broken } = await setup(['changeMark']);
    await service.decide(request([IMAGE]));
    broken.on = true;
    const d = await service.decide(request([IMAGE]));
    expect(d.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'EVALUATION_FAILED' });
    expect(d.messages[0]).toContain('disk I/O error');
  });
});

describe('a decision at hand', () => {
  const audited = async (store: Store, text: string) => (await store.queryAudit({ projects: ['demo'], limit: 50 })).filter((r) => JSON.stringify(r.entry).includes(text)).length;

  it('comes back as is, without a promise, and is audited like any other', async () => {
    const { service, store, recorder, reads } = await setup([], 60_000);
    const first = service.decide(request([IMAGE]));
    expect(first).toBeInstanceOf(Promise);
    const made = await first;
    const marks = reads.changeMark;
    const again = service.decide(request([IMAGE]));
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toBe(made);
    expect(reads.changeMark).toBe(marks);
    await recorder.flush();
    expect(await audited(store, IMAGE)).toBe(2);
  });

  it('is promised when something must happen first: a breakglass entry committed, the change mark read again', async () => {
    const { service, store } = await setup([], 60_000);
    await service.decide(request([IMAGE], 'INC-3: hotfix'));
    const glass = service.decide(request([IMAGE], 'INC-3: hotfix'));
    expect(glass).toBeInstanceOf(Promise);
    // Committed by the time the promise resolves, no flush needed.
    expect((await glass).verdict).toMatchObject({ kind: 'BREAKGLASS' });
    expect(await audited(store, 'INC-3: hotfix')).toBe(2);

    const short = await setup([], 40);
    await short.service.decide(request([IMAGE]));
    expect(short.service.decide(request([IMAGE]))).not.toBeInstanceOf(Promise);
    await new Promise((r) => setTimeout(r, 60));
    const marks = short.reads.changeMark;
    const stale = short.service.decide(request([IMAGE]));
    expect(stale).toBeInstanceOf(Promise);
    expect((await stale).images[0]).toMatchObject({ reason: 'NOT_ATTESTED' });
    expect(short.reads.changeMark).toBe(marks + 1);
  });

  it('is made again once its store changed, and then the change counts', async () => {
    const { service, store } = await setup([], 30);
    await service.decide(request([IMAGE]));
    expect(service.decide(request([IMAGE]))).not.toBeInstanceOf(Promise);
    await store.update('policy', 'projects/demo/policy', { body: { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } } });
    await new Promise((r) => setTimeout(r, 50));
    const changed = service.decide(request([IMAGE]));
    expect(changed).toBeInstanceOf(Promise);
    expect((await changed).images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ALWAYS_ALLOW' });
    const atHand = service.decide(request([IMAGE]));
    expect(atHand).not.toBeInstanceOf(Promise);
    expect((atHand as Awaited<typeof atHand>).images[0]).toMatchObject({ reason: 'ALWAYS_ALLOW' });
  });
});

describe('the decision service reports its caches and store failures (metrics)', () => {
  it('counts each cache lookup as a hit or a miss, by cache', async () => {
    const seen: string[] = [];
    const { service, store } = await setup([], 0, undefined, { observeCache: (cache, hit) => void seen.push(`${cache} ${hit ? 'hit' : 'miss'}`) });
    const signed = `gcr.io/demo/app@sha256:${'5e'.repeat(32)}`;
    await attest(store, signed);
    const first = await service.decide(request([signed]));
    expect(first.images[0]).toMatchObject({ verdict: 'ALLOWED' });
    expect(seen.splice(0).sort()).toEqual(['attestation-lookups miss', 'attestors miss', 'decisions miss', 'images miss', 'policies miss', 'signatures miss']);
    // The same request again: the memo answers.
    await service.decide(request([signed]));
    expect(seen.splice(0)).toEqual(['decisions hit']);
    // Another request with the same image and a new one: parsed policy and attestor, the signed
    // image's decision reused (so it needs no lookup), the new one looked up.
    await service.decide(request([signed, IMAGE]));
    expect(seen.splice(0).sort()).toEqual(['attestation-lookups miss', 'attestors hit', 'decisions miss', 'images hit', 'images miss', 'policies hit']);
    // Once the store moved, lookups are made again, but a verified signature is not verified again.
    await store.create({ kind: 'note', name: 'projects/demo/notes/other', parent: 'projects/demo', body: {} });
    await service.decide(request([IMAGE, signed]));
    expect(seen.splice(0).sort()).toEqual(['attestation-lookups miss', 'attestation-lookups miss', 'attestors miss', 'decisions miss', 'images miss', 'images miss', 'policies miss', 'signatures hit']);
  });

  it('counts failed store reads by operation, and the decisions fail closed', async () => {
    const failed: string[] = [];
    const lists = await setup(['list'], 0, undefined, { observeStoreError: (op) => void failed.push(op) });
    lists.broken.on = true;
    expect((await lists.service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'EVALUATION_FAILED' });
    expect(failed.splice(0)).toEqual(['attestations']);

    const gets = await setup(['get', 'changeMark'], 0, undefined, { observeStoreError: (op) => void failed.push(op) });
    gets.broken.on = true;
    expect((await gets.service.decide(request([IMAGE]))).images[0]).toMatchObject({ reason: 'EVALUATION_FAILED' });
    expect(failed.splice(0)).toEqual(['change-mark']);
  });
});

describe('an image decided before', () => {
  const A = `gcr.io/demo/app@sha256:${'a1'.repeat(32)}`;
  const B = `gcr.io/demo/sidecar@sha256:${'b2'.repeat(32)}`;

  it('is reused as it is in another deployment decision in the same context, and only the new image is looked up', async () => {
    const seen: string[] = [];
    const { service, store } = await setup([], 0, undefined, { observeCache: (cache, hit) => void seen.push(`${cache} ${hit ? 'hit' : 'miss'}`) });
    await attest(store, A);
    await attest(store, B);
    const first = await service.decide(request([A, IMAGE]));
    expect(first.verdict).toEqual({ kind: 'DENIED' });
    expect(first.images[0]).toMatchObject({ image: A, verdict: 'ALLOWED', reason: 'ATTESTED' });
    seen.length = 0;
    const second = await service.decide(request([B, A]));
    expect(second.verdict).toEqual({ kind: 'ALLOWED' });
    expect(second.messages).toEqual([]);
    expect(second.images[0]).toMatchObject({ image: B, verdict: 'ALLOWED', reason: 'ATTESTED' });
    expect(second.images[1]).toBe(first.images[0]);
    expect(seen.filter((s) => s.startsWith('images') || s.startsWith('attestation-lookups')).sort()).toEqual(['attestation-lookups miss', 'images hit', 'images miss']);
  });

  it('is decided again in another context, where another rule may apply', async () => {
    const { service, store } = await setup();
    await attest(store, A);
    await store.update('policy', 'projects/demo/policy', {
      body: {
        defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/a'] },
        clusterAdmissionRules: { 'us-east1-b.prod': { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } },
      },
    });
    const anywhere = await service.decide(request([A]));
    expect(anywhere.images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ATTESTED' });
    const prod = await service.decide({ ...request([A, B]), context: { platform: 'gke', cluster: 'us-east1-b.prod' } });
    expect(prod.images[0]).toMatchObject({ image: A, verdict: 'DENIED', reason: 'ALWAYS_DENY', rule: { type: 'cluster', key: 'us-east1-b.prod' } });
    const again = await service.decide(request([A, B]));
    expect(again.images[0]).toBe(anywhere.images[0]);
  });

  it('is decided again once the store changed: a deleted attestation denies it', async () => {
    const { service, store } = await setup();
    await attest(store, A);
    await attest(store, B);
    const first = await service.decide(request([A]));
    expect(first.images[0]).toMatchObject({ verdict: 'ALLOWED' });
    expect(await store.delete('occurrence', `projects/demo/occurrences/${A.slice(-8)}`)).toBe(true);
    const after = await service.decide(request([B, A]));
    expect(after.verdict).toEqual({ kind: 'DENIED' });
    expect(after.images[1]).toMatchObject({ image: A, verdict: 'DENIED', reason: 'NOT_ATTESTED' });
    expect(after.images[0]).toMatchObject({ image: B, verdict: 'ALLOWED' });
  });

  it('is not confused with an image whose name holds a line break (the memos\' keys are unambiguous)', async () => {
    const { service, store } = await setup();
    await attest(store, A);
    await attest(store, B);
    expect((await service.decide(request([A, B]))).verdict).toEqual({ kind: 'ALLOWED' });
    const joined = await service.decide(request([`${A}\n${B}`]));
    expect(joined.verdict).toEqual({ kind: 'DENIED' });
    expect(joined.images).toHaveLength(1);
    expect(joined.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'INVALID_IMAGE' });
  });

  it('keeps the order of the request, with new and remembered images interleaved and named twice', async () => {
    const { service, store } = await setup();
    await attest(store, A);
    await attest(store, B);
    await service.decide(request([A]));
    const d = await service.decide(request([IMAGE, A, B, A, IMAGE]));
    expect(d.images.map((i) => [i.image, i.verdict])).toEqual([[IMAGE, 'DENIED'], [A, 'ALLOWED'], [B, 'ALLOWED'], [A, 'ALLOWED'], [IMAGE, 'DENIED']]);
    expect(d.messages).toHaveLength(2);
    for (const m of d.messages) expect(m).toContain(`Image ${IMAGE} denied`);
  });
});

describe('a verification that expires (a PGP signature made with an expiration time)', () => {
  it('is reused until then, and not a moment after: the memo and both caches let it go', async () => {
    const store = await openStore(join(mkdtempSync(join(tmpdir(), 'tollgate-eval-')), 'db.sqlite'));
    stores.push(store);
    await bootstrapAdminToken(store);
    await ensureProject(store, 'demo');
    const signer = gpgSigner('never');
    await store.create({
      kind: 'policy', name: 'projects/demo/policy', parent: 'projects/demo',
      body: { defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: ['projects/demo/attestors/pgp'] } },
    });
    await store.create({
      kind: 'attestor', name: 'projects/demo/attestors/pgp', parent: 'projects/demo', k1: 'projects/demo/notes/pgp',
      body: { name: 'projects/demo/attestors/pgp', userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/pgp', publicKeys: [{ id: signer.fingerprint, asciiArmoredPgpPublicKey: signer.publicKey }] } },
    });
    const image = `gcr.io/demo/app@sha256:${'3d'.repeat(32)}`;
    const payload = createSignaturePayload(image);
    if (!payload.ok) throw new Error(payload.error.message);
    await store.create({
      kind: 'occurrence', name: 'projects/demo/occurrences/pgp-1', parent: 'projects/demo', k1: 'projects/demo/notes/pgp', k2: `sha256:${'3d'.repeat(32)}`,
      body: {
        name: 'projects/demo/occurrences/pgp-1', kind: 'ATTESTATION', noteName: 'projects/demo/notes/pgp', resourceUri: image,
        attestation: { serializedPayload: Buffer.from(payload.value).toString('base64'), signatures: [{ publicKeyId: signer.fingerprint, signature: Buffer.from(signer.sign(Buffer.from(payload.value), '1d')).toString('base64') }] },
      },
    });
    let clock = Date.now();
    const seen: string[] = [];
    const service = createDecisionService({
      store, iam: createIam(store), logger: jsonLogger('error', () => undefined), recorder: new DecisionAuditWriter({ store }),
      logEntries: (d, r, t, id) => [decisionLogEntry(d, r, t, id)], freshnessMs: 3_600_000, now: () => new Date(clock),
      observeCache: (cache, hit) => void seen.push(`${cache} ${hit ? 'hit' : 'miss'}`),
    });
    expect((await service.decide(request([image]))).images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ATTESTED' });
    clock += 3_600_000;
    seen.length = 0;
    expect((await service.decide(request([image]))).images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ATTESTED' });
    expect(seen).toEqual(['decisions hit']);
    // Two days on, with nothing changed in the store: the signature has expired.
    clock += 2 * 86_400_000;
    seen.length = 0;
    const later = await service.decide(request([image]));
    expect(later.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'NOT_ATTESTED' });
    expect(JSON.stringify(later)).toMatch(/expired/i);
    expect(seen).toEqual(['decisions miss', 'policies hit', 'images miss', 'attestors hit', 'attestation-lookups miss', 'signatures miss']);
  });
});

describe('where verifications run (the placement)', () => {
  it('is asked once per verification, never for a verified signature reused, and changes no decision', async () => {
    const image = (n: number) => `gcr.io/demo/app@sha256:${String(n).repeat(64)}`;
    const asked: boolean[] = [];
    const observed: boolean[] = [];
    let pool = false;
    const placement = {
      place: () => (asked.push(pool), pool),
      answered: () => undefined,
      state: () => ({ phase: 'settled' as const, onPool: pool }),
    };
    const { service, store } = await setup([], 0, undefined, { placement, observeVerification: (onPool) => observed.push(onPool) });
    for (const n of [1, 2]) await attest(store, image(n));
    const inPlace = await service.decide(request([image(1)]));
    pool = true;
    const onPool = await service.decide(request([image(2)]));
    expect(asked).toEqual([false, true]);
    expect(observed).toEqual([false, true]);
    expect(inPlace.verdict.kind).toBe('ALLOWED');
    expect(onPool.verdict.kind).toBe('ALLOWED');
    expect(onPool.images[0]).toMatchObject({ verdict: 'ALLOWED', reason: 'ATTESTED' });
    // Both images again (the store moved, so nothing decided is reused): the verified signatures are.
    await store.update('policy', 'projects/demo/policy', { body: (await store.get('policy', 'projects/demo/policy'))!.body });
    const again = await service.decide(request([image(1), image(2)]));
    expect(again.verdict.kind).toBe('ALLOWED');
    expect(asked).toHaveLength(2);
  });
});
