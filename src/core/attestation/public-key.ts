/**
 * Decodes one wire `AttestorPublicKey` (camelCase JSON as Google's API returns it, or the proto
 * snake_case names) into a parsed, ready-to-verify AttestorKey.
 */
import { describeError, err, ok, problem, type Problem, type Result } from '../result.js';
import { isValidPkixKeyId } from './key-id.js';
import type { AttestorKey } from './model.js';
import { parsePgpPublicKey } from './pgp.js';
import { defaultPkixKeyId, parsePkixPublicKey } from './pkix.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Re-roots a Problem whose path/message are relative (`publicKeyPem: …`) under `prefix`. */
function nest(p: Problem, prefix: string): Problem {
  if (p.path !== undefined && p.message.startsWith(`${p.path}:`)) {
    return problem(p.code, `${prefix}.${p.message}`, `${prefix}.${p.path}`);
  }
  return problem(p.code, `${prefix}: ${p.message}`, prefix);
}

/** Proto3 JSON: a field set to null, or a scalar at its default, counts as absent. */
function present(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

/**
 * Reads a field that may be spelled in camelCase (JSON) or snake_case (proto). Giving both
 * spellings with different values is an error.
 */
function field(obj: Obj, camel: string, snake: string, path: string): Result<unknown> {
  const a = Object.prototype.hasOwnProperty.call(obj, camel) ? obj[camel] : undefined;
  const b = Object.prototype.hasOwnProperty.call(obj, snake) ? obj[snake] : undefined;
  if (present(a) && present(b) && a !== b) {
    return err(problem('INVALID_ARGUMENT', `${path}.${camel}: given twice, as ${camel} and as ${snake}`, `${path}.${camel}`));
  }
  return ok(present(a) ? a : b);
}

function optionalString(obj: Obj, camel: string, snake: string, path: string): Result<string | undefined> {
  const r = field(obj, camel, snake, path);
  if (!r.ok) return r;
  const v = r.value;
  if (v === undefined || v === null) return ok(undefined);
  if (typeof v !== 'string') return err(problem('TYPE', `${path}.${camel}: must be a string`, `${path}.${camel}`));
  return ok(v);
}

/**
 * Decodes one `AttestorPublicKey`. `path` is where it sits in the request
 * (e.g. `userOwnedGrafeasNote.publicKeys[1]`); every Problem's message starts with the full path.
 */
export async function parseAttestorPublicKey(raw: unknown, path: string): Promise<Result<AttestorKey>> {
  try {
    return await parse(raw, path);
  } catch (e) {
    // Only reachable with hostile objects (throwing getters and the like).
    return err(problem('INVALID_ARGUMENT', `${path}: cannot be read (${describeError(e)})`, path));
  }
}

async function parse(raw: unknown, path: string): Promise<Result<AttestorKey>> {
  if (!isObj(raw)) return err(problem('TYPE', `${path}: must be an object`, path));

  const comment = optionalString(raw, 'comment', 'comment', path);
  if (!comment.ok) return comment;
  const suppliedId = optionalString(raw, 'id', 'id', path);
  if (!suppliedId.ok) return suppliedId;

  const pgpField = field(raw, 'asciiArmoredPgpPublicKey', 'ascii_armored_pgp_public_key', path);
  if (!pgpField.ok) return pgpField;
  const pkixField = field(raw, 'pkixPublicKey', 'pkix_public_key', path);
  if (!pkixField.ok) return pkixField;
  const hasPgp = present(pgpField.value);
  const hasPkix = present(pkixField.value);
  if (hasPgp && hasPkix) {
    return err(problem('INVALID_ARGUMENT', `${path}: set only one of asciiArmoredPgpPublicKey and pkixPublicKey`, path));
  }
  if (!hasPgp && !hasPkix) {
    return err(problem('REQUIRED', `${path}: one of asciiArmoredPgpPublicKey or pkixPublicKey is required`, path));
  }
  const withComment = comment.value === undefined ? {} : { comment: comment.value };

  if (hasPgp) {
    const armored = pgpField.value;
    const at = `${path}.asciiArmoredPgpPublicKey`;
    if (typeof armored !== 'string') return err(problem('TYPE', `${at}: must be a string`, at));
    const parsed = await parsePgpPublicKey(armored);
    if (!parsed.ok) return err(nest(parsed.error, path));
    // The id of a PGP key is always its fingerprint; a supplied id is ignored.
    return ok({
      kind: 'pgp',
      id: parsed.value.fingerprint,
      ...withComment,
      asciiArmoredPgpPublicKey: armored,
      key: parsed.value.key,
    });
  }

  const pkixPath = `${path}.pkixPublicKey`;
  const pkix = pkixField.value;
  if (!isObj(pkix)) return err(problem('TYPE', `${pkixPath}: must be an object`, pkixPath));
  const pem = field(pkix, 'publicKeyPem', 'public_key_pem', pkixPath);
  if (!pem.ok) return pem;
  if (!present(pem.value)) {
    return err(problem('REQUIRED', `${pkixPath}.publicKeyPem: is required`, `${pkixPath}.publicKeyPem`));
  }
  if (typeof pem.value !== 'string') {
    return err(problem('TYPE', `${pkixPath}.publicKeyPem: must be a string`, `${pkixPath}.publicKeyPem`));
  }
  const alg = field(pkix, 'signatureAlgorithm', 'signature_algorithm', pkixPath);
  if (!alg.ok) return alg;
  const algValue = alg.value;
  if (algValue !== undefined && algValue !== null && typeof algValue !== 'string' && typeof algValue !== 'number') {
    return err(problem('TYPE', `${pkixPath}.signatureAlgorithm: must be an algorithm name`, `${pkixPath}.signatureAlgorithm`));
  }
  const keyId = optionalString(pkix, 'keyId', 'key_id', pkixPath);
  if (!keyId.ok) return keyId;

  const parsed = parsePkixPublicKey(pem.value, algValue ?? undefined);
  if (!parsed.ok) return err(nest(parsed.error, pkixPath));

  const wrapperId = suppliedId.value !== undefined && suppliedId.value.trim() !== '' ? suppliedId.value : undefined;
  const innerId = keyId.value !== undefined && keyId.value.trim() !== '' ? keyId.value : undefined;
  if (wrapperId !== undefined && innerId !== undefined && wrapperId !== innerId) {
    return err(
      problem(
        'INVALID_ARGUMENT',
        `${pkixPath}.keyId: must equal ${path}.id when both are set (got ${JSON.stringify(innerId)} and ${JSON.stringify(wrapperId)})`,
        `${pkixPath}.keyId`,
      ),
    );
  }
  let id: string;
  if (wrapperId !== undefined || innerId !== undefined) {
    id = (wrapperId ?? innerId) as string;
    const at = wrapperId !== undefined ? `${path}.id` : `${pkixPath}.keyId`;
    if (!isValidPkixKeyId(id)) {
      return err(problem('INVALID_KEY_ID', `${at}: ${JSON.stringify(id)} is not a valid key id (an RFC 3986 URI such as ni:///sha-256;…, or a printable string without ':' or spaces)`, at));
    }
  } else {
    id = defaultPkixKeyId(parsed.value.key);
  }
  return ok({
    kind: 'pkix',
    id,
    ...withComment,
    algorithm: parsed.value.algorithm,
    publicKeyPem: pem.value,
    key: parsed.value.key,
  });
}
