/**
 * Registry credentials from a Docker config file (`~/.docker/config.json`, a Kubernetes
 * `.dockerconfigjson` secret, or the legacy `.dockercfg`), looked up by registry host.
 *
 * Supported per-registry entries under `auths`:
 * - `auth`: base64 of `user:password` (what `docker login` writes);
 * - `username` + `password` (podman, hand-written files);
 * - `identitytoken`: an OAuth2 refresh token, exchanged at the registry's token realm;
 * - `registrytoken`: a bearer token sent to the registry as is.
 *
 * Credential helpers (`credsStore`, `credHelpers`) are not supported: Tollgate runs no external
 * programs to fetch secrets. Registries they cover are accessed anonymously unless `auths` also
 * has an inline entry; each such registry is listed in `warnings` so the server can log it.
 *
 * Keys are normalized like image references: scheme and path dropped, host lower-cased, and
 * Docker Hub's `https://index.docker.io/v1/` (and `index.docker.io`, `registry-1.docker.io`) mapped
 * to `docker.io`. Startup configuration: problems are thrown as Errors with clear messages, and no
 * message ever contains a secret.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { normalizeRegistry } from '../../core/image/reference.js';
import { isJsonObject } from '../../core/json.js';

/** What Tollgate may present to one registry. At least one way of authenticating is set. */
export interface RegistryAuth {
  readonly username?: string;
  readonly password?: string;
  /** OAuth2 refresh token (`identitytoken`): exchanged for an access token at the token realm. */
  readonly identityToken?: string;
  /** A bearer token for the registry itself (`registrytoken`). */
  readonly registryToken?: string;
}

export interface RegistryCredentials {
  /** Credentials for `registry` (`host[:port]` as in ImageReference.registry), or undefined. */
  lookup(registry: string): RegistryAuth | undefined;
  /** The registries that have credentials, normalized, sorted. */
  readonly registries: readonly string[];
  /** Things in the file that were ignored (credential helpers), one sentence each. */
  readonly warnings: readonly string[];
}

/** No credentials: every registry is accessed anonymously. */
export const NO_CREDENTIALS: RegistryCredentials = staticCredentials({});

/** Credentials from a map of registry (any spelling a Docker config key may have) → auth. */
export function staticCredentials(entries: Readonly<Record<string, RegistryAuth>>, warnings: readonly string[] = []): RegistryCredentials {
  const map = new Map<string, RegistryAuth>();
  for (const [key, auth] of Object.entries(entries)) {
    const host = normalizeCredentialKey(key);
    if (host === undefined) throw new Error(`registry credentials: ${JSON.stringify(key)} is not a registry host`);
    map.set(host, auth);
  }
  return {
    lookup(registry: string): RegistryAuth | undefined {
      const host = normalizeCredentialKey(registry);
      return host === undefined ? undefined : map.get(host);
    },
    registries: [...map.keys()].sort(),
    warnings: [...warnings],
  };
}

/**
 * `https://index.docker.io/v1/` → `docker.io`, `http://Reg.Example:5000/v2/` → `reg.example:5000`,
 * `ghcr.io` → `ghcr.io`. Undefined when the key is not a registry host at all.
 */
export function normalizeCredentialKey(key: string): string | undefined {
  let text = key.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text);
  if (scheme !== null) text = text.slice(scheme[0].length);
  const slash = text.indexOf('/');
  if (slash >= 0) text = text.slice(0, slash);
  if (text.length === 0) return undefined;
  const normalized = normalizeRegistry(text);
  return normalized.ok ? normalized.value : undefined;
}

/**
 * Reads a Docker config file. `file` may also be a directory (as `$DOCKER_CONFIG` is): its
 * `config.json` is read. Throws an Error saying what is wrong (never echoing a secret).
 */
export async function loadDockerConfig(file: string): Promise<RegistryCredentials> {
  let path = file;
  let text: string;
  try {
    if ((await stat(path)).isDirectory()) path = join(path, 'config.json');
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new Error(`registry config ${path}: cannot read it (${why})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`registry config ${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseDockerConfig(json, path);
}

/** The parsing half of loadDockerConfig, for a config already read (`source` names it in errors). */
export function parseDockerConfig(json: unknown, source: string): RegistryCredentials {
  if (!isJsonObject(json)) throw new Error(`registry config ${source}: expected a JSON object with an "auths" map`);
  const warnings: string[] = [];
  let auths: Record<string, unknown>;
  if ('auths' in json) {
    if (!isJsonObject(json['auths'])) throw new Error(`registry config ${source}: "auths" must be an object of registry → credentials`);
    auths = json['auths'];
  } else if (!('credsStore' in json) && !('credHelpers' in json) && Object.values(json).every(isJsonObject)) {
    // The legacy ~/.dockercfg: registries at the top level.
    auths = json;
  } else {
    auths = {};
  }

  const entries: Record<string, RegistryAuth> = {};
  for (const [key, raw] of Object.entries(auths)) {
    const host = normalizeCredentialKey(key);
    const where = `registry config ${source}: auths[${JSON.stringify(key)}]`;
    if (host === undefined) throw new Error(`${where}: the key is not a registry host (expected host[:port] or a URL)`);
    if (!isJsonObject(raw)) throw new Error(`${where}: expected an object`);
    const auth = parseEntry(raw, where);
    if (auth === undefined) continue; // `{}`: a placeholder left by `docker login` with a credential store.
    entries[host] = auth;
  }

  if (typeof json['credsStore'] === 'string' && json['credsStore'] !== '') {
    warnings.push(
      `registry config ${source}: "credsStore": ${JSON.stringify(json['credsStore'])} is not supported (Tollgate runs no credential helpers); ` +
        'registries without an inline "auths" entry are accessed anonymously',
    );
  }
  if (isJsonObject(json['credHelpers'])) {
    for (const [key, helper] of Object.entries(json['credHelpers'])) {
      const host = normalizeCredentialKey(key) ?? key;
      if (entries[host] !== undefined) continue;
      warnings.push(
        `registry config ${source}: credHelpers[${JSON.stringify(key)}] (docker-credential-${String(helper)}) is not supported; ` +
          `${host} is accessed anonymously`,
      );
    }
  }
  return staticCredentials(entries, warnings);
}

function parseEntry(raw: Record<string, unknown>, where: string): RegistryAuth | undefined {
  const field = (name: string): string | undefined => {
    const v = raw[name];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new Error(`${where}.${name}: expected a string`);
    return v;
  };
  let username = field('username');
  let password = field('password');
  const auth = field('auth');
  if (auth !== undefined) {
    const compact = auth.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw new Error(`${where}.auth: not base64`);
    const decoded = Buffer.from(compact, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new Error(`${where}.auth: the decoded value is not "user:password"`);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const identityToken = field('identitytoken');
  const registryToken = field('registrytoken');
  if (password !== undefined && (username === undefined || username === '')) {
    throw new Error(`${where}: a password without a user name`);
  }
  const out: { -readonly [K in keyof RegistryAuth]: RegistryAuth[K] } = {};
  if (username !== undefined && username !== '') out.username = username;
  if (password !== undefined) out.password = password;
  if (identityToken !== undefined) out.identityToken = identityToken;
  if (registryToken !== undefined) out.registryToken = registryToken;
  if (out.password === undefined && out.identityToken === undefined && out.registryToken === undefined) return undefined;
  return out;
}

