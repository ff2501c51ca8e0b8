/**
 * A real OCI registry for tests (never a mock): Debian's `docker-registry` (the CNCF distribution
 * registry) started on 127.0.0.1 with a free port, storage in a temp dir, and optionally
 * - `htpasswd`: basic auth (bcrypt line made by `htpasswd -B` from apache2-utils);
 * - `tokenAuth`: Bearer-token auth, with a token service run here in Node (ES256 JWTs whose
 *   signing certificate the registry trusts through `rootcertbundle`), as Docker Hub, GHCR and
 *   Artifact Registry do it;
 * - `tls`: https with a certificate for 127.0.0.1 signed by a throwaway CA (`caFile`).
 *
 * Images are built from scratch here, with no network: `pushTestImage` writes an OCI image layout
 * (a one-file gzipped tar layer, a config, a manifest, optionally a two-platform index) and copies
 * it in with `skopeo copy`. `.ci/run` installs docker-registry, skopeo, apache2-utils and openssl.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const execFileAsync = promisify(execFile);

export const REGISTRY_BIN = '/usr/bin/docker-registry';

const INSTALL_HINT =
  'the registry tests need Debian packages docker-registry, skopeo, apache2-utils and openssl ' +
  '(`apt-get install -y docker-registry skopeo apache2-utils openssl`; `.ci/run` installs them)';

export interface TestRegistry {
  /** `127.0.0.1:PORT`, as it appears in image references. */
  readonly host: string;
  /** `http://…` or `https://…` with `tls`. */
  readonly url: string;
  /** With `tls`: the PEM of the CA that signed the registry's certificate. */
  readonly caFile?: string;
  /** With `tokenAuth`: tokens the token service issued (scope, user), for assertions. */
  readonly tokenRequests?: { readonly user: string | undefined; readonly scopes: readonly string[] }[];
  /** Stops the registry (and token service) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  /** Basic auth with this one user. */
  readonly htpasswd?: { readonly user: string; readonly password: string };
  /**
   * Bearer-token auth. `users` may pull and push; anonymous callers may pull when
   * `anonymousPull` is true, and get a token with no access otherwise.
   */
  readonly tokenAuth?: { readonly users: Readonly<Record<string, string>>; readonly anonymousPull?: boolean };
  /** Serve https with a certificate for 127.0.0.1 (see `caFile`). */
  readonly tls?: boolean;
}

export function registryToolsInstalled(): boolean {
  return existsSync(REGISTRY_BIN) && existsSync('/usr/bin/skopeo');
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  if (!registryToolsInstalled()) throw new Error(INSTALL_HINT);
  const root = mkdtempSync(join(tmpdir(), 'tollgate-registry-'));
  let token: TokenService | undefined;
  let child: ChildProcess | undefined;
  const cleanup = async (): Promise<void> => {
    if (child !== undefined) await stopProcess(child);
    if (token !== undefined) await token.close();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const auth: string[] = [];
    if (opts.htpasswd !== undefined) {
      const line = execFileSync('htpasswd', ['-Bbn', opts.htpasswd.user, opts.htpasswd.password], { encoding: 'utf8' }).trim();
      writeFileSync(join(root, 'htpasswd'), `${line}\n`);
      auth.push('auth:', '  htpasswd:', '    realm: tollgate-test', `    path: ${join(root, 'htpasswd')}`);
    } else if (opts.tokenAuth !== undefined) {
      token = await startTokenService(root, opts.tokenAuth);
      auth.push(
        'auth:',
        '  token:',
        `    realm: ${token.realm}`,
        `    service: ${TOKEN_SERVICE}`,
        `    issuer: ${TOKEN_ISSUER}`,
        `    rootcertbundle: ${token.certFile}`,
      );
    }
    let tls: string[] = [];
    let caFile: string | undefined;
    if (opts.tls === true) {
      const made = makeServerCertificate(root);
      caFile = made.caFile;
      tls = ['  tls:', `    certificate: ${made.certFile}`, `    key: ${made.keyFile}`];
    }
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const config = [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(root, 'data')}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${host}`,
        `  secret: ${randomBytes(16).toString('hex')}`,
        ...tls,
        ...auth,
        '',
      ].join('\n');
      writeFileSync(join(root, 'config.yml'), config);
      const logFile = join(root, 'registry.log');
      const proc = spawn(REGISTRY_BIN, ['serve', join(root, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let log = '';
      proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      const url = `${opts.tls === true ? 'https' : 'http'}://${host}`;
      const ready = await waitReady(proc, host, opts.tls === true);
      if (!ready) {
        await stopProcess(proc);
        child = undefined;
        writeFileSync(logFile, log);
        if (attempt < 3 && log.includes('address already in use')) continue;
        throw new Error(`docker-registry did not start on ${host}:\n${log.slice(-2000)}`);
      }
      let stopped = false;
      return {
        host,
        url,
        ...(caFile === undefined ? {} : { caFile }),
        ...(token === undefined ? {} : { tokenRequests: token.requests }),
        async stop() {
          if (stopped) return;
          stopped = true;
          await cleanup();
        },
      };
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Images

export interface PushOptions {
  /** Credentials for a registry with auth. */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** An image index of two platform images (linux/amd64 and linux/arm64), copied with `--all`. */
  readonly multiArch?: boolean;
  /** The one file's content; random by default, so every push is a different image. */
  readonly content?: string;
}

export interface PushedImage {
  /** The digest `skopeo inspect` reports for the tag (what a registry client must find). */
  readonly digest: string;
  /** The digest of the manifest or index as written into the OCI layout here. */
  readonly builtDigest: string;
  readonly mediaType: string;
}

/** Builds a tiny image from scratch and copies it to `docker://HOST/REPO:TAG` with skopeo. */
export async function pushTestImage(host: string, repo: string, tag: string, opts: PushOptions = {}): Promise<PushedImage> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-oci-'));
  try {
    const built = writeOciLayout(dir, tag, opts.content ?? `hello from tollgate ${randomBytes(8).toString('hex')}\n`, opts.multiArch === true);
    const args = ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', '--retry-times', '0'];
    if (opts.credentials !== undefined) args.push('--dest-creds', `${opts.credentials.user}:${opts.credentials.password}`);
    else args.push('--dest-no-creds');
    if (opts.multiArch === true) args.push('--all');
    args.push(`oci:${dir}:${tag}`, `docker://${host}/${repo}:${tag}`);
    await skopeo(args);
    const digest = await inspectDigest(host, repo, tag, opts.credentials);
    return { digest, builtDigest: built.digest, mediaType: built.mediaType };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `skopeo inspect --raw` of the tag, hashed: the digest of the manifest or index the tag names. */
export async function inspectDigest(host: string, repo: string, tag: string, credentials?: { user: string; password: string }): Promise<string> {
  const args = ['inspect', '--tls-verify=false', '--retry-times', '0'];
  if (credentials !== undefined) args.push('--creds', `${credentials.user}:${credentials.password}`);
  else args.push('--no-creds');
  const ref = `docker://${host}/${repo}:${tag}`;
  const raw = await skopeo([...args, '--raw', ref]);
  const rawDigest = `sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`;
  // For a single-platform image, skopeo's own Digest field must agree.
  const single = JSON.parse(raw.stdout.toString('utf8')) as { mediaType?: string; manifests?: unknown };
  if (single.manifests === undefined) {
    const shown = (await skopeo([...args, '--format', '{{.Digest}}', ref])).stdout.toString('utf8').trim();
    if (shown !== rawDigest) throw new Error(`skopeo inspect reports ${shown} but the raw manifest hashes to ${rawDigest}`);
  }
  return rawDigest;
}

async function skopeo(args: string[]): Promise<{ stdout: Buffer }> {
  try {
    const { stdout } = await execFileAsync('skopeo', args, { encoding: 'buffer', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return { stdout };
  } catch (e) {
    const x = e as { stderr?: Buffer; message: string };
    throw new Error(`skopeo ${args.filter((a) => !a.includes(':') || a.startsWith('oci:') || a.startsWith('docker:')).join(' ')} failed: ${x.stderr?.toString() ?? x.message}`);
  }
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

/** Writes an OCI image layout into `dir` with `tag` naming the top manifest (or index). */
export function writeOciLayout(dir: string, tag: string, content: string, multiArch: boolean): { digest: string; mediaType: string } {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const blob = (mediaType: string, bytes: Buffer): Descriptor => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(dir, 'blobs', 'sha256', hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const image = (architecture: string): Descriptor => {
    const tar = tarOneFile('hello.txt', Buffer.from(`${content}${architecture}\n`));
    const layer = blob(OCI_LAYER_GZIP, gzipSync(tar));
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const config = blob(
      OCI_CONFIG,
      json({ architecture, os: 'linux', config: { Cmd: ['/hello.txt'] }, rootfs: { type: 'layers', diff_ids: [diffId] }, history: [{ created_by: 'tollgate test' }] }),
    );
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
    return { ...blob(OCI_MANIFEST, json(manifest)), platform: { architecture, os: 'linux' } };
  };
  let top: Descriptor;
  if (multiArch) {
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [image('amd64'), image('arm64')] };
    top = blob(OCI_INDEX, json(index));
  } else {
    const { platform: _platform, ...plain } = image('amd64');
    top = plain;
  }
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return { digest: top.digest, mediaType: top.mediaType };
}

/** A POSIX ustar archive holding one regular file. */
function tarOneFile(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number): void => {
    header.write(text.slice(0, length), offset, 'ascii');
  };
  const octal = (n: number, length: number): string => `${n.toString(8).padStart(length - 1, '0')}\0`;
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(data.length, 12), 124, 12);
  put(octal(0, 12), 136, 12);
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of header) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

// ---------------------------------------------------------------------------------------------
// A server that accepts connections and never answers (a hung registry).

export interface SilentServer {
  readonly host: string;
  readonly connections: () => number;
  stop(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: NetServer = createNetServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    connections: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  return freePort();
}

// ---------------------------------------------------------------------------------------------
// The token service for `tokenAuth`

const TOKEN_SERVICE = 'tollgate-test-registry';
const TOKEN_ISSUER = 'tollgate-test-token-issuer';

interface TokenService {
  readonly realm: string;
  readonly certFile: string;
  readonly requests: { user: string | undefined; scopes: string[] }[];
  close(): Promise<void>;
}

async function startTokenService(root: string, opts: NonNullable<StartRegistryOptions['tokenAuth']>): Promise<TokenService> {
  const keyFile = join(root, 'token.key');
  const certFile = join(root, 'token.crt');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tollgate-test-token-signer']);
  const key: KeyObject = createPrivateKey(readFileSync(keyFile));
  const certDer = pemToDer(readFileSync(certFile, 'utf8'));
  const requests: { user: string | undefined; scopes: string[] }[] = [];
  const server: HttpServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.local');
    let user: string | undefined;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Basic (.+)$/i.exec(header);
      const decoded = m?.[1] === undefined ? '' : Buffer.from(m[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const name = decoded.slice(0, colon);
      if (colon < 0 || opts.users[name] !== decoded.slice(colon + 1)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      user = name;
    }
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
    requests.push({ user, scopes });
    const access = scopes.flatMap((scope) => {
      const m = /^repository:([^:]+):(.+)$/.exec(scope);
      if (m === null) return [];
      const wanted = (m[2] as string).split(',');
      const allowed = user !== undefined ? wanted : opts.anonymousPull === true ? wanted.filter((a) => a === 'pull') : [];
      return [{ type: 'repository', name: m[1] as string, actions: allowed }];
    });
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: TOKEN_ISSUER, sub: user ?? '', aud: TOKEN_SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const jwtHeader = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
    const signingInput = `${b64url(JSON.stringify(jwtHeader))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${signingInput}.${b64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function makeServerCertificate(root: string): { caFile: string; certFile: string; keyFile: string } {
  const caKey = join(root, 'ca.key');
  const caFile = join(root, 'ca.crt');
  const keyFile = join(root, 'tls.key');
  const csr = join(root, 'tls.csr');
  const certFile = join(root, 'tls.crt');
  const ext = join(root, 'tls.ext');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=tollgate test registry CA']);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', ext]);
  return { caFile, certFile, keyFile };
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

// ---------------------------------------------------------------------------------------------

async function waitReady(proc: ChildProcess, host: string, tls: boolean): Promise<boolean> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    const up = await new Promise<boolean>((resolve) => {
      const [h, p] = host.split(':');
      const socket = connect(Number(p), h as string, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) {
      // Listening; for plain http also check that it answers as a registry.
      if (tls) return true;
      try {
        const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200 || res.status === 401) return true;
      } catch {
        /* not yet */
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
