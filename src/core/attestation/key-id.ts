/**
 * Key-id rules: which signature `publicKeyId` selects which attestor key, and which ids a PKIX key
 * may carry. Used both offline and by the server, so the two can never disagree.
 */

/**
 * A Cloud KMS key version referenced the way gcloud writes it: the self link without its scheme,
 * `//HOST/v1/projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`. HOST is whatever
 * endpoint gcloud talked to (`cloudkms.googleapis.com`, `127.0.0.1:7420`, …).
 */
const KMS_KEY_VERSION_ID =
  /^\/\/([^/?#\s]+)\/v1\/(projects\/[^/?#\s]+\/locations\/[^/?#\s]+\/keyRings\/[^/?#\s]+\/cryptoKeys\/[^/?#\s]+\/cryptoKeyVersions\/[0-9]+)$/;

/** The host-independent part of a KMS-style key id (`projects/…/cryptoKeyVersions/N`), if it is one. */
export function kmsKeyVersionName(id: string): string | undefined {
  if (typeof id !== 'string') return undefined;
  const m = KMS_KEY_VERSION_ID.exec(id);
  if (m !== null) return m[2];
  // The bare resource name: Google's own tutorial passes it as --public-key-id-override and as
  // --public-key-id (the output of `gcloud kms keys versions list --format='value(name)'`).
  return BARE_KMS_KEY_VERSION.test(id) ? id : undefined;
}

const BARE_KMS_KEY_VERSION = /^projects\/[^/?#\s:]+\/locations\/[^/?#\s]+\/keyRings\/[^/?#\s]+\/cryptoKeys\/[^/?#\s]+\/cryptoKeyVersions\/[0-9]+$/;

/**
 * Does a signature's `publicKeyId` select the attestor key with id `attestorKeyId`?
 * Exact string equality, except that two ids naming the same Cloud KMS key version match whether
 * they are written `//HOST/v1/projects/…/cryptoKeyVersions/N` (any HOST: gcloud puts its endpoint
 * there) or as the bare `projects/…/cryptoKeyVersions/N`. Both sides must name a KMS key version
 * for that relaxation. The id only selects a key; the signature must still verify under it.
 */
export function keyIdsMatch(attestorKeyId: string, signatureKeyId: string): boolean {
  if (typeof attestorKeyId !== 'string' || typeof signatureKeyId !== 'string') return false;
  if (attestorKeyId === signatureKeyId) return true;
  const a = kmsKeyVersionName(attestorKeyId);
  const b = kmsKeyVersionName(signatureKeyId);
  return a !== undefined && b !== undefined && a === b;
}

// RFC 3986 building blocks.
const UNRESERVED = 'A-Za-z0-9\\-._~';
const SUB_DELIMS = "!$&'()*+,;=";
const PCT = '%[0-9A-Fa-f]{2}';
const PCHAR = `(?:[${UNRESERVED}${SUB_DELIMS}:@]|${PCT})`;
const QUERY_OR_FRAGMENT = `(?:${PCHAR}|[/?])*`;
const SEGMENT = `${PCHAR}*`;
const SEGMENT_NZ = `${PCHAR}+`;
const PATH_ABEMPTY = `(?:/${SEGMENT})*`;
const PATH_ABSOLUTE = `/(?:${SEGMENT_NZ}(?:/${SEGMENT})*)?`;
const PATH_ROOTLESS = `${SEGMENT_NZ}(?:/${SEGMENT})*`;
const USERINFO = `(?:[${UNRESERVED}${SUB_DELIMS}:]|${PCT})*`;
const DEC_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${DEC_OCTET}\\.${DEC_OCTET}\\.${DEC_OCTET}\\.${DEC_OCTET}`;
const H16 = '[0-9A-Fa-f]{1,4}';
const LS32 = `(?:${H16}:${H16}|${IPV4})`;
const IPV6 = [
  `(?:${H16}:){6}${LS32}`,
  `::(?:${H16}:){5}${LS32}`,
  `(?:${H16})?::(?:${H16}:){4}${LS32}`,
  `(?:(?:${H16}:){0,1}${H16})?::(?:${H16}:){3}${LS32}`,
  `(?:(?:${H16}:){0,2}${H16})?::(?:${H16}:){2}${LS32}`,
  `(?:(?:${H16}:){0,3}${H16})?::${H16}:${LS32}`,
  `(?:(?:${H16}:){0,4}${H16})?::${LS32}`,
  `(?:(?:${H16}:){0,5}${H16})?::${H16}`,
  `(?:(?:${H16}:){0,6}${H16})?::`,
]
  .map((alt) => `(?:${alt})`)
  .join('|');
const IPVFUTURE = `v[0-9A-Fa-f]+\\.[${UNRESERVED}${SUB_DELIMS}:]+`;
const IP_LITERAL = `\\[(?:${IPV6}|${IPVFUTURE})\\]`;
const REG_NAME = `(?:[${UNRESERVED}${SUB_DELIMS}]|${PCT})*`;
const HOST = `(?:${IP_LITERAL}|${REG_NAME})`;
const AUTHORITY = `(?:${USERINFO}@)?${HOST}(?::[0-9]*)?`;
const HIER_PART = `(?://${AUTHORITY}${PATH_ABEMPTY}|${PATH_ABSOLUTE}|${PATH_ROOTLESS}|)`;
const SCHEME = '[A-Za-z][A-Za-z0-9+\\-.]*';

const ABSOLUTE_URI = new RegExp(`^${SCHEME}:${HIER_PART}(?:\\?${QUERY_OR_FRAGMENT})?(?:#${QUERY_OR_FRAGMENT})?$`);
/** The network-path reference gcloud uses for KMS keys: `//host/v1/…` with a non-empty host. */
const KMS_NETWORK_PATH = new RegExp(`^//(?:${USERINFO}@)?(?=[^/:])${HOST}(?::[0-9]*)?/v1/${SEGMENT_NZ}(?:/${SEGMENT})*$`);

/** Longest id accepted (the API has no documented limit; this only bounds regex work). */
const MAX_KEY_ID_LENGTH = 2048;

/**
 * A plain id with no ':' (JWT's "StringOrURI" rule, which Kritis applies): Google's own tutorials
 * pass ids such as `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/1`.
 */
const PLAIN_ID = /^(?!\/\/)[\x21-\x39\x3b-\x7e]+$/;

/**
 * Is `id` acceptable as a PKIX key id? An RFC 3986 URI (`scheme:…`, e.g. `ni:///sha-256;…`), the
 * `//host/v1/…` KMS key-version form gcloud sends, or a printable string without ':' or spaces.
 */
export function isValidPkixKeyId(id: string): boolean {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_KEY_ID_LENGTH) return false;
  return ABSOLUTE_URI.test(id) || KMS_NETWORK_PATH.test(id) || PLAIN_ID.test(id);
}
