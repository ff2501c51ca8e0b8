/**
 * Decodes Container Analysis occurrences into AttestationOccurrence: the Grafeas v1 shape
 * (`attestation.serializedPayload` + `signatures[]`, what gcloud creates and lists) and the legacy
 * v1beta1 shapes (`attestation.attestation.pgpSignedAttestation` / `genericSignedAttestation`).
 */
import { decodeBase64Bytes } from '../encoding/base64.js';
import { err, ok, problem, type Result } from '../result.js';
import type { AttestationOccurrence, AttestationRejectionCode, OccurrenceSignature } from './model.js';

type Obj = Record<string, unknown>;

/** Why an occurrence is not an attestation at all (so evidence loaders can skip it and say so). */
export const NOT_AN_ATTESTATION = 'NOT_AN_ATTESTATION';

/**
 * Structural problems (no note name, no resource, not an attestation) are errors. Undecodable
 * signature material is not: it yields an occurrence with `defect` set, so it is reported as a
 * failed attestation instead of disappearing.
 */
export function parseAttestationOccurrence(raw: unknown, path = 'occurrence'): Result<AttestationOccurrence> {
  if (!isObj(raw)) return err(problem('TYPE', `${path}: must be an object`, path));
  const kind = pick(raw, 'kind');
  const name = str(pick(raw, 'name')) ?? '';
  const noteName = str(pick(raw, 'noteName', 'note_name'));
  const resourceUri = str(pick(raw, 'resourceUri', 'resource_uri')) ?? str(pick(pick(raw, 'resource'), 'uri'));
  if (kind !== undefined && kind !== 'ATTESTATION' && kind !== 7) {
    return err(problem(NOT_AN_ATTESTATION, `${path}: kind ${String(kind)} is not ATTESTATION`, `${path}.kind`));
  }
  const details = pick(raw, 'attestation');
  if (!isObj(details)) {
    return err(problem(NOT_AN_ATTESTATION, `${path}: has no attestation details`, `${path}.attestation`));
  }
  if (noteName === undefined || noteName === '') {
    return err(problem('REQUIRED', `${path}.noteName: required`, `${path}.noteName`));
  }
  if (resourceUri === undefined || resourceUri === '') {
    return err(problem('REQUIRED', `${path}.resourceUri: required`, `${path}.resourceUri`));
  }
  const base = { name, noteName, resourceUri };
  const inner = pick(details, 'attestation');
  if (isObj(inner)) return ok(fromV1beta1(base, inner, `${path}.attestation.attestation`));
  return ok(fromGeneric(base, details, `${path}.attestation`));
}

interface Base { name: string; noteName: string; resourceUri: string }

function fromV1beta1(base: Base, inner: Obj, path: string): AttestationOccurrence {
  const pgp = pick(inner, 'pgpSignedAttestation', 'pgp_signed_attestation');
  if (isObj(pgp)) {
    const signature = str(pick(pgp, 'signature'));
    const keyId = str(pick(pgp, 'pgpKeyId', 'pgp_key_id'));
    if (signature === undefined || signature === '') {
      return defective(base, 'MISSING_SIGNATURE', `${path}.pgpSignedAttestation.signature: empty`);
    }
    if (keyId === undefined || keyId === '') {
      return defective(base, 'MISSING_SIGNATURE', `${path}.pgpSignedAttestation.pgpKeyId: empty`);
    }
    // The v1beta1 PGP form carries the armored message as a string, not base64 bytes.
    return { ...base, signatures: [{ publicKeyId: keyId, signature: new TextEncoder().encode(signature) }] };
  }
  const generic = pick(inner, 'genericSignedAttestation', 'generic_signed_attestation');
  if (isObj(generic)) return fromGeneric(base, generic, `${path}.genericSignedAttestation`);
  return defective(base, 'MISSING_SIGNATURE', `${path}: neither pgpSignedAttestation nor genericSignedAttestation`);
}

function fromGeneric(base: Base, details: Obj, path: string): AttestationOccurrence {
  const payloadText = pick(details, 'serializedPayload', 'serialized_payload');
  let serializedPayload: Uint8Array | undefined;
  if (payloadText !== undefined && payloadText !== '') {
    if (typeof payloadText !== 'string') {
      return defective(base, 'MALFORMED_PAYLOAD', `${path}.serializedPayload: must be a base64 string`);
    }
    const decoded = decodeBase64Bytes(payloadText, `${path}.serializedPayload`);
    if (!decoded.ok) return defective(base, 'MALFORMED_PAYLOAD', decoded.error.message);
    serializedPayload = decoded.value;
  }
  const rawSigs = pick(details, 'signatures');
  const signatures: OccurrenceSignature[] = [];
  if (rawSigs !== undefined && !Array.isArray(rawSigs)) {
    return defective(base, 'MALFORMED_SIGNATURE', `${path}.signatures: must be a list`);
  }
  for (const [i, s] of (rawSigs ?? []).entries()) {
    const p = `${path}.signatures[${i}]`;
    if (!isObj(s)) return defective(base, 'MALFORMED_SIGNATURE', `${p}: must be an object`);
    const keyId = str(pick(s, 'publicKeyId', 'public_key_id'));
    const sigText = str(pick(s, 'signature'));
    if (keyId === undefined || keyId === '') return defective(base, 'MALFORMED_SIGNATURE', `${p}.publicKeyId: empty`);
    if (sigText === undefined || sigText === '') return defective(base, 'MISSING_SIGNATURE', `${p}.signature: empty`);
    const decoded = decodeBase64Bytes(sigText, `${p}.signature`);
    if (!decoded.ok) return defective(base, 'MALFORMED_SIGNATURE', decoded.error.message);
    signatures.push({ publicKeyId: keyId, signature: decoded.value });
  }
  if (signatures.length === 0) return defective(base, 'MISSING_SIGNATURE', `${path}.signatures: the attestation carries no signature`);
  return serializedPayload === undefined ? { ...base, signatures } : { ...base, serializedPayload, signatures };
}

function defective(base: Base, code: AttestationRejectionCode, message: string): AttestationOccurrence {
  return { ...base, signatures: [], defect: { code, message } };
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pick(v: unknown, ...keys: string[]): unknown {
  if (!isObj(v)) return undefined;
  for (const k of keys) if (Object.prototype.hasOwnProperty.call(v, k)) return v[k];
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The `sha256:…` digest at the end of a resource URI, if any (as gcloud's has_suffix filter uses it). */
export function digestOfResourceUri(uri: string): string | undefined {
  const m = /@([a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})$/.exec(uri);
  return m ? (m[1] as string).toLowerCase() : undefined;
}
