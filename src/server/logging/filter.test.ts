import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sampleEntries } from '../../../test/support/audit-samples.js';
import { canonicalTime, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, matchesFilter, parseFilter, timeLowerBound, timeUpperBound, type FilterNode } from './filter.js';

const ENTRIES = sampleEntries();
const ALL = Object.keys(ENTRIES);
const GKE = ['gkeDenied', 'gkeLegacyForbidden', 'gkeAllowed', 'gkeDryRun', 'gkeBreakglass'];
const RUN = ['runDenied', 'runDryRun', 'runBreakglass'];
const ERRORS = ['gkeDenied', 'gkeLegacyForbidden', 'runDenied', 'webRequest'];
const WITH_DENIED_IMAGE = ['gkeDenied', 'gkeLegacyForbidden', 'gkeDryRun', 'gkeBreakglass', 'evaluation', 'runDenied', 'runDryRun', 'runBreakglass'];
const except = (...names: string[]) => ALL.filter((n) => !names.includes(n));

// Reference §6.1, as the docs print it: "…" abbreviates the repeated field names.
const BLOCKED_PODS_AS_PRINTED =
  'resource.type="k8s_cluster" logName:"cloudaudit.googleapis.com%2Factivity" (protoPayload.methodName="io.k8s.core.v1.pods.create" OR …pods.update) protoPayload.response.status="Failure" (protoPayload.response.reason="VIOLATES_POLICY" OR …="Forbidden")';
// The same query with the abbreviations written out.
const BLOCKED_PODS =
  'resource.type="k8s_cluster" logName:"cloudaudit.googleapis.com%2Factivity" (protoPayload.methodName="io.k8s.core.v1.pods.create" OR protoPayload.methodName="io.k8s.core.v1.pods.update") protoPayload.response.status="Failure" (protoPayload.response.reason="VIOLATES_POLICY" OR protoPayload.response.reason="Forbidden")';
const DRY_RUN = 'labels."imagepolicywebhook.image-policy.k8s.io/dry-run"="true"';
const BREAKGLASS = 'labels."imagepolicywebhook.image-policy.k8s.io/break-glass"="true"';
const BREAKGLASS_TEXT = '(protoPayload.methodName="io.k8s.core.v1.pods.create" OR protoPayload.methodName="io.k8s.core.v1.pods.update") "image-policy.k8s.io/break-glass"';
const GCLOUD_PREFIX = 'timestamp>="2026-11-22T07:58:32.192286Z" AND ';

/** [filter, the sample entries it matches]. */
const TABLE: readonly (readonly [string, readonly string[]])[] = [
  // Reference §6.1: blocked pods, dry-run entries, breakglass entries.
  [BLOCKED_PODS_AS_PRINTED, ['gkeDenied']],
  [BLOCKED_PODS, ['gkeDenied', 'gkeLegacyForbidden']],
  [GCLOUD_PREFIX + BLOCKED_PODS, ['gkeDenied']],
  [BLOCKED_PODS.split(/ (?=resource|logName|\(|protoPayload\.response\.status)/).join('\n'), ['gkeDenied', 'gkeLegacyForbidden']],
  [DRY_RUN, ['gkeDryRun']],
  [GCLOUD_PREFIX + DRY_RUN, ['gkeDryRun']],
  [BREAKGLASS, ['gkeBreakglass']],
  [BREAKGLASS_TEXT, ['gkeBreakglass']],
  ['resource.type="k8s_cluster" labels."imagepolicywebhook.image-policy.k8s.io/overridden-verification-result":"denied by"', ['gkeDryRun', 'gkeBreakglass']],
  // Seeds 001 and 002 (Cloud Run), one term per line as their authors wrote them.
  ['\n  resource.type="cloud_run_revision"\n  AND protoPayload.serviceName="binaryauthorization.googleapis.com"\n', RUN],
  ['resource.type="cloud_run_revision"\nlogName:"cloudaudit.googleapis.com%2Fsystem_event"\nprotoPayload.response.status.conditions.reason="ContainerImageUnauthorized"', ['runDenied']],
  ['resource.type="cloud_run_revision"\nlogName:"cloudaudit.googleapis.com%2Fsystem_event"\n"dry run"', ['runDryRun']],
  ['protoPayload.@type="type.googleapis.com/google.cloud.audit.AuditLog"\n"run.googleapis.com/binary-authorization-breakglass"', ['runBreakglass']],
  // Admin Activity.
  ['protoPayload.methodName="grafeas.v1.Grafeas.CreateNote"', ['createNote']],
  ['timestamp>="2026-11-21T08:00:00.000000Z" AND protoPayload.methodName="grafeas.v1.Grafeas.CreateNote"', ['createNote']],
  ['proto_payload.method_name="grafeas.v1.Grafeas.CreateNote"', ['createNote']],
  // Severities compare by level, names in any case; a missing severity is DEFAULT.
  ['severity>=ERROR', ERRORS],
  ['severity>=warning', [...ERRORS, 'gkeDryRun', 'gkeBreakglass', 'runDryRun', 'runBreakglass']],
  ['severity<NOTICE', ['evaluation']],
  ['severity=NOTICE', ['gkeAllowed', 'createNote']],
  ['NOT NOT severity=ERROR', ERRORS],
  // Bare and spaced values, negation.
  ['resource.type=k8s_cluster', GKE],
  ['resource.type = "audited_resource"', ['evaluation', 'createNote']],
  ['-resource.type="k8s_cluster" severity=ERROR', ['runDenied', 'webRequest']],
  ['NOT resource.type="k8s_cluster" AND NOT resource.type="cloud_run_revision"', ['evaluation', 'createNote', 'webRequest']],
  ['protoPayload.methodName!="io.k8s.core.v1.pods.create"', except('gkeDenied', 'gkeAllowed', 'gkeDryRun')],
  // Has (:), case-insensitive; on objects it looks at keys and values, on arrays at each element.
  ['protoPayload.methodName:PODS', GKE],
  ['protoPayload.@type:"auditlog"', except('webRequest')],
  ['labels:"dry-run"', ['gkeDryRun']],
  ['jsonPayload.tags:beta', ['webRequest']],
  ['jsonPayload.tags="alpha"', ['webRequest']],
  ['resource.labels.revision_name:"00003"', ['runDryRun']],
  ['jsonPayload."@type"="type.googleapis.com/example.Request"', ['webRequest']],
  // Presence.
  ['protoPayload.authenticationInfo.principalEmail:*', except('webRequest')],
  ['jsonPayload.missing:*', []],
  // Timestamps compare as times (offsets and bare dates too).
  ['timestamp>="2026-11-22T08:03:00Z"', ['gkeBreakglass', 'evaluation', ...RUN]],
  ['timestamp<"2026-11-22"', ['webRequest']],
  ['timestamp>="2026-11-22T10:05:00+02:00"', RUN],
  ['timestamp>2026-11-22T08:06:00Z', ['runBreakglass']],
  ['timestamp="2026-11-22T08:00:00Z"', ['gkeDenied']],
  // Numbers compare numerically (also int64 written as strings).
  ['httpRequest.status>=400', ['webRequest']],
  ['jsonPayload.count>9', ['webRequest']],
  ['jsonPayload.ratio<10', ['webRequest']],
  ['protoPayload.response.code=403', ['gkeDenied', 'gkeLegacyForbidden']],
  ['protoPayload.status.code=7', ['gkeDenied', 'gkeLegacyForbidden', 'runDenied']],
  ['jsonPayload.ok=false', ['webRequest']],
  // Bare text, searched across the whole entry ignoring case.
  ['unicorn', []],
  ['VIOLATES', ['gkeDenied']],
  ['"Dry Run"', ['runDryRun']],
  ['"hello-00002-abc"', ['runDenied']],
  // OR binds tighter than AND (explicit or implied by juxtaposition).
  ['resource.type="k8s_cluster" OR resource.type="cloud_run_revision" severity=ERROR', ['gkeDenied', 'gkeLegacyForbidden', 'runDenied']],
  ['resource.type="cloud_run_revision" AND severity=ERROR OR labels."tollgate.dev/verdict"="DRY_RUN"', ['runDenied', 'runDryRun']],
  ['((severity=ERROR) AND (resource.type="global"))', ['webRequest']],
  // Repeated fields: a path through arrays matches when any element does.
  ['protoPayload.metadata.tollgateDecision.images.verdict="DENIED"', WITH_DENIED_IMAGE],
  ['protoPayload.metadata.tollgateDecision.images.attestors.reason="NO_ATTESTATIONS"', WITH_DENIED_IMAGE],
  // Log names, encoded or not, and log_id().
  ['log_id("cloudaudit.googleapis.com/system_event")', RUN],
  ['logName="projects/demo/logs/cloudaudit.googleapis.com/activity"', [...GKE, 'evaluation', 'createNote']],
  ['logName="projects/demo/logs/cloudaudit.googleapis.com%2Factivity"', [...GKE, 'evaluation', 'createNote']],
  // Evaluations are audited as evaluations, never as deployments.
  ['protoPayload.serviceName="binaryauthorization.googleapis.com" protoPayload.methodName="tollgate.v1.Evaluation.Evaluate"', ['evaluation']],
  ['labels."tollgate.dev/verdict"="BREAKGLASS"', ['gkeBreakglass', 'runBreakglass']],
  ['resource.labels.cluster_name="prod" resource.labels.location="us-central1-a"', GKE],
  // Comments and empty filters.
  ['-- blocked Cloud Run revisions\nresource.type="cloud_run_revision" -- the resource\nseverity=ERROR', ['runDenied']],
  ['', ALL],
  ['  \n\t ', ALL],
];

describe('Logging filters against sample entries', () => {
  it('has a table of at least 40 filters', () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(40);
  });

  it.each(TABLE)('%s', (filter, expected) => {
    const parsed = parseFilter(filter);
    if (!parsed.ok) throw new Error(`did not parse: ${JSON.stringify(parsed.error)}`);
    const matched = ALL.filter((name) => matchesFilter(parsed.value, ENTRIES[name]));
    expect(matched.sort()).toEqual([...expected].sort());
  });
});

describe('malformed filters', () => {
  const CASES: readonly (readonly [string, RegExp, number, number?, number?])[] = [
    ['severity=', /expected a value after "="/, 9],
    ['severity= ', /expected a value after "="/, 10],
    ['(severity=ERROR', /unbalanced "\("/, 0],
    ['severity=ERROR)', /unbalanced "\)"/, 14],
    ['a=("x")', /expected a value/, 2],
    ['"unterminated', /unterminated string/, 0],
    ['a AND', /expected a term after AND/, 2],
    ['a OR', /expected a term after OR/, 2],
    ['OR a', /expected a term, found OR/, 0],
    ['a AND AND b', /expected a term, found AND/, 6],
    ['NOT', /expected a term after NOT/, 0],
    ['-', /expected a term after "-"/, 0],
    ['()', /empty parentheses/, 0],
    ['a =~ "x"', /regular-expression/, 2],
    ['a !~ "x"', /regular-expression/, 2],
    ['sample(insertId, 0.1)', /function sample\(\) is not supported/, 0],
    ['log_id(x)', /one quoted log ID/, 7],
    ['resource.="x"', /expected a field name after "\."/, 9],
    ['=5', /expected a field, a value or text/, 0],
    ['a=AND', /expected a value after "=", found AND/, 2],
    ['a="\\u12"', /four hex digits/, 3],
    ['severity=ERROR\nresource.type=', /expected a value/, 29, 2, 15],
  ];

  for (const [filter, message, position, line, column] of CASES) {
    it(JSON.stringify(filter), () => {
      const r = parseFilter(filter);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.message).toMatch(message);
      expect(r.error.position).toBe(position);
      if (line !== undefined) expect([r.error.line, r.error.column]).toEqual([line, column]);
    });
  }

  it('refuses filters longer than Cloud Logging allows, and nesting deeper than the limit', () => {
    const long = parseFilter(`"${'x'.repeat(MAX_FILTER_LENGTH)}"`);
    expect(long.ok).toBe(false);
    const deep = parseFilter(`${'('.repeat(MAX_FILTER_DEPTH + 1)}a${')'.repeat(MAX_FILTER_DEPTH + 1)}`);
    expect(deep.ok).toBe(false);
    if (!deep.ok) expect(deep.error.message).toMatch(/nested deeper/);
    const ok = parseFilter(`${'('.repeat(MAX_FILTER_DEPTH)}a${')'.repeat(MAX_FILTER_DEPTH)}`);
    expect(ok.ok).toBe(true);
    // Negations are counted, not recursed into.
    expect(parseFilter(`${'NOT '.repeat(4000)}a`).ok).toBe(true);
    expect(parseFilter(`${'-'.repeat(2)}a`).ok).toBe(true); // a comment, then the term
  });
});

describe('the AST', () => {
  it('reads quoted path segments, escapes and gcloud\'s prefix into one AND', () => {
    const r = parseFilter('timestamp>="2026-11-22T07:58:32.192286Z" AND labels."a.b/c"="say \\"hi\\"" jsonPayload."@type":x');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.kind).toBe('and');
    const terms = (r.value as Extract<FilterNode, { kind: 'and' }>).terms;
    expect(terms.map((t) => t.kind)).toEqual(['compare', 'compare', 'compare']);
    expect(terms[1]).toMatchObject({ path: ['labels', 'a.b/c'], op: '=', value: { text: 'say "hi"', quoted: true } });
    expect(terms[2]).toMatchObject({ path: ['jsonPayload', '@type'], op: ':', value: { text: 'x', quoted: false } });
  });

  it('treats OR as binding tighter than AND and juxtaposition', () => {
    const r = parseFilter('a=1 b=2 OR c=3 AND d=4');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ kind: 'and', terms: [{ kind: 'compare' }, { kind: 'or', terms: [{ kind: 'compare' }, { kind: 'compare' }] }, { kind: 'compare' }] });
  });
});

describe('time bounds for the store query', () => {
  const lower = (f: string) => {
    const r = parseFilter(f);
    if (!r.ok) throw new Error(r.error.message);
    return timeLowerBound(r.value);
  };
  const upper = (f: string) => {
    const r = parseFilter(f);
    if (!r.ok) throw new Error(r.error.message);
    return timeUpperBound(r.value);
  };

  it('reads gcloud\'s timestamp>= prefix', () => {
    expect(lower(GCLOUD_PREFIX + BLOCKED_PODS)).toEqual({ time: '2026-11-22T07:58:32.192286Z', inclusive: true });
  });

  it('takes the tightest of several, and > as exclusive', () => {
    expect(lower('timestamp>="2026-01-01T00:00:00Z" severity>=ERROR timestamp>"2026-02-01T00:00:00+01:00"')).toEqual({ time: '2026-01-31T23:00:00.000000Z', inclusive: false });
    expect(upper('timestamp<="2026-03-01" timestamp<"2026-02-01"')).toEqual({ time: '2026-02-01T00:00:00.000000Z', inclusive: false });
  });

  it('finds none under OR or NOT, or for non-timestamps', () => {
    expect(lower('timestamp>="2026-01-01T00:00:00Z" OR severity=ERROR')).toBeUndefined();
    expect(lower('NOT timestamp>="2026-01-01T00:00:00Z"')).toBeUndefined();
    expect(lower('timestamp>="yesterday"')).toBeUndefined();
    expect(lower('receiveTimestamp>="2026-01-01T00:00:00Z"')).toBeUndefined();
    expect(lower('')).toBeUndefined();
  });
});

describe('canonicalTime', () => {
  it('normalizes offsets, precision and dates', () => {
    expect(canonicalTime('2026-11-22T07:58:32.192286Z')).toBe('2026-11-22T07:58:32.192286Z');
    expect(canonicalTime('2026-11-22T09:58:32.1+02:00')).toBe('2026-11-22T07:58:32.100000Z');
    expect(canonicalTime('2026-11-22T07:58:32.123456789Z')).toBe('2026-11-22T07:58:32.123456Z');
    expect(canonicalTime('2026-11-22')).toBe('2026-11-22T00:00:00.000000Z');
    expect(canonicalTime('2026-02-30T00:00:00Z')).toBeUndefined();
    expect(canonicalTime('yesterday')).toBeUndefined();
  });
});

describe('properties', () => {
  const grammar = fc.constantFrom(
    '(', ')', '"', '\\', '-', '--', 'AND', 'OR', 'NOT', ' ', '\n', '=', '!=', ':', '.', '<', '>=', '*', 'a', 'severity', 'timestamp',
    '"2026-11-22T00:00:00Z"', 'labels', '@type', 'log_id(', '\\u00', '…', '\u0000', '\uD800',
  );
  const filters = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.array(grammar, { maxLength: 40 }).map((parts) => parts.join('')));

  it('the parser never throws, and evaluating what it accepts never throws', () => {
    fc.assert(
      fc.property(filters, (text) => {
        const r = parseFilter(text);
        if (!r.ok) {
          expect(r.error.position).toBeGreaterThanOrEqual(0);
          expect(r.error.position).toBeLessThanOrEqual(text.length);
          return;
        }
        for (const entry of Object.values(ENTRIES)) matchesFilter(r.value, entry);
        matchesFilter(r.value, {});
        matchesFilter(r.value, null);
      }),
      { numRuns: 3000 },
    );
  });

  it('NOT f matches exactly the entries f does not', () => {
    fc.assert(
      fc.property(fc.array(grammar, { maxLength: 20 }).map((p) => p.join('')), (text) => {
        const r = parseFilter(text);
        const n = parseFilter(`NOT (${text})`);
        if (!r.ok || !n.ok) return;
        for (const entry of Object.values(ENTRIES)) expect(matchesFilter(n.value, entry)).toBe(!matchesFilter(r.value, entry));
      }),
      { numRuns: 1000 },
    );
  });
});
