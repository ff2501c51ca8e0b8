/**
 * The webhook's own HTTPS listener (`tollgate serve --webhook-listen HOST:PORT`). Admission
 * webhooks are always TLS; the certificate is the given pair (`--webhook-cert/--webhook-key`,
 * e.g. the Secret `tollgate k8s manifests` makes, mounted into the pod), or one generated once into
 * `DATA_DIR/webhook/`. Like other admission webhooks it is open TLS; with `--webhook-client-ca`
 * it also demands the API server's client certificate, signed by that CA, for every request but
 * `GET /healthz` (the liveness probe's).
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config.js';
import type { Logger } from '../log.js';
import type { DecisionService } from '../services/decision-service.js';
import { createWebhookHandler, type WebhookHandlerOptions } from './handler.js';
import { ensureWebhookCertificates } from './tls.js';

export interface WebhookListenerOptions {
  /** `HOST:PORT` (port 0 picks a free one). */
  readonly listen: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** CA bundle for the API server's client certificate; set, a client without one is refused. */
  readonly clientCaFile?: string;
  /** Data folder: generated certificates go to `DATA_DIR/webhook/`. */
  readonly dataDir: string;
  readonly decisions: DecisionService;
  readonly logger: Logger;
  /** Review deadline in ms (default 9 000); the API server's `?timeout=` lowers it. */
  readonly timeoutMs?: number;
  /** More names for a generated serving certificate. */
  readonly extraNames?: readonly string[];
  readonly maxBodyBytes?: number;
  /** Observes each request (metrics). */
  readonly observe?: WebhookHandlerOptions['observe'];
}

export interface WebhookListener {
  /** `https://HOST:PORT` (a wildcard listen address shows as 127.0.0.1). */
  readonly url: string;
  /**
   * The PEM clients trust: the generated CA, or, with a given pair, the given certificate file
   * (its chain), which a client may pin.
   */
  readonly caPem: string;
  /** Whether the certificate was generated into DATA_DIR/webhook/ (no pair given). */
  readonly generated: boolean;
  close(): Promise<void>;
}

/** How often a given certificate pair is checked for a renewal (cert-manager, a rotated Secret). */
const RELOAD_CHECK_MS = 60_000;

export async function startWebhookListener(opts: WebhookListenerOptions): Promise<WebhookListener> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseListen(opts.listen));
  } catch {
    throw new Error(`--webhook-listen must be HOST:PORT, not ${opts.listen}`);
  }
  if ((opts.certFile === undefined) !== (opts.keyFile === undefined)) throw new Error('--webhook-cert and --webhook-key go together');

  let pair: { cert: string; key: string };
  let caPem: string;
  const generated = opts.certFile === undefined;
  if (opts.certFile !== undefined && opts.keyFile !== undefined) {
    pair = { cert: readPem(opts.certFile, 'webhook certificate'), key: readPem(opts.keyFile, 'webhook key') };
    caPem = pair.cert;
  } else {
    const local = host === '0.0.0.0' || host === '::' ? [] : [host];
    const certs = await ensureWebhookCertificates(opts.dataDir, [...local, ...(opts.extraNames ?? [])]);
    pair = { cert: certs.certPem, key: certs.keyPem };
    caPem = certs.caPem;
  }
  const clientCa = opts.clientCaFile === undefined ? undefined : readPem(opts.clientCaFile, 'webhook client CA');
  const tlsOptions = (p: { cert: string; key: string }): ServerOptions => ({
    cert: p.cert,
    key: p.key,
    minVersion: 'TLSv1.2',
    // The handshake asks for the certificate but does not insist, so the kubelet's probe of
    // /healthz (which has none) still gets in; the handler refuses everything else without one.
    ...(clientCa === undefined ? {} : { ca: clientCa, requestCert: true, rejectUnauthorized: false }),
  });

  const server: Server = createServer(
    tlsOptions(pair),
    createWebhookHandler({
      decisions: opts.decisions,
      logger: opts.logger,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
      requireClientCertificate: clientCa !== undefined,
      ...(opts.observe === undefined ? {} : { observe: opts.observe }),
    }),
  );
  // The API server keeps connections open between reviews.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.on('tlsClientError', (e) => opts.logger.log('debug', 'webhook TLS handshake failed', { error: e.message }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address === '::' ? '::1' : addr.address;
  const url = `https://${addr.family === 'IPv6' || shown.includes(':') ? `[${shown}]` : shown}:${addr.port}`;

  let reload: NodeJS.Timeout | undefined;
  if (opts.certFile !== undefined && opts.keyFile !== undefined) {
    const certFile = opts.certFile;
    const keyFile = opts.keyFile;
    let stamp = mtimes(certFile, keyFile);
    reload = setInterval(() => {
      const now = mtimes(certFile, keyFile);
      if (now === undefined || now === stamp) return;
      try {
        const next = { cert: readPem(certFile, 'webhook certificate'), key: readPem(keyFile, 'webhook key') };
        server.setSecureContext(tlsOptions(next));
        stamp = now;
        opts.logger.info('webhook certificate reloaded', { certFile });
      } catch (e) {
        opts.logger.warn('webhook certificate changed but could not be loaded; keeping the previous one', { certFile, error: (e as Error).message });
      }
    }, RELOAD_CHECK_MS);
    reload.unref();
  }

  opts.logger.info('webhook listening', { url, certificate: generated ? 'generated' : opts.certFile, clientCertificates: clientCa === undefined ? 'not required' : 'required' });
  let closing: Promise<void> | undefined;
  return {
    url,
    caPem,
    generated,
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (reload !== undefined) clearInterval(reload);
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function mtimes(...paths: string[]): string | undefined {
  try {
    return paths.map((p) => statSync(p).mtimeMs).join(',');
  } catch {
    return undefined;
  }
}
