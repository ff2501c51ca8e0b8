/**
 * Checks one occurrence against one attestor (reference §3.5): the note must be the attestor's,
 * a signature must verify under one of the attestor's keys whose id matches, and the verified
 * payload must be a container signature. Whether it covers an image (digest equality) is decided by
 * the evaluation, so one check serves every image that shares the digest.
 *
 * Async because OpenPGP verification is; there is no I/O here.
 */
import { keyIdsMatch } from './key-id.js';
import type { AttestationCheck, AttestationOccurrence, AttestationRejectionCode, Attestor, AttestorKey } from './model.js';
import { parseSignaturePayload } from './payload.js';
import { verifyPgpAttachedMessage } from './pgp.js';
import { verifyPkixSignature } from './pkix.js';

type Failure = { code: AttestationRejectionCode; message: string };

/** Lower rank wins when no signature verifies: the most specific explanation is reported. */
const FAILURE_RANK: Record<AttestationRejectionCode, number> = {
  PAYLOAD_MISMATCH: 0,
  UNKNOWN_PAYLOAD_TYPE: 1,
  MALFORMED_PAYLOAD: 2,
  BAD_SIGNATURE: 3,
  MALFORMED_SIGNATURE: 4,
  MISSING_SIGNATURE: 5,
  NO_MATCHING_KEY: 6,
  NOTE_MISMATCH: 7,
};

/** How a check runs; the outcome is the same either way. */
export interface CheckOptions {
  /** PKIX verifications on libuv's thread pool even where in place is cheaper (verifyPkixSignature). */
  readonly verifyOnPool?: boolean;
}

export async function checkAttestation(attestor: Attestor, occurrence: AttestationOccurrence, now: Date, options: CheckOptions = {}): Promise<AttestationCheck> {
  const where = { occurrence: occurrence.name, resourceUri: occurrence.resourceUri };
  const reject = (f: Failure): AttestationCheck => ({ kind: 'rejected', ...where, code: f.code, message: f.message });

  if (occurrence.noteName !== attestor.noteReference) {
    return reject({
      code: 'NOTE_MISMATCH',
      message: `attestation is attached to note ${occurrence.noteName}, not to the attestor's note ${attestor.noteReference}`,
    });
  }
  if (occurrence.defect !== undefined) return reject(occurrence.defect);
  if (occurrence.signatures.length === 0) return reject({ code: 'MISSING_SIGNATURE', message: 'attestation carries no signature' });

  const failures: Failure[] = [];
  for (const sig of occurrence.signatures) {
    const keys = attestor.publicKeys.filter((k) => keyIdsMatch(k.id, sig.publicKeyId));
    if (keys.length === 0) {
      failures.push({
        code: 'NO_MATCHING_KEY',
        message: attestor.publicKeys.length === 0
          ? `signature by key ${sig.publicKeyId}: attestor ${attestor.name} has no public keys`
          : `signature by key ${sig.publicKeyId}: not a key of attestor ${attestor.name} (its keys: ${attestor.publicKeys.map((k) => k.id).join(', ')})`,
      });
      continue;
    }
    for (const key of keys) {
      const outcome = await verifyWithKey(key, sig.signature, occurrence.serializedPayload, now, options.verifyOnPool === true);
      if ('failure' in outcome) {
        failures.push(outcome.failure);
        continue;
      }
      const payload = parseSignaturePayload(outcome.payload);
      if (!payload.ok) {
        failures.push({
          code: payload.error.code === 'UNKNOWN_PAYLOAD_TYPE' ? 'UNKNOWN_PAYLOAD_TYPE' : 'MALFORMED_PAYLOAD',
          message: `signature by key ${key.id} verifies, but ${payload.error.message}`,
        });
        continue;
      }
      return {
        kind: 'verified',
        ...where,
        keyId: key.id,
        payloadDigest: payload.value.digest,
        dockerReference: payload.value.dockerReference,
        ...(outcome.validUntil === undefined ? {} : { validUntil: outcome.validUntil }),
      };
    }
  }
  failures.sort((a, b) => FAILURE_RANK[a.code] - FAILURE_RANK[b.code]);
  return reject(failures[0] as Failure);
}

async function verifyWithKey(
  key: AttestorKey,
  signature: Uint8Array,
  serializedPayload: Uint8Array | undefined,
  now: Date,
  onPool: boolean,
): Promise<{ payload: Uint8Array; validUntil?: Date } | { failure: Failure }> {
  switch (key.kind) {
    case 'pkix': {
      if (serializedPayload === undefined) {
        return { failure: { code: 'MALFORMED_PAYLOAD', message: `signature by key ${key.id}: the attestation has no serializedPayload to verify` } };
      }
      const r = await verifyPkixSignature(key, serializedPayload, signature, onPool);
      if (!r.ok) return { failure: { code: r.error.code, message: `signature by key ${key.id}: ${r.error.message}` } };
      return { payload: serializedPayload };
    }
    case 'pgp': {
      let armored: string;
      try {
        armored = new TextDecoder('utf-8', { fatal: true }).decode(signature);
      } catch {
        return { failure: { code: 'MALFORMED_SIGNATURE', message: `signature by key ${key.id}: not an ASCII-armored PGP message` } };
      }
      const r = await verifyPgpAttachedMessage(key.key, armored, now);
      if (!r.ok) return { failure: { code: r.error.code, message: `signature by key ${key.id}: ${r.error.message}` } };
      // gcloud stores the payload it built next to the PGP message; if both are there they must
      // agree, or a signed payload for one image could be passed off with another's metadata.
      if (serializedPayload !== undefined && !bytesEqual(serializedPayload, r.value.payload)) {
        return { failure: { code: 'PAYLOAD_MISMATCH', message: `signature by key ${key.id} verifies, but the payload signed in the PGP message differs from serializedPayload` } };
      }
      return { payload: r.value.payload, ...(r.value.validUntil === undefined ? {} : { validUntil: r.value.validUntil }) };
    }
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
