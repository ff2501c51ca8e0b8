/**
 * PKIX (X.509 SubjectPublicKeyInfo) attestor keys: parsing a PEM key against its declared
 * algorithm, the default `ni:///sha-256;…` key id, and detached signature verification over the
 * exact payload bytes.
 */
import { constants, createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { err, ok, problem, describeError, type Problem, type Result } from '../result.js';
import type { AttestorKey, SignatureAlgorithm } from './model.js';
import { algorithmSpec, canonicalSignatureAlgorithm, type AlgorithmSpec } from './signature-algorithm.js';

/** Refuse absurdly large PEM input before doing any work (an RSA 16384 key is ~3 KiB). */
const MAX_PEM_LENGTH = 64 * 1024;

export type SignatureFailure = { code: 'BAD_SIGNATURE' | 'MALFORMED_SIGNATURE'; message: string };

const CURVE_LABEL: Readonly<Record<string, string>> = {
  prime256v1: 'P-256 (prime256v1)',
  secp384r1: 'P-384 (secp384r1)',
  secp521r1: 'P-521 (secp521r1)',
};

function curveLabel(curve: string | undefined): string {
  if (curve === undefined) return 'an unnamed curve (explicit parameters)';
  return Object.prototype.hasOwnProperty.call(CURVE_LABEL, curve) ? (CURVE_LABEL[curve] as string) : curve;
}

function fieldProblem(code: string, field: string, detail: string): Problem {
  return problem(code, `${field}: ${detail}`, field);
}

// ---------------------------------------------------------------------------------------------
// Minimal DER reading (definite lengths only, minimal length encoding enforced).

interface Tlv {
  readonly tag: number;
  /** Offset of the contents. */
  readonly start: number;
  /** Offset just past the contents. */
  readonly end: number;
}

function readTlv(buf: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers never occur here
  const first = buf[offset + 1] as number;
  let length: number;
  let start: number;
  if (first < 0x80) {
    length = first;
    start = offset + 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 3) return undefined; // indefinite or unreasonably long
    if (offset + 2 + n > limit) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (buf[offset + 2 + i] as number);
    if ((buf[offset + 2] as number) === 0) return undefined; // leading zero in length
    if (length < 0x80) return undefined; // long form where short form would do
    start = offset + 2 + n;
  }
  const end = start + length;
  if (end > limit) return undefined;
  return { tag, start, end };
}

/** Strict DER check of an ECDSA-Sig-Value `SEQUENCE { r INTEGER, s INTEGER }`. */
function ecdsaDerProblem(sig: Uint8Array): string | undefined {
  if (sig.length === 0) return 'the signature is empty';
  const seq = readTlv(sig, 0, sig.length);
  if (seq === undefined || seq.tag !== 0x30) return 'the signature is not a DER SEQUENCE';
  if (seq.end !== sig.length) return 'the signature has bytes after the DER SEQUENCE';
  let at = seq.start;
  for (const name of ['r', 's']) {
    const int = readTlv(sig, at, seq.end);
    if (int === undefined || int.tag !== 0x02) return `the DER SEQUENCE does not hold INTEGER ${name}`;
    const len = int.end - int.start;
    if (len === 0) return `INTEGER ${name} is empty`;
    const b0 = sig[int.start] as number;
    if (b0 & 0x80) return `INTEGER ${name} is negative`;
    if (len > 1 && b0 === 0 && ((sig[int.start + 1] as number) & 0x80) === 0) {
      return `INTEGER ${name} is not minimally encoded`;
    }
    at = int.end;
  }
  if (at !== seq.end) return 'the DER SEQUENCE holds more than r and s';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PEM

/** Reads `LABEL-----` at `at`; the label is upper-case letters, digits and spaces. */
function readLabel(text: string, at: number): { label: string; next: number } | undefined {
  const close = text.indexOf('-----', at);
  if (close < 0 || close - at > 64) return undefined;
  const label = text.slice(at, close);
  if (!/^[A-Z0-9 ]+$/.test(label)) return undefined;
  return { label, next: close + 5 };
}

function describeLabel(label: string): string {
  if (label.includes('PRIVATE KEY')) return `a private key (PEM "${label}"); supply only the public key`;
  if (label.includes('CERTIFICATE')) return `a certificate (PEM "${label}"), not a bare public key`;
  if (label === 'RSA PUBLIC KEY') return 'a PKCS#1 RSAPublicKey (PEM "RSA PUBLIC KEY"), not a SubjectPublicKeyInfo';
  return `a PEM "${label}" block, not "PUBLIC KEY"`;
}

function decodePem(pem: string): Result<Uint8Array> {
  const field = 'publicKeyPem';
  const code = 'INVALID_PUBLIC_KEY';
  if (typeof pem !== 'string' || pem.trim() === '') {
    return err(fieldProblem(code, field, 'is empty; expected a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----")'));
  }
  if (pem.length > MAX_PEM_LENGTH) return err(fieldProblem(code, field, `is longer than ${MAX_PEM_LENGTH} characters`));
  // Linear scan (no backtracking regex over attacker input): exactly one BEGIN … END pair.
  const beginAt = pem.indexOf('-----BEGIN ');
  if (beginAt < 0) {
    return err(fieldProblem(code, field, 'is not PEM: no "-----BEGIN PUBLIC KEY-----" … "-----END PUBLIC KEY-----" block'));
  }
  const secondBegin = pem.indexOf('-----BEGIN ', beginAt + 1);
  if (secondBegin >= 0) return err(fieldProblem(code, field, 'holds more than one PEM block; expected exactly one public key'));
  const beginLabel = readLabel(pem, beginAt + '-----BEGIN '.length);
  if (beginLabel === undefined) return err(fieldProblem(code, field, 'has a malformed PEM BEGIN line'));
  const bodyStart = beginLabel.next;
  const endAt = pem.indexOf('-----END ', bodyStart);
  if (endAt < 0) return err(fieldProblem(code, field, `has no PEM END line for "${beginLabel.label}"`));
  const endLabel = readLabel(pem, endAt + '-----END '.length);
  if (endLabel === undefined) return err(fieldProblem(code, field, 'has a malformed PEM END line'));
  const begin = beginLabel.label;
  const end = endLabel.label;
  if (begin !== end) return err(fieldProblem(code, field, `PEM BEGIN label "${begin}" does not match END label "${end}"`));
  if (begin !== 'PUBLIC KEY') return err(fieldProblem(code, field, `is ${describeLabel(begin)}`));
  if (pem.slice(0, beginAt).trim() !== '' || pem.slice(endLabel.next).trim() !== '') {
    return err(fieldProblem(code, field, 'has text outside the PEM block'));
  }
  const body = pem.slice(bodyStart, endAt);
  const b64 = body.replace(/[ \t\r\n]/g, '');
  if (b64 === '' || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    return err(fieldProblem(code, field, 'the PEM body is not valid base64'));
  }
  return ok(new Uint8Array(Buffer.from(b64, 'base64')));
}

// ---------------------------------------------------------------------------------------------

/**
 * Parses a PEM SubjectPublicKeyInfo and checks it is usable with `algorithm` (canonical name,
 * alias or enum number): key type, EC curve and RSA modulus size must all match.
 * Problems carry `path` = `publicKeyPem` or `signatureAlgorithm` and a message starting with it.
 */
export function parsePkixPublicKey(
  pem: string,
  algorithm: string | number | undefined,
): Result<{ key: KeyObject; algorithm: SignatureAlgorithm }> {
  const algField = 'signatureAlgorithm';
  if (
    algorithm === undefined ||
    algorithm === null ||
    algorithm === '' ||
    algorithm === 0 ||
    algorithm === 'SIGNATURE_ALGORITHM_UNSPECIFIED'
  ) {
    return err(fieldProblem('INVALID_SIGNATURE_ALGORITHM', algField, 'is required for a PKIX public key'));
  }
  if (typeof algorithm !== 'string' && typeof algorithm !== 'number') {
    return err(fieldProblem('INVALID_SIGNATURE_ALGORITHM', algField, `must be an algorithm name, got ${typeof algorithm}`));
  }
  const alg = canonicalSignatureAlgorithm(algorithm);
  if (alg === undefined) {
    return err(fieldProblem('INVALID_SIGNATURE_ALGORITHM', algField, `unknown signature algorithm ${JSON.stringify(algorithm)}`));
  }

  const der = decodePem(pem);
  if (!der.ok) return der;
  const bytes = der.value;
  const outer = readTlv(bytes, 0, bytes.length);
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== bytes.length) {
    return err(fieldProblem('INVALID_PUBLIC_KEY', 'publicKeyPem', 'the PEM body is not a DER SubjectPublicKeyInfo'));
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(bytes), format: 'der', type: 'spki' });
  } catch (e) {
    return err(fieldProblem('INVALID_PUBLIC_KEY', 'publicKeyPem', `not a usable SubjectPublicKeyInfo (${describeError(e)})`));
  }
  if (key.type !== 'public') {
    return err(fieldProblem('INVALID_PUBLIC_KEY', 'publicKeyPem', `is a ${key.type} key, not a public key`));
  }

  const spec = algorithmSpec(alg);
  const keyType = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  const mismatch = (detail: string): Result<never> =>
    err(fieldProblem('KEY_ALGORITHM_MISMATCH', algField, `${alg} ${detail}`));

  if (spec.keyType === 'ec') {
    if (keyType !== 'ec') return mismatch(`needs an EC key on ${curveLabel(spec.namedCurve)}, but the key is ${describeKeyType(keyType, details)}`);
    if (details.namedCurve !== spec.namedCurve) {
      return mismatch(`needs an EC key on ${curveLabel(spec.namedCurve)}, but the key is on ${curveLabel(details.namedCurve)}`);
    }
  } else {
    if (keyType === 'rsa-pss') {
      return mismatch(
        'needs an RSA key with the rsaEncryption algorithm identifier; RSASSA-PSS-restricted (id-RSASSA-PSS) keys are not supported',
      );
    }
    if (keyType !== 'rsa') return mismatch(`needs an RSA ${spec.modulusLength}-bit key, but the key is ${describeKeyType(keyType, details)}`);
    if (details.modulusLength !== spec.modulusLength) {
      return mismatch(`needs an RSA ${spec.modulusLength}-bit key, but the key is RSA ${details.modulusLength ?? '?'}-bit`);
    }
  }
  return ok({ key, algorithm: alg });
}

function describeKeyType(type: string | undefined, details: { namedCurve?: string; modulusLength?: number }): string {
  switch (type) {
    case 'ec':
      return `an EC key on ${curveLabel(details.namedCurve)}`;
    case 'rsa':
    case 'rsa-pss':
      return `an RSA ${details.modulusLength ?? '?'}-bit key`;
    case undefined:
      return 'of an unknown type';
    default:
      return `an ${type} key`;
  }
}

/** `ni:///sha-256;` + base64url (no padding) of SHA-256 over the DER SubjectPublicKeyInfo (RFC 6920). */
export function defaultPkixKeyId(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `ni:///sha-256;${createHash('sha256').update(der).digest('base64url')}`;
}

/**
 * `crypto.verify`, in place or on libuv's thread pool. Handing a verification to the pool costs
 * the event loop 30–60 µs (waking a pool thread, then being woken by it) and the process
 * 150–200 µs of CPU in all when verifications come one at a time, as new images do (measured on
 * the bench machine; docs/performance.md item 22): more than an ECDSA P-256 or an RSA
 * verification itself (35–90 µs). Those run in place unless the caller asks for the pool
 * (`onPool`: where the event loop is the limit and a core is free, the pool still wins; the
 * server decides, docs/performance.md item 49). P-384 (~0.9 ms) and P-521 (~1.8 ms) always go
 * to the pool, so a burst of them does not hold up every other request.
 */
function verifySignature(spec: AlgorithmSpec, payload: Uint8Array, key: Parameters<typeof verify>[2], signature: Uint8Array, onPool: boolean): Promise<boolean> | boolean {
  if (!onPool && (spec.keyType === 'rsa' || spec.namedCurve === 'prime256v1')) return verify(spec.hash, payload, key, signature);
  return new Promise((resolve, reject) => {
    verify(spec.hash, payload, key, signature, (error, valid) => (error === null ? resolve(valid) : reject(error)));
  });
}

/**
 * Verifies a detached signature over exactly `payload` with a parsed PKIX attestor key.
 * ECDSA signatures must be DER `SEQUENCE{r,s}`; RSA-PSS accepts any salt length.
 * Never throws. `onPool`: verify on libuv's thread pool even where it is cheap enough to do in
 * place (see verifySignature); the result is the same either way.
 */
export async function verifyPkixSignature(
  key: Extract<AttestorKey, { kind: 'pkix' }>,
  payload: Uint8Array,
  signature: Uint8Array,
  onPool = false,
): Promise<Result<true, SignatureFailure>> {
  const malformed = (message: string): Result<never, SignatureFailure> =>
    err({ code: 'MALFORMED_SIGNATURE', message: `${message} (key ${key.id}, ${key.algorithm})` });
  const bad = (message: string): Result<never, SignatureFailure> =>
    err({ code: 'BAD_SIGNATURE', message: `${message} (key ${key.id}, ${key.algorithm})` });
  try {
    if (!(signature instanceof Uint8Array)) return malformed('the signature is not a byte string');
    if (!(payload instanceof Uint8Array)) return bad('the payload is not a byte string');
    const alg = canonicalSignatureAlgorithm(key.algorithm);
    if (alg === undefined) return bad(`the key has an unknown algorithm ${String(key.algorithm)}`);
    const spec = algorithmSpec(alg);
    if (signature.length === 0) return malformed('the signature is empty');

    let ok_: boolean;
    if (spec.keyType === 'ec') {
      const why = ecdsaDerProblem(signature);
      if (why !== undefined) return malformed(`ECDSA signature is not DER SEQUENCE{r,s}: ${why}`);
      ok_ = await verifySignature(spec, payload, { key: key.key, dsaEncoding: 'der' }, signature, onPool);
    } else {
      const bits = key.key.asymmetricKeyDetails?.modulusLength ?? spec.modulusLength ?? 0;
      const expected = Math.ceil(bits / 8);
      if (signature.length !== expected) {
        return malformed(`RSA signature is ${signature.length} bytes, expected ${expected} for a ${bits}-bit key`);
      }
      ok_ =
        spec.padding === 'pss'
          ? await verifySignature(
              spec,
              payload,
              { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
              signature,
              onPool,
            )
          : await verifySignature(spec, payload, { key: key.key, padding: constants.RSA_PKCS1_PADDING }, signature, onPool);
    }
    return ok_ ? ok(true) : bad('the signature does not verify over the payload');
  } catch (e) {
    return bad(`the signature could not be verified: ${describeError(e)}`);
  }
}
