/**
 * Decision audit entries: every decision (allowed, denied, dry-run would-deny, breakglass) becomes
 * one Cloud Audit Log `LogEntry`, shaped so that the queries Google documents for Binary
 * Authorization find it (reference §6.1), and is written behind the answer in group commits.
 *
 * Shapes, by where the decision came from:
 * - `admission` (the Kubernetes webhook): resource `k8s_cluster`, log `cloudaudit.googleapis.com/activity`,
 *   service `k8s.io`, method `io.k8s.core.v1.pods.create` etc.; a deny carries the Kubernetes
 *   Status `{status: "Failure", reason: "VIOLATES_POLICY", code: 403}` as `protoPayload.response`;
 *   dry run and breakglass carry the image-policy webhook's labels.
 * - `evaluate-api`: resource `audited_resource`, service `binaryauthorization.googleapis.com`,
 *   method `tollgate.v1.Evaluation.Evaluate` (Tollgate's own): an evaluation, never a deployment.
 * - `cloudrun`: resource `cloud_run_revision`, log `cloudaudit.googleapis.com/system_event`, a
 *   refused revision carries the condition reason `ContainerImageUnauthorized` (reference §6.2).
 *
 * The whole Tollgate decision rides along in `protoPayload.metadata.tollgateDecision` (AuditLog's
 * free-form metadata field), so the entry stays Google-shaped and loses nothing.
 */
import { randomUUID } from 'node:crypto';
import type { Decision, ImageDecision } from '../../core/evaluation/decision.js';
import type { Logger } from '../log.js';
import type { DecideRequest } from '../services/decision-service.js';
import type { AuditRecord, EncodedAuditRecord, JsonObject, StoreOps } from '../store/store.js';

export const AUDIT_LOG_TYPE = 'type.googleapis.com/google.cloud.audit.AuditLog';
export const ACTIVITY_LOG_ID = 'cloudaudit.googleapis.com/activity';
export const SYSTEM_EVENT_LOG_ID = 'cloudaudit.googleapis.com/system_event';

/** Labels Google's image-policy webhook puts on a pod's audit entry (reference §6.1). */
export const LABEL_DRY_RUN = 'imagepolicywebhook.image-policy.k8s.io/dry-run';
export const LABEL_OVERRIDDEN_RESULT = 'imagepolicywebhook.image-policy.k8s.io/overridden-verification-result';
export const LABEL_BREAK_GLASS = 'imagepolicywebhook.image-policy.k8s.io/break-glass';
/** Tollgate's own label on every decision entry: ALLOWED, DENIED, DRY_RUN or BREAKGLASS. */
export const LABEL_VERDICT = 'tollgate.dev/verdict';

export const EVALUATE_METHOD = 'tollgate.v1.Evaluation.Evaluate';
export const CLOUD_RUN_METHOD = 'tollgate.v1.CloudRun.CheckRevision';
export const BINAUTHZ_SERVICE = 'binaryauthorization.googleapis.com';
/** The Cloud Run annotation that carries a breakglass justification (reference §6.2). */
export const CLOUD_RUN_BREAKGLASS_ANNOTATION = 'run.googleapis.com/binary-authorization-breakglass';

/** `projects/P/logs/ID` with the log ID URL-encoded, as Cloud Logging names logs. */
export function logNameOf(project: string, logId: string): string {
  let encoded = encodedLogIds.get(logId);
  if (encoded === undefined) {
    encoded = encodeURIComponent(logId);
    // Every decision names one of a few logs: encode each once.
    if (encodedLogIds.size < 64) encodedLogIds.set(logId, encoded);
  }
  return `projects/${project}/logs/${encoded}`;
}

const encodedLogIds = new Map<string, string>();

/**
 * Whether a decision is audited at all: Kubernetes `dryRun: true` reviews are answered but not
 * audited as deployments (nothing is deployed).
 */
export function shouldAuditDecision(request: DecideRequest): boolean {
  return !(request.source.kind === 'admission' && request.source.dryRun);
}

/** Breakglass entries are committed before the answer goes out; the rest in group commits. */
export function isDurableDecision(decision: Decision): boolean {
  return decision.verdict.kind === 'BREAKGLASS';
}

/** The denial texts of a decision (enforced and dry-run), without the blanks of allowed images. */
function denialMessages(decision: Decision): string[] {
  return decision.messages.filter((m) => m !== '');
}

/** A decision entry's LogEntry severity, by verdict (shared with the Cloud Run entries). */
export function severityOf(kind: Decision['verdict']['kind']): string {
  switch (kind) {
    case 'ALLOWED':
      return 'NOTICE';
    case 'DENIED':
      return 'ERROR';
    case 'DRY_RUN':
    case 'BREAKGLASS':
      return 'WARNING';
  }
}

/** The would-be denial a dry run or breakglass overrode, if any. */
function overriddenResult(decision: Decision): string | undefined {
  const v = decision.verdict;
  const overrode = v.kind === 'DRY_RUN' || (v.kind === 'BREAKGLASS' && v.wouldHaveBeen !== 'ALLOWED');
  const messages = denialMessages(decision);
  return overrode && messages.length > 0 ? messages.join('\n') : undefined;
}

/**
 * The decision as it is stored in an entry: the decision schema with what an allowed image
 * repeats left out — `normalized` and `digest` when the image as written already says them, and
 * a satisfied attestor's `attestations` when they are only the verified one `verifiedBy` names.
 * Every rejected attempt and every denial is kept whole. Entries are written for every decision,
 * so this keeps them at about half the size (less to serialize, store and scan).
 */
export function auditDecision(decision: Decision): JsonObject {
  const kept = keptDecisions.get(decision);
  if (kept !== undefined) return kept;
  let reused = false;
  const images = decision.images.map((i) => {
    const known = keptImages.get(i);
    if (known !== undefined) {
      reused = true;
      return known;
    }
    return slimImageOnce(i);
  });
  const slim = { ...decision, images } as unknown as JsonObject;
  // Decisions are immutable, and the decision service hands out the same one again for a
  // repeated review (a rollout, a controller sending a pod spec again): from its second entry on,
  // a decision keeps its slimmed form, whose JSON encodeAuditEntry then makes once. A decision
  // met once keeps nothing: under a stream of new images most are, and keeping theirs for as
  // long as the decision memo holds them would only fill the old generation.
  if (seenDecisions.has(decision)) {
    keptDecisions.set(decision, slim);
    keptJson.set(slim, decisionJson(slim));
  } else {
    seenDecisions.add(decision);
    // A new decision made of image decisions met before (a rollout changes one image; the
    // sidecars are the same image decisions, handed out again by the decision service): their
    // JSON is made once, and only the new images' is made here. Held by the entry's own object,
    // so it goes with the entry.
    if (reused) keptJson.set(slim, decisionJson(slim));
  }
  return slim;
}

const seenDecisions = new WeakSet<Decision>();
const keptDecisions = new WeakMap<Decision, JsonObject>();
/** The JSON of each slimmed decision (or image decision) auditDecision keeps and returns again. */
const keptJson = new WeakMap<JsonObject, string>();
const seenImages = new WeakSet<ImageDecision>();
const keptImages = new WeakMap<ImageDecision, JsonObject>();

/** An image decision slimmed; from its second time on, kept with its JSON, as whole decisions are. */
function slimImageOnce(i: ImageDecision): JsonObject {
  const slim = slimImage(i);
  if (seenImages.has(i)) {
    keptImages.set(i, slim);
    keptJson.set(slim, JSON.stringify(slim));
  } else seenImages.add(i);
  return slim;
}

function slimImage(i: ImageDecision): JsonObject {
  const { normalized, digest, ...rest } = i;
  const out: Record<string, unknown> = rest;
  if (normalized !== undefined && normalized !== i.image) out['normalized'] = normalized;
  if (digest !== undefined && !i.image.endsWith(`@${digest}`)) out['digest'] = digest;
  if ('attestors' in i && i.attestors !== undefined) {
    out['attestors'] = i.attestors.map((a) => {
      if (!a.satisfied || a.attestations.some((t) => t.result !== 'VERIFIED') || a.attestations.length > 1) return a;
      const { attestations: _verified, ...short } = a;
      return short;
    });
  }
  return out as JsonObject;
}

/**
 * Exactly `JSON.stringify(slim)`, with each image's JSON made once: the decision is serialized
 * with a placeholder for its images, which is then replaced by their JSON texts (each kept, or
 * made now), so the images are not walked again.
 */
function decisionJson(slim: JsonObject): string {
  const images = slim['images'] as JsonObject[];
  let list = '[';
  for (let k = 0; k < images.length; k++) {
    const image = images[k]!;
    list += (k === 0 ? '' : ',') + (keptJson.get(image) ?? JSON.stringify(image));
  }
  list += ']';
  const text = JSON.stringify({ ...slim, images: SLOT });
  const at = text.indexOf(QUOTED_SLOT);
  return `${text.slice(0, at)}${list}${text.slice(at + QUOTED_SLOT.length)}`;
}

/**
 * An entry as JSON text: exactly `JSON.stringify(entry)`, but a decision that auditDecision
 * keeps (one handed out again, see there; about two thirds of the entry's text) is serialized
 * once, not once per entry. The envelope is serialized with a placeholder in the decision's
 * place, which is then replaced; the placeholder holds a random nonce, so no value in an entry
 * can be mistaken for it.
 */
export function encodeAuditEntry(entry: JsonObject): string {
  // Only the entry builders above put a kept decision in an entry, always at this path, so
  // finding one there also says that the objects around it are the builders' own.
  const payload = entry['protoPayload'] as JsonObject | undefined;
  const metadata = payload?.['metadata'] as JsonObject | undefined;
  const decision = metadata?.['tollgateDecision'] as JsonObject | undefined;
  const json = decision === undefined ? undefined : keptJson.get(decision);
  if (json === undefined || metadata === undefined) return JSON.stringify(entry);
  // The builders' objects are their own and this is synchronous: put the placeholder in the
  // decision's place for the one stringify, rather than copying three objects around it.
  metadata['tollgateDecision'] = SLOT;
  let text: string;
  try {
    text = JSON.stringify(entry);
  } finally {
    metadata['tollgateDecision'] = decision as JsonObject;
  }
  // The builders put the decision last, so the placeholder is found from the end at once.
  const at = text.lastIndexOf(QUOTED_SLOT);
  return `${text.slice(0, at)}${json}${text.slice(at + QUOTED_SLOT.length)}`;
}

/** Stands for a part serialized apart; its random nonce keeps any value in an entry from being taken for it. */
const SLOT = `tollgate-decision-${randomUUID()}`;
const QUOTED_SLOT = JSON.stringify(SLOT);

/** Builds the audit record of one decision. Pure: time and insertId come from the caller. */
export function decisionLogEntry(decision: Decision, request: DecideRequest, time: string, insertId: string): AuditRecord {
  switch (request.source.kind) {
    case 'admission':
      return admissionEntry(decision, request, request.source, time, insertId);
    case 'evaluate-api':
      return evaluationEntry(decision, request, request.source, time, insertId);
    case 'cloudrun':
      return cloudRunEntry(decision, request, request.source, time, insertId);
  }
}

type SourceOf<K extends DecideRequest['source']['kind']> = Extract<DecideRequest['source'], { kind: K }>;

function admissionEntry(decision: Decision, request: DecideRequest, source: SourceOf<'admission'>, time: string, insertId: string): AuditRecord {
  const dot = source.cluster.indexOf('.');
  const location = dot < 0 ? '' : source.cluster.slice(0, dot);
  const clusterName = dot < 0 ? source.cluster : source.cluster.slice(dot + 1);
  const v = decision.verdict;
  const labels: Record<string, string> = { [LABEL_VERDICT]: v.kind };
  const dryRun = v.kind === 'DRY_RUN' || (v.kind === 'BREAKGLASS' && v.wouldHaveBeen === 'DRY_RUN');
  if (dryRun) labels[LABEL_DRY_RUN] = 'true';
  if (v.kind === 'BREAKGLASS') labels[LABEL_BREAK_GLASS] = 'true';
  const overridden = overriddenResult(decision);
  if (overridden !== undefined) labels[LABEL_OVERRIDDEN_RESULT] = overridden;

  const denied = v.kind === 'DENIED';
  const message = denialMessages(decision).join('\n');
  // The Kubernetes Status the API server answers a refused request with (kubectl prints
  // `Error from server (VIOLATES_POLICY): …`); allowed requests record a Success status.
  const response: JsonObject = denied
    ? { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'VIOLATES_POLICY', code: 403 }
    : { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  const username = source.userInfo?.username;
  const entry: JsonObject = {
    logName: logNameOf(request.project, ACTIVITY_LOG_ID),
    insertId,
    timestamp: time,
    receiveTimestamp: time,
    severity: severityOf(decision.verdict.kind),
    resource: { type: 'k8s_cluster', labels: { project_id: request.project, location, cluster_name: clusterName } },
    labels,
    protoPayload: {
      '@type': AUDIT_LOG_TYPE,
      serviceName: 'k8s.io',
      methodName: source.methodName,
      resourceName: source.resourceName,
      authenticationInfo: username === undefined ? {} : { principalEmail: username },
      // google.rpc.Status: 7 is PERMISSION_DENIED.
      status: denied ? { code: 7, message } : {},
      response,
      metadata: { admissionReviewUid: source.uid, cluster: source.cluster, tollgateDecision: auditDecision(decision) },
    },
  };
  return { time, project: request.project, logId: ACTIVITY_LOG_ID, entry };
}

function evaluationEntry(decision: Decision, request: DecideRequest, source: SourceOf<'evaluate-api'>, time: string, insertId: string): AuditRecord {
  const entry: JsonObject = {
    logName: logNameOf(request.project, ACTIVITY_LOG_ID),
    insertId,
    timestamp: time,
    receiveTimestamp: time,
    severity: 'INFO',
    resource: { type: 'audited_resource', labels: { project_id: request.project, service: BINAUTHZ_SERVICE, method: EVALUATE_METHOD } },
    labels: { [LABEL_VERDICT]: decision.verdict.kind },
    protoPayload: {
      '@type': AUDIT_LOG_TYPE,
      serviceName: BINAUTHZ_SERVICE,
      methodName: EVALUATE_METHOD,
      resourceName: `projects/${request.project}/policy`,
      authenticationInfo: { principalEmail: source.principal.email },
      // The evaluation itself succeeded whatever it decided; the verdict is in the response.
      status: {},
      request: { images: [...request.images], context: request.context as unknown as JsonObject },
      response: { allowed: decision.allowed, verdict: decision.verdict.kind, messages: denialMessages(decision) },
      metadata: { tollgateDecision: auditDecision(decision) },
    },
  };
  return { time, project: request.project, logId: ACTIVITY_LOG_ID, entry };
}

function cloudRunEntry(decision: Decision, request: DecideRequest, source: SourceOf<'cloudrun'>, time: string, insertId: string): AuditRecord {
  const v = decision.verdict;
  const messages = denialMessages(decision);
  const firstDenied = decision.images.find((i) => i.verdict === 'DENIED')?.image ?? request.images[0] ?? '';
  const unauthorized = `Revision '${source.revision}' uses an unauthorized container image. Container image '${firstDenied}' is not authorized by policy.`;
  const details = messages.length > 0 ? ` ${messages.join(' ')}` : '';
  const protoPayload: JsonObject = {
    '@type': AUDIT_LOG_TYPE,
    serviceName: BINAUTHZ_SERVICE,
    methodName: CLOUD_RUN_METHOD,
    resourceName: `namespaces/${request.project}/revisions/${source.revision}`,
    authenticationInfo: { principalEmail: source.principal.email },
    status: {},
    metadata: { tollgateDecision: auditDecision(decision) },
  };
  if (v.kind === 'DENIED') {
    protoPayload['status'] = { code: 7, message: `${unauthorized}${details}` };
    protoPayload['response'] = { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'ContainerImageUnauthorized', message: `${unauthorized}${details}` }] } };
  } else if (v.kind === 'DRY_RUN') {
    protoPayload['status'] = { code: 0, message: `Dry run: the revision was allowed, but would have been refused. ${unauthorized}${details}` };
  } else if (v.kind === 'BREAKGLASS') {
    protoPayload['request'] = { metadata: { annotations: { [CLOUD_RUN_BREAKGLASS_ANNOTATION]: v.justification } } };
    protoPayload['status'] = { code: 0, message: `Breakglass: the revision was allowed whatever the policy says (justification: ${v.justification}).${details}` };
  }
  const entry: JsonObject = {
    logName: logNameOf(request.project, SYSTEM_EVENT_LOG_ID),
    insertId,
    timestamp: time,
    receiveTimestamp: time,
    severity: severityOf(decision.verdict.kind),
    resource: {
      type: 'cloud_run_revision',
      labels: { project_id: request.project, service_name: source.service, revision_name: source.revision, configuration_name: source.service, location: source.region },
    },
    labels: { [LABEL_VERDICT]: v.kind },
    protoPayload,
  };
  return { time, project: request.project, logId: SYSTEM_EVENT_LOG_ID, entry };
}

// ---------------------------------------------------------------------------------------------
// Group commit

/** What went wrong writing decision entries; reported to `onError` (metrics) and the log. */
export interface AuditWriteFailure {
  /** `retrying`: the first write failed and is tried once more; `lost`: the entries are gone; `overflow`: the buffer was full. */
  readonly kind: 'retrying' | 'lost' | 'overflow';
  readonly count: number;
  readonly insertIds: readonly string[];
  readonly error: unknown;
}

export interface DecisionAuditWriterOptions {
  readonly store: Pick<StoreOps, 'appendAudit'>;
  /** Longest time an entry waits in the buffer before it is written (default and maximum 100 ms). */
  readonly windowMs?: number;
  /** Entries buffered at most; more are reported lost (overflow) rather than held without limit. */
  readonly maxBuffered?: number;
  /** Entries per appendAudit call (one transaction); a larger buffer is written in several, with a pause for other work between them. */
  readonly maxBatch?: number;
  /**
   * Buffered entries that start a write at once rather than at the end of the window (default 64).
   * Under load the window would hold every decision of the last 100 ms (~3 KB of JSON each)
   * across the heap's young-generation collections, which copy and then promote whatever is still
   * alive: flushing by count keeps entries short-lived and halved the garbage collector's time
   * per new-image decision (18 → 11 µs, docs/performance.md item 21). At low rates the window
   * still groups what arrives.
   */
  readonly flushAt?: number;
  /** Pause before the one retry of a failed write. */
  readonly retryDelayMs?: number;
  readonly logger?: Logger;
  /** Metrics hook: called for every failed write, retry and loss. Must not throw. */
  readonly onError?: (failure: AuditWriteFailure) => void;
  /** Called with each committed batch as JSON lines (one LogEntry per line), e.g. to stdout. */
  readonly lineSink?: (lines: string) => void;
}

interface Pending {
  /** Serialized when recorded: the buffer holds one string per entry, not an object graph that lives for up to 100 ms. */
  readonly record: EncodedAuditRecord;
  readonly insertId: string;
  readonly done: (written: boolean, error?: unknown) => void;
}

/**
 * Writes decision entries in group commits: `record` buffers an entry and a timer writes the
 * buffer in one `appendAudit` at most `windowMs` later (sooner once `flushAt` entries wait), so
 * a crash loses at most that window of entries. One write is in flight at a time; what arrives
 * meanwhile goes in the next batch. A durable record (breakglass) flushes the buffer at once and
 * resolves only after the commit. A failed write is retried once; entries that still cannot be
 * written are reported to `onError` and the log, never dropped silently.
 *
 * Promises: a normal record resolves when its batch was written or given up on (it never
 * rejects, so callers may leave it unawaited); a durable record rejects when its entry could
 * not be committed, so the caller can refuse to answer as if it had been.
 */
export class DecisionAuditWriter {
  private buffer: Pending[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The write in progress (writes never overlap, so entries are committed in order). */
  private writing: Promise<void> = Promise.resolve();
  private busy = false;
  /** A flush was asked for while a write was in progress: it starts when that write ends. */
  private flushWanted = false;
  private closed = false;
  private readonly windowMs: number;
  private readonly maxBuffered: number;
  private readonly maxBatch: number;
  private readonly flushAt: number;
  private readonly retryDelayMs: number;

  constructor(private readonly options: DecisionAuditWriterOptions) {
    this.windowMs = Math.min(Math.max(options.windowMs ?? 100, 0), 100);
    this.maxBuffered = options.maxBuffered ?? 100_000;
    this.maxBatch = options.maxBatch ?? 250;
    this.flushAt = Math.max(options.flushAt ?? 64, 1);
    this.retryDelayMs = options.retryDelayMs ?? 20;
  }

  /** Entries waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  record(record: AuditRecord, opts: { durable?: boolean } = {}): Promise<void> {
    const durable = opts.durable === true;
    if (!durable && this.buffer.length >= this.maxBuffered) {
      this.report({ kind: 'overflow', count: 1, insertIds: [insertIdOf(record)], error: new Error(`more than ${this.maxBuffered} audit entries waiting to be written`) });
      return Promise.resolve();
    }
    const encoded: EncodedAuditRecord = { time: record.time, project: record.project, logId: record.logId, entryJson: encodeAuditEntry(record.entry) };
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({
        record: encoded,
        insertId: insertIdOf(record),
        done: (written, error) => {
          if (written || !durable) resolve();
          else reject(error instanceof Error ? error : new Error(`audit entry not committed: ${String(error)}`));
        },
      });
      if (durable || this.closed || this.windowMs === 0 || this.buffer.length >= this.flushAt) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), this.windowMs);
    });
  }

  /** Writes everything buffered now; resolves when it has been written (or given up on). */
  async flush(): Promise<void> {
    this.flushNow();
    // A write in progress starts the next one (with what was buffered meanwhile) as it ends.
    while (this.busy) await this.writing;
  }

  /** Flushes and stops the timer; later records are written at once. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private flushNow(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.length === 0) return;
    // One write at a time: what arrives meanwhile waits in the buffer and goes in one batch
    // when the write ends (a group commit). So a store that hangs makes the buffer grow, where
    // maxBuffered bounds it, instead of queueing batch after batch behind the hung write.
    if (this.busy) {
      this.flushWanted = true;
      return;
    }
    const batch = this.buffer;
    this.buffer = [];
    this.busy = true;
    this.writing = this.write(batch).finally(() => {
      this.busy = false;
      if (this.flushWanted) {
        this.flushWanted = false;
        this.flushNow();
      }
    });
  }

  private async write(batch: readonly Pending[]): Promise<void> {
    for (let i = 0; i < batch.length; i += this.maxBatch) {
      // On SQLite a write runs on the event loop: let the reviews that arrived meanwhile be answered
      // between chunks instead of waiting behind the whole buffer.
      if (i > 0) await new Promise((r) => setImmediate(r));
      const chunk = batch.slice(i, i + this.maxBatch);
      const records = chunk.map((p) => p.record);
      let error: unknown;
      let written = false;
      for (let attempt = 0; attempt < 2 && !written; attempt++) {
        try {
          if (attempt > 0) await new Promise((r) => setTimeout(r, this.retryDelayMs));
          await this.options.store.appendAudit(records);
          written = true;
        } catch (e) {
          error = e;
          this.report({ kind: attempt === 0 ? 'retrying' : 'lost', count: records.length, insertIds: chunk.map((p) => p.insertId), error: e });
        }
      }
      if (written && this.options.lineSink !== undefined) {
        try {
          this.options.lineSink(records.map((r) => `${r.entryJson}\n`).join(''));
        } catch (e) {
          this.options.logger?.error('audit line sink failed', { error: e instanceof Error ? e.message : String(e) });
        }
      }
      for (const p of chunk) p.done(written, error);
    }
  }

  private report(failure: AuditWriteFailure): void {
    const fields = {
      count: failure.count,
      insertIds: failure.insertIds.slice(0, 20),
      error: failure.error instanceof Error ? failure.error.message : String(failure.error),
    };
    if (failure.kind === 'retrying') this.options.logger?.warn('audit write failed; retrying once', fields);
    else this.options.logger?.error(failure.kind === 'lost' ? 'audit entries lost: the store refused them twice' : 'audit entries lost: too many waiting to be written', fields);
    try {
      this.options.onError?.(failure);
    } catch {
      // A metrics hook must not break auditing.
    }
  }
}

function insertIdOf(r: AuditRecord): string {
  const id = r.entry['insertId'];
  return typeof id === 'string' ? id : '';
}
