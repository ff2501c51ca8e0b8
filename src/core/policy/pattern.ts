/**
 * Exempt-image patterns (`admissionWhitelistPatterns[].namePattern`, reference §2.1).
 *
 * A pattern is parsed once into one of seven kinds, with its name normalized exactly like an image
 * reference (scheme stripped, registry lower-cased, Docker Hub short names expanded), so `nginx`
 * and `docker.io/library/nginx` agree. Matching is then a comparison of normalized fields; it never
 * looks at raw strings. docs/patterns.md gives the grammar and the reasons behind each choice.
 */
import {
  DOCKER_HUB_REGISTRY,
  MAX_NAME_LENGTH,
  normalizeDigest,
  normalizeName,
  normalizeRegistry,
  parseImageReference,
  pathComponentProblem,
  precheckReferenceText,
  quoteUntrusted,
  splitNameTagDigest,
  splitRegistry,
  tagProblem,
  type ImageReference,
  type Reasoned,
} from '../image/reference.js';
import { err, ok, problem, type Result } from '../result.js';

export const EXEMPT_PATTERN_ERROR = 'INVALID_EXEMPT_PATTERN';

interface PatternBase {
  /** The pattern exactly as written in the policy. */
  readonly raw: string;
  /** The normalized pattern, e.g. `docker.io/library/nginx:1.*`; stable for logs and comparisons. */
  readonly normalized: string;
}

export type ExemptPattern =
  /** `name`, `name:*` or `name@*`: every tag and digest of one repository. */
  | (PatternBase & { readonly kind: 'repository'; readonly name: string })
  /** `name:tag`: that tag, with any digest or none. */
  | (PatternBase & { readonly kind: 'tag'; readonly name: string; readonly tag: string })
  /** `name:prefix*`: tags starting with `tagPrefix` (an untagged image never matches). */
  | (PatternBase & { readonly kind: 'tagPrefix'; readonly name: string; readonly tagPrefix: string })
  /** `name@digest`: that digest, with any tag or none. */
  | (PatternBase & { readonly kind: 'digest'; readonly name: string; readonly digest: string })
  /** `name:tag@digest`: exactly that tag and that digest. */
  | (PatternBase & { readonly kind: 'tagAndDigest'; readonly name: string; readonly tag: string; readonly digest: string })
  /** `registry/path*`: names starting with `prefix` whose remainder has no `/`; tag and digest ignored. */
  | (PatternBase & { readonly kind: 'namePrefix'; readonly prefix: string })
  /** `registry/path**`: names starting with `prefix`, any remainder; tag and digest ignored. */
  | (PatternBase & { readonly kind: 'namePrefixDeep'; readonly prefix: string });

export type ExemptPatternKind = ExemptPattern['kind'];

/** A prefix of a valid path component: the component grammar, optionally ending in a separator. */
const COMPONENT_PREFIX_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:[._]|__|-+)?$/;

export function parseExemptPattern(raw: string): Result<ExemptPattern> {
  const parsed = parsePatternText(raw);
  if (!parsed.ok) {
    const shown = typeof raw === 'string' ? ` ${quoteUntrusted(raw)}` : '';
    return err(problem(EXEMPT_PATTERN_ERROR, `invalid exempt-image pattern${shown}: ${parsed.error}`));
  }
  return parsed;
}

export function exemptPatternMatches(pattern: ExemptPattern, image: ImageReference): boolean {
  switch (pattern.kind) {
    case 'repository':
      return image.name === pattern.name;
    case 'tag':
      return image.name === pattern.name && image.tag === pattern.tag;
    case 'tagPrefix':
      return image.name === pattern.name && image.tag !== undefined && image.tag.startsWith(pattern.tagPrefix);
    case 'digest':
      return image.name === pattern.name && image.digest === pattern.digest;
    case 'tagAndDigest':
      return image.name === pattern.name && image.tag === pattern.tag && image.digest === pattern.digest;
    case 'namePrefix':
      return image.name.startsWith(pattern.prefix) && !image.name.slice(pattern.prefix.length).includes('/');
    case 'namePrefixDeep':
      return image.name.startsWith(pattern.prefix);
    default: {
      // Unreachable for a parsed pattern; an unknown kind exempts nothing (the safe answer).
      const _unknown: never = pattern;
      return false;
    }
  }
}

/** Parses both sides and matches; convenient for tests and the CLI. */
export function patternMatchesImage(raw: string, image: string): Result<boolean> {
  const pattern = parseExemptPattern(raw);
  if (!pattern.ok) return pattern;
  const ref = parseImageReference(image);
  if (!ref.ok) return ref;
  return ok(exemptPatternMatches(pattern.value, ref.value));
}

// ---------------------------------------------------------------------------------------------

function parsePatternText(raw: string): Reasoned<ExemptPattern> {
  const pre = precheckReferenceText(raw);
  if (!pre.ok) return pre;
  const text = pre.value;
  if (!text.includes('*')) return parseExactPattern(raw, text);

  // `name@*`: every version. The only wildcard accepted next to a digest.
  if (text.endsWith('@*')) {
    const base = text.slice(0, -2);
    if (base.includes('*')) return err("wildcards are only valid at the very end of the pattern");
    const parts = splitNameTagDigest(base);
    if (!parts.ok) return parts;
    if (parts.value.digest !== undefined) return err("contains more than one '@'");
    if (parts.value.tag !== undefined) {
      return err("'@*' cannot be combined with a tag; write name:tag to match that tag with any digest");
    }
    const name = normalizeName(parts.value.name);
    if (!name.ok) return name;
    return ok({ raw, kind: 'repository', name: name.value.name, normalized: name.value.name });
  }
  if (text.includes('@')) {
    return err("a wildcard cannot be combined with a digest (only the form name@* is accepted)");
  }

  const lastSlash = text.lastIndexOf('/');
  const colon = text.indexOf(':', lastSlash + 1);
  if (colon >= 0) return parseTagWildcard(raw, text.slice(0, colon), text.slice(colon + 1));
  return parseNameWildcard(raw, text);
}

/** No `*` anywhere: `name`, `name:tag`, `name@digest` or `name:tag@digest`. */
function parseExactPattern(raw: string, text: string): Reasoned<ExemptPattern> {
  const parts = splitNameTagDigest(text);
  if (!parts.ok) return parts;
  const name = normalizeName(parts.value.name);
  if (!name.ok) return name;
  const n = name.value.name;
  const { tag } = parts.value;
  if (tag !== undefined) {
    const why = tagProblem(tag);
    if (why !== undefined) return err(why);
  }
  if (parts.value.digest === undefined) {
    return tag === undefined
      ? ok({ raw, kind: 'repository', name: n, normalized: n })
      : ok({ raw, kind: 'tag', name: n, tag, normalized: `${n}:${tag}` });
  }
  const digest = normalizeDigest(parts.value.digest);
  if (!digest.ok) return digest;
  return tag === undefined
    ? ok({ raw, kind: 'digest', name: n, digest: digest.value, normalized: `${n}@${digest.value}` })
    : ok({ raw, kind: 'tagAndDigest', name: n, tag, digest: digest.value, normalized: `${n}:${tag}@${digest.value}` });
}

/** `name:*` (every version) or `name:prefix*` (tags with that prefix). */
function parseTagWildcard(raw: string, namePart: string, tagPart: string): Reasoned<ExemptPattern> {
  if (namePart.includes('*')) {
    return err("a name wildcard cannot be combined with a tag or digest (e.g. write gcr.io/p/* without ':tag')");
  }
  if (!tagPart.endsWith('*')) return err('wildcards are only valid at the very end of the pattern');
  const tagPrefix = tagPart.slice(0, -1);
  if (tagPrefix.includes('*')) {
    return err("a tag wildcard is a single trailing '*' (name:prefix* or name:*); '**' and inner '*' are not allowed");
  }
  const name = normalizeName(namePart);
  if (!name.ok) return name;
  const n = name.value.name;
  if (tagPrefix.length === 0) return ok({ raw, kind: 'repository', name: n, normalized: n });
  const why = tagProblem(tagPrefix);
  if (why !== undefined) return err(`tag prefix: ${why}`);
  return ok({ raw, kind: 'tagPrefix', name: n, tagPrefix, normalized: `${n}:${tagPrefix}*` });
}

/** `registry/path*` or `registry/path**`. */
function parseNameWildcard(raw: string, text: string): Reasoned<ExemptPattern> {
  const firstSlash = text.indexOf('/');
  if (firstSlash < 0 || text.indexOf('*') < firstSlash) {
    return err(
      'wildcards are only valid after the registry/ part (e.g. gcr.io/my-project/*); a wildcard ' +
        "in or instead of the registry, or one without a registry such as 'nginx*', is rejected",
    );
  }
  const stars = /\*+$/.exec(text);
  if (stars === null) return err('wildcards are only valid at the very end of the pattern');
  const count = stars[0].length;
  if (count > 2) return err(`'${'*'.repeat(count)}' is not a wildcard; end the pattern with '*' or '**'`);
  const prefixText = text.slice(0, -count);
  if (prefixText.includes('*')) return err('wildcards are only valid at the very end of the pattern');

  const split = splitRegistry(prefixText);
  if (!split.explicit) {
    return err(
      `wildcards are only valid after the registry/ part; ${quoteUntrusted(prefixText.split('/')[0] ?? '', 64)} is not a registry ` +
        "(a registry contains '.' or ':' or is localhost), so write e.g. docker.io/user/* for Docker Hub",
    );
  }
  const registry = normalizeRegistry(split.registry);
  if (!registry.ok) return registry;
  const path = split.path;
  if (path.startsWith('/') || path.includes('//')) return err("contains an empty path component ('//')");
  const components = path.split('/');
  const last = components.pop() ?? '';
  for (const component of components) {
    const why = pathComponentProblem(component);
    if (why !== undefined) return err(why);
  }
  if (last.length > 0 && !COMPONENT_PREFIX_RE.test(last)) {
    return /[A-Z]/.test(last) && COMPONENT_PREFIX_RE.test(last.toLowerCase())
      ? err(`repository path component ${quoteUntrusted(last, 64)} must be lower-case`)
      : err(`${quoteUntrusted(last, 64)} cannot begin a repository path component (lower-case letters and digits, separated by '.', '_', '__' or '-')`);
  }
  if (registry.value === DOCKER_HUB_REGISTRY && count === 1 && components.length === 0) {
    return err(
      'docker.io/<x>* can never match: Docker Hub names always have at least two path components ' +
        '(nginx is docker.io/library/nginx); write docker.io/library/<x>* or docker.io/<user>/<x>*',
    );
  }
  const prefix = `${registry.value}/${path}`;
  if (prefix.length > MAX_NAME_LENGTH) {
    return err(`name prefix is too long (${prefix.length} characters; at most ${MAX_NAME_LENGTH})`);
  }
  return count === 1
    ? ok({ raw, kind: 'namePrefix', prefix, normalized: `${prefix}*` })
    : ok({ raw, kind: 'namePrefixDeep', prefix, normalized: `${prefix}**` });
}
