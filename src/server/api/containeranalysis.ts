/**
 * Container Analysis (Grafeas) v1, and the v1beta1 subset the tutorials use: notes, occurrences,
 * a note's occurrences and the notes' IAM methods. Binary Authorization keeps its evidence here:
 * an attestor names a note, and an attestation is an ATTESTATION occurrence on that note.
 *
 * Storage: kind `note` (`projects/P/notes/N`, parent `projects/P`) and kind `occurrence`
 * (`projects/P/occurrences/UUID`, parent `projects/P`, k1 = the note's name, k2 = the image digest
 * at the end of `resourceUri`), so "the attestations of note N for digest D" is one indexed lookup.
 * Bodies are kept in one canonical (v1, camelCase, standard base64) form; the v1 and v1beta1 wire
 * shapes are produced from it on the way out.
 */
import { randomUUID } from 'node:crypto';
import { digestOfResourceUri, parseAttestationOccurrence } from '../../core/attestation/occurrence.js';
import { decodeBase64Bytes, encodeBase64 } from '../../core/encoding/base64.js';
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { Router, type Handler, type RequestContext } from '../http/router.js';
import { iamMethodHandlers } from '../iam/iam-methods.js';
import { projectForWrite } from '../services/projects.js';
import type { Json, JsonObject, ListQuery, ResourceKind, StoreOps, StoredResource } from '../store/store.js';
import { objectBody, pageOf, pageResult, principalOf, projectOf, requireResourceId, storeError, type Page } from './common.js';
import { isJsonObject } from '../../core/json.js';

export type GrafeasVersion = 'v1' | 'v1beta1';

const SERVICE_NAME = 'containeranalysis.googleapis.com';

/** The gRPC service whose methods the audit log names, per API version. */
const METHOD_PREFIX: Readonly<Record<GrafeasVersion, string>> = {
  v1: 'grafeas.v1.Grafeas',
  v1beta1: 'grafeas.v1beta1.GrafeasV1Beta1',
};

// ---------------------------------------------------------------------------------------------
// Kinds and the details oneof
// ---------------------------------------------------------------------------------------------

/** Grafeas v1 `NoteKind` (reference §4). */
export const NOTE_KINDS = [
  'NOTE_KIND_UNSPECIFIED',
  'VULNERABILITY',
  'BUILD',
  'IMAGE',
  'PACKAGE',
  'DEPLOYMENT',
  'DISCOVERY',
  'ATTESTATION',
  'UPGRADE',
  'COMPLIANCE',
  'DSSE_ATTESTATION',
  'VULNERABILITY_ASSESSMENT',
  'SBOM_REFERENCE',
  'SECRET',
] as const;
export type NoteKind = (typeof NOTE_KINDS)[number];

interface DetailsField {
  readonly kind: NoteKind;
  /** The field of the oneof in a Note: v1 name (stored) and v1beta1 name. */
  readonly note: readonly [string, string];
  /** The same in an Occurrence; undefined where the kind has no occurrence details. */
  readonly occurrence?: readonly [string, string];
}

/** Which field of the details oneof carries which kind, in v1 and in v1beta1. */
const DETAILS: readonly DetailsField[] = [
  { kind: 'VULNERABILITY', note: ['vulnerability', 'vulnerability'], occurrence: ['vulnerability', 'vulnerability'] },
  { kind: 'BUILD', note: ['build', 'build'], occurrence: ['build', 'build'] },
  { kind: 'IMAGE', note: ['image', 'baseImage'], occurrence: ['image', 'derivedImage'] },
  { kind: 'PACKAGE', note: ['package', 'package'], occurrence: ['package', 'installation'] },
  { kind: 'DEPLOYMENT', note: ['deployment', 'deployable'], occurrence: ['deployment', 'deployment'] },
  { kind: 'DISCOVERY', note: ['discovery', 'discovery'], occurrence: ['discovery', 'discovered'] },
  { kind: 'ATTESTATION', note: ['attestation', 'attestationAuthority'], occurrence: ['attestation', 'attestation'] },
  { kind: 'UPGRADE', note: ['upgrade', 'upgrade'], occurrence: ['upgrade', 'upgrade'] },
  { kind: 'COMPLIANCE', note: ['compliance', 'compliance'], occurrence: ['compliance', 'compliance'] },
  { kind: 'DSSE_ATTESTATION', note: ['dsseAttestation', 'dsseAttestation'], occurrence: ['dsseAttestation', 'dsseAttestation'] },
  { kind: 'VULNERABILITY_ASSESSMENT', note: ['vulnerabilityAssessment', 'vulnerabilityAssessment'] },
  { kind: 'SBOM_REFERENCE', note: ['sbomReference', 'sbomReference'], occurrence: ['sbomReference', 'sbomReference'] },
  { kind: 'SECRET', note: ['secret', 'secret'], occurrence: ['secret', 'secret'] },
];

/** Either version's field name (camelCase) → the details entry. Both are accepted on input. */
function detailsByField(which: 'note' | 'occurrence'): ReadonlyMap<string, DetailsField> {
  const m = new Map<string, DetailsField>();
  for (const d of DETAILS) {
    const names = which === 'note' ? d.note : d.occurrence;
    if (names === undefined) continue;
    m.set(names[0], d);
    m.set(names[1], d);
  }
  return m;
}
const NOTE_DETAILS = detailsByField('note');
const OCCURRENCE_DETAILS = detailsByField('occurrence');
const DETAILS_BY_KIND = new Map(DETAILS.map((d) => [d.kind, d]));

function isNoteKind(v: unknown): v is NoteKind {
  return typeof v === 'string' && (NOTE_KINDS as readonly string[]).includes(v);
}

// ---------------------------------------------------------------------------------------------
// Small JSON helpers
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

/** `human_readable_name` → `humanReadableName` (proto JSON accepts both spellings). */
function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Deep copy with every object key in lowerCamelCase. */
function camelDeep(v: unknown): Json {
  if (Array.isArray(v)) return v.map(camelDeep);
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) out[camel(k)] = camelDeep(x);
    return out;
  }
  return v as Json;
}

/** The top-level fields of a request object, keyed by their camelCase name (duplicates refused). */
function camelFields(raw: Obj, path: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(raw)) {
    const c = camel(k);
    if (out.has(c)) throw invalidArgument(`${path}: field "${c}" is given twice (as "${c}" and in snake_case)`);
    out.set(c, v);
  }
  return out;
}

function unknownField(name: string, path: string): never {
  throw invalidArgument(`Invalid JSON payload received. Unknown name "${name}" at '${path}': Cannot find field.`);
}

function optString(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${path}: must be a string`);
  return v;
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function optTimestamp(v: unknown, path: string): string | undefined {
  const s = optString(v, path);
  if (s === undefined || s === '') return undefined;
  if (!TIMESTAMP.test(s) || Number.isNaN(Date.parse(s.replace(/(\.\d{3})\d+/, '$1')))) {
    throw invalidArgument(`${path}: "${s}" is not an RFC 3339 timestamp (e.g. 2030-01-01T00:00:00Z)`);
  }
  return s;
}

function optStringList(v: unknown, path: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidArgument(`${path}: must be a list of strings`);
  return v.map((x, i) => {
    if (typeof x !== 'string') throw invalidArgument(`${path}[${i}]: must be a string`);
    return x;
  });
}

function optObject(v: unknown, path: string): JsonObject | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isJsonObject(v)) throw invalidArgument(`${path}: must be an object`);
  return v as JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

const NOTE_NAME = /^projects\/[^/]+\/(?:locations\/[^/]+\/)?notes\/[^/]+$/;

function param(ctx: RequestContext, key: string): string {
  const v = ctx.params[key];
  if (v === undefined) throw new Error(`route without {${key}}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Notes: request → canonical body → wire
// ---------------------------------------------------------------------------------------------

const NOTE_OUTPUT_ONLY = new Set(['name', 'kind', 'createTime', 'updateTime']);
const NOTE_PLAIN_FIELDS = ['shortDescription', 'longDescription', 'relatedUrl', 'expirationTime', 'relatedNoteNames'] as const;

interface NoteInput {
  /** The canonical fields present in the request (details under its v1 field name). */
  readonly fields: JsonObject;
  readonly details?: { readonly kind: NoteKind; readonly field: string };
}

/**
 * Reads a Note request body (camelCase or snake_case, v1 or v1beta1 details names). Output-only
 * fields (`name`, `createTime`, …) are ignored; `kind`, when given, must agree with the details.
 * `requireDetails` is set for create, where exactly one details field is needed.
 */
export function readNote(raw: Obj, path = 'note', requireDetails = true): NoteInput {
  const fields: JsonObject = {};
  let details: { kind: NoteKind; field: string } | undefined;
  let declaredKind: unknown;
  for (const [key, value] of camelFields(raw, path)) {
    if (key === 'kind') {
      declaredKind = value;
      continue;
    }
    if (NOTE_OUTPUT_ONLY.has(key)) continue;
    const p = `${path}.${key}`;
    switch (key) {
      case 'shortDescription':
      case 'longDescription': {
        const s = optString(value, p);
        if (s !== undefined) fields[key] = s;
        continue;
      }
      case 'expirationTime': {
        const s = optTimestamp(value, p);
        if (s !== undefined) fields[key] = s;
        continue;
      }
      case 'relatedNoteNames': {
        const l = optStringList(value, p);
        if (l !== undefined) fields[key] = l;
        continue;
      }
      case 'relatedUrl': {
        if (value === undefined || value === null) continue;
        if (!Array.isArray(value)) throw invalidArgument(`${p}: must be a list of {url, label}`);
        fields[key] = value.map((u, i) => {
          if (!isJsonObject(u)) throw invalidArgument(`${p}[${i}]: must be an object {url, label}`);
          const out: JsonObject = {};
          for (const [k, v] of Object.entries(u)) {
            if (k !== 'url' && k !== 'label') unknownField(k, `${p}[${i}]`);
            const s = optString(v, `${p}[${i}].${k}`);
            if (s !== undefined) out[k] = s;
          }
          return out;
        });
        continue;
      }
      default: {
        const d = NOTE_DETAILS.get(key);
        if (d === undefined) unknownField(key, path);
        if (value === undefined || value === null) continue;
        if (details !== undefined) {
          throw invalidArgument(`${path}: a note has one type; both "${DETAILS_BY_KIND.get(details.kind)?.note[0]}" and "${key}" are given`);
        }
        if (!isJsonObject(value)) throw invalidArgument(`${p}: must be an object`);
        details = { kind: d.kind, field: d.note[0] };
        fields[d.note[0]] = d.kind === 'ATTESTATION' ? attestationNoteDetails(value, p) : (value as JsonObject);
      }
    }
  }
  if (declaredKind !== undefined && declaredKind !== null && declaredKind !== '') {
    if (!isNoteKind(declaredKind)) throw invalidArgument(`${path}.kind: "${String(declaredKind)}" is not a NoteKind (${NOTE_KINDS.slice(1).join(', ')})`);
    if (details !== undefined && declaredKind !== details.kind) {
      throw invalidArgument(`${path}.kind: ${declaredKind} does not match the note's details, which are ${details.kind}`);
    }
  }
  if (requireDetails && details === undefined) {
    throw invalidArgument(`${path}: the note type is required: give exactly one details field, e.g. "attestation": {"hint": {"humanReadableName": "…"}} (v1beta1: "attestationAuthority")`);
  }
  return details === undefined ? { fields } : { fields, details };
}

/** `{hint: {humanReadableName}}` with snake_case accepted at any depth. */
function attestationNoteDetails(value: Obj, path: string): JsonObject {
  const out = camelDeep(value) as JsonObject;
  const hint = out['hint'];
  if (hint !== undefined && hint !== null) {
    if (!isJsonObject(hint)) throw invalidArgument(`${path}.hint: must be an object {humanReadableName}`);
    optString(hint['humanReadableName'], `${path}.hint.humanReadableName`);
  }
  return out;
}

/** A stored note as the API returns it (v1 `attestation`, v1beta1 `attestationAuthority`). */
export function noteToWire(r: StoredResource, version: GrafeasVersion): JsonObject {
  const b = r.body;
  const kind = b['kind'];
  const d = isNoteKind(kind) ? DETAILS_BY_KIND.get(kind) : undefined;
  const out: JsonObject = { name: r.name };
  for (const f of ['shortDescription', 'longDescription'] as const) if (b[f] !== undefined) out[f] = b[f] as Json;
  out['kind'] = (kind ?? 'NOTE_KIND_UNSPECIFIED') as Json;
  for (const f of ['relatedUrl', 'expirationTime'] as const) if (b[f] !== undefined) out[f] = b[f] as Json;
  out['createTime'] = r.createTime;
  out['updateTime'] = r.updateTime;
  if (b['relatedNoteNames'] !== undefined) out['relatedNoteNames'] = b['relatedNoteNames'] as Json;
  if (d !== undefined && b[d.note[0]] !== undefined) out[version === 'v1' ? d.note[0] : d.note[1]] = b[d.note[0]] as Json;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Occurrences: request → canonical body → wire
// ---------------------------------------------------------------------------------------------

const OCCURRENCE_OUTPUT_ONLY = new Set(['name', 'createTime', 'updateTime']);
const CONTENT_TYPES = new Set(['CONTENT_TYPE_UNSPECIFIED', 'SIMPLE_SIGNING_JSON']);

interface OccurrenceInput {
  readonly noteName?: string;
  readonly resourceUri?: string;
  readonly declaredKind?: NoteKind;
  readonly remediation?: string;
  readonly envelope?: JsonObject;
  readonly details?: { readonly kind: NoteKind; readonly field: string; readonly value: Obj };
  /** The camelCase names of the fields present (for patches without an update mask). */
  readonly present: ReadonlySet<string>;
}

/**
 * Reads an Occurrence request body: v1 (`resourceUri`) or v1beta1 (`resource.uri`) shape, either
 * spelling. Structure only; the details are checked against the note by {@link occurrenceDetails}.
 */
export function readOccurrence(raw: Obj, path = 'occurrence'): OccurrenceInput {
  const present = new Set<string>();
  let noteName: string | undefined;
  let resourceUri: string | undefined;
  let declaredKind: NoteKind | undefined;
  let remediation: string | undefined;
  let envelope: JsonObject | undefined;
  let details: { kind: NoteKind; field: string; value: Obj } | undefined;
  for (const [key, value] of camelFields(raw, path)) {
    if (OCCURRENCE_OUTPUT_ONLY.has(key)) continue;
    const p = `${path}.${key}`;
    switch (key) {
      case 'noteName':
        noteName = optString(value, p);
        present.add(key);
        continue;
      case 'resourceUri':
        resourceUri = optString(value, p) ?? resourceUri;
        present.add('resourceUri');
        continue;
      case 'resource': {
        // v1beta1: `resource: {uri, name?, contentHash?}`; only the URI means anything here.
        const res = optObject(value, p);
        const uri = res === undefined ? undefined : optString(res['uri'], `${p}.uri`);
        if (res !== undefined) for (const k of Object.keys(res)) if (!['uri', 'name', 'contentHash', 'content_hash'].includes(k)) unknownField(k, p);
        resourceUri = resourceUri ?? uri;
        present.add('resourceUri');
        continue;
      }
      case 'kind':
        if (value === undefined || value === null || value === '') continue;
        if (!isNoteKind(value)) throw invalidArgument(`${p}: "${String(value)}" is not a kind (${NOTE_KINDS.slice(1).join(', ')})`);
        declaredKind = value;
        continue;
      case 'remediation':
        remediation = optString(value, p);
        present.add(key);
        continue;
      case 'envelope':
        envelope = optObject(value, p);
        present.add(key);
        continue;
      default: {
        const d = OCCURRENCE_DETAILS.get(key);
        if (d === undefined) unknownField(key, path);
        if (value === undefined || value === null) continue;
        if (details !== undefined) throw invalidArgument(`${path}: an occurrence has one type; both "${details.field}" and "${key}" are given`);
        if (!isJsonObject(value)) throw invalidArgument(`${p}: must be an object`);
        details = { kind: d.kind, field: (d.occurrence as readonly [string, string])[0], value };
        present.add('details');
      }
    }
  }
  if (declaredKind !== undefined && declaredKind !== 'NOTE_KIND_UNSPECIFIED' && details !== undefined && declaredKind !== details.kind) {
    throw invalidArgument(`${path}.kind: ${declaredKind} does not match the occurrence's details, which are ${details.kind}`);
  }
  return {
    present,
    ...(noteName === undefined || noteName === '' ? {} : { noteName }),
    ...(resourceUri === undefined || resourceUri === '' ? {} : { resourceUri }),
    ...(declaredKind === undefined ? {} : { declaredKind }),
    ...(remediation === undefined ? {} : { remediation }),
    ...(envelope === undefined ? {} : { envelope }),
    ...(details === undefined ? {} : { details }),
  };
}

/** The canonical stored details: `{field: value}` plus, for a v1beta1 PGP attestation, its original form. */
interface CanonicalDetails {
  readonly value: JsonObject;
  readonly v1beta1?: JsonObject;
}

/**
 * Validates and canonicalizes the details of an occurrence. ATTESTATION details are decoded with
 * the core parser (the same one the evaluation uses), so an attestation that could never verify
 * because its bytes do not decode is refused here, with the field path, instead of being stored.
 */
export function occurrenceDetails(kind: NoteKind, value: Obj, noteName: string, resourceUri: string, path = 'occurrence'): CanonicalDetails {
  if (kind !== 'ATTESTATION') return { value: value as JsonObject };
  const parsed = parseAttestationOccurrence({ kind: 'ATTESTATION', noteName, resourceUri, attestation: value }, path);
  if (!parsed.ok) throw invalidArgument(parsed.error.message);
  const occ = parsed.value;
  const jwts = readJwts(value['jwts'], `${path}.attestation.jwts`);
  const rawSignatures = value['signatures'];
  const jwtOnly = jwts.length > 0 && !isJsonObject(value['attestation']) && (rawSignatures === undefined || rawSignatures === null || (Array.isArray(rawSignatures) && rawSignatures.length === 0));
  // A JWT-only attestation (no signatures, no payload) is valid Grafeas; anything else undecodable is not.
  if (occ.defect !== undefined && !(jwtOnly && occ.defect.code === 'MISSING_SIGNATURE')) throw invalidArgument(occ.defect.message);
  const out: JsonObject = {};
  if (occ.serializedPayload !== undefined) out['serializedPayload'] = encodeBase64(occ.serializedPayload);
  out['signatures'] = occ.signatures.map((s) => ({ signature: encodeBase64(s.signature), publicKeyId: s.publicKeyId }));
  if (jwts.length > 0) out['jwts'] = jwts;

  const inner = value['attestation'];
  if (!isJsonObject(inner)) return { value: out };
  // v1beta1 form: remember the PGP fields (the armored message is a string there, not bytes) and
  // the content type, so a v1beta1 read returns what was written.
  const pgp = inner['pgpSignedAttestation'] ?? inner['pgp_signed_attestation'];
  const generic = inner['genericSignedAttestation'] ?? inner['generic_signed_attestation'];
  const form = isJsonObject(pgp) ? pgp : isJsonObject(generic) ? generic : undefined;
  const contentType = form === undefined ? undefined : optString(form['contentType'] ?? form['content_type'], `${path}.attestation.attestation.${isJsonObject(pgp) ? 'pgpSignedAttestation' : 'genericSignedAttestation'}.contentType`);
  if (contentType !== undefined && !CONTENT_TYPES.has(contentType)) {
    throw invalidArgument(`${path}.attestation.attestation: contentType "${contentType}" is not one of ${[...CONTENT_TYPES].join(', ')}`);
  }
  if (isJsonObject(pgp)) {
    return {
      value: out,
      v1beta1: {
        pgpSignedAttestation: {
          signature: String(pgp['signature']),
          contentType: contentType ?? 'CONTENT_TYPE_UNSPECIFIED',
          pgpKeyId: String(pgp['pgpKeyId'] ?? pgp['pgp_key_id']),
        },
      },
    };
  }
  return contentType === undefined ? { value: out } : { value: out, v1beta1: { contentType } };
}

function readJwts(v: unknown, path: string): JsonObject[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidArgument(`${path}: must be a list of {compactJwt}`);
  return v.map((j, i) => {
    if (!isJsonObject(j)) throw invalidArgument(`${path}[${i}]: must be an object {compactJwt}`);
    const compact = optString(j['compactJwt'] ?? j['compact_jwt'], `${path}[${i}].compactJwt`);
    if (compact === undefined || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(compact)) {
      throw invalidArgument(`${path}[${i}].compactJwt: must be a JWS in compact serialization`);
    }
    return { compactJwt: compact };
  });
}

/** Key of the remembered v1beta1 form inside a stored occurrence body (never sent on the wire). */
const V1BETA1_FORM = 'tollgateV1beta1Form';

/** The stored body of an occurrence: the v1 Occurrence without its timestamps. */
function occurrenceBody(name: string, noteName: string, resourceUri: string, kind: NoteKind, field: string, details: CanonicalDetails, extra: { remediation?: string | undefined; envelope?: JsonObject | undefined }): JsonObject {
  return {
    name,
    resourceUri,
    noteName,
    kind,
    ...(extra.remediation === undefined ? {} : { remediation: extra.remediation }),
    [field]: details.value,
    ...(extra.envelope === undefined ? {} : { envelope: extra.envelope }),
    ...(details.v1beta1 === undefined ? {} : { [V1BETA1_FORM]: details.v1beta1 }),
  };
}

/**
 * A stored occurrence as the API returns it. v1: `resourceUri` and `attestation{serializedPayload,
 * signatures[]}` with standard base64; v1beta1: `resource{uri}` and
 * `attestation{attestation{pgpSignedAttestation | genericSignedAttestation}}`.
 */
export function occurrenceToWire(r: StoredResource, version: GrafeasVersion): JsonObject {
  const b = r.body;
  const kind = isNoteKind(b['kind']) ? b['kind'] : 'NOTE_KIND_UNSPECIFIED';
  const out: JsonObject = { name: r.name };
  if (version === 'v1') out['resourceUri'] = b['resourceUri'] as Json;
  else out['resource'] = { uri: b['resourceUri'] as Json };
  out['noteName'] = b['noteName'] as Json;
  out['kind'] = kind;
  if (b['remediation'] !== undefined) out['remediation'] = b['remediation'] as Json;
  out['createTime'] = r.createTime;
  out['updateTime'] = r.updateTime;
  const d = DETAILS_BY_KIND.get(kind)?.occurrence;
  if (d !== undefined && b[d[0]] !== undefined) {
    const value = b[d[0]] as Json;
    out[version === 'v1' ? d[0] : d[1]] = kind === 'ATTESTATION' ? attestationToWire(value, b[V1BETA1_FORM], version) : value;
  }
  if (b['envelope'] !== undefined) out['envelope'] = b['envelope'] as Json;
  return out;
}

function attestationToWire(stored: Json, form: Json | undefined, version: GrafeasVersion): Json {
  if (!isJsonObject(stored)) return stored;
  // Re-encode bytes as standard base64 whatever alphabet they were stored in.
  const payload = typeof stored['serializedPayload'] === 'string' ? standardBase64(stored['serializedPayload']) : undefined;
  const signatures = (Array.isArray(stored['signatures']) ? stored['signatures'] : []).map((s) => {
    const sig = isJsonObject(s) ? s : {};
    return { signature: standardBase64(String(sig['signature'] ?? '')), publicKeyId: (sig['publicKeyId'] ?? '') as Json };
  });
  if (version === 'v1') {
    return {
      ...(payload === undefined ? {} : { serializedPayload: payload }),
      signatures,
      ...(stored['jwts'] === undefined ? {} : { jwts: stored['jwts'] as Json }),
    };
  }
  if (isJsonObject(form) && isJsonObject(form['pgpSignedAttestation'])) return { attestation: { pgpSignedAttestation: form['pgpSignedAttestation'] as JsonObject } };
  const contentType = isJsonObject(form) && typeof form['contentType'] === 'string' ? form['contentType'] : 'SIMPLE_SIGNING_JSON';
  return {
    attestation: {
      genericSignedAttestation: { contentType, ...(payload === undefined ? {} : { serializedPayload: payload }), signatures },
    },
  };
}

function standardBase64(s: string): string {
  const decoded = decodeBase64Bytes(s, 'bytes');
  return decoded.ok ? encodeBase64(decoded.value) : s;
}

// ---------------------------------------------------------------------------------------------
// List filters
// ---------------------------------------------------------------------------------------------

export type FilterField = 'resourceUrl' | 'kind' | 'noteName';

export type FilterTerm =
  | { readonly field: 'resourceUrl'; readonly op: 'equals'; readonly value: string }
  | { readonly field: 'resourceUrl'; readonly op: 'hasSuffix'; readonly value: string }
  | { readonly field: 'kind'; readonly op: 'equals'; readonly value: NoteKind }
  | { readonly field: 'noteName'; readonly op: 'equals'; readonly value: string };

const FIELD_ALIASES: Readonly<Record<string, FilterField>> = {
  resourceUrl: 'resourceUrl',
  resource_url: 'resourceUrl',
  resourceUri: 'resourceUrl',
  resource_uri: 'resourceUrl',
  kind: 'kind',
  noteName: 'noteName',
  note_name: 'noteName',
};

type Token =
  | { readonly t: 'ident'; readonly v: string; readonly start: number; readonly end: number }
  | { readonly t: 'string'; readonly v: string; readonly start: number; readonly end: number }
  | { readonly t: 'punct'; readonly v: string; readonly start: number; readonly end: number }
  | { readonly t: 'other'; readonly v: string; readonly start: number; readonly end: number };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === '"' || c === "'") {
      let v = '';
      i++;
      let closed = false;
      while (i < text.length) {
        const d = text[i] as string;
        if (d === '\\' && i + 1 < text.length) {
          v += text[i + 1];
          i += 2;
          continue;
        }
        i++;
        if (d === c) {
          closed = true;
          break;
        }
        v += d;
      }
      if (!closed) throw invalidArgument(`filter: unterminated string starting at character ${start + 1}: ${text.slice(start)}`);
      tokens.push({ t: 'string', v, start, end: i });
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i));
    if (ident !== null) {
      i += ident[0].length;
      tokens.push({ t: 'ident', v: ident[0], start, end: i });
      continue;
    }
    if ('(),='.includes(c)) {
      i++;
      tokens.push({ t: 'punct', v: c, start, end: i });
      continue;
    }
    const other = /^(!=|<=|>=|[^\sA-Za-z_"'(),=]+)/.exec(text.slice(i));
    i += other === null ? 1 : other[0].length;
    tokens.push({ t: 'other', v: text.slice(start, i), start, end: i });
  }
  return tokens;
}

function describeSupported(allowed: readonly FilterField[]): string {
  const forms: Record<FilterField, string> = {
    resourceUrl: 'resourceUrl="URL", has_suffix(resourceUrl, "SUFFIX")',
    kind: 'kind="KIND"',
    noteName: 'noteName="projects/P/notes/N"',
  };
  return `${allowed.map((f) => forms[f]).join(', ')}, joined with AND`;
}

/**
 * Parses a list filter in the subset of Google's filter language that gcloud and the docs use:
 * `resourceUrl="…"`, `has_suffix(resourceUrl, "…")`, `kind="…"` and `noteName="…"`, joined with
 * AND. Empty (or absent) is no filter. Anything else is INVALID_ARGUMENT naming the expression, so
 * a filter is never silently ignored.
 */
export function parseFilter(text: string | null | undefined, allowed: readonly FilterField[] = ['resourceUrl', 'kind', 'noteName']): FilterTerm[] {
  if (text === null || text === undefined || text.trim() === '') return [];
  const tokens = tokenize(text);
  const groups: Token[][] = [[]];
  for (const tok of tokens) {
    if (tok.t === 'ident' && tok.v === 'AND') groups.push([]);
    else (groups[groups.length - 1] as Token[]).push(tok);
  }
  const terms: FilterTerm[] = [];
  for (const g of groups) {
    if (g.length === 0) throw invalidArgument(`filter: an expression is missing around AND in \`${text}\``);
    const source = text.slice((g[0] as Token).start, (g[g.length - 1] as Token).end);
    const unsupported = () =>
      invalidArgument(`filter: unsupported expression \`${source}\`; Tollgate supports ${describeSupported(allowed)}`);
    const term = matchTerm(g);
    if (term === undefined || !allowed.includes(term.field)) throw unsupported();
    if (term.field === 'kind' && !isNoteKind(term.value)) {
      throw invalidArgument(`filter: \`${source}\`: "${term.value}" is not a kind (${NOTE_KINDS.slice(1).join(', ')})`);
    }
    terms.push(term as FilterTerm);
  }
  return terms;
}

type LooseTerm = { field: FilterField; op: 'equals' | 'hasSuffix'; value: string };

function matchTerm(g: readonly Token[]): LooseTerm | undefined {
  const [a, b, c, d, e, f] = g;
  // FIELD = "value"   (kind also takes a bare enum name: kind=ATTESTATION)
  if (g.length === 3 && a?.t === 'ident' && b?.t === 'punct' && b.v === '=' && c !== undefined) {
    const field = FIELD_ALIASES[a.v];
    if (field === undefined) return undefined;
    if (c.t === 'string' || (c.t === 'ident' && field === 'kind')) return { field, op: 'equals', value: c.v };
    return undefined;
  }
  // has_suffix(FIELD, "value")
  if (
    g.length === 6 && a?.t === 'ident' && a.v === 'has_suffix' && b?.t === 'punct' && b.v === '(' &&
    c?.t === 'ident' && d?.t === 'punct' && d.v === ',' && e?.t === 'string' && f?.t === 'punct' && f.v === ')'
  ) {
    const field = FIELD_ALIASES[c.v];
    return field === 'resourceUrl' ? { field, op: 'hasSuffix', value: e.v } : undefined;
  }
  return undefined;
}

function withoutScheme(uri: string): string {
  return uri.replace(/^https?:\/\//, '');
}

/** Whether a stored occurrence or note body satisfies every term. */
export function filterMatches(terms: readonly FilterTerm[], body: JsonObject): boolean {
  const uri = typeof body['resourceUri'] === 'string' ? body['resourceUri'] : '';
  return terms.every((t) => {
    switch (t.field) {
      case 'kind':
        return body['kind'] === t.value;
      case 'noteName':
        return body['noteName'] === t.value;
      case 'resourceUrl':
        // The docs filter on `https://IMAGE`, current gcloud stores IMAGE without a scheme: both match.
        if (t.op === 'equals') return withoutScheme(uri) === withoutScheme(t.value);
        return uri.endsWith(t.value) || withoutScheme(uri).endsWith(withoutScheme(t.value));
    }
  });
}

const FULL_DIGEST = /^(sha256:[0-9a-fA-F]{64}|sha384:[0-9a-fA-F]{96}|sha512:[0-9a-fA-F]{128})$/;

/**
 * The index keys a filter pins down, so the store looks up (k1 = note, k2 = digest) instead of
 * scanning. Only ever narrows to a superset of the matches: the terms are still applied after.
 */
export function filterIndexKeys(terms: readonly FilterTerm[]): { k1?: string; k2?: string } {
  let k1: string | undefined;
  let k2: string | undefined;
  for (const t of terms) {
    if (t.field === 'noteName' && k1 === undefined) k1 = t.value;
    if (t.field !== 'resourceUrl' || k2 !== undefined) continue;
    if (t.op === 'equals') {
      k2 = digestOfResourceUri(withoutScheme(t.value));
    } else if (t.value.includes('@')) {
      k2 = digestOfResourceUri(t.value);
    } else if (FULL_DIGEST.test(t.value)) {
      // gcloud's has_suffix(resourceUrl, "sha256:…"): the digest after the image's `@`.
      k2 = t.value.toLowerCase();
    }
  }
  return { ...(k1 === undefined ? {} : { k1 }), ...(k2 === undefined ? {} : { k2 }) };
}

// ---------------------------------------------------------------------------------------------
// Listing with a filter: keyset pages over an indexed query, terms applied to each row
// ---------------------------------------------------------------------------------------------

/** Rows examined for one page before answering with a partial page and a token to go on. */
const MAX_SCAN = 5000;

async function listPage(
  store: StoreOps,
  kind: ResourceKind,
  base: Omit<ListQuery, 'limit' | 'after'>,
  page: Page,
  keep: (r: StoredResource) => boolean,
): Promise<{ items: StoredResource[]; nextPageToken?: string }> {
  const matched: StoredResource[] = [];
  const batch = Math.min(Math.max(page.limit + 1, 100), 1001);
  let after = page.after;
  let scanned = 0;
  for (;;) {
    const rows = await store.list(kind, { ...base, ...(after === undefined ? {} : { after }), limit: batch });
    for (const r of rows) {
      if (!keep(r)) continue;
      matched.push(r);
      if (matched.length > page.limit) return pageResult(matched, page);
    }
    scanned += rows.length;
    if (rows.length < batch) return { items: matched };
    after = (rows[rows.length - 1] as StoredResource).name;
    if (scanned >= MAX_SCAN) return { items: matched, nextPageToken: Buffer.from(after, 'utf8').toString('base64url') };
  }
}

/**
 * The attestation occurrences of several digests under one note, by digest as given: one store
 * query for all of them (the decision service gathers the lookups of the reviews it is deciding
 * together). When the query fills its limit (a thousand attestations among a few digests, which
 * normal use never reaches), some digests may have more rows: then each is read on its own with
 * listAttestationOccurrences, which pages.
 */
export async function listAttestationOccurrencesOf(store: StoreOps, noteName: string, digests: readonly string[], limit = 1000): Promise<Map<string, StoredResource[]>> {
  const byKey = new Map<string, StoredResource[]>();
  for (const d of digests) byKey.set(d.toLowerCase(), []);
  const rows = await store.listByK2s('occurrence', noteName, [...byKey.keys()], limit);
  for (const r of rows) if (r.body['kind'] === 'ATTESTATION' && r.k2 !== null) byKey.get(r.k2)?.push(r);
  if (rows.length >= limit) {
    for (const k of byKey.keys()) byKey.set(k, await listAttestationOccurrences(store, noteName, k));
  }
  return new Map(digests.map((d) => [d, byKey.get(d.toLowerCase()) ?? []]));
}

/**
 * The ATTESTATION occurrences on `noteName` whose resource carries `digest` (`sha256:…`), in any
 * project: one indexed lookup (k1 = note, k2 = digest). listAttestationOccurrencesOf falls back to it.
 */
export async function listAttestationOccurrences(store: StoreOps, noteName: string, digest: string): Promise<StoredResource[]> {
  const out: StoredResource[] = [];
  const k2 = digest.toLowerCase();
  const batch = 1000;
  let after: string | undefined;
  for (;;) {
    const rows = await store.list('occurrence', { k1: noteName, k2, ...(after === undefined ? {} : { after }), limit: batch });
    for (const r of rows) if (r.body['kind'] === 'ATTESTATION') out.push(r);
    if (rows.length < batch) return out;
    after = (rows[rows.length - 1] as StoredResource).name;
  }
}

// ---------------------------------------------------------------------------------------------
// Update masks
// ---------------------------------------------------------------------------------------------

/** `?updateMask=a,b.c` (camelCase or snake_case) → paths as segment lists; undefined when absent. */
function maskOf(ctx: RequestContext): string[][] | undefined {
  const raw = ctx.query.get('updateMask') ?? ctx.query.get('update_mask');
  if (raw === null || raw.trim() === '') return undefined;
  return raw.split(',').map((p) => p.trim()).filter((p) => p !== '').map((p) => p.split('.').map(camel));
}

function getPath(obj: JsonObject, path: readonly string[]): Json | undefined {
  let cur: Json | undefined = obj;
  for (const seg of path) {
    if (!isJsonObject(cur)) return undefined;
    cur = (cur as JsonObject)[seg];
  }
  return cur;
}

function setPath(obj: JsonObject, path: readonly string[], value: Json | undefined): void {
  let cur: JsonObject = obj;
  for (const seg of path.slice(0, -1)) {
    const next = cur[seg];
    if (!isJsonObject(next)) {
      if (value === undefined) return;
      cur[seg] = {};
    }
    cur = cur[seg] as JsonObject;
  }
  const last = path[path.length - 1] as string;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

// ---------------------------------------------------------------------------------------------
// The router
// ---------------------------------------------------------------------------------------------

export function containerAnalysisRouter(deps: AppDeps): Router {
  const router = new Router('containeranalysis');
  const iamFor = (v: GrafeasVersion, resource: 'notes' | 'occurrences', kind: 'note' | 'occurrence') =>
    iamMethodHandlers(deps, {
      getPermission: `containeranalysis.${resource}.getIamPolicy`,
      setPermission: `containeranalysis.${resource}.setIamPolicy`,
      serviceName: SERVICE_NAME,
      methodPrefix: METHOD_PREFIX[v],
      exists: async (name) => (await deps.store.get(kind, name)) !== undefined,
    });
  const h = handlers(deps);

  for (const v of ['v1', 'v1beta1'] as const) {
    const noteIam = iamFor(v, 'notes', 'note');
    const occurrenceIam = iamFor(v, 'occurrences', 'occurrence');
    // Every v1 path also has a `projects/*/locations/*/…` form (regional Grafeas); v1beta1 does not.
    const scopes = v === 'v1' ? ['projects/*', 'projects/*/locations/*'] : ['projects/*'];
    for (const scope of scopes) {
      const note = `${scope}/notes/*`;
      const occurrence = `${scope}/occurrences/*`;
      router
        .post(`/${v}/{parent=${scope}}/notes`, h.createNote(v))
        .get(`/${v}/{parent=${scope}}/notes`, h.listNotes(v))
        .get(`/${v}/{name=${note}}`, h.getNote(v))
        .patch(`/${v}/{name=${note}}`, h.patchNote(v))
        .delete(`/${v}/{name=${note}}`, h.deleteNote(v))
        .post(`/${v}/{resource=${note}}:getIamPolicy`, noteIam.getIamPolicy)
        .post(`/${v}/{resource=${note}}:setIamPolicy`, noteIam.setIamPolicy)
        .post(`/${v}/{resource=${note}}:testIamPermissions`, noteIam.testIamPermissions)
        .get(`/${v}/{name=${note}}/occurrences`, h.listNoteOccurrences(v))
        .post(`/${v}/{parent=${scope}}/occurrences`, h.createOccurrence(v))
        .get(`/${v}/{parent=${scope}}/occurrences`, h.listOccurrences(v))
        .get(`/${v}/{name=${occurrence}}`, h.getOccurrence(v))
        .patch(`/${v}/{name=${occurrence}}`, h.patchOccurrence(v))
        .delete(`/${v}/{name=${occurrence}}`, h.deleteOccurrence(v))
        .get(`/${v}/{name=${occurrence}}/notes`, h.getOccurrenceNote(v))
        .post(`/${v}/{resource=${occurrence}}:getIamPolicy`, occurrenceIam.getIamPolicy)
        .post(`/${v}/{resource=${occurrence}}:setIamPolicy`, occurrenceIam.setIamPolicy)
        .post(`/${v}/{resource=${occurrence}}:testIamPermissions`, occurrenceIam.testIamPermissions);
    }
  }
  return router;
}

type VersionedHandler = (v: GrafeasVersion) => Handler;

function handlers(deps: AppDeps): Record<
  'createNote' | 'listNotes' | 'getNote' | 'patchNote' | 'deleteNote' | 'listNoteOccurrences' |
  'createOccurrence' | 'listOccurrences' | 'getOccurrence' | 'patchOccurrence' | 'deleteOccurrence' | 'getOccurrenceNote',
  VersionedHandler
> {
  const { store, iam } = deps;

  async function loadNote(name: string): Promise<StoredResource> {
    const r = await store.get('note', name);
    if (r === undefined) throw notFound(`Note ${name} not found`);
    return r;
  }

  async function loadOccurrence(name: string): Promise<StoredResource> {
    const r = await store.get('occurrence', name);
    if (r === undefined) throw notFound(`Occurrence ${name} not found`);
    return r;
  }

  return {
    createNote: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const parent = param(ctx, 'parent');
      const project = projectOf(parent);
      const noteId = requireResourceId(ctx.query.get('noteId') ?? ctx.query.get('note_id'), 'noteId');
      const raw = await objectBody(ctx);
      await iam.require(principal, 'containeranalysis.notes.create', parent);
      const input = readNote(raw);
      const name = `${parent}/notes/${noteId}`;
      const body: JsonObject = { kind: (input.details as { kind: NoteKind }).kind, ...input.fields };
      let saved: StoredResource;
      try {
        saved = await store.transaction(async (tx) => {
          await projectForWrite(tx, project, principal);
          const r = await tx.create({ kind: 'note', name, parent, body });
          await recordAdminActivity(tx, {
            serviceName: SERVICE_NAME,
            methodName: `${METHOD_PREFIX[v]}.CreateNote`,
            resourceName: name,
            project,
            principal,
            request: { parent, noteId, note: raw },
            response: { name },
          });
          return r;
        });
      } catch (e) {
        storeError(e, `Note ${name}`);
      }
      return { body: noteToWire(saved, v) };
    },

    listNotes: (v) => async (ctx) => {
      const parent = param(ctx, 'parent');
      await iam.require(principalOf(ctx), 'containeranalysis.notes.list', parent);
      const terms = parseFilter(ctx.query.get('filter'), ['kind']);
      const page = pageOf(ctx.query);
      const result = await listPage(store, 'note', { parent }, page, (r) => filterMatches(terms, r.body));
      return { body: { notes: result.items.map((r) => noteToWire(r, v)), ...(result.nextPageToken ? { nextPageToken: result.nextPageToken } : {}) } };
    },

    getNote: (v) => async (ctx) => {
      const name = param(ctx, 'name');
      await iam.require(principalOf(ctx), 'containeranalysis.notes.get', name);
      return { body: noteToWire(await loadNote(name), v) };
    },

    patchNote: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const name = param(ctx, 'name');
      const raw = await objectBody(ctx);
      const mask = maskOf(ctx);
      await iam.require(principal, 'containeranalysis.notes.update', name);
      const existing = await loadNote(name);
      const kind = existing.body['kind'] as NoteKind;
      const input = readNote(raw, 'note', false);
      if (input.details !== undefined && input.details.kind !== kind) {
        throw invalidArgument(`note: the kind of a note cannot change (${name} is ${kind}, the request gives ${input.details.kind} details)`);
      }
      const detailsField = DETAILS_BY_KIND.get(kind)?.note[0];
      const next: JsonObject = structuredClone(existing.body);
      const paths = mask ?? Object.keys(input.fields).map((k) => [k]);
      for (const path of paths) {
        const top = path[0] as string;
        const d = NOTE_DETAILS.get(top);
        const canonical = d === undefined ? path : [d.note[0], ...path.slice(1)];
        const head = canonical[0] as string;
        if (head === 'kind') throw invalidArgument(`updateMask: kind is immutable`);
        if (NOTE_OUTPUT_ONLY.has(head)) throw invalidArgument(`updateMask: ${head} is output only`);
        if (d !== undefined && d.kind !== kind) throw invalidArgument(`updateMask: "${path.join('.')}" belongs to ${d.kind} notes; ${name} is ${kind} and its kind cannot change`);
        if (d === undefined && !(NOTE_PLAIN_FIELDS as readonly string[]).includes(head)) {
          throw invalidArgument(`updateMask: unknown field "${path.join('.')}" (updatable: ${[...NOTE_PLAIN_FIELDS, detailsField].join(', ')})`);
        }
        if (d === undefined && canonical.length > 1) throw invalidArgument(`updateMask: "${path.join('.')}": ${head} is replaced as a whole`);
        setPath(next, canonical, getPath(input.fields, canonical));
      }
      if (detailsField !== undefined && !isJsonObject(next[detailsField])) throw invalidArgument(`note.${detailsField}: a ${kind} note keeps its details; it cannot be cleared`);
      let saved: StoredResource;
      try {
        saved = await store.transaction(async (tx) => {
          const r = await tx.update('note', name, { body: next, expectVersion: existing.version });
          await recordAdminActivity(tx, {
            serviceName: SERVICE_NAME,
            methodName: `${METHOD_PREFIX[v]}.UpdateNote`,
            resourceName: name,
            project: projectOf(name),
            principal,
            request: { name, note: raw, ...(mask === undefined ? {} : { updateMask: mask.map((p) => p.join('.')).join(',') }) },
          });
          return r;
        });
      } catch (e) {
        storeError(e, `Note ${name}`);
      }
      return { body: noteToWire(saved, v) };
    },

    deleteNote: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const name = param(ctx, 'name');
      await iam.require(principal, 'containeranalysis.notes.delete', name);
      await loadNote(name);
      await store.transaction(async (tx) => {
        // An attestor's trust anchor: deleting it would leave the attestor unable to find attestations.
        const users = await tx.list('attestor', { k1: name, limit: 10 });
        if (users.length > 0) {
          const list = users.map((a) => a.name).join(', ');
          throw failedPrecondition(`Note ${name} is the note of attestor${users.length > 1 ? 's' : ''} ${list}${users.length === 10 ? ' (and maybe more)' : ''}; delete the attestor${users.length > 1 ? 's' : ''} or point ${users.length > 1 ? 'them' : 'it'} to another note first`);
        }
        if (!(await tx.delete('note', name))) throw notFound(`Note ${name} not found`);
        await recordAdminActivity(tx, {
          serviceName: SERVICE_NAME,
          methodName: `${METHOD_PREFIX[v]}.DeleteNote`,
          resourceName: name,
          project: projectOf(name),
          principal,
          request: { name },
        });
      });
      await iam.deletePolicy(name);
      return { body: {} };
    },

    listNoteOccurrences: (v) => async (ctx) => {
      const name = param(ctx, 'name');
      await iam.require(principalOf(ctx), 'containeranalysis.notes.listOccurrences', name);
      const terms = parseFilter(ctx.query.get('filter'), ['resourceUrl', 'kind']);
      const page = pageOf(ctx.query);
      await loadNote(name);
      const keys = filterIndexKeys(terms);
      const result = await listPage(store, 'occurrence', { k1: name, ...(keys.k2 === undefined ? {} : { k2: keys.k2 }) }, page, (r) => filterMatches(terms, r.body));
      return { body: { occurrences: result.items.map((r) => occurrenceToWire(r, v)), ...(result.nextPageToken ? { nextPageToken: result.nextPageToken } : {}) } };
    },

    createOccurrence: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const parent = param(ctx, 'parent');
      const project = projectOf(parent);
      const raw = await objectBody(ctx);
      await iam.require(principal, 'containeranalysis.occurrences.create', parent);
      const input = readOccurrence(raw);
      if (input.noteName === undefined) throw invalidArgument('occurrence.noteName: required (the note this occurrence is attached to, projects/P/notes/N)');
      if (!NOTE_NAME.test(input.noteName)) throw invalidArgument(`occurrence.noteName: "${input.noteName}" is not a note name (projects/P/notes/N)`);
      if (input.resourceUri === undefined) throw invalidArgument(`occurrence.${v === 'v1' ? 'resourceUri' : 'resource.uri'}: required (the image, e.g. us-docker.pkg.dev/P/repo/app@sha256:…)`);
      if (input.details === undefined) throw invalidArgument('occurrence: the details are required: give exactly one details field (for an attestation, "attestation")');
      await iam.require(principal, 'containeranalysis.notes.attachOccurrence', input.noteName);
      const note = await store.get('note', input.noteName);
      if (note === undefined) throw notFound(`Note ${input.noteName} (occurrence.noteName) not found; create the note first`);
      const noteKind = note.body['kind'];
      if (input.details.kind !== noteKind) {
        throw invalidArgument(`occurrence: a ${input.details.kind} occurrence cannot be attached to note ${input.noteName}, which is of kind ${String(noteKind)}`);
      }
      const details = occurrenceDetails(input.details.kind, input.details.value, input.noteName, input.resourceUri);
      const name = `${parent}/occurrences/${randomUUID()}`;
      const body = occurrenceBody(name, input.noteName, input.resourceUri, input.details.kind, input.details.field, details, input);
      let saved: StoredResource;
      try {
        saved = await store.transaction(async (tx) => {
          await projectForWrite(tx, project, principal);
          const r = await tx.create({ kind: 'occurrence', name, parent, k1: input.noteName, k2: digestOfResourceUri(input.resourceUri as string) ?? null, body });
          await recordAdminActivity(tx, {
            serviceName: SERVICE_NAME,
            methodName: `${METHOD_PREFIX[v]}.CreateOccurrence`,
            resourceName: name,
            project,
            principal,
            request: { parent, occurrence: raw as JsonObject },
            response: { name },
          });
          return r;
        });
      } catch (e) {
        storeError(e, `Occurrence ${name}`);
      }
      return { body: occurrenceToWire(saved, v) };
    },

    listOccurrences: (v) => async (ctx) => {
      const parent = param(ctx, 'parent');
      await iam.require(principalOf(ctx), 'containeranalysis.occurrences.list', parent);
      const terms = parseFilter(ctx.query.get('filter'));
      const page = pageOf(ctx.query);
      const keys = filterIndexKeys(terms);
      const result = await listPage(store, 'occurrence', { parent, ...keys }, page, (r) => filterMatches(terms, r.body));
      return { body: { occurrences: result.items.map((r) => occurrenceToWire(r, v)), ...(result.nextPageToken ? { nextPageToken: result.nextPageToken } : {}) } };
    },

    getOccurrence: (v) => async (ctx) => {
      const name = param(ctx, 'name');
      await iam.require(principalOf(ctx), 'containeranalysis.occurrences.get', name);
      return { body: occurrenceToWire(await loadOccurrence(name), v) };
    },

    patchOccurrence: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const name = param(ctx, 'name');
      const raw = await objectBody(ctx);
      const mask = maskOf(ctx);
      await iam.require(principal, 'containeranalysis.occurrences.update', name);
      const existing = await loadOccurrence(name);
      const b = existing.body;
      const kind = b['kind'] as NoteKind;
      const detailsField = DETAILS_BY_KIND.get(kind)?.occurrence?.[0];
      const input = readOccurrence(raw);
      if (input.details !== undefined && input.details.kind !== kind) {
        throw invalidArgument(`occurrence: the kind of an occurrence cannot change (${name} is ${kind}, the request gives ${input.details.kind} details)`);
      }
      const tops = new Set<string>();
      for (const path of mask ?? [...input.present].map((p) => [p === 'details' ? (detailsField ?? p) : p])) {
        const top = path[0] as string;
        const d = OCCURRENCE_DETAILS.get(top);
        if (['noteName', 'resourceUri', 'resource', 'kind'].includes(top)) {
          if (mask === undefined && top !== 'kind' && (top === 'noteName' ? input.noteName === b['noteName'] : input.resourceUri === b['resourceUri'])) continue;
          throw invalidArgument(`occurrence.${top}: immutable; create a new occurrence instead`);
        }
        if (OCCURRENCE_OUTPUT_ONLY.has(top)) throw invalidArgument(`updateMask: ${top} is output only`);
        if (d !== undefined) {
          if (d.kind !== kind) throw invalidArgument(`updateMask: "${path.join('.')}" belongs to ${d.kind} occurrences; ${name} is ${kind}`);
          tops.add('details');
        } else if (top === 'remediation' || top === 'envelope') {
          tops.add(top);
        } else {
          throw invalidArgument(`updateMask: unknown field "${path.join('.')}" (updatable: remediation, envelope, ${detailsField ?? 'details'})`);
        }
      }
      const next: JsonObject = structuredClone(b);
      if (tops.has('remediation')) setPath(next, ['remediation'], input.remediation);
      if (tops.has('envelope')) setPath(next, ['envelope'], input.envelope);
      if (tops.has('details')) {
        if (input.details === undefined || detailsField === undefined) throw invalidArgument(`occurrence.${detailsField ?? 'details'}: a ${kind} occurrence keeps its details; give the new ones`);
        const details = occurrenceDetails(kind, input.details.value, String(b['noteName']), String(b['resourceUri']));
        next[detailsField] = details.value;
        if (details.v1beta1 === undefined) delete next[V1BETA1_FORM];
        else next[V1BETA1_FORM] = details.v1beta1;
      }
      let saved: StoredResource;
      try {
        saved = await store.transaction(async (tx) => {
          const r = await tx.update('occurrence', name, { body: next, expectVersion: existing.version });
          await recordAdminActivity(tx, {
            serviceName: SERVICE_NAME,
            methodName: `${METHOD_PREFIX[v]}.UpdateOccurrence`,
            resourceName: name,
            project: projectOf(name),
            principal,
            request: { name, occurrence: raw as JsonObject, ...(mask === undefined ? {} : { updateMask: mask.map((p) => p.join('.')).join(',') }) },
          });
          return r;
        });
      } catch (e) {
        storeError(e, `Occurrence ${name}`);
      }
      return { body: occurrenceToWire(saved, v) };
    },

    deleteOccurrence: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const name = param(ctx, 'name');
      await iam.require(principal, 'containeranalysis.occurrences.delete', name);
      await store.transaction(async (tx) => {
        if (!(await tx.delete('occurrence', name))) throw notFound(`Occurrence ${name} not found`);
        await recordAdminActivity(tx, {
          serviceName: SERVICE_NAME,
          methodName: `${METHOD_PREFIX[v]}.DeleteOccurrence`,
          resourceName: name,
          project: projectOf(name),
          principal,
          request: { name },
        });
      });
      await iam.deletePolicy(name);
      return { body: {} };
    },

    getOccurrenceNote: (v) => async (ctx) => {
      const principal = principalOf(ctx);
      const name = param(ctx, 'name');
      await iam.require(principal, 'containeranalysis.occurrences.get', name);
      const occ = await loadOccurrence(name);
      const noteName = String(occ.body['noteName']);
      await iam.require(principal, 'containeranalysis.notes.get', noteName);
      return { body: noteToWire(await loadNote(noteName), v) };
    },
  };
}
