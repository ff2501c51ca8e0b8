/**
 * Binary Authorization's REST API (reference §1) in v1, v1beta1 and v1alpha2: the project policy,
 * attestors, validateAttestationOccurrence, IAM on attestors and on the policy, and the system
 * policy. One stored attestor serves every version; binaryauthorization-wire.ts converts it.
 * docs/api-binaryauthorization.md describes the methods and the choices made.
 */
import { parseAttestor } from '../../core/attestation/attestor.js';
import { checkAttestation } from '../../core/attestation/check.js';
import { digestOfResourceUri, parseAttestationOccurrence } from '../../core/attestation/occurrence.js';
import { SYSTEM_POLICY_NAME, systemPolicyResource } from '../../core/evaluation/system-policy.js';
import { defaultPolicy, SPECIFIC_RULE_MAPS, type Policy } from '../../core/policy/model.js';
import { parsePolicyObject } from '../../core/policy/parse.js';
import { policyToWire } from '../../core/policy/serialize.js';
import { problem, type Problem } from '../../core/result.js';
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { aborted, ApiError, invalidArgument, notFound, permissionDenied } from '../errors.js';
import { Router, type RequestContext } from '../http/router.js';
import { iamMethodHandlers } from '../iam/iam-methods.js';
import type { Principal } from '../iam/principal.js';
import { binauthzServiceAgent, getProject, isValidProjectId, projectForWrite } from '../services/projects.js';
import { StoreAlreadyExists, StoreVersionConflict, type JsonObject, type StoreOps, type StoredResource } from '../store/store.js';
import {
  API_VERSIONS,
  SERVICE_NAME,
  attestorFromRequest,
  attestorToWire,
  managementService,
  problemsError,
  type ApiVersion,
} from './binaryauthorization-wire.js';
import { ADMIN_AUDIT_PROJECT } from './tollgate-admin.js';
import { etagOf, objectBody, pageOf, pageResult, principalOf, requireResourceId, storeError } from './common.js';

/** `updateTime` of a project's default policy when the project itself is not known. */
const EPOCH = '1970-01-01T00:00:00Z';

export function binaryAuthorizationRouter(deps: AppDeps): Router {
  const router = new Router('binaryauthorization');
  for (const v of API_VERSIONS) addVersion(router, deps, v);
  return router;
}

function addVersion(router: Router, deps: AppDeps, v: ApiVersion): void {
  const attestorIam = iamMethodHandlers(deps, {
    getPermission: 'binaryauthorization.attestors.getIamPolicy',
    setPermission: 'binaryauthorization.attestors.setIamPolicy',
    serviceName: SERVICE_NAME,
    methodPrefix: managementService(v),
    exists: async (name) => (await deps.store.get('attestor', name)) !== undefined,
  });
  const policyIam = iamMethodHandlers(deps, {
    getPermission: 'binaryauthorization.policy.getIamPolicy',
    setPermission: 'binaryauthorization.policy.setIamPolicy',
    serviceName: SERVICE_NAME,
    methodPrefix: managementService(v),
    // Every project has a policy (the default one until it is set).
    exists: async (name) => (await getProject(deps.store, projectSegment(name))) !== undefined,
  });
  router
    .get(`/${v}/{name=projects/*/policy}`, (ctx) => getPolicy(deps, ctx))
    .put(`/${v}/{name=projects/*/policy}`, (ctx) => updatePolicy(deps, v, ctx))
    .get(`/${v}/{resource=projects/*/policy}:getIamPolicy`, policyIam.getIamPolicy)
    .post(`/${v}/{resource=projects/*/policy}:setIamPolicy`, policyIam.setIamPolicy)
    .post(`/${v}/{resource=projects/*/policy}:testIamPermissions`, policyIam.testIamPermissions)
    .post(`/${v}/{parent=projects/*}/attestors`, (ctx) => createAttestor(deps, v, ctx))
    .get(`/${v}/{parent=projects/*}/attestors`, (ctx) => listAttestors(deps, v, ctx))
    .get(`/${v}/{name=projects/*/attestors/*}`, (ctx) => getAttestor(deps, v, ctx))
    .put(`/${v}/{name=projects/*/attestors/*}`, (ctx) => updateAttestor(deps, v, ctx))
    .delete(`/${v}/{name=projects/*/attestors/*}`, (ctx) => deleteAttestor(deps, v, ctx))
    .post(`/${v}/{name=projects/*/attestors/*}:validateAttestationOccurrence`, (ctx) => validateAttestationOccurrence(deps, ctx))
    .get(`/${v}/{resource=projects/*/attestors/*}:getIamPolicy`, attestorIam.getIamPolicy)
    .post(`/${v}/{resource=projects/*/attestors/*}:setIamPolicy`, attestorIam.setIamPolicy)
    .post(`/${v}/{resource=projects/*/attestors/*}:testIamPermissions`, attestorIam.testIamPermissions)
    .get(`/${v}/{name=locations/*/policy}`, (ctx) => getSystemPolicy(deps, ctx))
    .put(`/${v}/{name=locations/*/policy}`, (ctx) => updateSystemPolicy(deps, ctx));
}

// ---------------------------------------------------------------------------------------------
// Helpers

function param(ctx: RequestContext, name: string): string {
  return ctx.params[name] as string;
}

/** `projects/P/…` → `P` (the router has already matched the shape). */
function projectSegment(name: string): string {
  return name.split('/')[1] as string;
}

function requireProjectId(project: string): void {
  if (!isValidProjectId(project)) {
    throw invalidArgument(`"${project}" is not a valid project id (a lowercase letter, then up to 29 lowercase letters, digits or hyphens)`);
  }
}

async function audit(deps: AppDeps, v: ApiVersion, method: string, resourceName: string, principal: Principal, request?: unknown): Promise<void> {
  await recordAdminActivity(deps.store, {
    serviceName: SERVICE_NAME,
    methodName: `${managementService(v)}.${method}`,
    resourceName,
    project: projectSegment(resourceName),
    principal,
    ...(request === undefined ? {} : { request }),
  });
}

/** Fields a client may send back that the server owns; dropped before validation. */
function withoutOutputOnly(body: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out = { ...body };
  for (const f of fields) {
    delete out[f];
    delete out[f.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];
  }
  return out;
}

function sentEtag(body: Record<string, unknown>): string | undefined {
  const e = body['etag'];
  if (e === undefined || e === null || e === '') return undefined;
  if (typeof e !== 'string') throw invalidArgument('etag: must be a string');
  return e;
}

function staleEtag(what: string): ApiError {
  return aborted(`The etag does not match the current ${what}: it was changed since it was read. Read it again, reapply the change and retry.`);
}

/** The compare-and-set lost to a concurrent writer (with or without an etag). */
function concurrentWrite(what: string): ApiError {
  return aborted(`The ${what} was changed by another request at the same time; read it again, reapply the change and retry.`);
}

// ---------------------------------------------------------------------------------------------
// Project policy

function policyResponse(body: JsonObject, name: string, etag: string, updateTime: string): JsonObject {
  return { ...body, name, etag, updateTime };
}

/**
 * `projects/P/policy` with P a project id, or a project number (GAPIC clients may use numbers),
 * resolved to the id form that the policy is stored and authorized under.
 */
async function policyName(deps: AppDeps, principal: Principal, raw: string, permission: string): Promise<string> {
  const segment = projectSegment(raw);
  if (!/^[1-9][0-9]{0,18}$/.test(segment)) {
    requireProjectId(segment);
    return raw;
  }
  const [p] = await deps.store.list('project', { k1: segment, limit: 1 });
  const resolved = p === undefined ? undefined : `${p.name}/policy`;
  // Decide on the resolved name but answer a refusal on the name as given, so a caller without
  // the permission learns neither whether the number exists nor which project it belongs to.
  if (resolved !== undefined && (await deps.iam.testPermissions(principal, [permission], resolved)).includes(permission)) return resolved;
  if (resolved === undefined && principal.superuser) throw notFound(`Project ${segment} not found`);
  throw new ApiError('PERMISSION_DENIED', `Permission '${permission}' denied on resource '${raw}' (or it may not exist).`);
}

async function getPolicy(deps: AppDeps, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const principal = principalOf(ctx);
  const name = await policyName(deps, principal, param(ctx, 'name'), 'binaryauthorization.policy.get');
  const project = projectSegment(name);
  await deps.iam.require(principal, 'binaryauthorization.policy.get', name);
  const stored = await deps.store.get('policy', name);
  if (stored !== undefined) return { body: policyResponse(stored.body, name, etagOf(name, stored.version), stored.updateTime) };
  const p = await getProject(deps.store, project);
  return { body: policyResponse(policyToWire(defaultPolicy(project)) as JsonObject, name, etagOf(name, 0), p?.createTime ?? EPOCH) };
}

async function updatePolicy(deps: AppDeps, v: ApiVersion, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const principal = principalOf(ctx);
  const name = await policyName(deps, principal, param(ctx, 'name'), 'binaryauthorization.policy.update');
  const project = projectSegment(name);
  await deps.iam.require(principal, 'binaryauthorization.policy.update', name);
  const raw = await objectBody(ctx);
  const etag = sentEtag(raw);
  // name comes from the URL; updateTime and etag are the server's (etag is checked below).
  const parsed = parsePolicyObject(withoutOutputOnly(raw, ['name', 'updateTime', 'etag']));
  if (!parsed.ok) throw problemsError('policy', parsed.error);
  const refProblems = await attestorReferenceProblems(deps, principal, parsed.value);
  if (refProblems.length > 0) throw problemsError('policy', refProblems);
  await projectForWrite(deps.store, project, principal);

  const policy: Policy = { ...parsed.value, name, etag: undefined, updateTime: undefined };
  const body = policyToWire(policy) as JsonObject;
  const current = await deps.store.get('policy', name);
  if (etag !== undefined && etag !== etagOf(name, current?.version ?? 0)) throw staleEtag('policy');
  let saved: StoredResource;
  try {
    saved = current === undefined
      ? await deps.store.create({ kind: 'policy', name, parent: `projects/${project}`, body })
      : await deps.store.update('policy', name, { body, expectVersion: current.version });
  } catch (e) {
    if (e instanceof StoreAlreadyExists || e instanceof StoreVersionConflict) throw concurrentWrite('policy');
    throw e;
  }
  await audit(deps, v, 'UpdatePolicy', name, principal, { policy: body });
  return { body: policyResponse(saved.body, name, etagOf(name, saved.version), saved.updateTime) };
}

/** Every attestor a rule names must exist and be readable by the caller (reference §1.2, §7.2). */
async function attestorReferenceProblems(deps: AppDeps, principal: Principal, policy: Policy): Promise<Problem[]> {
  const refs: { path: string; attestor: string }[] = [];
  const collect = (rule: Policy['defaultAdmissionRule'], at: string) => {
    if (rule.evaluationMode !== 'REQUIRE_ATTESTATION') return;
    rule.requireAttestationsBy.forEach((attestor, i) => refs.push({ path: `${at}.requireAttestationsBy[${i}]`, attestor }));
  };
  collect(policy.defaultAdmissionRule, 'defaultAdmissionRule');
  for (const map of SPECIFIC_RULE_MAPS) {
    for (const [key, rule] of Object.entries(policy[map])) collect(rule, `${map}[${JSON.stringify(key)}]`);
  }
  const verdicts = new Map<string, Promise<string | undefined>>();
  const check = async (attestor: string): Promise<string | undefined> => {
    const held = await deps.iam.testPermissions(principal, ['binaryauthorization.attestors.get'], attestor);
    if (!held.includes('binaryauthorization.attestors.get')) {
      return `attestor ${attestor} does not exist or you lack binaryauthorization.attestors.get on it`;
    }
    if ((await deps.store.get('attestor', attestor)) === undefined) return `attestor ${attestor} does not exist; create it first`;
    return undefined;
  };
  const out: Problem[] = [];
  for (const ref of refs) {
    let verdict = verdicts.get(ref.attestor);
    if (verdict === undefined) {
      verdict = check(ref.attestor);
      verdicts.set(ref.attestor, verdict);
    }
    const why = await verdict;
    if (why !== undefined) out.push(problem('UNKNOWN_ATTESTOR', `${ref.path}: ${why}`, ref.path));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Attestors

function attestorResponse(r: StoredResource, v: ApiVersion): JsonObject {
  return attestorToWire(r.body, v, { updateTime: r.updateTime, etag: etagOf(r.name, r.version) });
}

async function createAttestor(deps: AppDeps, v: ApiVersion, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const principal = principalOf(ctx);
  const parent = param(ctx, 'parent');
  const project = projectSegment(parent);
  await deps.iam.require(principal, 'binaryauthorization.attestors.create', parent);
  requireProjectId(project);
  const attestorId = requireResourceId(ctx.query.get('attestorId') ?? ctx.query.get('attestor_id'), 'attestorId');
  const name = `${parent}/attestors/${attestorId}`;
  const raw = await objectBody(ctx);
  const p = await projectForWrite(deps.store, project, principal);
  const validated = await attestorFromRequest(raw, { version: v, name, delegationServiceAccountEmail: binauthzServiceAgent(p) });
  if (!validated.ok) throw problemsError('attestor', validated.error);
  let saved: StoredResource;
  try {
    saved = await deps.store.create({ kind: 'attestor', name, parent, k1: validated.value.noteReference, body: validated.value.body });
  } catch (e) {
    storeError(e, `Attestor ${name}`);
  }
  await audit(deps, v, 'CreateAttestor', name, principal, { parent, attestorId, attestor: validated.value.body });
  return { body: attestorResponse(saved, v) };
}

async function getAttestor(deps: AppDeps, v: ApiVersion, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const name = param(ctx, 'name');
  await deps.iam.require(principalOf(ctx), 'binaryauthorization.attestors.get', name);
  return { body: attestorResponse(await storedAttestor(deps.store, name), v) };
}

async function storedAttestor(store: StoreOps, name: string): Promise<StoredResource> {
  const r = await store.get('attestor', name);
  if (r === undefined) throw notFound(`Attestor ${name} not found`);
  return r;
}

async function listAttestors(deps: AppDeps, v: ApiVersion, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const parent = param(ctx, 'parent');
  await deps.iam.require(principalOf(ctx), 'binaryauthorization.attestors.list', parent);
  requireProjectId(projectSegment(parent));
  const page = pageOf(ctx.query, { size: 100, max: 1000 });
  const rows = await deps.store.list('attestor', { parent, limit: page.limit + 1, ...(page.after === undefined ? {} : { after: page.after }) });
  const { items, nextPageToken } = pageResult(rows, page);
  return {
    body: {
      ...(items.length > 0 ? { attestors: items.map((r) => attestorResponse(r, v)) } : {}),
      ...(nextPageToken === undefined ? {} : { nextPageToken }),
    },
  };
}

async function updateAttestor(deps: AppDeps, v: ApiVersion, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const principal = principalOf(ctx);
  const name = param(ctx, 'name');
  await deps.iam.require(principal, 'binaryauthorization.attestors.update', name);
  const raw = await objectBody(ctx);
  const existing = await storedAttestor(deps.store, name);
  const project = await getProject(deps.store, projectSegment(name));
  const delegation = existing.body['userOwnedGrafeasNote'] as JsonObject | undefined;
  const delegationServiceAccountEmail = typeof delegation?.['delegationServiceAccountEmail'] === 'string'
    ? (delegation['delegationServiceAccountEmail'] as string)
    : project === undefined ? '' : binauthzServiceAgent(project);
  const validated = await attestorFromRequest(raw, { version: v, name, delegationServiceAccountEmail, existing: existing.body });
  if (!validated.ok) throw problemsError('attestor', validated.error);
  if (validated.value.etag !== undefined && validated.value.etag !== etagOf(name, existing.version)) throw staleEtag('attestor');
  let saved: StoredResource;
  try {
    saved = await deps.store.update('attestor', name, { body: validated.value.body, expectVersion: existing.version, k1: validated.value.noteReference });
  } catch (e) {
    if (e instanceof StoreVersionConflict) throw concurrentWrite('attestor');
    storeError(e, `Attestor ${name}`);
  }
  await audit(deps, v, 'UpdateAttestor', name, principal, { attestor: validated.value.body });
  return { body: attestorResponse(saved, v) };
}

async function deleteAttestor(deps: AppDeps, v: ApiVersion, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const principal = principalOf(ctx);
  const name = param(ctx, 'name');
  await deps.iam.require(principal, 'binaryauthorization.attestors.delete', name);
  if (!(await deps.store.delete('attestor', name))) throw notFound(`Attestor ${name} not found`);
  await deps.iam.deletePolicy(name);
  await audit(deps, v, 'DeleteAttestor', name, principal, { name });
  return { body: {} };
}

// ---------------------------------------------------------------------------------------------
// validateAttestationOccurrence (reference §1.6)

async function validateAttestationOccurrence(deps: AppDeps, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const name = param(ctx, 'name');
  await deps.iam.require(principalOf(ctx), 'binaryauthorization.attestors.verifyImageAttested', name);
  const raw = await objectBody(ctx);
  const stored = await storedAttestor(deps.store, name);
  const str = (camel: string, snake: string): string | undefined => {
    const val = raw[camel] ?? raw[snake];
    if (val === undefined || val === null || val === '') return undefined;
    if (typeof val !== 'string') throw invalidArgument(`${camel}: must be a string`);
    return val;
  };
  const occurrenceNote = str('occurrenceNote', 'occurrence_note');
  const occurrenceResourceUri = str('occurrenceResourceUri', 'occurrence_resource_uri');
  const attestation = raw['attestation'];
  const missing: Problem[] = [];
  if (attestation === undefined || attestation === null) missing.push(problem('REQUIRED', 'attestation: required', 'attestation'));
  else if (typeof attestation !== 'object' || Array.isArray(attestation)) missing.push(problem('TYPE', 'attestation: must be an object', 'attestation'));
  if (occurrenceNote === undefined) missing.push(problem('REQUIRED', 'occurrenceNote: required (projects/PROJECT_ID/notes/NOTE_ID)', 'occurrenceNote'));
  if (occurrenceResourceUri === undefined) missing.push(problem('REQUIRED', 'occurrenceResourceUri: required (the image, REGISTRY/PATH@sha256:DIGEST)', 'occurrenceResourceUri'));
  if (missing.length > 0) throw problemsError('request', missing);

  const attestor = await parseAttestor(attestorToWire(stored.body, 'v1', { updateTime: stored.updateTime, etag: '' }));
  if (!attestor.ok) {
    return notVerifiable(`attestor ${name} cannot be used: ${attestor.error.map((p) => p.message).join('; ')}`);
  }
  const occ = parseAttestationOccurrence({ noteName: occurrenceNote, resourceUri: occurrenceResourceUri, kind: 'ATTESTATION', attestation }, 'request');
  if (!occ.ok) throw problemsError('request', [occ.error]);
  const check = await checkAttestation(attestor.value, occ.value, new Date());
  if (check.kind === 'rejected') return notVerifiable(check.message);
  const digest = digestOfResourceUri(occurrenceResourceUri as string);
  if (digest === undefined) {
    return notVerifiable(`occurrenceResourceUri ${JSON.stringify(occurrenceResourceUri)} names no digest; an attestation covers an image by digest (REGISTRY/PATH@sha256:DIGEST)`);
  }
  if (digest !== check.payloadDigest.toLowerCase()) {
    return notVerifiable(`signature by key ${check.keyId} verifies, but the signed payload is for ${check.payloadDigest}, not for ${digest} named by occurrenceResourceUri`);
  }
  return { body: { result: 'VERIFIED' } };
}

function notVerifiable(denialReason: string): { body: JsonObject } {
  return { body: { result: 'ATTESTATION_NOT_VERIFIABLE', denialReason } };
}

// ---------------------------------------------------------------------------------------------
// System policy

/**
 * Google's system policy is read-only; replacing its patterns is Tollgate's own method, recorded
 * under the audit pseudo-project of changes that belong to no project.
 */
const SYSTEM_POLICY_METHOD = 'google.cloud.binaryauthorization.v1.SystemPolicyV1.UpdateSystemPolicy';

const DENY_ALL_RULE = { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } as const;

function requireGlobal(name: string): void {
  if (name !== SYSTEM_POLICY_NAME) throw notFound(`System policy ${name} not found; the only location is global (${SYSTEM_POLICY_NAME})`);
}

/**
 * The system policy's exempt patterns: the stored replacement (mirrors, air-gapped sites), else
 * Google's defaults. The evaluation service reads it through this function.
 */
export async function loadSystemPolicyPatterns(store: StoreOps): Promise<string[]> {
  const stored = await store.get('systemPolicy', SYSTEM_POLICY_NAME);
  if (stored === undefined) return systemPolicyResource().admissionWhitelistPatterns.map((p) => p.namePattern);
  const list = stored.body['admissionWhitelistPatterns'];
  if (!Array.isArray(list)) return [];
  return list.flatMap((p) => (typeof p === 'object' && p !== null && !Array.isArray(p) && typeof p['namePattern'] === 'string' ? [p['namePattern']] : []));
}

async function getSystemPolicy(deps: AppDeps, ctx: RequestContext): Promise<{ body: JsonObject }> {
  principalOf(ctx);
  const name = param(ctx, 'name');
  requireGlobal(name);
  const stored = await deps.store.get('systemPolicy', name);
  if (stored !== undefined) return { body: policyResponse(stored.body, name, etagOf(name, stored.version), stored.updateTime) };
  return { body: policyResponse(policyToWire(systemPolicyResource()) as JsonObject, name, etagOf(name, 0), EPOCH) };
}

async function updateSystemPolicy(deps: AppDeps, ctx: RequestContext): Promise<{ body: JsonObject }> {
  const principal = principalOf(ctx);
  if (!principal.superuser) throw permissionDenied('Only a Tollgate superuser may change the system policy (locations/global/policy).');
  const name = param(ctx, 'name');
  requireGlobal(name);
  const raw = await objectBody(ctx);
  const etag = sentEtag(raw);
  const rest = withoutOutputOnly(raw, ['name', 'updateTime', 'etag']);
  const problems: Problem[] = [];
  for (const key of Object.keys(rest)) {
    if (key === 'admissionWhitelistPatterns' || key === 'admission_whitelist_patterns') continue;
    if ((key === 'defaultAdmissionRule' || key === 'default_admission_rule') && isDenyAll(rest[key])) continue;
    if ((key === 'globalPolicyEvaluationMode' || key === 'global_policy_evaluation_mode') && (rest[key] === 'GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED' || rest[key] === 0)) continue;
    problems.push(problem('READ_ONLY', `${key}: cannot be set on the system policy; only admissionWhitelistPatterns can be replaced (everything else is denied)`, key));
  }
  if (problems.length > 0) throw problemsError('system policy', problems);
  const patterns = rest['admissionWhitelistPatterns'] ?? rest['admission_whitelist_patterns'] ?? [];
  const parsed = parsePolicyObject({ defaultAdmissionRule: DENY_ALL_RULE, admissionWhitelistPatterns: patterns });
  if (!parsed.ok) throw problemsError('system policy', parsed.error);
  const body = policyToWire(systemPolicyResource(parsed.value.admissionWhitelistPatterns.map((p) => p.namePattern))) as JsonObject;
  const current = await deps.store.get('systemPolicy', name);
  if (etag !== undefined && etag !== etagOf(name, current?.version ?? 0)) throw staleEtag('system policy');
  let saved: StoredResource;
  try {
    saved = current === undefined
      ? await deps.store.create({ kind: 'systemPolicy', name, parent: '', body })
      : await deps.store.update('systemPolicy', name, { body, expectVersion: current.version });
  } catch (e) {
    if (e instanceof StoreAlreadyExists || e instanceof StoreVersionConflict) throw concurrentWrite('system policy');
    throw e;
  }
  await recordAdminActivity(deps.store, {
    serviceName: SERVICE_NAME,
    methodName: SYSTEM_POLICY_METHOD,
    resourceName: name,
    project: ADMIN_AUDIT_PROJECT,
    principal,
    request: { policy: body },
  });
  return { body: policyResponse(saved.body, name, etagOf(name, saved.version), saved.updateTime) };
}

function isDenyAll(rule: unknown): boolean {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) return false;
  const r = rule as Record<string, unknown>;
  const keys = Object.keys(r).filter((k) => r[k] !== undefined && r[k] !== null);
  const mode = r['evaluationMode'] ?? r['evaluation_mode'];
  const enforcement = r['enforcementMode'] ?? r['enforcement_mode'];
  return (mode === 'ALWAYS_DENY' || mode === 3) && (enforcement === undefined || enforcement === 'ENFORCED_BLOCK_AND_AUDIT_LOG' || enforcement === 1) && keys.length <= 2;
}
