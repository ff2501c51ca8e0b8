/**
 * The validating admission webhook's HTTP handler:
 *
 *   POST /admission/projects/{project}/clusters/{location}.{clusterId}[?timeout=10s]
 *   GET  /healthz
 *
 * One Tollgate serves many clusters: the path names the project whose policy applies and the
 * cluster, for `clusterAdmissionRules`. Every review is answered before the deadline (the API
 * server's `?timeout=`, less a margin for the way back): if the decision is not ready by then the
 * pod is denied with a reason saying so (fail closed), unless it asked for breakglass, which is
 * meant for exactly that moment. A malformed body gets a 400, never a crash.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Decision } from '../../core/evaluation/decision.js';
import { failedDecision } from '../../core/evaluation/evaluate.js';
import type { DeploymentContext } from '../../core/evaluation/request.js';
import type { Logger } from '../log.js';
import { formatBudget, lateDecisionMessage, type DecisionService, type DecisionSource } from '../services/decision-service.js';
import { findBreakglass } from './breakglass.js';
import { decodeAdmissionReview, type AdmissionRequestInfo } from './decode.js';
import { imagesOf, type WorkloadImages } from './images-of.js';
import { reviewText } from './review-text.js';
import { allowResponse, decisionResponse, failClosedResponse, type AdmissionReviewResponse } from './respond.js';

export interface WebhookHandlerOptions {
  readonly decisions: DecisionService;
  readonly logger: Logger;
  /**
   * Longest a review may take, in ms (default 9 000: the API server's default 10 s less a margin).
   * The API server's `?timeout=` lowers it further.
   */
  readonly timeoutMs?: number;
  /** Largest body accepted (default 6 MiB: an object and its old version, each up to the API server's 3 MiB). */
  readonly maxBodyBytes?: number;
  /**
   * Refuse every request but `GET /healthz` whose TLS client certificate did not verify against
   * `--webhook-client-ca` (the listener asks for one without insisting, for the kubelet's probe).
   */
  readonly requireClientCertificate?: boolean;
  /** Observes each request (metrics): its route template, HTTP status and duration. */
  readonly observe?: (info: { route: string; status: number; seconds: number }) => void;
}

/** Route labels of the webhook's requests in `tollgate_http_requests_total`. */
export const ROUTE_ADMISSION = 'webhook POST /admission/projects/{project}/clusters/{cluster}';
const ROUTE_HEALTHZ = 'webhook /healthz';
const ROUTE_UNMATCHED = 'webhook unmatched';

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 9_000;
export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = 6 * 1024 * 1024;

/** `/admission/projects/{project}/clusters/{location}.{clusterId}` */
const ADMISSION_PATH = /^\/admission\/projects\/([^/]+)\/clusters\/([^/.]+)\.([^/]+)$/;

export function admissionPath(project: string, cluster: string): string {
  return `/admission/projects/${encodeURIComponent(project)}/clusters/${encodeURIComponent(cluster)}`;
}

export function createWebhookHandler(opts: WebhookHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const budgetMs = opts.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES;
  const targetOf = targetCache();
  return (req, res) => {
    const started = Date.now();
    const t0 = opts.observe === undefined ? 0n : process.hrtime.bigint();
    const label = { route: ROUTE_UNMATCHED };
    const done = () => opts.observe?.({ route: label.route, status: res.statusCode, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    route(req, res, targetOf(req.url ?? '/'), opts, started, budgetMs, maxBody, label).then(done, (e: unknown) => {
      const error = e instanceof HttpFailure ? e : new HttpFailure(500, 'INTERNAL', 'Internal error encountered.');
      if (!(e instanceof HttpFailure)) {
        opts.logger.error('webhook internal error', { path: req.url?.split('?')[0], error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      }
      sendJson(res, error.httpStatus, { error: { code: error.httpStatus, message: error.message, status: error.status } }, error.headers);
      done();
    });
  };
}

/** A request the webhook refuses at the HTTP level, answered with Google's JSON error body. */
class HttpFailure extends Error {
  constructor(readonly httpStatus: number, readonly status: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const invalid = (message: string) => new HttpFailure(400, 'INVALID_ARGUMENT', message);

async function route(req: IncomingMessage, res: ServerResponse, target: Target, opts: WebhookHandlerOptions, started: number, budgetMs: number, maxBody: number, label: { route: string }): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (target.kind === 'malformed') throw invalid('malformed request target');
  const path = target.path;

  if (path === '/healthz') {
    label.route = ROUTE_HEALTHZ;
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, path, 'GET, HEAD');
    return sendJson(res, 200, { status: 'ok' });
  }
  if (opts.requireClientCertificate === true) {
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) {
      const presented = Object.keys(socket.getPeerCertificate()).length > 0;
      const why = presented ? `${String(socket.authorizationError)}: it does not verify against that CA` : 'none was presented';
      throw new HttpFailure(401, 'UNAUTHENTICATED', `The Tollgate webhook requires a client certificate signed by its --webhook-client-ca (${why}).`);
    }
  }
  if (target.kind === 'other') {
    throw new HttpFailure(404, 'NOT_FOUND', `The Tollgate webhook serves no method at ${method} ${path}; admission reviews go to POST /admission/projects/PROJECT/clusters/LOCATION.CLUSTER_ID`);
  }
  label.route = ROUTE_ADMISSION;
  if (method !== 'POST') throw methodNotAllowed(method, path, 'POST');
  if (target.kind === 'bad-encoding') throw invalid('malformed percent-encoding in the request path');
  const deadline = started + Math.min(budgetMs, target.apiServerBudgetMs ?? Infinity);

  const raw = await readBody(req, maxBody);
  let body: unknown;
  try {
    body = JSON.parse(reviewText(raw)) as unknown;
  } catch (e) {
    throw invalid(`Invalid JSON payload received. ${(e as Error).message}`);
  }
  const decoded = decodeAdmissionReview(body);
  if (!decoded.ok) throw invalid(`Invalid AdmissionReview: ${decoded.error.message}`);

  const answer = review(decoded.value, { project: target.project, cluster: target.cluster }, opts, started, deadline);
  sendJson(res, 200, answer instanceof Promise ? await answer : answer);
}

/** What a request target names, as `route` needs it. */
type Target =
  | { readonly kind: 'malformed' }
  | { readonly kind: 'other'; readonly path: string }
  | { readonly kind: 'bad-encoding'; readonly path: string }
  | { readonly kind: 'admission'; readonly path: string; readonly project: string; readonly cluster: string; readonly apiServerBudgetMs: number | undefined };

const MAX_TARGETS = 256;

/**
 * `parseTarget`, remembered: the API server sends the same target (path and `?timeout=`) with
 * every review of a cluster, so each distinct one is parsed once. Targets are the caller's text:
 * the map is emptied when it fills rather than allowed to grow.
 */
function targetCache(): (requestTarget: string) => Target {
  const targets = new Map<string, Target>();
  return (requestTarget) => {
    let target = targets.get(requestTarget);
    if (target === undefined) {
      target = parseTarget(requestTarget);
      if (targets.size >= MAX_TARGETS) targets.clear();
      targets.set(requestTarget, target);
    }
    return target;
  };
}

function parseTarget(requestTarget: string): Target {
  let url: URL;
  try {
    url = new URL(requestTarget, 'http://webhook.invalid');
  } catch {
    return { kind: 'malformed' };
  }
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  const m = ADMISSION_PATH.exec(path);
  if (m === null) return { kind: 'other', path };
  try {
    const [project, location, clusterId] = [m[1], m[2], m[3]].map((s) => decodeURIComponent(s as string)) as [string, string, string];
    return { kind: 'admission', path, project, cluster: `${location}.${clusterId}`, apiServerBudgetMs: apiServerBudget(url.searchParams.get('timeout')) };
  } catch {
    return { kind: 'bad-encoding', path };
  }
}

/** The answer to a review: at once when the decision service had it at hand, else within the deadline. */
function review(req: AdmissionRequestInfo, target: { project: string; cluster: string }, opts: WebhookHandlerOptions, started: number, deadline: number): AdmissionReviewResponse | Promise<AdmissionReviewResponse> {
  const found = imagesOf(req);
  if (found.kind === 'not-a-workload') return allowResponse(req.uid);
  if (found.kind === 'invalid') {
    // The API server validates objects before validating webhooks see them, so this is a caller
    // that is not one, or a kind whose schema Tollgate reads differently: worth an operator's look.
    opts.logger.warn('webhook review refused: malformed pod spec', { uid: req.uid, project: target.project, cluster: target.cluster, method: methodName(req), problem: found.problem.message });
    return failClosedResponse(req.uid, { code: 400, reason: 'BadRequest', message: `Binary Authorization cannot review this object: ${found.problem.message}` });
  }
  if (found.images.length === 0) return allowResponse(req.uid);

  // Each image once, in the order found, with the fields that name it.
  const paths = new Map<string, string[]>();
  for (const i of found.images) {
    const known = paths.get(i.image);
    if (known === undefined) paths.set(i.image, [i.path]);
    else known.push(i.path);
  }
  const images = [...paths.keys()];
  const breakglass = findBreakglass(found);
  const context: DeploymentContext = {
    platform: 'gke',
    cluster: target.cluster,
    ...(found.namespace === undefined ? {} : { namespace: found.namespace }),
    serviceAccount: found.serviceAccount,
    ...(breakglass === undefined ? {} : { breakglass: breakglass.justification }),
  };
  const source: DecisionSource = {
    kind: 'admission',
    cluster: target.cluster,
    uid: req.uid,
    methodName: methodName(req),
    resourceName: resourceName(req, found),
    ...(req.userInfo?.username === undefined ? {} : { userInfo: { username: req.userInfo.username } }),
    dryRun: req.dryRun,
  };
  // Built only when something is logged: this runs for every review.
  const fields = () => ({ uid: req.uid, project: target.project, cluster: target.cluster, method: source.methodName, resource: source.resourceName, images: images.length });

  let made: Decision | Promise<Decision>;
  try {
    made = opts.decisions.decide({ project: target.project, images, context, source, deadline: { at: deadline, budgetMs: deadline - started } });
  } catch (e) {
    made = Promise.reject(e);
  }
  // Made already (a repeated review against an unchanged store): nothing left to time out.
  if (!(made instanceof Promise)) return answer({ kind: 'decision', decision: made, budgetMs: deadline - started });
  return withDeadline(made, deadline).then(answer);

  function answer(outcome: Outcome): AdmissionReviewResponse {
    if (outcome.kind === 'timeout') {
      const budget = formatBudget(deadline - started);
      if (breakglass !== undefined) {
        // Breakglass is for exactly the moment the system is broken: it still allows. Its audit
        // entry is written when the decision completes (as this answer, see DecideRequest.deadline);
        // until then this error line, with who, what and why, is the record.
        opts.logger.error('webhook decision timed out: allowed by breakglass, audit entry not committed yet', { ...fields(), budgetMs: outcome.budgetMs, breakglass: breakglass.justification, user: req.userInfo?.username, imageList: images });
        return decisionResponse(req.uid, failedDecision({ images, context }, lateDecisionMessage(deadline - started)), paths, 'the decision did not complete in time');
      }
      opts.logger.warn('webhook decision timed out: denied (fail closed)', { ...fields(), budgetMs: outcome.budgetMs });
      return failClosedResponse(req.uid, {
        code: 504,
        reason: 'Timeout',
        message: `Binary Authorization could not decide within ${budget} (the webhook's deadline); denied (fail closed). Retry, or check the Tollgate server and its store.`,
      });
    }
    if (outcome.kind === 'error') {
      if (breakglass !== undefined) {
        // A breakglass decision fails when its audit entry cannot be committed (docs/audit.md): it
        // still allows, says that it is not recorded, and this error line is the record.
        opts.logger.error('webhook decision failed: allowed by breakglass, audit entry not committed', { ...fields(), breakglass: breakglass.justification, user: req.userInfo?.username, imageList: images, error: String(outcome.error) });
        return decisionResponse(req.uid, failedDecision({ images, context }, 'the decision failed (internal error)'), paths, `the decision or its audit entry failed: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`);
      }
      opts.logger.error('webhook decision failed: denied (fail closed)', { ...fields(), error: outcome.error instanceof Error ? (outcome.error.stack ?? outcome.error.message) : String(outcome.error) });
      return failClosedResponse(req.uid, { code: 500, reason: 'InternalError', message: 'Binary Authorization could not make a decision (internal error); denied (fail closed).' });
    }
    const decision = outcome.decision;
    // Debug only: every decision, denials included, is in the audit log (and its stdout copy) already.
    opts.logger.log('debug', 'webhook decision', () => ({ ...fields(), verdict: decision.verdict.kind, dryRunRequest: req.dryRun, ms: Date.now() - started }));
    return decisionResponse(req.uid, decision, paths);
  }
}

type Outcome =
  | { kind: 'decision'; decision: Decision; budgetMs: number }
  | { kind: 'timeout'; budgetMs: number }
  | { kind: 'error'; error: unknown; budgetMs: number };

function withDeadline(pending: Promise<Decision>, deadline: number): Promise<Outcome> {
  const budgetMs = Math.max(0, deadline - Date.now());
  // One promise and one timer per review (this runs for every review): whichever settles first
  // wins, and the later one's resolve is a no-op.
  return new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'timeout', budgetMs }), budgetMs);
    pending.then(
      (decision) => {
        clearTimeout(timer);
        resolve({ kind: 'decision', decision, budgetMs });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ kind: 'error', error, budgetMs });
      },
    );
  });
}

/**
 * The API server appends `?timeout=` (a Go duration, `10s`) and gives up after it. Answer with a
 * margin for the way back: a tenth of it, at least 100 ms and at most 1 s.
 */
export function apiServerBudget(timeout: string | null): number | undefined {
  if (timeout === null) return undefined;
  const ms = parseGoDuration(timeout);
  if (ms === undefined || ms <= 0) return undefined;
  return Math.max(ms / 2, ms - Math.min(1_000, Math.max(100, ms / 10)));
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ns: 1e-6 };

/** Go's `time.Duration` text (`10s`, `1m30s`, `2.5s`, `500ms`) in milliseconds. */
export function parseGoDuration(text: string): number | undefined {
  if (!/^(\d+(\.\d+)?(h|ms|m|s|us|µs|μs|ns))+$/.test(text)) return undefined;
  let total = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|μs|ns)/g)) total += Number(part[1]) * (UNIT_MS[part[2] as string] as number);
  return total;
}

/** `io.k8s.core.v1.pods.create`, `io.k8s.apps.v1.deployments.update`, `io.k8s.core.v1.pods.ephemeralcontainers.update`. */
export function methodName(req: AdmissionRequestInfo): string {
  const r = req.resource;
  return ['io.k8s', r.group === '' ? 'core' : r.group, r.version, r.resource, ...(req.subResource === undefined ? [] : [req.subResource]), req.operation.toLowerCase()].join('.');
}

/** `core/v1/namespaces/NS/pods/NAME` (a name being generated shows as its `generateName` prefix). */
export function resourceName(req: AdmissionRequestInfo, w: Pick<WorkloadImages, 'namespace'>): string {
  const r = req.resource;
  const meta = req.object?.['metadata'];
  const m = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : {};
  const name = req.name ?? (typeof m['name'] === 'string' && m['name'] !== '' ? m['name'] : typeof m['generateName'] === 'string' ? m['generateName'] : '');
  const ns = w.namespace === undefined ? [] : ['namespaces', w.namespace];
  return [r.group === '' ? 'core' : r.group, r.version, ...ns, r.resource, name, ...(req.subResource === undefined ? [] : [req.subResource])].join('/');
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = () => new HttpFailure(413, 'INVALID_ARGUMENT', `Request payload size exceeds the limit: ${max} bytes.`, { connection: 'close' });
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      reject(tooLarge());
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    // A review usually arrives in one chunk: no copy then.
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function methodNotAllowed(method: string, path: string, allow: string): HttpFailure {
  return new HttpFailure(405, 'INVALID_ARGUMENT', `${method} is not a method of ${path} (allowed: ${allow})`, { allow });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  // With its length stated, the answer goes out in one write; without it, writeHead makes Node
  // frame the body as chunks (three more buffers per answer).
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
