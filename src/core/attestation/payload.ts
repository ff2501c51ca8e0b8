/**
 * The "simple signing" payload that Binary Authorization attestations sign (reference §3.1), made
 * byte for byte as `gcloud container binauthz create-signature-payload` makes it, and parsed back
 * out of a verified signature.
 */
import { parseImageReference } from '../image/reference.js';
import { err, ok, problem, type Problem, type Result } from '../result.js';

export const GCLOUD_PAYLOAD_TYPE = 'Google cloud binauthz container signature';

/** The `critical.type` values seen in Google's and Kritis' sources; compared case-insensitively. */
export const ACCEPTED_PAYLOAD_TYPES: readonly string[] = [
  GCLOUD_PAYLOAD_TYPE,
  'Google Cloud BinAuthz container signature',
  'atomic container signature',
];
const ACCEPTED_LOWER = new Set(ACCEPTED_PAYLOAD_TYPES.map((t) => t.toLowerCase()));

export interface SignaturePayload {
  readonly type: string;
  /** `critical.image.docker-manifest-digest`, hex lower-cased. */
  readonly digest: string;
  /** `critical.identity.docker-reference`. */
  readonly dockerReference: string;
}

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
const TAG_AND_DIGEST = /^(.+?)(?::[\w][\w.-]{0,127})?@(sha256:[0-9a-f]{64})$/;

/**
 * Builds the payload for an artifact URL `REGISTRY/PATH[:TAG]@sha256:DIGEST`, as gcloud does: the
 * scheme is removed, `docker-reference` is the repository without tag or digest, and the JSON is
 * Python's `json.dumps(indent=2, sort_keys=True, ensure_ascii=True)` plus a newline.
 */
export function createSignaturePayload(artifactUrl: string): Result<string> {
  const url = artifactUrl.trim().replace(SCHEME, '');
  const m = TAG_AND_DIGEST.exec(url);
  if (m === null) {
    return err(problem('INVALID_ARTIFACT_URL',
      `artifact URL must be REGISTRY/PATH@sha256:DIGEST (a tag alone is not enough), got: ${artifactUrl}`));
  }
  const repository = m[1] as string;
  const digest = m[2] as string;
  // Validate the repository part with the same parser used for deploy-time images.
  const parsed = parseImageReference(`${repository}@${digest}`);
  if (!parsed.ok) return err(problem('INVALID_ARTIFACT_URL', `artifact URL ${artifactUrl}: ${parsed.error.message}`));
  return ok(pythonJsonDump({
    critical: {
      identity: { 'docker-reference': repository },
      image: { 'docker-manifest-digest': digest },
      type: GCLOUD_PAYLOAD_TYPE,
    },
  }));
}

type Json = string | { readonly [k: string]: Json };

/** `json.dumps(v, ensure_ascii=True, indent=2, separators=(',', ': '), sort_keys=True) + "\n"`. */
function pythonJsonDump(value: Json): string {
  return `${dump(value, '')}\n`;
}

function dump(value: Json, indent: string): string {
  if (typeof value === 'string') return asciiJsonString(value);
  const keys = Object.keys(value).sort();
  if (keys.length === 0) return '{}';
  const inner = `${indent}  `;
  const body = keys.map((k) => `${inner}${asciiJsonString(k)}: ${dump(value[k] as Json, inner)}`).join(',\n');
  return `{\n${body}\n${indent}}`;
}

function asciiJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code === 0x7f ? c : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Parses verified payload bytes. Only the `critical` section is read; `optional` may carry
 * anything. Returns a problem coded MALFORMED_PAYLOAD or UNKNOWN_PAYLOAD_TYPE.
 */
export function parseSignaturePayload(bytes: Uint8Array): Result<SignaturePayload> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return err(malformed('payload is not UTF-8'));
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return err(malformed('payload is not JSON'));
  }
  const critical = field(doc, 'critical');
  if (!isObject(critical)) return err(malformed('payload has no "critical" object'));
  const type = critical['type'];
  if (typeof type !== 'string') return err(malformed('payload has no critical.type'));
  if (!ACCEPTED_LOWER.has(type.toLowerCase())) {
    return err(problem('UNKNOWN_PAYLOAD_TYPE',
      `payload critical.type "${type}" is not a Binary Authorization container signature`));
  }
  const digest = field(critical['image'], 'docker-manifest-digest');
  if (typeof digest !== 'string' || !/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/.test(digest)) {
    return err(malformed('payload has no valid critical.image.docker-manifest-digest'));
  }
  const ref = field(critical['identity'], 'docker-reference');
  if (typeof ref !== 'string') return err(malformed('payload has no critical.identity.docker-reference'));
  return ok({ type, digest: digest.toLowerCase(), dockerReference: ref });
}

function malformed(message: string): Problem {
  return problem('MALFORMED_PAYLOAD', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(v: unknown, key: string): unknown {
  return isObject(v) && Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
}
