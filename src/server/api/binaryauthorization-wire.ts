/**
 * The Binary Authorization wire forms, apart from the routes: API versions and their service
 * names, the one stored attestor ↔ each version's JSON (v1 `userOwnedGrafeasNote`, v1beta1 and
 * v1alpha2 `userOwnedDrydockNote`), and the validation of an attestor a client sends, with field
 * paths in every message. Pure apart from the async OpenPGP key parsing; no store, no clock.
 */
import { parseAttestorPublicKey } from '../../core/attestation/public-key.js';
import { problem, type Problem, type Result } from '../../core/result.js';
import { ApiError } from '../errors.js';
import type { Json, JsonObject } from '../store/store.js';
import { isJsonObject } from '../../core/json.js';

export const API_VERSIONS = ['v1', 'v1beta1', 'v1alpha2'] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

export const SERVICE_NAME = 'binaryauthorization.googleapis.com';

/** The gRPC service of the management methods, as Admin Activity `methodName`s spell it. */
export function managementService(version: ApiVersion): string {
  switch (version) {
    case 'v1':
      return 'google.cloud.binaryauthorization.v1.BinauthzManagementServiceV1';
    case 'v1beta1':
      return 'google.cloud.binaryauthorization.v1beta1.BinauthzManagementServiceV1Beta1';
    case 'v1alpha2':
      return 'google.cloud.binaryauthorization.v1alpha2.BinauthzManagementServiceV1Alpha2';
  }
}

export type NoteField = 'userOwnedGrafeasNote' | 'userOwnedDrydockNote';

/** v1 calls the attestor's note `userOwnedGrafeasNote`; v1beta1 and v1alpha2 `userOwnedDrydockNote`. */
export function noteFieldOf(version: ApiVersion): NoteField {
  return version === 'v1' ? 'userOwnedGrafeasNote' : 'userOwnedDrydockNote';
}

/** Most keys an attestor may hold (reference §8). */
export const MAX_ATTESTOR_KEYS = 1000;

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * One INVALID_ARGUMENT for a list of problems: the message lists every problem (each message
 * starts with its field path), and a `google.rpc.BadRequest` detail carries them as field
 * violations (`field` = the path, `description` = the rest of the message), as Google's APIs do.
 */
export function problemsError(subject: string, problems: readonly Problem[]): ApiError {
  const messages = problems.map((p) => p.message);
  const message = problems.length === 1 ? `Invalid ${subject}: ${messages[0] as string}` : `Invalid ${subject} (${problems.length} problems): ${messages.join('; ')}`;
  return new ApiError('INVALID_ARGUMENT', message, [
    {
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: problems.map((p) => ({ field: p.path ?? '', description: withoutPathPrefix(p) })),
    },
  ]);
}

/** A problem's message without the leading `path: ` (the violation's `field` carries the path). */
function withoutPathPrefix(p: Problem): string {
  return p.path !== undefined && p.path !== '' && p.message.startsWith(`${p.path}: `) ? p.message.slice(p.path.length + 2) : p.message;
}

// ---------------------------------------------------------------------------------------------
// Names

const PROJECT_ID_SRC = '[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?';
const DNS_LABEL_SRC = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** A project id, or a legacy domain-scoped one (`example.com:my-project`). */
const PROJECT_SRC = `(?:${PROJECT_ID_SRC}|${DNS_LABEL_SRC}(?:\\.${DNS_LABEL_SRC})+:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)`;
const NOTE_ID_SRC = '[A-Za-z0-9_.-]{1,100}';
const NOTE_REFERENCE = new RegExp(`^projects/${PROJECT_SRC}/notes/${NOTE_ID_SRC}$`);

/** `projects/PROJECT_ID/notes/NOTE_ID` (a project id, not a number; Google stores ids). */
export function noteReferenceProblem(value: string): string | undefined {
  if (NOTE_REFERENCE.test(value)) return undefined;
  const expected = 'expected projects/PROJECT_ID/notes/NOTE_ID';
  if (value.includes('$')) return `${JSON.stringify(value)} contains an unexpanded shell variable; ${expected}`;
  const parts = value.split('/');
  if (parts.length === 1) return `${JSON.stringify(value)} is a bare note id; ${expected}`;
  if (parts.length === 4 && parts[0] === 'projects' && parts[2] === 'notes') {
    if (/^[0-9]+$/.test(parts[1] as string)) return `${JSON.stringify(value)} names the project by number; use its project id (${expected})`;
    if (!new RegExp(`^${PROJECT_SRC}$`).test(parts[1] as string)) return `${JSON.stringify(parts[1])} is not a valid project id; ${expected}`;
    return `${JSON.stringify(parts[3])} is not a valid note id (1-100 letters, digits, '_', '-' or '.')`;
  }
  return `${JSON.stringify(value)} is not a note resource name; ${expected}`;
}

// ---------------------------------------------------------------------------------------------
// Field reading

type Obj = Record<string, unknown>;

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Proto3 JSON: null (and, for strings, '') means "not set". */
function absent(v: unknown): boolean {
  return v === undefined || v === null;
}

/**
 * Reads `camel` (or its snake_case spelling) from obj; both spellings at once is a problem.
 * Returns undefined for absent/null.
 */
function read(obj: Obj, camel: string, path: string, problems: Problem[]): unknown {
  const s = snake(camel);
  const hasCamel = Object.prototype.hasOwnProperty.call(obj, camel);
  const hasSnake = s !== camel && Object.prototype.hasOwnProperty.call(obj, s);
  if (hasCamel && hasSnake && !absent(obj[camel]) && !absent(obj[s])) {
    problems.push(problem('DUPLICATE_FIELD', `${join(path, camel)}: given twice, as '${camel}' and as '${s}'; use one spelling`, join(path, camel)));
  }
  const v = hasCamel && !absent(obj[camel]) ? obj[camel] : hasSnake ? obj[s] : obj[camel];
  return absent(v) ? undefined : v;
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

/** Problems for fields not in `allowed` (camelCase names; the snake_case spellings are accepted too). */
function unknownFields(obj: Obj, allowed: readonly string[], path: string, what: string, hints: Readonly<Record<string, string>> = {}): Problem[] {
  const known = new Set(allowed.flatMap((a) => [a, snake(a)]));
  const out: Problem[] = [];
  for (const key of Object.keys(obj)) {
    if (known.has(key)) continue;
    const hint = hints[key];
    out.push(problem('UNKNOWN_FIELD', `${join(path, key)}: unknown field in ${what}${hint === undefined ? '' : `; ${hint}`}`, join(path, key)));
  }
  return out;
}

function optionalString(obj: Obj, camel: string, path: string, problems: Problem[]): string | undefined {
  const v = read(obj, camel, path, problems);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    problems.push(problem('TYPE', `${join(path, camel)}: must be a string`, join(path, camel)));
    return undefined;
  }
  return v === '' ? undefined : v;
}

// ---------------------------------------------------------------------------------------------
// Attestors

/**
 * An attestor as stored: the v1 JSON shape without the fields the store supplies (`updateTime`
 * from the row, `etag` from the version).
 */
export interface StoredAttestorBody extends JsonObject {
  name: string;
  userOwnedGrafeasNote: JsonObject;
}

export interface AttestorRequestContext {
  readonly version: ApiVersion;
  /** `projects/P/attestors/A`, from the URL (any `name` in the body is overwritten). */
  readonly name: string;
  /** The attestor project's Binary Authorization service agent (output only). */
  readonly delegationServiceAccountEmail: string;
  /** The stored attestor, on update: its noteReference is immutable. */
  readonly existing?: JsonObject;
}

export interface ValidatedAttestor {
  /** What to store (v1 shape, canonical algorithm names, every key id filled in). */
  readonly body: StoredAttestorBody;
  readonly noteReference: string;
  /** The etag the client sent, if any (for the freshness check). */
  readonly etag: string | undefined;
}

const ATTESTOR_FIELDS = ['name', 'description', 'updateTime', 'etag'] as const;
const NOTE_FIELDS = ['noteReference', 'publicKeys', 'delegationServiceAccountEmail'] as const;
const KEY_FIELDS = ['comment', 'id', 'asciiArmoredPgpPublicKey', 'pkixPublicKey'] as const;
const PKIX_FIELDS = ['publicKeyPem', 'signatureAlgorithm', 'keyId'] as const;

/**
 * Validates an attestor sent to create or update and returns the form to store. Every problem is
 * reported at once; paths use the version's note field name (`userOwnedDrydockNote.publicKeys[1].…`
 * on v1beta1). Output-only fields sent back (`updateTime`, `delegationServiceAccountEmail`) are
 * ignored. Key ids: PGP = the computed fingerprint (a supplied id is overwritten); PKIX = the
 * supplied id (an RFC 3986 URI) or `ni:///sha-256;…` of the key.
 */
export async function attestorFromRequest(raw: unknown, c: AttestorRequestContext): Promise<Result<ValidatedAttestor, Problem[]>> {
  const problems: Problem[] = [];
  if (!isJsonObject(raw)) return { ok: false, error: [problem('TYPE', 'attestor: expected a JSON object')] };
  const noteField = noteFieldOf(c.version);
  const otherField: NoteField = noteField === 'userOwnedGrafeasNote' ? 'userOwnedDrydockNote' : 'userOwnedGrafeasNote';
  const versionHint = `${c.version} calls the attestor's note '${noteField}'`;
  problems.push(...unknownFields(raw, [...ATTESTOR_FIELDS, noteField], '', 'an attestor', { [otherField]: versionHint, [snake(otherField)]: versionHint }));

  const nameValue = read(raw, 'name', '', problems);
  if (nameValue !== undefined && typeof nameValue !== 'string') problems.push(problem('TYPE', 'name: must be a string', 'name'));
  const description = optionalString(raw, 'description', '', problems);
  const etag = optionalString(raw, 'etag', '', problems);
  // updateTime is output only: accepted (read-modify-write clients send it back) and ignored.

  const note = read(raw, noteField, '', problems);
  let noteReference: string | undefined;
  const keys: JsonObject[] = [];
  if (note === undefined) {
    problems.push(problem('REQUIRED', `${noteField}: required; an attestor needs a note (${noteField}.noteReference = projects/PROJECT_ID/notes/NOTE_ID)`, noteField));
  } else if (!isJsonObject(note)) {
    problems.push(problem('TYPE', `${noteField}: must be an object`, noteField));
  } else {
    problems.push(...unknownFields(note, NOTE_FIELDS, noteField, `${noteField}`));
    noteReference = readNoteReference(note, noteField, c, problems);
    await readKeys(note, noteField, problems, keys);
  }

  if (problems.length > 0) return { ok: false, error: problems };
  const body: StoredAttestorBody = {
    name: c.name,
    ...(description === undefined ? {} : { description }),
    userOwnedGrafeasNote: {
      noteReference: noteReference as string,
      publicKeys: keys,
      delegationServiceAccountEmail: c.delegationServiceAccountEmail,
    },
  };
  return { ok: true, value: { body, noteReference: noteReference as string, etag } };
}

function readNoteReference(note: Obj, noteField: NoteField, c: AttestorRequestContext, problems: Problem[]): string | undefined {
  const path = `${noteField}.noteReference`;
  const value = read(note, 'noteReference', noteField, problems);
  if (value === undefined || value === '') {
    problems.push(problem('REQUIRED', `${path}: required (projects/PROJECT_ID/notes/NOTE_ID)`, path));
    return undefined;
  }
  if (typeof value !== 'string') {
    problems.push(problem('TYPE', `${path}: must be a string`, path));
    return undefined;
  }
  const bad = noteReferenceProblem(value);
  if (bad !== undefined) {
    problems.push(problem('INVALID_NOTE', `${path}: ${bad}`, path));
    return undefined;
  }
  const before = c.existing === undefined ? undefined : storedNoteReference(c.existing);
  if (before !== undefined && before !== value) {
    problems.push(problem('IMMUTABLE', `${path}: cannot be changed (it is ${JSON.stringify(before)}); create a new attestor for another note`, path));
    return undefined;
  }
  return value;
}

async function readKeys(note: Obj, noteField: NoteField, problems: Problem[], out: JsonObject[]): Promise<void> {
  const path = `${noteField}.publicKeys`;
  const value = read(note, 'publicKeys', noteField, problems);
  if (value === undefined) return;
  if (!Array.isArray(value)) {
    problems.push(problem('TYPE', `${path}: must be a list`, path));
    return;
  }
  if (value.length > MAX_ATTESTOR_KEYS) {
    problems.push(problem('TOO_MANY_KEYS', `${path}: ${value.length} keys; an attestor holds at most ${MAX_ATTESTOR_KEYS}`, path));
    return;
  }
  const seen = new Map<string, number>();
  for (const [i, rawKey] of value.entries()) {
    const at = `${path}[${i}]`;
    const keyProblems: Problem[] = [];
    if (isJsonObject(rawKey)) {
      keyProblems.push(...unknownFields(rawKey, KEY_FIELDS, at, 'a public key'));
      const pkix = read(rawKey, 'pkixPublicKey', at, []);
      if (isJsonObject(pkix)) keyProblems.push(...unknownFields(pkix, PKIX_FIELDS, `${at}.pkixPublicKey`, 'a PKIX public key'));
    }
    if (keyProblems.length > 0) {
      problems.push(...keyProblems);
      continue;
    }
    const parsed = await parseAttestorPublicKey(rawKey, at);
    if (!parsed.ok) {
      problems.push(parsed.error);
      continue;
    }
    const key = parsed.value;
    const first = seen.get(key.id);
    if (first !== undefined) {
      problems.push(problem('DUPLICATE_KEY_ID', `${at}.id: key id ${JSON.stringify(key.id)} is already used by ${path}[${first}]; key ids must be unique within an attestor`, `${at}.id`));
      continue;
    }
    seen.set(key.id, i);
    const comment: JsonObject = key.comment === undefined || key.comment === '' ? {} : { comment: key.comment };
    if (key.kind === 'pgp') {
      out.push({ id: key.id, ...comment, asciiArmoredPgpPublicKey: key.asciiArmoredPgpPublicKey });
    } else {
      const sentKeyId = isJsonObject(rawKey) ? pkixKeyIdSent(rawKey) : false;
      out.push({
        id: key.id,
        ...comment,
        pkixPublicKey: sentKeyId
          ? { publicKeyPem: key.publicKeyPem, signatureAlgorithm: key.algorithm, keyId: key.id }
          : { publicKeyPem: key.publicKeyPem, signatureAlgorithm: key.algorithm },
      });
    }
  }
}

/** Whether the client set `pkixPublicKey.keyId` (then it is echoed back, equal to `id`). */
function pkixKeyIdSent(rawKey: Obj): boolean {
  const pkix = rawKey['pkixPublicKey'] ?? rawKey['pkix_public_key'];
  if (!isJsonObject(pkix)) return false;
  const v = pkix['keyId'] ?? pkix['key_id'];
  return typeof v === 'string' && v.trim() !== '';
}

/** The noteReference of a stored attestor body. */
export function storedNoteReference(body: JsonObject): string | undefined {
  const note = body['userOwnedGrafeasNote'];
  if (!isJsonObject(note)) return undefined;
  const ref = note['noteReference'];
  return typeof ref === 'string' ? ref : undefined;
}

/**
 * A stored attestor in a version's JSON shape, with the output-only `updateTime` and `etag`.
 * Empty lists are left out, as proto3 JSON does.
 */
export function attestorToWire(body: JsonObject, version: ApiVersion, meta: { updateTime: string; etag: string }): JsonObject {
  const note = isJsonObject(body['userOwnedGrafeasNote']) ? (body['userOwnedGrafeasNote'] as JsonObject) : {};
  const keys = Array.isArray(note['publicKeys']) ? (note['publicKeys'] as Json[]) : [];
  const outNote: JsonObject = {
    noteReference: note['noteReference'] ?? '',
    ...(keys.length > 0 ? { publicKeys: keys } : {}),
    ...(typeof note['delegationServiceAccountEmail'] === 'string' ? { delegationServiceAccountEmail: note['delegationServiceAccountEmail'] } : {}),
  };
  return {
    name: body['name'] ?? '',
    ...(typeof body['description'] === 'string' && body['description'] !== '' ? { description: body['description'] } : {}),
    [noteFieldOf(version)]: outNote,
    updateTime: meta.updateTime,
    etag: meta.etag,
  };
}
