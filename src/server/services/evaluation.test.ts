import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decisionLogEntry, DecisionAuditWriter } from '../audit/decision-log.js';
import { bootstrapAdminToken, createIam } from '../iam/iam-service.js';
import { jsonLogger } from '../log.js';
import { openStore } from '../store/sql-store.js';
import type { Store } from '../store/store.js';
import { ensureProject } from './projects.js';
import { createDecisionService } from './evaluation.js';
import type { DecideRequest } from './decision-service.js';
import { readFixtureText } from '../../../test/support/fixtures.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function setup(failOn?: 'get' | 'list') {
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
  const broken = { on: false };
  const faulty: Store = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === failOn && typeof value === 'function') {
        return (...args: unknown[]) => (broken.on ? Promise.reject(new Error('disk I/O error')) : (value as (...a: unknown[]) => unknown).apply(target, args));
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const recorder = new DecisionAuditWriter({ store });
  const service = createDecisionService({ store: faulty, iam: createIam(store), logger: jsonLogger('error', () => undefined), recorder, logEntries: (d, r, t, id) => [decisionLogEntry(d, r, t, id)], freshnessMs: 0 });
  return { store, service, broken, recorder };
}

const request = (images: string[], breakglass?: string): DecideRequest => ({
  project: 'demo',
  images,
  context: { platform: 'gke', ...(breakglass === undefined ? {} : { breakglass }) },
  source: { kind: 'evaluate-api', principal: { type: 'user', email: 'admin@tollgate.local', superuser: true } },
});

const IMAGE = `gcr.io/demo/app@sha256:${'1a'.repeat(32)}`;

describe('the decision service fails closed', () => {
  it('denies with EVALUATION_FAILED, naming the failure, when the store cannot be read', async () => {
    const { service, broken } = await setup('get');
    const before = await service.decide(request([IMAGE]));
    expect(before.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'NOT_ATTESTED' });
    broken.on = true;
    const d = await service.decide(request([IMAGE]));
    expect(d.allowed).toBe(false);
    expect(d.images[0]).toMatchObject({ verdict: 'DENIED', reason: 'EVALUATION_FAILED' });
    expect(d.messages[0]).toContain('disk I/O error');
  });

  it('denies when listing attestations fails, too', async () => {
    const { service, broken } = await setup('list');
    broken.on = true;
    const d = await service.decide(request([IMAGE]));
    expect(d.images[0]).toMatchObject({ reason: 'EVALUATION_FAILED' });
  });

  it('still honours breakglass, and commits its audit entry before answering', async () => {
    const { service, broken, store } = await setup('get');
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
