/**
 * The floors: a bare Node HTTPS server (its own process, like the server under test) that reads
 * each AdmissionReview, parses it, and answers a minimal allowed response — the transport
 * floor. With `--verify` it also does one ECDSA P-256 `crypto.verify` per request over a fixed
 * payload and signature (the cold floor: the least a server that verifies one new attestation
 * per review must do). Same TLS settings and certificate type (ECDSA P-256) as Tollgate's webhook.
 *
 *   node floor.js --cert FILE --key FILE [--verify]    prints `listening PORT`
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i < 0 ? undefined : process.argv[i + 1];
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
}

const withVerify = process.argv.includes('--verify');
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const payload = Buffer.from(
  '{\n  "critical": {\n    "identity": {\n      "docker-reference": "us-docker.pkg.dev/bench/apps/floor"\n    },\n    "image": {\n      "docker-manifest-digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"\n    },\n    "type": "Google cloud binauthz container signature"\n  }\n}\n',
);
const signature = sign('sha256', payload, privateKey);

const server = createServer({ cert: readFileSync(arg('--cert')), key: readFileSync(arg('--key')), minVersion: 'TLSv1.2' }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let uid: unknown;
    try {
      uid = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: unknown } }).request.uid;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json; charset=UTF-8' });
      res.end('{"error":{"code":400,"message":"bad review"}}\n');
      return;
    }
    if (withVerify && !verify('sha256', payload, { key: publicKey, dsaEncoding: 'der' }, signature)) {
      res.writeHead(500);
      res.end();
      return;
    }
    // Framed as Tollgate frames its answers: with their length, in one write.
    const answer = `${JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } })}\n`;
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
