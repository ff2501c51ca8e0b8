/**
 * The Cloud Run audit entries (issue 6 §4) against the seeds' queries, written as the seeds write
 * them (one term per line), through the same filter the logging API serves.
 */
import { describe, expect, it } from 'vitest';
import { cloudRunActivityEntry, cloudRunLogEntries, cloudRunRevisionEvent, RUN_REASON } from '../src/server/audit/cloudrun-log.js';
import { decisionLogEntry } from '../src/server/audit/decision-log.js';
import { matchesFilter, parseFilter } from '../src/server/logging/filter.js';
import type { JsonObject } from '../src/server/store/store.js';
import { BINAUTHZ_QUERY, BLOCKED_QUERY, BREAKGLASS_QUERY, DRY_RUN_QUERY } from './support/run-queries.js';
import { admissionSource, cloudRunSource, IMAGE, PRINCIPAL, request, sampleDecision, type Verdict } from './support/audit-samples.js';

const TIME = '2026-11-23T08:00:00.000000Z';

const BLOCKED = BLOCKED_QUERY;
const DRY_RUN = DRY_RUN_QUERY;
const BREAKGLASS = BREAKGLASS_QUERY;
const BINAUTHZ = BINAUTHZ_QUERY;

function matches(filter: string, entry: JsonObject): boolean {
  const r = parseFilter(filter);
  if (!r.ok) throw new Error(r.error.message);
  return matchesFilter(r.value, entry);
}

function entries(verdict: Verdict, revision = `hello-0000${verdict.length}-abc`) {
  const decision = sampleDecision(verdict, { context: { platform: 'cloudrun' }, justification: 'incident 42' });
  return cloudRunLogEntries(decision, request(cloudRunSource(revision)), TIME, 'id');
}

describe('cloudRunLogEntries', () => {
  it('writes two entries per decision: Cloud Run system_event and Binary Authorization', () => {
    const [run, binauthz] = entries('DENIED', 'hello-00002-abc');
    expect(run).toMatchObject({ project: 'demo', logId: 'cloudaudit.googleapis.com/system_event' });
    expect(run?.entry).toMatchObject({
      logName: 'projects/demo/logs/cloudaudit.googleapis.com%2Fsystem_event',
      insertId: 'id.run',
      resource: { type: 'cloud_run_revision', labels: { project_id: 'demo', service_name: 'hello', revision_name: 'hello-00002-abc', location: 'us-central1' } },
      protoPayload: {
        '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
        serviceName: 'run.googleapis.com',
        resourceName: 'namespaces/demo/revisions/hello-00002-abc',
        response: { kind: 'Revision', status: { conditions: [{ type: 'Ready', status: 'False', reason: 'ContainerImageUnauthorized' }] } },
      },
    });
    const message = ((run?.entry['protoPayload'] as JsonObject)['response'] as { status: { conditions: { message: string }[] } }).status.conditions[0]?.message;
    expect(message).toContain(`Container image '${IMAGE}' is not authorized by policy`);
    expect(message).toContain('projects/demo/attestors/build: No attestations found');
    expect(binauthz?.entry).toMatchObject({
      insertId: 'id.binauthz',
      resource: { type: 'cloud_run_revision', labels: { revision_name: 'hello-00002-abc' } },
      protoPayload: { serviceName: 'binaryauthorization.googleapis.com', authenticationInfo: { principalEmail: PRINCIPAL.email }, status: { code: 7 }, metadata: { tollgateDecision: { verdict: { kind: 'DENIED' } } } },
    });
  });

  it('seed 002: blocked, dry run and breakglass queries each find exactly their own Cloud Run entries', () => {
    const all = (['ALLOWED', 'DENIED', 'DRY_RUN', 'BREAKGLASS'] as const).flatMap((v) => entries(v).map((r) => ({ verdict: v, entry: r.entry })));
    const found = (filter: string) => all.filter((e) => matches(filter, e.entry)).map((e) => `${e.verdict}:${(e.entry['protoPayload'] as JsonObject)['serviceName'] as string}`);
    expect(found(BLOCKED)).toEqual(['DENIED:run.googleapis.com']);
    expect(found(DRY_RUN)).toEqual(['DRY_RUN:run.googleapis.com']);
    // Breakglass: the Cloud Run entry (with the justification) and the Binary Authorization one.
    expect(found(BREAKGLASS)).toEqual(['BREAKGLASS:run.googleapis.com', 'BREAKGLASS:binaryauthorization.googleapis.com']);
    const glass = all.find((e) => e.verdict === 'BREAKGLASS')?.entry as JsonObject;
    expect(JSON.stringify(glass)).toContain('"run.googleapis.com/binary-authorization-breakglass":"incident 42"');
  });

  it("seed 001: the Binary Authorization query finds one entry per decision", () => {
    const all = (['ALLOWED', 'DENIED', 'DRY_RUN', 'BREAKGLASS'] as const).flatMap((v) => entries(v).map((r) => r.entry));
    const hits = all.filter((e) => matches(BINAUTHZ, e));
    expect(hits).toHaveLength(4);
    for (const h of hits) expect((h['protoPayload'] as JsonObject)['serviceName']).toBe('binaryauthorization.googleapis.com');
  });

  it('a decision that could not be made is refused with its own reason (not a policy denial)', () => {
    const d = sampleDecision('DENIED', { context: { platform: 'cloudrun' } });
    const failed = { ...d, images: d.images.map((i) => ({ image: i.image, verdict: 'DENIED' as const, reason: 'EVALUATION_FAILED' as const, dryRun: false as const, message: `Image ${i.image} denied: no decision could be made: store down` })) };
    const [run] = cloudRunLogEntries(failed, request(cloudRunSource()), TIME, 'id');
    expect(JSON.stringify(run?.entry)).toContain(RUN_REASON.CHECK_FAILED);
    expect(matches(BLOCKED, run?.entry as JsonObject)).toBe(false);
  });

  it('other sources get decisionLogEntry unchanged', () => {
    const d = sampleDecision('DENIED');
    const req = request(admissionSource());
    expect(cloudRunLogEntries(d, req, TIME, 'x')).toEqual([decisionLogEntry(d, req, TIME, 'x')]);
  });
});

describe('events that are not decisions', () => {
  it('an unresolvable image and a runtime failure are system events that no seed query mistakes for policy entries', () => {
    const base = { project: 'demo', region: 'us-central1', service: 'hello', revision: 'hello-00001-abc', time: TIME, images: ['r/x:v1'] } as const;
    const refused = cloudRunRevisionEvent({ ...base, insertId: 'a', kind: 'REFUSED', reason: RUN_REASON.UNRESOLVED, message: "Image 'r/x:v1' could not be resolved" }).entry;
    const failed = cloudRunRevisionEvent({ ...base, insertId: 'b', kind: 'FAILED', reason: RUN_REASON.REVISION_FAILED, message: 'boom' }).entry;
    const unchecked = cloudRunRevisionEvent({ ...base, insertId: 'c', kind: 'UNCHECKED', message: 'deployed without a check' }).entry;
    for (const e of [refused, failed, unchecked]) {
      expect(e).toMatchObject({ resource: { type: 'cloud_run_revision' }, protoPayload: { serviceName: 'run.googleapis.com' } });
      for (const q of [BLOCKED, DRY_RUN, BREAKGLASS, BINAUTHZ]) expect(matches(q, e)).toBe(false);
    }
    expect(matches('protoPayload.response.status.conditions.reason="ContainerMissing"', refused)).toBe(true);
  });

  it('switching the guard is recorded on the ReplaceService entry', () => {
    const e = cloudRunActivityEntry({ project: 'demo', region: 'us-central1', service: 'hello', method: 'replace', principal: PRINCIPAL, time: TIME, insertId: 'r', binaryAuthorizationChange: { previous: null, current: 'default' } }).entry;
    expect(e).toMatchObject({
      logName: 'projects/demo/logs/cloudaudit.googleapis.com%2Factivity',
      labels: { 'tollgate.dev/binary-authorization-change': 'enabled' },
      protoPayload: { methodName: 'google.cloud.run.v1.Services.ReplaceService', metadata: { binaryAuthorization: { previous: null, current: 'default' } } },
    });
    expect(matches('labels."tollgate.dev/binary-authorization-change"="enabled"', e)).toBe(true);
  });
});
