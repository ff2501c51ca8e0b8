/**
 * The bench's own HTTPS client (bench/client.ts) against a real TLS server: both body framings
 * Node's server sends, keep-alive reuse, a server that closes, and answers it must refuse.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection } from '../bench/client.js';
import { ensureWebhookCertificates, type WebhookCertificates } from '../src/server/webhook/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-client-'));
let certs: WebhookCertificates;
let https: Server;
let port = 0;
const sockets = new Set<number>();

const post = (c: Connection, body: string, path = '/') => c.post(path, body);

beforeAll(async () => {
  certs = await ensureWebhookCertificates(dir);
  https = createHttpsServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
    sockets.add(req.socket.remotePort ?? 0);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const echo = JSON.stringify({ path: req.url, body });
      if (req.url === '/chunked') {
        // writeHead then end: Node frames the body as chunks.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(echo.slice(0, 5));
        res.end(echo.slice(5));
      } else if (req.url === '/close') {
        res.setHeader('connection', 'close');
        res.end(echo);
      } else {
        res.statusCode = req.url === '/missing' ? 404 : 200;
        res.end(echo);
      }
    });
  });
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  port = (https.address() as AddressInfo).port;
});

afterAll(() => {
  https.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the bench client', () => {
  it('reads Content-Length and chunked answers, keeps the connection alive, and decodes UTF-8', async () => {
    const c = new Connection('127.0.0.1', port, certs.caPem, 5_000);
    await c.connect();
    sockets.clear();
    const text = '{"note":"kubectl create deployment web --image=…"}';
    expect(await post(c, text)).toEqual({ status: 200, text: JSON.stringify({ path: '/', body: text }) });
    expect(await post(c, text, '/chunked')).toEqual({ status: 200, text: JSON.stringify({ path: '/chunked', body: text }) });
    expect(await post(c, '{}', '/missing')).toEqual({ status: 404, text: JSON.stringify({ path: '/missing', body: '{}' }) });
    // One TCP connection carried all three.
    expect(sockets.size).toBe(1);
    c.close();
  });

  it('opens a new connection after the server closes one', async () => {
    const c = new Connection('127.0.0.1', port, certs.caPem, 5_000);
    sockets.clear();
    expect((await post(c, '{"a":1}', '/close')).status).toBe(200);
    expect((await post(c, '{"a":2}')).status).toBe(200);
    expect(sockets.size).toBe(2);
    c.close();
  });

  it('refuses one request at a time beyond the first, and a certificate it does not trust', async () => {
    const c = new Connection('127.0.0.1', port, certs.caPem, 5_000);
    const first = post(c, '{}');
    await expect(post(c, '{}')).rejects.toThrow('already in flight');
    expect((await first).status).toBe(200);
    c.close();
    const other = await ensureWebhookCertificates(join(dir, 'other'));
    const untrusting = new Connection('127.0.0.1', port, other.caPem, 5_000);
    await expect(untrusting.connect()).rejects.toThrow(/certificate/i);
    await expect(post(untrusting, '{}')).rejects.toThrow();
    untrusting.close();
  });

  describe('against a server that answers wrongly', () => {
    let raw: TlsServer;
    let rawPort = 0;
    const answers = new Map<string, string>();
    beforeAll(async () => {
      raw = createTlsServer({ cert: certs.certPem, key: certs.keyPem }, (socket) => {
        let got = '';
        socket.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          const path = /^POST (\S+)/.exec(got)?.[1];
          if (path === undefined || !got.includes('\r\n\r\n')) return;
          const answer = answers.get(path) ?? '';
          if (path !== '/split') {
            socket.write(answer);
            return;
          }
          // One TLS record per byte, a millisecond apart: the client sees many small reads.
          let i = 0;
          const drip = () => {
            if (i < answer.length) socket.write(answer[i++] as string, () => setTimeout(drip, 1));
          };
          drip();
        });
      });
      await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
      rawPort = (raw.address() as AddressInfo).port;
    });
    afterAll(() => raw.close());

    const cases: [string, string, string][] = [
      ['/extra', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}{}', 'bytes after the answer'],
      ['/nolength', 'HTTP/1.1 200 OK\r\n\r\n{}', 'neither a valid Content-Length nor a chunked body'],
      ['/badchunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 'malformed chunk size'],
      ['/gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'Transfer-Encoding: gzip'],
      ['/http10', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}', 'not an HTTP/1.1 status line'],
      ['/silent', '', 'no answer within 0.3 s'],
    ];
    for (const [path, answer, message] of cases) {
      it(`fails ${path}: ${message}`, async () => {
        answers.set(path, answer);
        const c = new Connection('127.0.0.1', rawPort, certs.caPem, 300);
        await expect(post(c, '{}', path)).rejects.toThrow(message);
        c.close();
      });
    }

    it('reads a chunked answer that arrives a byte at a time', async () => {
      answers.set('/split', 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n');
      const c = new Connection('127.0.0.1', rawPort, certs.caPem, 5_000);
      expect(await post(c, '{}', '/split')).toEqual({ status: 201, text: 'abcde' });
      c.close();
    });
  });
});
