import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CERT_NAMES, ensureWebhookCertificates, serviceNames } from './tls.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tollgate-webhook-tls-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('ensureWebhookCertificates', () => {
  it('generates a CA and a serving certificate for the local and in-cluster names, once', async () => {
    const dir = tempDir();
    const first = await ensureWebhookCertificates(dir, ['webhook.example.com', '10.0.0.7']);
    const folder = join(dir, 'webhook');
    expect(readFileSync(join(folder, 'ca.crt'), 'utf8')).toBe(first.caPem);
    expect(readFileSync(join(folder, 'tls.crt'), 'utf8')).toBe(first.certPem);
    expect(readFileSync(join(folder, 'tls.key'), 'utf8')).toBe(first.keyPem);
    expect(statSync(join(folder, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(folder, 'ca.key')).mode & 0o777).toBe(0o600);

    const ca = new X509Certificate(first.caPem);
    const cert = new X509Certificate(first.certPem);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(first.keyPem))).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    for (const name of [...DEFAULT_CERT_NAMES, 'webhook.example.com', '10.0.0.7']) {
      if (/^[\d.]+$|:/.test(name)) expect(cert.checkIP(name), name).toBe(name);
      else expect(cert.checkHost(name), name).toBe(name);
    }
    expect(DEFAULT_CERT_NAMES).toEqual(expect.arrayContaining(serviceNames('tollgate-system')));
    expect(DEFAULT_CERT_NAMES).toContain('tollgate-webhook.tollgate-system.svc.cluster.local');

    // openssl agrees: a server-auth chain to the CA.
    const out = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(folder, 'ca.crt'), join(folder, 'tls.crt')]).toString();
    expect(out).toContain(': OK');

    // Reused on the next start (same names, or a subset).
    const again = await ensureWebhookCertificates(dir, ['webhook.example.com']);
    expect(again).toEqual(first);
  });

  it('reissues only the serving certificate when a name is added, so the caBundle stays valid', async () => {
    const dir = tempDir();
    const first = await ensureWebhookCertificates(dir, []);
    const more = await ensureWebhookCertificates(dir, ['tollgate-webhook.security.svc']);
    expect(more.caPem).toBe(first.caPem);
    expect(more.certPem).not.toBe(first.certPem);
    const cert = new X509Certificate(more.certPem);
    expect(cert.checkHost('tollgate-webhook.security.svc')).toBe('tollgate-webhook.security.svc');
    expect(cert.checkIssued(new X509Certificate(first.caPem))).toBe(true);
  });

  it('replaces a serving certificate that is damaged or not from the CA', async () => {
    const dir = tempDir();
    const first = await ensureWebhookCertificates(dir, []);
    writeFileSync(join(dir, 'webhook', 'tls.crt'), 'not a certificate');
    const fixed = await ensureWebhookCertificates(dir, []);
    expect(fixed.caPem).toBe(first.caPem);
    expect(new X509Certificate(fixed.certPem).checkIssued(new X509Certificate(first.caPem))).toBe(true);
  });
});
