/**
 * Container image references: `[scheme://][registry/]path[:tag][@digest]`, parsed and normalized the
 * way the distribution reference grammar and Docker's short-name rules define them, so two spellings
 * of the same image (`nginx`, `docker.io/library/nginx`, `https://index.docker.io/library/nginx`)
 * compare equal on `name`.
 *
 * The input is attacker-controlled (it comes from pod specs and policies): every failure is returned
 * as a Problem with code `INVALID_IMAGE_REFERENCE` and a message saying why; nothing here throws.
 * See docs/patterns.md for the normalization rules.
 */
import { err, ok, problem, type Problem, type Result } from '../result.js';

export interface ImageReference {
  /** Lower-case `host[:port]`; `docker.io` for Docker Hub. */
  readonly registry: string;
  /** Repository path, e.g. `library/nginx`, `my-project/app`. */
  readonly repository: string;
  /** `${registry}/${repository}`. */
  readonly name: string;
  readonly tag?: string;
  /** `algorithm:encoded`; hex encodings of known algorithms are lower-cased. */
  readonly digest?: string;
}

export const IMAGE_REFERENCE_ERROR = 'INVALID_IMAGE_REFERENCE';

/** Longest normalized `name` accepted (the distribution spec's limit). */
export const MAX_NAME_LENGTH = 255;
/** Longest raw input looked at; anything longer is rejected before it is scanned. */
export const MAX_INPUT_LENGTH = 1024;

export const DOCKER_HUB_REGISTRY = 'docker.io';
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. */
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** One path component: lower-case alphanumerics joined by `.`, `_`, `__` or runs of `-`. */
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT_RE = /^(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$/;
const IPV6_RE = /^\[[0-9a-f:]+\]$/;
const PORT_RE = /^[0-9]{1,5}$/;
const DIGEST_ALGORITHM_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
const DIGEST_ENCODED_RE = /^[a-zA-Z0-9=_-]+$/;
const SCHEME_RE = /^https?:\/\//i;
const OTHER_SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** Hex lengths of the OCI-registered algorithms; their encodings are hex and are lower-cased. */
const HEX_DIGEST_LENGTHS: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha512', 128],
]);
const SHA256_DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

// ---------------------------------------------------------------------------------------------
// Public API

export function parseImageReference(input: string): Result<ImageReference> {
  const parsed = parseReferenceText(input);
  if (!parsed.ok) return err(referenceProblem(input, parsed.error));
  return parsed;
}

/** `name[:tag][@digest]`; parsing the output gives back an equal reference. */
export function formatImageReference(ref: ImageReference): string {
  let out = ref.name;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** True for `sha256:` followed by exactly 64 lower-case hex digits. */
export function isSha256Digest(digest: string | undefined): boolean {
  return typeof digest === 'string' && SHA256_DIGEST_RE.test(digest);
}

// ---------------------------------------------------------------------------------------------
// Building blocks shared with the exempt-pattern parser (src/core/policy/pattern.ts). They return
// a bare reason string on failure; the public functions turn it into a Problem.

export type Reasoned<T> = Result<T, string>;

/**
 * Checks that apply to every raw reference or pattern before it is split: type, emptiness, length,
 * control characters, whitespace, non-ASCII. Then strips an `http://` / `https://` prefix (any
 * case) and rejects other URL schemes. Returns the text that remains.
 */
export function precheckReferenceText(input: unknown): Reasoned<string> {
  if (typeof input !== 'string') return err('is not a string');
  if (input.length === 0) return err('is empty');
  if (input.length > MAX_INPUT_LENGTH) {
    return err(`is too long (${input.length} characters; at most ${MAX_INPUT_LENGTH} are accepted)`);
  }
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      return err(`contains a control character (${codePoint(c)}) at offset ${i}`);
    }
  }
  const ws = /\s/u.exec(input);
  if (ws !== null) return err(`contains whitespace (${codePoint(ws[0].charCodeAt(0))}) at offset ${ws.index}`);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c > 0x7e) return err(`contains a non-ASCII character (${codePoint(c)}) at offset ${i}`);
  }
  let text = input;
  const scheme = SCHEME_RE.exec(text);
  if (scheme !== null) {
    text = text.slice(scheme[0].length);
    if (text.length === 0) return err(`is empty after the ${quoteUntrusted(scheme[0], 64)} prefix`);
  } else if (OTHER_SCHEME_RE.test(text)) {
    return err('has an unsupported URL scheme (only http:// and https:// prefixes are stripped)');
  }
  return ok(text);
}

/**
 * Splits `name` into registry and path by Docker's rule: the part before the first `/` is a
 * registry when it contains `.` or `:` or is `localhost` (any case); otherwise the whole name is a
 * Docker Hub path. Returns the normalized registry and the (unvalidated) path text.
 */
export function splitRegistry(name: string): { readonly registry: string; readonly path: string; readonly explicit: boolean } {
  const slash = name.indexOf('/');
  if (slash > 0) {
    const first = name.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first.toLowerCase() === 'localhost') {
      return { registry: first, path: name.slice(slash + 1), explicit: true };
    }
  }
  return { registry: DOCKER_HUB_REGISTRY, path: name, explicit: false };
}

/** Validates and lower-cases `host[:port]`; maps Docker Hub's aliases to `docker.io`. */
export function normalizeRegistry(raw: string): Reasoned<string> {
  const lower = raw.toLowerCase();
  let host = lower;
  let port: string | undefined;
  if (lower.startsWith('[')) {
    const close = lower.indexOf(']');
    if (close < 0) return err(`registry ${quoteUntrusted(raw, 64)} has an unterminated IPv6 address`);
    host = lower.slice(0, close + 1);
    const rest = lower.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(':')) return err(`registry ${quoteUntrusted(raw, 64)} has unexpected text after the IPv6 address`);
      port = rest.slice(1);
    }
    if (!IPV6_RE.test(host) || !host.slice(1, -1).includes(':')) {
      return err(`registry ${quoteUntrusted(raw, 64)} has an invalid IPv6 address (expected [hex:hex:...])`);
    }
  } else {
    const colon = lower.indexOf(':');
    if (colon >= 0) {
      host = lower.slice(0, colon);
      port = lower.slice(colon + 1);
    }
    if (host.length === 0) return err(`registry ${quoteUntrusted(raw, 64)} has an empty host`);
    for (const part of host.split('.')) {
      if (!DOMAIN_COMPONENT_RE.test(part)) {
        return err(
          `registry host ${quoteUntrusted(host, 64)} is invalid: each dot-separated label must be letters, digits and inner hyphens`,
        );
      }
    }
  }
  if (port !== undefined) {
    if (port.length === 0) return err(`registry ${quoteUntrusted(raw, 64)} has an empty port after ':'`);
    if (!PORT_RE.test(port) || Number(port) < 1 || Number(port) > 65535) {
      return err(`registry ${quoteUntrusted(raw, 64)} has an invalid port ${quoteUntrusted(port, 64)} (expected 1-65535)`);
    }
  }
  const normalized = port === undefined ? host : `${host}:${port}`;
  return ok(DOCKER_HUB_ALIASES.has(normalized) ? DOCKER_HUB_REGISTRY : normalized);
}

/** Why `component` is not a valid repository path component, or undefined when it is. */
export function pathComponentProblem(component: string): string | undefined {
  if (PATH_COMPONENT_RE.test(component)) return undefined;
  if (/[A-Z]/.test(component) && PATH_COMPONENT_RE.test(component.toLowerCase())) {
    return `repository path component ${quoteUntrusted(component, 64)} must be lower-case`;
  }
  return (
    `repository path component ${quoteUntrusted(component, 64)} is invalid: use lower-case letters and digits ` +
    `separated by '.', '_', '__' or '-'`
  );
}

/** Validates a repository path (`a/b/c`); adds Docker Hub's implicit `library/`. */
export function normalizeRepositoryPath(registry: string, path: string): Reasoned<string> {
  if (path.length === 0) return err('has no repository path');
  if (path.endsWith('/')) return err("ends with '/'");
  if (path.startsWith('/') || path.includes('//')) return err("contains an empty path component ('//')");
  for (const component of path.split('/')) {
    const why = pathComponentProblem(component);
    if (why !== undefined) return err(why);
  }
  return ok(registry === DOCKER_HUB_REGISTRY && !path.includes('/') ? `library/${path}` : path);
}

export function tagProblem(tag: string): string | undefined {
  if (tag.length === 0) return "has an empty tag after ':'";
  if (tag.length > 128) return `tag is too long (${tag.length} characters; at most 128)`;
  if (!TAG_RE.test(tag)) {
    return `tag ${quoteUntrusted(tag, 64)} is invalid: tags use [A-Za-z0-9_.-] and must not start with '.' or '-'`;
  }
  return undefined;
}

/** Validates `algorithm:encoded` per the OCI grammar; lower-cases hex for sha256/sha512. */
export function normalizeDigest(digest: string): Reasoned<string> {
  if (digest.length === 0) return err("has an empty digest after '@'");
  const colon = digest.indexOf(':');
  if (colon < 0) return err(`digest ${quoteUntrusted(digest, 64)} must have the form algorithm:hex, e.g. sha256:<64 hex digits>`);
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  if (algorithm.length === 0) return err(`digest ${quoteUntrusted(digest, 64)} has an empty algorithm`);
  if (!DIGEST_ALGORITHM_RE.test(algorithm)) {
    return /[A-Z]/.test(algorithm) && DIGEST_ALGORITHM_RE.test(algorithm.toLowerCase())
      ? err(`digest algorithm ${quoteUntrusted(algorithm, 64)} must be lower-case`)
      : err(`digest algorithm ${quoteUntrusted(algorithm, 64)} is invalid`);
  }
  if (encoded.length === 0) return err(`digest ${quoteUntrusted(digest, 64)} has an empty encoded value`);
  const hexLength = HEX_DIGEST_LENGTHS.get(algorithm);
  if (hexLength !== undefined) {
    if (!/^[0-9a-fA-F]+$/.test(encoded)) return err(`${algorithm} digest must be hex digits`);
    if (encoded.length !== hexLength) {
      return err(`${algorithm} digest must be ${hexLength} hex digits, got ${encoded.length}`);
    }
    return ok(`${algorithm}:${encoded.toLowerCase()}`);
  }
  if (!DIGEST_ENCODED_RE.test(encoded)) return err(`digest ${quoteUntrusted(digest, 64)} has an invalid encoded value`);
  return ok(digest);
}

/**
 * Splits `name[:tag][@digest]` (scheme already stripped). The tag separator is the last `:` after
 * the last `/`, so a registry port is never mistaken for a tag.
 */
export function splitNameTagDigest(text: string): Reasoned<{ name: string; tag?: string; digest?: string }> {
  const at = text.indexOf('@');
  let rest = text;
  let digest: string | undefined;
  if (at >= 0) {
    if (text.indexOf('@', at + 1) >= 0) return err("contains more than one '@'");
    rest = text.slice(0, at);
    digest = text.slice(at + 1);
  }
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  let name = rest;
  let tag: string | undefined;
  if (colon >= 0) {
    name = rest.slice(0, colon);
    tag = rest.slice(colon + 1);
  }
  const out: { name: string; tag?: string; digest?: string } = { name };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return ok(out);
}

/** Validates and normalizes a name with no tag, digest or scheme into registry/repository/name. */
export function normalizeName(rawName: string): Reasoned<{ registry: string; repository: string; name: string }> {
  if (rawName.length === 0) return err('has no repository name');
  if (rawName.startsWith('/')) return err("must not start with '/'");
  if (rawName.endsWith('/')) return err("ends with '/'");
  const split = splitRegistry(rawName);
  const registry = normalizeRegistry(split.registry);
  if (!registry.ok) return registry;
  const repository = normalizeRepositoryPath(registry.value, split.path);
  if (!repository.ok) return repository;
  const name = `${registry.value}/${repository.value}`;
  if (name.length > MAX_NAME_LENGTH) {
    return err(`name is too long (${name.length} characters; at most ${MAX_NAME_LENGTH})`);
  }
  return ok({ registry: registry.value, repository: repository.value, name });
}

/** A short, printable-ASCII-only quotation of untrusted text for error messages. */
export function quoteUntrusted(text: string, max = 80): string {
  let out = '';
  for (const ch of text.slice(0, max)) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c <= 0x7e) out += ch;
    else out += `\\u{${c.toString(16)}}`;
  }
  return `"${out}"${text.length > max ? '...' : ''}`;
}

// ---------------------------------------------------------------------------------------------

function parseReferenceText(input: string): Reasoned<ImageReference> {
  const pre = precheckReferenceText(input);
  if (!pre.ok) return pre;
  const text = pre.value;
  if (text.includes('*')) {
    return err("contains a wildcard '*'; wildcards are only valid in exempt-image patterns");
  }
  const parts = splitNameTagDigest(text);
  if (!parts.ok) return parts;
  const { name: rawName, tag: rawTag, digest: rawDigest } = parts.value;
  const name = normalizeName(rawName);
  if (!name.ok) return name;
  if (rawTag !== undefined) {
    const why = tagProblem(rawTag);
    if (why !== undefined) return err(why);
  }
  let digest: string | undefined;
  if (rawDigest !== undefined) {
    const d = normalizeDigest(rawDigest);
    if (!d.ok) return d;
    digest = d.value;
  }
  const ref: { -readonly [K in keyof ImageReference]: ImageReference[K] } = { ...name.value };
  if (rawTag !== undefined) ref.tag = rawTag;
  if (digest !== undefined) ref.digest = digest;
  return ok(ref);
}

function referenceProblem(input: unknown, reason: string): Problem {
  const shown = typeof input === 'string' ? ` ${quoteUntrusted(input)}` : '';
  return problem(IMAGE_REFERENCE_ERROR, `invalid image reference${shown}: ${reason}`);
}

function codePoint(c: number): string {
  return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}
