/**
 * The decision service: store → core → audit. Parsed policies, attestors, attestation rows and
 * verified signatures are cached. The store's change mark (it moves on every committed resource
 * write, through any replica) is read at most `freshnessMs` apart; while it stands still every
 * cached value is current and a decision reads nothing from the store. When it moves, each cached
 * row is read again on its next use and its parsed form kept if its version did not change. So a
 * change made through any replica takes effect everywhere within that window (the
 * verified-signature cache included: a removed key changes the attestor's version).
 */
import { randomUUID } from 'node:crypto';
import { parseAttestor } from '../../core/attestation/attestor.js';
import { checkAttestation } from '../../core/attestation/check.js';
import type { AttestationCheck, Attestor } from '../../core/attestation/model.js';
import { parseAttestationOccurrence } from '../../core/attestation/occurrence.js';
import type { Decision, ImageDecision } from '../../core/evaluation/decision.js';
import {
  compilePatterns,
  compilePolicy,
  deploymentDecision,
  evaluateImages,
  failedDecision,
  requiredEvidence,
  type CompiledPatterns,
  type CompiledPolicy,
  type ImageParser,
} from '../../core/evaluation/evaluate.js';
import type { AttestorLookup, Evidence } from '../../core/evaluation/evidence.js';
import type { EvaluationRequest } from '../../core/evaluation/request.js';
import { parseImageReference } from '../../core/image/reference.js';
import { defaultPolicy } from '../../core/policy/model.js';
import { parsePolicyObject } from '../../core/policy/parse.js';
import { loadSystemPolicyPatterns } from '../api/binaryauthorization.js';
import { listAttestationOccurrencesOf } from '../api/containeranalysis.js';
import { isDurableDecision, shouldAuditDecision } from '../audit/decision-log.js';
import { BoundedMap } from '../bounded-map.js';
import type { Iam } from '../iam/iam.js';
import type { Logger } from '../log.js';
import type { AuditRecord, Store, StoredResource } from '../store/store.js';
import { lateDecisionMessage, type DecideRequest, type DecisionService } from './decision-service.js';
import { binauthzServiceAgent, getProject, type Project } from './projects.js';
import { IN_PLACE, type VerifyPlacement } from './verify-placement.js';

/** Where decisions are logged (the group-committing audit writer). */
export interface DecisionRecorder {
  record(entry: AuditRecord, opts?: { durable?: boolean }): Promise<void>;
}

/** Optional tag → digest resolution before deciding (`--resolve-tags`). */
export interface TagResolution {
  resolve(images: readonly string[], deadlineMs: number): Promise<{ images: string[]; failures: readonly { image: string; reason: string }[] }>;
}

export interface DecisionServiceOptions {
  readonly store: Store;
  readonly iam: Iam;
  readonly logger: Logger;
  readonly recorder: DecisionRecorder;
  /** Builds the audit entries of a decision (src/server/audit/decision-log.ts; Cloud Run writes two). */
  readonly logEntries: (decision: Decision, request: DecideRequest, time: string, insertId: string) => readonly AuditRecord[];
  readonly tags?: TagResolution;
  /** How long a row read from the store may be reused before it is read again. */
  readonly freshnessMs?: number;
  /**
   * Bound on verified-signature cache entries (and on cached attestation lookups): each costs
   * ~1.3 KB of heap, so the default 10 000 holds at most ~13 MB (a share of a 200 MB server)
   * however many images a cluster churns through; one pushed out costs a lookup and a
   * verification (~0.2 ms) when its image comes back.
   */
  readonly maxCachedChecks?: number;
  readonly now?: () => Date;
  /** Where P-256 and RSA verifications run (verify-placement.ts; default: in place). */
  readonly placement?: VerifyPlacement;
  /** Per-decision deadline for network work (tag resolution). */
  readonly tagDeadlineMs?: number;
  /** Observes each decision (metrics). */
  readonly observe?: (decision: Decision, request: DecideRequest, seconds: number) => void;
  /** Observes each cache lookup (metrics). A value read again because the store moved is a miss. */
  readonly observeCache?: (cache: DecisionCache, hit: boolean) => void;
  /** Observes each failed store read (metrics); the decisions waiting on it fail closed. */
  readonly observeStoreError?: (operation: DecisionStoreRead) => void;
  /** Observes each signature check made (not reused), with the placement in use for it (metrics). */
  readonly observeVerification?: (onPool: boolean) => void;
}

/** The decision service's caches, as the metrics name them. */
export type DecisionCache = 'decisions' | 'images' | 'policies' | 'attestors' | 'attestation-lookups' | 'signatures';
/** The store reads a decision may make, as the metrics name them. */
export type DecisionStoreRead = 'change-mark' | 'project' | 'policy' | 'system-policy' | 'attestor' | 'attestations';

interface Cached<T> {
  readonly version: string;
  readonly value: T;
  /** The cache epoch the row was read in: current while it equals the service's epoch. */
  readonly epoch: number;
  /** When the value stops holding by itself (ms since the epoch): a PGP signature expires. */
  readonly until?: number;
}


export function createDecisionService(opts: DecisionServiceOptions): DecisionService {
  const freshness = opts.freshnessMs ?? 250;
  const now = opts.now ?? (() => new Date());
  const placement = opts.placement ?? IN_PLACE;
  const maxChecks = opts.maxCachedChecks ?? 10_000;
  const projects = new Map<string, Cached<Project | undefined>>();
  const policies = new Map<string, Cached<CompiledPolicy>>();
  const attestors = new Map<string, Cached<{ attestor: Attestor } | { error: string }>>();
  let system: Cached<CompiledPatterns> | undefined;
  /** A verified check whose PGP signature has expired since: it must be made again. */
  const lapsed = (check: AttestationCheck): boolean => check.kind === 'verified' && check.validUntil !== undefined && now().getTime() >= check.validUntil.getTime();
  const cacheSeen = opts.observeCache ?? (() => undefined);
  const storeFailed = opts.observeStoreError;
  /** A store read, counted when it fails (the failure still propagates: the decision fails closed). */
  const fromStore = <T>(operation: DecisionStoreRead, pending: Promise<T>): Promise<T> =>
    storeFailed === undefined
      ? pending
      : pending.catch((e: unknown) => {
          storeFailed(operation);
          throw e;
        });
  // Verified signatures per (occurrence version, attestor version): never verified twice.
  const checks = new BoundedMap<string, AttestationCheck>(maxChecks);
  // The checks found for (attestor version, digest) in an epoch: the one indexed lookup per image
  // is made again only when the store changed. Holds results, not rows, to keep memory small.
  const checkLists = new BoundedMap<string, Cached<AttestationCheck[]>>(maxChecks);
  // Enough for the repeats a memo is for (a rollout, a controller sending a pod spec again); under
  // churn every entry is a whole decision held in the old generation, so not more.
  const decisions = new BoundedMap<string, Cached<Decision>>(1_000);
  // Image decisions by project, context and image: a rollout that changes one image sends the
  // others (sidecars, init containers) again in every review, each a new deployment decision
  // made of mostly the same image decisions. Twice the decisions' bound: a few images each.
  const imageDecisions = new BoundedMap<string, Cached<ImageDecision>>(2_000);
  // Decisions being made now, by memo key (removed when made; bounded by requests in flight).
  const inFlight = new Map<string, Cached<Promise<Decision>>>();
  // Parsed image references (pure values, never stale): the same images arrive in review after
  // review, and an evaluation reads each image twice (which evidence it needs, then the verdict).
  const parsedImages = new BoundedMap<string, ReturnType<ImageParser>>(2_000);
  const parseImage: ImageParser = (image) => {
    let parsed = parsedImages.get(image);
    if (parsed === undefined) {
      parsed = parseImageReference(image);
      parsedImages.set(image, parsed);
    }
    return parsed;
  };

  // The epoch advances whenever the store's change mark moves; entries of an older epoch are
  // checked against the store again before use.
  let epoch = 0;
  let mark: { value: string; readAt: number } | undefined;
  let markRead: { pending: Promise<void>; startedAt: number } | undefined;

  /**
   * Keeps the change mark read at most `freshness` ago. Past half the window a decision starts
   * the next read and goes on without it (the mark it has is still within the window), so under
   * steady traffic the mark is read before it goes stale and no decision waits for it: on
   * PostgreSQL that wait was a round trip, every window, for every review in flight. Only a mark
   * older than the whole window is waited for (undefined: nothing to wait for, the warm path
   * stays synchronous) — so a change still takes effect within the window, and a store that
   * cannot be read still fails the decisions that need it.
   */
  function syncWithStore(): Promise<void> | undefined {
    const t = Date.now();
    const age = mark === undefined ? Infinity : t - mark.readAt;
    if (age < freshness / 2) return undefined;
    // Decisions arriving together share one read, as long as it started within the window.
    const pending = markRead !== undefined && t - markRead.startedAt < freshness ? markRead.pending : readMark(t);
    return age < freshness ? undefined : pending;
  }

  function readMark(t: number): Promise<void> {
    const read = {
      startedAt: t,
      pending: fromStore('change-mark', opts.store.changeMark()).then(
        (value) => {
          if (mark === undefined || mark.value !== value) epoch++;
          mark = { value, readAt: t };
        },
      ).finally(() => {
        if (markRead === read) markRead = undefined;
      }),
    };
    // A read started ahead of time may have nobody waiting on it: its failure is counted (by
    // fromStore) and fails the decisions that do wait on a read, not the process.
    read.pending.catch(() => undefined);
    markRead = read;
    return read.pending;
  }

  const isFresh = <T>(c: Cached<T>): boolean => c.epoch === epoch;
  /** Fresh, and still holding by itself (a value resting on a verification that expires holds until then). */
  const holds = <T>(c: Cached<T> | undefined): c is Cached<T> => c !== undefined && isFresh(c) && (c.until === undefined || now().getTime() < c.until);
  const versionOf = (r: StoredResource | undefined) => (r === undefined ? 'none' : `${r.version}@${r.updateTime}`);

  async function project(id: string): Promise<Project | undefined> {
    const c = projects.get(id);
    if (c !== undefined && isFresh(c)) return c.value;
    const e = epoch;
    const p = await fromStore('project', getProject(opts.store, id));
    projects.set(id, { version: p?.projectNumber ?? 'none', value: p, epoch: e });
    return p;
  }

  async function policy(projectId: string): Promise<CompiledPolicy> {
    const c = policies.get(projectId);
    const fresh = c !== undefined && isFresh(c);
    cacheSeen('policies', fresh);
    if (fresh) return c.value;
    const e = epoch;
    const row = await fromStore('policy', opts.store.get('policy', `projects/${projectId}/policy`));
    const version = versionOf(row);
    if (c !== undefined && c.version === version) {
      policies.set(projectId, { ...c, epoch: e });
      return c.value;
    }
    const parsed = row === undefined ? { ok: true as const, value: defaultPolicy(projectId) } : parsePolicyObject(stripOutputOnly(row.body));
    if (!parsed.ok) throw new Error(`the stored policy of ${projectId} is invalid: ${parsed.error.map((p) => p.message).join('; ')}`);
    const compiled = compilePolicy(parsed.value);
    if (!compiled.ok) throw new Error(`the stored policy of ${projectId} has invalid patterns: ${compiled.error.map((p) => p.message).join('; ')}`);
    policies.set(projectId, { version, value: compiled.value, epoch: e });
    return compiled.value;
  }

  async function systemPatterns(): Promise<CompiledPatterns> {
    if (system !== undefined && isFresh(system)) return system.value;
    const e = epoch;
    const patterns = await fromStore('system-policy', loadSystemPolicyPatterns(opts.store));
    const compiled = compilePatterns(patterns);
    if (!compiled.ok) throw new Error(`the system policy has invalid patterns: ${compiled.error.map((p) => p.message).join('; ')}`);
    system = { version: patterns.join('\n'), value: compiled.value, epoch: e };
    return compiled.value;
  }

  async function attestor(name: string): Promise<{ attestor: Attestor; version: string } | { error: string }> {
    const c = attestors.get(name);
    const fresh = c !== undefined && isFresh(c);
    cacheSeen('attestors', fresh);
    if (fresh) return 'attestor' in c.value ? { attestor: c.value.attestor, version: c.version } : c.value;
    const e = epoch;
    const row = await fromStore('attestor', opts.store.get('attestor', name));
    const version = versionOf(row);
    if (c !== undefined && c.version === version) {
      attestors.set(name, { ...c, epoch: e });
      return 'attestor' in c.value ? { attestor: c.value.attestor, version } : c.value;
    }
    let value: { attestor: Attestor } | { error: string };
    if (row === undefined) value = { error: `attestor ${name} not found` };
    else {
      const parsed = await parseAttestor(row.body);
      value = parsed.ok ? { attestor: parsed.value } : { error: `attestor ${name} is invalid: ${parsed.error.map((p) => p.message).join('; ')}` };
    }
    attestors.set(name, { version, value, epoch: e });
    return 'attestor' in value ? { attestor: value.attestor, version } : value;
  }

  /** Cross-project use needs explicit grants (Google's service agents hold them in their own project only). */
  async function accessProblem(deployer: Project, a: Attestor): Promise<string | undefined> {
    const attestorProject = /^projects\/([^/]+)\//.exec(a.name)?.[1];
    if (attestorProject !== undefined && attestorProject !== deployer.projectId) {
      const agent = binauthzServiceAgent(deployer);
      if (!(await opts.iam.memberHas(`serviceAccount:${agent}`, 'binaryauthorization.attestors.verifyImageAttested', a.name))) {
        return `the Binary Authorization service agent of project ${deployer.projectId} (${agent}) lacks binaryauthorization.attestors.verifyImageAttested on ${a.name} (grant roles/binaryauthorization.attestorsVerifier on the attestor)`;
      }
    }
    const noteProject = /^projects\/([^/]+)\//.exec(a.noteReference)?.[1];
    if (attestorProject !== undefined && noteProject !== undefined && noteProject !== attestorProject) {
      const owner = await project(attestorProject);
      const agent = owner === undefined ? undefined : binauthzServiceAgent(owner);
      if (agent === undefined || !(await opts.iam.memberHas(`serviceAccount:${agent}`, 'containeranalysis.notes.listOccurrences', a.noteReference))) {
        return `the Binary Authorization service agent of project ${attestorProject}${agent ? ` (${agent})` : ''} cannot read the occurrences of ${a.noteReference} (grant roles/containeranalysis.notes.occurrences.viewer on the note)`;
      }
    }
    return undefined;
  }

  // Attestation lookups asked for while the event loop handles one batch of I/O (the reviews that
  // arrived together), by note and digest: they go to the store as one query per note on the
  // next turn (setImmediate), one round trip instead of one per review on PostgreSQL. A failed
  // query fails every decision waiting on it (each then denies, fail closed).
  let pendingLookups = new Map<string, Map<string, { resolve: (rows: StoredResource[]) => void; reject: (e: unknown) => void }[]>>();
  function lookupAttestations(note: string, digest: string): Promise<StoredResource[]> {
    return new Promise((resolve, reject) => {
      if (pendingLookups.size === 0) setImmediate(flushLookups);
      let byDigest = pendingLookups.get(note);
      if (byDigest === undefined) pendingLookups.set(note, (byDigest = new Map()));
      let waiting = byDigest.get(digest);
      if (waiting === undefined) byDigest.set(digest, (waiting = []));
      waiting.push({ resolve, reject });
    });
  }
  function flushLookups(): void {
    const batch = pendingLookups;
    pendingLookups = new Map();
    for (const [note, byDigest] of batch) {
      fromStore('attestations', listAttestationOccurrencesOf(opts.store, note, [...byDigest.keys()])).then(
        (found) => {
          for (const [digest, waiting] of byDigest) for (const w of waiting) w.resolve(found.get(digest) ?? []);
        },
        (e: unknown) => {
          for (const waiting of byDigest.values()) for (const w of waiting) w.reject(e);
        },
      );
    }
  }

  /** The checks of the image's attestations, and when the first of them expires (if one does). */
  async function checksFor(a: Attestor, attestorVersion: string, digest: string): Promise<{ readonly value: AttestationCheck[]; readonly until?: number }> {
    const listKey = `${a.name}#${attestorVersion}|${digest}`;
    const cached = checkLists.get(listKey);
    const fresh = holds(cached);
    cacheSeen('attestation-lookups', fresh);
    if (fresh) return cached;
    const e = epoch;
    const rows = await lookupAttestations(a.noteReference, digest);
    const out: AttestationCheck[] = [];
    for (const row of rows) {
      const key = `${row.name}#${versionOf(row)}|${a.name}#${attestorVersion}`;
      let check = checks.get(key);
      if (check !== undefined && lapsed(check)) check = undefined;
      cacheSeen('signatures', check !== undefined);
      if (check === undefined) {
        const parsed = parseAttestationOccurrence({ ...row.body, name: row.name }, row.name);
        if (!parsed.ok) continue;
        const onPool = placement.place();
        opts.observeVerification?.(onPool);
        check = await checkAttestation(a, parsed.value, now(), { verifyOnPool: onPool });
        checks.set(key, check);
      }
      out.push(check);
    }
    const until = validUntil(out);
    const entry = { version: '', value: out, epoch: e, ...(until === undefined ? {} : { until }) };
    checkLists.set(listKey, entry);
    return entry;
  }

  async function buildEvidence(deployer: Project, compiled: CompiledPolicy, sys: CompiledPatterns, request: EvaluationRequest): Promise<Evidence & { readonly until: number | undefined }> {
    const need = requiredEvidence(compiled, sys, request, parseImage);
    const lookups = new Map<string, AttestorLookup>();
    const found = new Map<string, Map<string, AttestationCheck[]>>();
    let until: number | undefined;
    // Every (attestor, digest) list is asked for before any is awaited: the lookups a decision
    // needs (a rollout that changes two images, a policy with two attestors) go to the store in
    // one batch, one query per note, instead of one batch after another.
    const lists: Promise<void>[] = [];
    for (const name of need.attestors) {
      const a = await attestor(name);
      if ('error' in a) {
        lookups.set(name, { found: false, code: 'ATTESTOR_NOT_FOUND', message: a.error });
        continue;
      }
      const problem = await accessProblem(deployer, a.attestor);
      if (problem !== undefined) {
        lookups.set(name, { found: false, code: 'ATTESTOR_NOT_ACCESSIBLE', message: problem });
        continue;
      }
      lookups.set(name, { found: true, attestor: a.attestor });
      const perDigest = new Map<string, AttestationCheck[]>();
      for (const digest of need.digests) {
        lists.push(
          checksFor(a.attestor, a.version, digest).then((list) => {
            perDigest.set(digest, list.value);
            if (list.until !== undefined) until = Math.min(until ?? Infinity, list.until);
          }),
        );
      }
      found.set(name, perDigest);
    }
    await Promise.all(lists);
    return {
      attestor: (name) => lookups.get(name) ?? { found: false, code: 'ATTESTOR_NOT_FOUND', message: `attestor ${name} not found` },
      checks: (name, digest) => found.get(name)?.get(digest) ?? [],
      until,
    };
  }

  /**
   * The request's image decisions: those made before against the same store state and context
   * as they are, the others evaluated, with evidence gathered for them alone. `until`: when the
   * first of them stops holding by itself.
   */
  async function decideEachImage(
    deployer: Project,
    compiled: CompiledPolicy,
    sys: CompiledPatterns,
    evaluation: EvaluationRequest,
    contextKey: string,
    e: number,
  ): Promise<{ images: ImageDecision[]; until: number | undefined }> {
    const images: ImageDecision[] = new Array<ImageDecision>(evaluation.images.length);
    const missing: { at: number; key: string }[] = [];
    let until: number | undefined;
    for (let i = 0; i < evaluation.images.length; i++) {
      // The context key delimits itself, so the image needs no separator after it.
      const key = `${contextKey}${evaluation.images[i]!}`;
      const known = imageDecisions.get(key);
      const fresh = holds(known);
      cacheSeen('images', fresh);
      if (!fresh) {
        missing.push({ at: i, key });
        continue;
      }
      images[i] = known.value;
      if (known.until !== undefined) until = Math.min(until ?? Infinity, known.until);
    }
    if (missing.length === 0) return { images, until };
    const partial: EvaluationRequest = { images: missing.map((m) => evaluation.images[m.at]!), context: evaluation.context };
    const evidence = await buildEvidence(deployer, compiled, sys, partial);
    const made = evaluateImages(compiled, sys, partial, evidence, parseImage);
    // Each keeps the evidence's earliest expiry, which may be another image's: sooner is safe.
    const madeUntil = evidence.until;
    for (let j = 0; j < missing.length; j++) {
      const { at, key } = missing[j]!;
      images[at] = made[j]!;
      imageDecisions.set(key, { version: '', value: made[j]!, epoch: e, ...(madeUntil === undefined ? {} : { until: madeUntil }) });
    }
    if (madeUntil !== undefined) until = Math.min(until ?? Infinity, madeUntil);
    return { images, until };
  }

  /** The decision, made or remembered; a fresh memo hit is returned as is, without a promise. */
  function decideUnlogged(request: DecideRequest, evaluation: EvaluationRequest): Decision | Promise<Decision> {
    const reading = syncWithStore();
    return reading === undefined ? decideAgainstStore(request, evaluation) : reading.then(() => decideAgainstStore(request, evaluation));
  }

  function decideAgainstStore(request: DecideRequest, evaluation: EvaluationRequest): Decision | Promise<Decision> {
    // The same images in the same context against an unchanged store get the same decision
    // (decisions are immutable data): the API server sends the same pod spec many times. Keys
    // are JSON, each part delimiting itself: joined with a separator, an image whose name holds
    // that separator would find the decision made for the two images it spells.
    const contextKey = `${JSON.stringify(request.project)}${JSON.stringify(evaluation.context)}`;
    const memoKey = `${contextKey}${JSON.stringify(evaluation.images)}`;
    const memo = decisions.get(memoKey);
    if (holds(memo)) {
      cacheSeen('decisions', true);
      return memo.value;
    }
    // A rollout sends the same pod spec many times at once: requests that arrive while the same
    // decision is being made (against the same store state) wait for it instead of repeating
    // the lookups and verifications.
    const running = inFlight.get(memoKey);
    const joined = running !== undefined && isFresh(running);
    cacheSeen('decisions', joined);
    if (joined) return running.value;
    const e = epoch;
    const making = (async () => {
      const deployer = await project(request.project);
      if (deployer === undefined) return failedDecision(evaluation, `project ${request.project} does not exist in Tollgate`);
      const compiled = await policy(request.project);
      const sys = await systemPatterns();
      const { images, until } = await decideEachImage(deployer, compiled, sys, evaluation, contextKey, e);
      const decision = deploymentDecision(evaluation, images);
      // A decision that rests on a verification that expires is reused only until then.
      decisions.set(memoKey, { version: '', value: decision, epoch: e, ...(until === undefined ? {} : { until }) });
      return decision;
    })();
    const entry = { version: '', value: making, epoch: e };
    inFlight.set(memoKey, entry);
    const done = () => {
      if (inFlight.get(memoKey) === entry) inFlight.delete(memoKey);
    };
    making.then(done, done);
    return making;
  }

  /** Fail closed: whatever broke (the store, a corrupt row) denies, and says so. */
  function failedToDecide(request: DecideRequest, evaluation: EvaluationRequest, e: unknown): Decision {
    opts.logger.error('decision failed', { project: request.project, error: e instanceof Error ? e.message : String(e) });
    return failedDecision(evaluation, `no decision could be made: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** What every decision goes through once made: the deadline's rule, the audit entry, the metrics. */
  function conclude(request: DecideRequest, evaluation: EvaluationRequest, made: Decision, started: bigint): Decision | Promise<Decision> {
    let decision = made;
    if (request.deadline !== undefined && Date.now() > request.deadline.at) {
      // The caller answered without it (see DecideRequest.deadline): record what it was told.
      decision = failedDecision(evaluation, lateDecisionMessage(request.deadline.budgetMs));
    }
    const observed = (): Decision => {
      opts.observe?.(decision, request, Number(process.hrtime.bigint() - started) / 1e9);
      return decision;
    };
    if (!shouldAuditDecision(request)) return observed();
    // Cloud Logging's timestamps carry microseconds: 2026-11-24T15:28:14.203000Z.
    const entries = opts.logEntries(decision, request, `${now().toISOString().slice(0, -1)}000Z`, randomUUID());
    // Breakglass is committed before the answer; everything else rides the next group commit.
    if (isDurableDecision(decision)) return Promise.all(entries.map((entry) => opts.recorder.record(entry, { durable: true }))).then(observed);
    for (const entry of entries) opts.recorder.record(entry).catch(ignore);
    return observed();
  }

  /** Tag → digest resolution (`--resolve-tags`): a failure of the resolver itself leaves the images as they are. */
  async function resolveTags(tags: TagResolution, images: readonly string[]): Promise<{ images: string[]; failures: readonly { image: string; reason: string }[] }> {
    try {
      return await tags.resolve([...images], opts.tagDeadlineMs ?? 3000);
    } catch (e) {
      opts.logger.warn('tag resolution failed', { error: String(e) });
      return { images: [...images], failures: [] };
    }
  }

  /** Decides these images (the request's, or their resolved digests), made or remembered, then concludes. */
  function decideImages(request: DecideRequest, images: string[], started: bigint, tagFailures: readonly { image: string; reason: string }[] = []): Decision | Promise<Decision> {
    const evaluation: EvaluationRequest = { images, context: request.context };
    const finish = (decision: Decision) => conclude(request, evaluation, tagFailures.length > 0 ? withTagFailures(decision, tagFailures) : decision, started);
    let made: Decision | Promise<Decision>;
    try {
      made = decideUnlogged(request, evaluation);
    } catch (e) {
      made = failedToDecide(request, evaluation, e);
    }
    if (made instanceof Promise) return made.then(finish, (e: unknown) => finish(failedToDecide(request, evaluation, e)));
    return finish(made);
  }

  return {
    decide(request) {
      const started = process.hrtime.bigint();
      if (opts.tags === undefined) return decideImages(request, [...request.images], started);
      return resolveTags(opts.tags, request.images).then((r) => decideImages(request, r.images, started, r.failures));
    },
  };
}

const ignore = (): void => undefined;

/** The earliest time one of these checks stops holding (ms since the epoch), if any does. */
function validUntil(checks: readonly AttestationCheck[]): number | undefined {
  let until: number | undefined;
  for (const c of checks) {
    if (c.kind === 'verified' && c.validUntil !== undefined) until = Math.min(until ?? Infinity, c.validUntil.getTime());
  }
  return until;
}

/** Output-only fields the API adds; the policy parser rejects nothing for them, but they are not policy. */
function stripOutputOnly(body: Record<string, unknown>): Record<string, unknown> {
  const { updateTime: _u, etag: _e, ...rest } = body;
  return rest;
}

/** Says why a tag could not be resolved, next to the "expected digest" denial it led to. */
function withTagFailures(decision: Decision, failures: readonly { image: string; reason: string }[]): Decision {
  const reasons = new Map(failures.map((f) => [f.image, f.reason]));
  const images = decision.images.map((i) => {
    const why = reasons.get(i.image);
    return why !== undefined && i.verdict === 'DENIED' ? { ...i, message: `${i.message} (tag resolution failed: ${why})` } : i;
  });
  return { ...decision, images, messages: images.filter((i) => i.verdict === 'DENIED').map((i) => (i.verdict === 'DENIED' ? i.message : '')) };
}
