import { describe, expect, it, vi } from 'vitest';
import { adminActivityEntry, admissionSource, cloudRunSource, decisionRecord, denialMessage, IMAGE, PRINCIPAL, request, sampleDecision } from '../../../test/support/audit-samples.js';
import type { Decision } from '../../core/evaluation/decision.js';
import { matchesFilter, parseFilter } from '../logging/filter.js';
import type { AuditRecord, EncodedAuditRecord, JsonObject } from '../store/store.js';
import { cloudRunLogEntries } from './cloudrun-log.js';
import {
  ACTIVITY_LOG_ID,
  CLOUD_RUN_BREAKGLASS_ANNOTATION,
  auditDecision,
  DecisionAuditWriter,
  decisionLogEntry,
  encodeAuditEntry,
  EVALUATE_METHOD,
  isDurableDecision,
  LABEL_BREAK_GLASS,
  LABEL_DRY_RUN,
  LABEL_OVERRIDDEN_RESULT,
  shouldAuditDecision,
  SYSTEM_EVENT_LOG_ID,
  type AuditWriteFailure,
} from './decision-log.js';

const TIME = '2026-11-22T08:00:00.123456Z';

function matches(filter: string, entry: JsonObject): boolean {
  const r = parseFilter(filter);
  if (!r.ok) throw new Error(r.error.message);
  return matchesFilter(r.value, entry);
}

const BLOCKED_PODS =
  'resource.type="k8s_cluster" logName:"cloudaudit.googleapis.com%2Factivity" (protoPayload.methodName="io.k8s.core.v1.pods.create" OR protoPayload.methodName="io.k8s.core.v1.pods.update") protoPayload.response.status="Failure" (protoPayload.response.reason="VIOLATES_POLICY" OR protoPayload.response.reason="Forbidden")';

describe('decisionLogEntry: Kubernetes admission', () => {
  it('writes a denied pod as GKE does: k8s_cluster, activity log, Failure / VIOLATES_POLICY / 403', () => {
    const r = decisionRecord('DENIED', admissionSource({ pod: 'web', namespace: 'shop' }), TIME, 'id-1', 'demo');
    expect(r).toMatchObject({ time: TIME, project: 'demo', logId: ACTIVITY_LOG_ID });
    expect(r.entry).toMatchObject({
      logName: 'projects/demo/logs/cloudaudit.googleapis.com%2Factivity',
      insertId: 'id-1',
      timestamp: TIME,
      resource: { type: 'k8s_cluster', labels: { project_id: 'demo', location: 'us-central1-a', cluster_name: 'prod' } },
      protoPayload: {
        '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
        serviceName: 'k8s.io',
        methodName: 'io.k8s.core.v1.pods.create',
        resourceName: 'core/v1/namespaces/shop/pods/web',
        authenticationInfo: { principalEmail: 'alice@example.com' },
        status: { code: 7, message: denialMessage() },
        response: { status: 'Failure', reason: 'VIOLATES_POLICY', code: 403, message: denialMessage() },
        metadata: { admissionReviewUid: 'uid-web', tollgateDecision: { verdict: { kind: 'DENIED' }, images: [{ image: IMAGE }] } },
      },
    });
    expect(r.entry['labels']).toEqual({ 'tollgate.dev/verdict': 'DENIED' });
    expect(matches(BLOCKED_PODS, r.entry)).toBe(true);
    // Every label value is a string, as LogEntry.labels requires.
    for (const v of Object.values(r.entry['labels'] as JsonObject)) expect(typeof v).toBe('string');
  });

  it('an allowed pod is not a blocked pod', () => {
    const r = decisionRecord('ALLOWED', admissionSource(), TIME, 'id-2');
    expect((r.entry['protoPayload'] as JsonObject)['response']).toMatchObject({ status: 'Success' });
    expect((r.entry['protoPayload'] as JsonObject)['status']).toEqual({});
    expect(matches(BLOCKED_PODS, r.entry)).toBe(false);
    expect(r.entry['severity']).toBe('NOTICE');
  });

  it('a dry run is allowed, labelled dry-run, and carries the overridden denial', () => {
    const r = decisionRecord('DRY_RUN', admissionSource(), TIME, 'id-3');
    expect(r.entry['labels']).toEqual({ 'tollgate.dev/verdict': 'DRY_RUN', [LABEL_DRY_RUN]: 'true', [LABEL_OVERRIDDEN_RESULT]: denialMessage() });
    expect(matches(BLOCKED_PODS, r.entry)).toBe(false);
    expect(matches('labels."imagepolicywebhook.image-policy.k8s.io/dry-run"="true"', r.entry)).toBe(true);
  });

  it('breakglass is labelled break-glass (and carries what it overrode), is durable, and is found by both documented queries', () => {
    const decision = sampleDecision('BREAKGLASS');
    const r = decisionLogEntry(decision, request(admissionSource({ operation: 'update' })), TIME, 'id-4');
    expect(r.entry['labels']).toEqual({ 'tollgate.dev/verdict': 'BREAKGLASS', [LABEL_BREAK_GLASS]: 'true', [LABEL_OVERRIDDEN_RESULT]: denialMessage() });
    expect(isDurableDecision(decision)).toBe(true);
    expect(isDurableDecision(sampleDecision('DENIED'))).toBe(false);
    expect(matches('labels."imagepolicywebhook.image-policy.k8s.io/break-glass"="true"', r.entry)).toBe(true);
    expect(matches('protoPayload.methodName="io.k8s.core.v1.pods.update" "image-policy.k8s.io/break-glass"', r.entry)).toBe(true);
    expect(matches(BLOCKED_PODS, r.entry)).toBe(false);
  });

  it('a breakglass over a dry-run denial is labelled both ways; over an allowed pod, nothing was overridden', () => {
    const over = sampleDecision('BREAKGLASS');
    const dry = { ...over, verdict: { kind: 'BREAKGLASS' as const, justification: 'x', wouldHaveBeen: 'DRY_RUN' as const } };
    expect(decisionLogEntry(dry, request(admissionSource()), TIME, 'a').entry['labels']).toMatchObject({ [LABEL_DRY_RUN]: 'true', [LABEL_BREAK_GLASS]: 'true' });
    const clean = { ...sampleDecision('ALLOWED'), verdict: { kind: 'BREAKGLASS' as const, justification: 'x', wouldHaveBeen: 'ALLOWED' as const } };
    expect(decisionLogEntry(clean, request(admissionSource()), TIME, 'b').entry['labels']).toEqual({ 'tollgate.dev/verdict': 'BREAKGLASS', [LABEL_BREAK_GLASS]: 'true' });
  });

  it('dryRun reviews are not audited; everything else is', () => {
    expect(shouldAuditDecision(request(admissionSource({ dryRun: true })))).toBe(false);
    expect(shouldAuditDecision(request(admissionSource()))).toBe(true);
    expect(shouldAuditDecision(request({ kind: 'evaluate-api', principal: PRINCIPAL }))).toBe(true);
    expect(shouldAuditDecision(request(cloudRunSource()))).toBe(true);
  });

  it('survives a JSON round trip unchanged (what the store does to it)', () => {
    const r = decisionRecord('DENIED', admissionSource(), TIME, 'id-5');
    expect(JSON.parse(JSON.stringify(r.entry))).toEqual(r.entry);
  });
});

describe('decisionLogEntry: evaluations and Cloud Run', () => {
  it('an evaluation is a Binary Authorization entry with its own method, never a deployment', () => {
    const r = decisionRecord('DENIED', { kind: 'evaluate-api', principal: PRINCIPAL }, TIME, 'id-6');
    expect(r.logId).toBe(ACTIVITY_LOG_ID);
    expect(r.entry).toMatchObject({
      resource: { type: 'audited_resource', labels: { project_id: 'demo', service: 'binaryauthorization.googleapis.com', method: EVALUATE_METHOD } },
      protoPayload: {
        serviceName: 'binaryauthorization.googleapis.com',
        methodName: 'tollgate.v1.Evaluation.Evaluate',
        resourceName: 'projects/demo/policy',
        authenticationInfo: { principalEmail: 'ci@example.com' },
        request: { images: [IMAGE] },
        response: { allowed: false, verdict: 'DENIED', messages: [denialMessage()] },
      },
    });
    expect(matches(BLOCKED_PODS, r.entry)).toBe(false);
    expect(matches('resource.type="k8s_cluster"', r.entry)).toBe(false);
    expect(matches('labels."imagepolicywebhook.image-policy.k8s.io/dry-run"="true"', decisionRecord('DRY_RUN', { kind: 'evaluate-api', principal: PRINCIPAL }, TIME, 'x').entry)).toBe(false);
  });

  it('a refused Cloud Run revision is a cloud_run_revision system event with ContainerImageUnauthorized', () => {
    const r = decisionRecord('DENIED', cloudRunSource('hello-00002-abc'), TIME, 'id-7');
    expect(r.logId).toBe(SYSTEM_EVENT_LOG_ID);
    expect(r.entry).toMatchObject({
      logName: 'projects/demo/logs/cloudaudit.googleapis.com%2Fsystem_event',
      resource: { type: 'cloud_run_revision', labels: { project_id: 'demo', service_name: 'hello', revision_name: 'hello-00002-abc', location: 'us-central1' } },
      protoPayload: { response: { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'ContainerImageUnauthorized' }] } } },
    });
    const message = ((r.entry['protoPayload'] as JsonObject)['status'] as JsonObject)['message'] as string;
    expect(message).toContain(`Revision 'hello-00002-abc' uses an unauthorized container image. Container image '${IMAGE}' is not authorized by policy.`);
    expect(matches('resource.type="cloud_run_revision"\nlogName:"cloudaudit.googleapis.com%2Fsystem_event"\nprotoPayload.response.status.conditions.reason="ContainerImageUnauthorized"', r.entry)).toBe(true);
  });

  it('Cloud Run dry run and breakglass are found by the seed\'s text queries', () => {
    const dry = decisionRecord('DRY_RUN', cloudRunSource(), TIME, 'id-8').entry;
    expect(matches('resource.type="cloud_run_revision"\nlogName:"cloudaudit.googleapis.com%2Fsystem_event"\n"dry run"', dry)).toBe(true);
    const glass = decisionRecord('BREAKGLASS', cloudRunSource(), TIME, 'id-9').entry;
    expect((glass['protoPayload'] as JsonObject)['request']).toEqual({ metadata: { annotations: { [CLOUD_RUN_BREAKGLASS_ANNOTATION]: 'incident 42' } } });
    expect(matches('protoPayload.@type="type.googleapis.com/google.cloud.audit.AuditLog"\n"run.googleapis.com/binary-authorization-breakglass"', glass)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

function record(id: string): AuditRecord {
  return { time: TIME, project: 'demo', logId: ACTIVITY_LOG_ID, entry: { insertId: id } };
}

class FakeStore {
  readonly calls: { at: number; ids: string[] }[] = [];
  failures = 0;
  delayMs = 0;
  async appendAudit(records: readonly (AuditRecord | EncodedAuditRecord)[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failures > 0) {
      this.failures--;
      throw new Error('database is locked');
    }
    this.calls.push({ at: performance.now(), ids: records.map((r) => String(('entryJson' in r ? (JSON.parse(r.entryJson) as JsonObject) : r.entry)['insertId'])) });
  }
}

describe('DecisionAuditWriter', () => {
  it('groups entries recorded together into one appendAudit, at most 100 ms later', async () => {
    const store = new FakeStore();
    const writer = new DecisionAuditWriter({ store });
    const start = performance.now();
    const done = [writer.record(record('a')), writer.record(record('b')), writer.record(record('c'))];
    expect(store.calls).toEqual([]);
    expect(writer.pending).toBe(3);
    await Promise.all(done);
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b', 'c']]);
    expect((store.calls[0]?.at ?? 0) - start).toBeLessThan(150);
    expect(writer.pending).toBe(0);
  });

  it('starts a write as soon as flushAt entries wait, without waiting for the window', async () => {
    const store = new FakeStore();
    const writer = new DecisionAuditWriter({ store, flushAt: 3, windowMs: 100 });
    const start = performance.now();
    const first = [writer.record(record('a')), writer.record(record('b'))];
    expect(writer.pending).toBe(2);
    const third = writer.record(record('c'));
    expect(writer.pending).toBe(0);
    await Promise.all([...first, third]);
    expect(performance.now() - start).toBeLessThan(50);
    // What follows waits for the window again.
    const late = writer.record(record('d'));
    expect(writer.pending).toBe(1);
    await late;
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b', 'c'], ['d']]);
  });

  it('keeps one write in flight: what arrives meanwhile goes in one batch after it, and a hung store fills the bounded buffer', async () => {
    const store = new FakeStore();
    store.delayMs = 150;
    const failures: AuditWriteFailure[] = [];
    const writer = new DecisionAuditWriter({ store, flushAt: 2, maxBuffered: 5, windowMs: 1, onError: (f) => failures.push(f) });
    const first = [writer.record(record('a')), writer.record(record('b'))];
    expect(writer.pending).toBe(0);
    // Each of these reaches flushAt or the window while [a, b] is being written: none starts a write of its own.
    const later = ['c', 'd', 'e', 'f', 'g'].map((id) => writer.record(record(id)));
    await new Promise((r) => setTimeout(r, 20));
    expect(writer.pending).toBe(5);
    await writer.record(record('h'));
    expect(failures.map((f) => [f.kind, [...f.insertIds]])).toEqual([['overflow', ['h']]]);
    await writer.flush();
    await Promise.all([...first, ...later]);
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b'], ['c', 'd', 'e', 'f', 'g']]);
    expect(writer.pending).toBe(0);
  });

  it('never waits longer than its window, whatever is asked', () => {
    const writer = new DecisionAuditWriter({ store: new FakeStore(), windowMs: 5000 });
    expect((writer as unknown as { windowMs: number }).windowMs).toBe(100);
  });

  it('commits a durable entry (with everything buffered before it) before resolving, without waiting for the window', async () => {
    const store = new FakeStore();
    const writer = new DecisionAuditWriter({ store, windowMs: 100 });
    void writer.record(record('a'));
    void writer.record(record('b'));
    const start = performance.now();
    await writer.record(record('glass'), { durable: true });
    expect(performance.now() - start).toBeLessThan(50);
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b', 'glass']]);
  });

  it('retries a failed write once, reporting it', async () => {
    const store = new FakeStore();
    store.failures = 1;
    const failures: AuditWriteFailure[] = [];
    const writer = new DecisionAuditWriter({ store, onError: (f) => failures.push(f), retryDelayMs: 1 });
    await writer.record(record('a'), { durable: true });
    expect(store.calls.map((c) => c.ids)).toEqual([['a']]);
    expect(failures.map((f) => [f.kind, f.count])).toEqual([['retrying', 1]]);
  });

  it('reports entries it cannot write as lost — never silently — and fails a durable record', async () => {
    const store = new FakeStore();
    store.failures = 2;
    const failures: AuditWriteFailure[] = [];
    const logged: string[] = [];
    const logger = { log: vi.fn(), info: vi.fn(), warn: (m: string) => logged.push(`warn ${m}`), error: (m: string) => logged.push(`error ${m}`) };
    const writer = new DecisionAuditWriter({ store, onError: (f) => failures.push(f), logger, retryDelayMs: 1 });
    const normal = writer.record(record('n'));
    await expect(writer.record(record('g'), { durable: true })).rejects.toThrow(/database is locked/);
    await expect(normal).resolves.toBeUndefined();
    expect(failures.map((f) => [f.kind, [...f.insertIds]])).toEqual([['retrying', ['n', 'g']], ['lost', ['n', 'g']]]);
    expect(logged).toEqual(['warn audit write failed; retrying once', 'error audit entries lost: the store refused them twice']);
    // The next batch is written normally.
    await writer.record(record('after'), { durable: true });
    expect(store.calls.map((c) => c.ids)).toEqual([['after']]);
  });

  it('writes batches in order, one at a time, and splits large ones', async () => {
    const store = new FakeStore();
    store.delayMs = 20;
    const writer = new DecisionAuditWriter({ store, maxBatch: 2, windowMs: 1 });
    const all = ['a', 'b', 'c', 'd', 'e'].map((id) => writer.record(record(id)));
    await Promise.all(all);
    await writer.record(record('f'));
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b'], ['c', 'd'], ['e'], ['f']]);
  });

  it('close() flushes what is buffered; later entries are written at once', async () => {
    const store = new FakeStore();
    const lines: string[] = [];
    const writer = new DecisionAuditWriter({ store, lineSink: (l) => lines.push(l) });
    void writer.record(record('a'));
    await writer.close();
    expect(store.calls.map((c) => c.ids)).toEqual([['a']]);
    await writer.record(record('b'));
    expect(store.calls.map((c) => c.ids)).toEqual([['a'], ['b']]);
    expect(lines).toEqual(['{"insertId":"a"}\n', '{"insertId":"b"}\n']);
  });

  it('refuses to hold more than maxBuffered entries, and says so', async () => {
    const store = new FakeStore();
    const failures: AuditWriteFailure[] = [];
    const writer = new DecisionAuditWriter({ store, maxBuffered: 2, onError: (f) => failures.push(f) });
    void writer.record(record('a'));
    void writer.record(record('b'));
    await writer.record(record('c'));
    expect(failures.map((f) => [f.kind, [...f.insertIds]])).toEqual([['overflow', ['c']]]);
    await writer.flush();
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b']]);
  });
});

describe('auditDecision: the decision as an entry stores it', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;
  const image = `us-docker.pkg.dev/demo/apps/web@${digest}`;
  const verified = { result: 'VERIFIED' as const, occurrence: 'projects/demo/occurrences/o1', resourceUri: image, keyId: 'k1' };
  const rule = { type: 'default' as const, evaluationMode: 'REQUIRE_ATTESTATION' as const, enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' as const };
  const base = { schemaVersion: 'tollgate.dev/decision/v1' as const, context: { platform: 'gke' as const }, messages: [] };

  it('leaves out what an allowed image repeats, and nothing else', () => {
    const decision = {
      ...base,
      allowed: true,
      verdict: { kind: 'ALLOWED' as const },
      images: [{ image, normalized: image, digest, verdict: 'ALLOWED' as const, reason: 'ATTESTED' as const, rule, attestors: [{ attestor: 'projects/demo/attestors/a', satisfied: true as const, verifiedBy: { occurrence: verified.occurrence, keyId: 'k1' }, attestations: [verified] }] }],
    };
    const stored = auditDecision(decision as unknown as Decision);
    expect(stored['images']).toEqual([{ image, verdict: 'ALLOWED', reason: 'ATTESTED', rule, attestors: [{ attestor: 'projects/demo/attestors/a', satisfied: true, verifiedBy: { occurrence: verified.occurrence, keyId: 'k1' } }] }]);
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(decision).length * 0.7);
    expect({ ...stored, images: undefined }).toEqual({ ...decision, images: undefined });
  });

  it('keeps a short name\'s normalized form, rejected attempts beside a verified one, and denials whole', () => {
    const rejected = { result: 'REJECTED' as const, occurrence: 'projects/demo/occurrences/o2', resourceUri: image, code: 'BAD_SIGNATURE', message: 'bad' };
    const short = `web@${digest}`;
    const decision = {
      ...base,
      allowed: false,
      verdict: { kind: 'DENIED' as const },
      images: [
        { image: short, normalized: `docker.io/library/web@${digest}`, digest, verdict: 'ALLOWED' as const, reason: 'ATTESTED' as const, rule, attestors: [{ attestor: 'projects/demo/attestors/a', satisfied: true as const, verifiedBy: { occurrence: verified.occurrence, keyId: 'k1' }, attestations: [rejected, verified] }] },
        { image, normalized: image, digest, verdict: 'DENIED' as const, reason: 'NOT_ATTESTED' as const, rule, dryRun: false, message: 'denied', attestors: [{ attestor: 'projects/demo/attestors/a', satisfied: false as const, reason: 'NO_VALID_ATTESTATIONS', message: 'no', attestations: [rejected] }] },
      ],
    };
    const stored = auditDecision(decision as unknown as Decision) as unknown as { images: Record<string, unknown>[] };
    expect(stored.images[0]).toMatchObject({ normalized: `docker.io/library/web@${digest}`, attestors: [{ attestations: [rejected, verified] }] });
    expect(stored.images[1]).toEqual({ image, verdict: 'DENIED', reason: 'NOT_ATTESTED', rule, dryRun: false, message: 'denied', attestors: decision.images[1]!.attestors });
  });
});

describe('encodeAuditEntry: an entry as JSON text', () => {
  const verdicts = ['ALLOWED', 'DENIED', 'DRY_RUN', 'BREAKGLASS'] as const;

  it('is exactly JSON.stringify of the entry, for every kind of entry and verdict', () => {
    const entries: JsonObject[] = [adminActivityEntry('google.cloud.binaryauthorization.v1.BinauthzManagementServiceV1.UpdatePolicy', 'projects/demo/policy', TIME), { no: 'protoPayload' }, { protoPayload: { metadata: { tollgateDecision: 'not an object' } } }];
    for (const verdict of verdicts) {
      const decision = sampleDecision(verdict, { justification: 'incident 7' });
      for (const source of [admissionSource(), cloudRunSource(), { kind: 'evaluate-api' as const, principal: PRINCIPAL }]) {
        for (const r of cloudRunLogEntries(decision, request(source), TIME, `id-${verdict}`)) entries.push(r.entry);
      }
    }
    expect(entries.length).toBeGreaterThan(15);
    // Each decision goes into three entries: the first carries a decision met once, the others
    // the kept one, whose JSON is made once and spliced in.
    for (const entry of entries) expect(encodeAuditEntry(entry)).toBe(JSON.stringify(entry));
  });

  it('serializes a decision handed out again once for all its later entries, and keeps each entry\'s own fields', () => {
    const decision = sampleDecision('ALLOWED');
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      const entries = ['a', 'b', 'c'].map((pod) => decisionLogEntry(decision, request(admissionSource({ pod })), TIME, `id-${pod}`).entry);
      const stored = (e: JsonObject) => ((e['protoPayload'] as JsonObject)['metadata'] as JsonObject)['tollgateDecision'];
      // A decision met once keeps nothing; from its second entry on it is one kept object.
      expect(stored(entries[0]!)).not.toBe(stored(entries[1]!));
      expect(stored(entries[1]!)).toBe(stored(entries[2]!));
      const kept = stored(entries[1]!);
      const texts = entries.map(encodeAuditEntry);
      // Encoding leaves every entry holding its decision, as it was.
      expect(stored(entries[1]!)).toBe(kept);
      expect(stored(entries[2]!)).toBe(kept);
      // Its JSON was made once, when it was kept: the decision around a placeholder, and each image.
      const calls = stringify.mock.calls.map(([v]) => v as Record<string, unknown>);
      expect(calls.filter((v) => typeof v === 'object' && 'schemaVersion' in v)).toHaveLength(1);
      expect(calls.filter((v) => typeof v === 'object' && 'verdict' in v && 'image' in v)).toHaveLength(decision.images.length);
      expect(texts).toEqual(entries.map((e) => JSON.stringify(e)));
      expect(JSON.parse(texts[2]!)).toMatchObject({ insertId: 'id-c', protoPayload: { resourceName: expect.stringContaining('/pods/c') } });
    } finally {
      stringify.mockRestore();
    }
  });

  it('serializes an image decision met again once, inside every new decision that holds it', () => {
    // A rollout: each review a new decision of one new image and the same sidecar image decision.
    const sidecar = sampleDecision('ALLOWED', { image: `us-docker.pkg.dev/demo/apps/envoy@sha256:${'e'.repeat(64)}` }).images[0]!;
    const decisions = [1, 2, 3, 4].map((n) => {
      const own = sampleDecision(n === 3 ? 'DENIED' : 'ALLOWED', { image: `us-docker.pkg.dev/demo/apps/web@sha256:${String(n).repeat(64)}` });
      return { ...own, images: [own.images[0]!, sidecar] } as Decision;
    });
    const stringify = vi.spyOn(JSON, 'stringify');
    let entries: JsonObject[];
    let texts: string[];
    try {
      entries = decisions.map((d, n) => decisionLogEntry(d, request(admissionSource({ pod: `p${n}` })), TIME, `id-${n}`).entry);
      texts = entries.map(encodeAuditEntry);
      const sidecarCalls = stringify.mock.calls.filter(([v]) => typeof v === 'object' && v !== null && (v as { image?: string }).image === sidecar.image);
      // Made when the sidecar was met the second time, then spliced into the later decisions.
      expect(sidecarCalls).toHaveLength(1);
    } finally {
      stringify.mockRestore();
    }
    expect(texts).toEqual(entries.map((e) => JSON.stringify(e)));
    expect(JSON.parse(texts[3]!)).toMatchObject({ protoPayload: { metadata: { tollgateDecision: { images: [{ image: decisions[3]!.images[0]!.image }, { image: sidecar.image, verdict: 'ALLOWED' }] } } } });
  });

  it('is not fooled by entry values that look like its placeholder', () => {
    const decision = sampleDecision('DENIED', { image: `us-docker.pkg.dev/demo/apps/tollgate-decision-x@sha256:${'a'.repeat(64)}` });
    for (let i = 0; i < 3; i++) {
      const entry = decisionLogEntry(decision, request(admissionSource({ pod: 'tollgate-decision-' })), TIME, '"tollgate-decision-"').entry;
      expect(encodeAuditEntry(entry)).toBe(JSON.stringify(entry));
    }
  });
});
