/**
 * The webhook's own certificates, for when none are given: a CA and a serving certificate (ECDSA
 * P-256, made with WebCrypto and @peculiar/x509), generated once into `DIR/webhook/` and reused on
 * later starts, so the `caBundle` a cluster was given stays valid:
 *
 *   ca.crt   the CA (what a ValidatingWebhookConfiguration's caBundle holds)
 *   ca.key   its key (0600), kept so a serving certificate can be reissued for new names or
 *            before it expires without changing ca.crt
 *   tls.crt  the serving certificate, for localhost, 127.0.0.1, ::1, the in-cluster service
 *            names and any extra names
 *   tls.key  its key (0600)
 */
import { webcrypto, X509Certificate as NodeX509, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface WebhookCertificates {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** The Service `tollgate k8s manifests` creates, in its default namespace. */
export const WEBHOOK_SERVICE = 'tollgate-webhook';
export const DEFAULT_WEBHOOK_NAMESPACE = 'tollgate-system';

/** The names a serving certificate for a Service `name` in `namespace` needs. */
export function serviceNames(namespace: string, name = WEBHOOK_SERVICE): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
}

export const DEFAULT_CERT_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1', ...serviceNames(DEFAULT_WEBHOOK_NAMESPACE)];

const CA_YEARS = 10;
const SERVING_DAYS = 825;
/** A serving certificate closer than this to its end is reissued at start. */
const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 86_400_000;

const EC: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/**
 * Returns the certificates in `dir/webhook/`, generating what is missing: a new CA only when
 * there is none, a new serving certificate when there is none, it misses one of the names, it is
 * about to expire, or it was not issued by the CA.
 */
export async function ensureWebhookCertificates(dir: string, extraNames: readonly string[] = []): Promise<WebhookCertificates> {
  const folder = join(dir, 'webhook');
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const files = { caCrt: join(folder, 'ca.crt'), caKey: join(folder, 'ca.key'), crt: join(folder, 'tls.crt'), key: join(folder, 'tls.key') };
  const names = [...new Set([...DEFAULT_CERT_NAMES, ...extraNames.map((n) => n.trim()).filter((n) => n !== '')])];
  const now = new Date();

  let ca: { certPem: string; keyPem: string } | undefined;
  if (existsSync(files.caCrt) && existsSync(files.caKey)) {
    ca = { certPem: readFileSync(files.caCrt, 'utf8'), keyPem: readFileSync(files.caKey, 'utf8') };
  }
  if (existsSync(files.crt) && existsSync(files.key) && ca !== undefined) {
    const certPem = readFileSync(files.crt, 'utf8');
    const keyPem = readFileSync(files.key, 'utf8');
    if (servingCertificateFits(certPem, keyPem, ca.certPem, names, now)) return { caPem: ca.certPem, certPem, keyPem };
  }

  const x509 = await loadX509();
  if (ca === undefined) {
    ca = await createCa(x509, now);
    writeAtomic(files.caKey, ca.keyPem, 0o600);
    writeAtomic(files.caCrt, ca.certPem, 0o644);
  }
  const serving = await createServing(x509, ca, names, now);
  writeAtomic(files.key, serving.keyPem, 0o600);
  writeAtomic(files.crt, serving.certPem, 0o644);
  return { caPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem };
}

function servingCertificateFits(certPem: string, keyPem: string, caPem: string, names: readonly string[], now: Date): boolean {
  try {
    const cert = new NodeX509(certPem);
    const ca = new NodeX509(caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return false;
    if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return false;
    return names.every((n) => (isIP(n) === 0 ? cert.checkHost(n, { wildcards: false }) === n : cert.checkIP(n) !== undefined));
  } catch {
    return false;
  }
}

type X509Module = typeof import('@peculiar/x509');

let x509Module: Promise<X509Module> | undefined;

/**
 * @peculiar/x509 resolves its algorithms through tsyringe, which insists on a Reflect metadata
 * API being present. It only needs three functions, so a minimal one is installed (when none is)
 * before the library is loaded; it is loaded lazily, so a server whose certificates exist never
 * loads it at all.
 */
function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    installReflectMetadata();
    const mod = await import('@peculiar/x509');
    mod.cryptoProvider.set(webcrypto as unknown as Crypto);
    return mod;
  })();
  return x509Module;
}

interface ReflectMetadata {
  getMetadata?: unknown;
  defineMetadata?: unknown;
  getOwnMetadata?: unknown;
}

function installReflectMetadata(): void {
  const r = Reflect as unknown as ReflectMetadata;
  if (typeof r.getMetadata === 'function') return;
  const store = new WeakMap<object, Map<unknown, unknown>>();
  const own = (key: unknown, target: object) => store.get(target)?.get(key);
  Object.assign(Reflect, {
    defineMetadata(key: unknown, value: unknown, target: object) {
      let m = store.get(target);
      if (m === undefined) store.set(target, (m = new Map()));
      m.set(key, value);
    },
    getOwnMetadata: own,
    getMetadata(key: unknown, target: object) {
      for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
        const v = own(key, o);
        if (v !== undefined) return v;
      }
      return undefined;
    },
  });
}

async function createCa(x509: X509Module, now: Date): Promise<{ certPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=Tollgate webhook CA, O=Tollgate',
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + CA_YEARS * 365 * DAY_MS),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await pkcs8Pem(keys.privateKey) };
}

async function createServing(x509: X509Module, ca: { certPem: string; keyPem: string }, names: readonly string[], now: Date): Promise<{ certPem: string; keyPem: string }> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.keyPem), EC, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const caEnd = caCert.notAfter.getTime();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names.find((n) => isIP(n) === 0 && n !== 'localhost') ?? 'tollgate-webhook'}, O=Tollgate`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(Math.min(caEnd, now.getTime() + SERVING_DAYS * DAY_MS)),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) === 0 ? { type: 'dns' as const, value: n } : { type: 'ip' as const, value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await pkcs8Pem(keys.privateKey) };
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** A positive 128-bit serial number (the high bit cleared so DER keeps it positive). */
function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] as number) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
