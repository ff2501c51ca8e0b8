import { err, ok, problem, type Result } from '../result.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9\-_]*={0,2}$/;

/**
 * Strict decoding of a proto3 `bytes` field. Google's front end (and gcloud, which sends URL-safe
 * base64) accepts both alphabets; Node's own decoder silently skips invalid characters, which
 * would let garbage through as a shorter value, so the alphabet and length are checked first.
 */
export function decodeBase64Bytes(value: string, path: string): Result<Uint8Array> {
  // Every attestation's payload and signature pass here on a new image: no pass over the text
  // that a check does not need.
  const s = value.includes('\n') || value.includes('\r') ? value.replace(/[\r\n]/g, '') : value;
  if (!BASE64.test(s) && !BASE64URL.test(s)) {
    return err(problem('INVALID_BASE64', `${path}: not valid base64 (standard or URL-safe alphabet)`, path));
  }
  // The alphabet check allows '=' only as the last one or two characters.
  let unpadded = s.length;
  while (unpadded > 0 && s.charCodeAt(unpadded - 1) === 0x3d) unpadded--;
  if (unpadded % 4 === 1 || (unpadded < s.length && s.length % 4 !== 0)) {
    return err(problem('INVALID_BASE64', `${path}: base64 value has an impossible length`, path));
  }
  // Node's decoder reads both alphabets (and padding or none); the checks above did the rest.
  // A small result shares Node's buffer pool, as every Buffer.from does: copying it out into an
  // ArrayBuffer of its own cost ~1 µs per value (two per attestation on a new image).
  return ok(Buffer.from(s, 'base64'));
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
