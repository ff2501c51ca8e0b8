/**
 * The server as an operator sees it: first start, restart, files and modes, health endpoints,
 * proxy-form requests, limits, error envelopes, the audit trail of writes, and SIGTERM.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/server/store/sql-store.js';
import { BIN, run, startServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    let data = '';
    socket.on('data', (d) => { data += d.toString(); });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

describe('first start', () => {
  it('creates the data folder, a 0600 master key and a 0600 admin token', () => {
    expect(statSync(server.dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(server.dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    expect(statSync(server.adminTokenFile).mode & 0o777).toBe(0o600);
    expect(server.adminToken).toMatch(/^tg_/);
  });

  it('prints the gcloud lines, and gcloud-config prints them again for eval', async () => {
    expect(server.output()).toContain('api_endpoint_overrides/binaryauthorization');
    const r = await server.tollgate(['gcloud-config', '--url', server.url, '--project', 'demo']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toContain('gcloud config configurations');
    expect(lines).toContain(`gcloud config set auth/access_token_file '${server.adminTokenFile}' --verbosity=error`);
    expect(lines).toContain("gcloud config set core/project 'demo' --verbosity=error");
    expect(lines).toContain(`gcloud config set proxy/port '${server.port}' --verbosity=error`);
  });
});

describe('HTTP edge', () => {
  it('health endpoints answer without a token', async () => {
    expect(await server.request('GET', '/healthz', undefined, null)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await server.request('GET', '/readyz', undefined, null)).toMatchObject({ status: 200, body: { status: 'ready' } });
  });

  it('every API needs a token: none → 401, unknown → 401, Google error form', async () => {
    const none = await server.request('GET', '/v1/projects/demo/policy', undefined, null);
    expect(none).toMatchObject({ status: 401, body: { error: { code: 401, status: 'UNAUTHENTICATED' } } });
    const bad = await server.request('GET', '/v1/projects/demo/policy', undefined, 'tg_not-a-real-token');
    expect(bad).toMatchObject({ status: 401, body: { error: { status: 'UNAUTHENTICATED' } } });
  });

  it('accepts proxy-form request targets and routes on the path', async () => {
    const res = await raw(server.port, `GET http://us-central1-127.0.0.1:${server.port}/v1/projects/demo/policy?alt=json HTTP/1.1\r\nHost: us-central1-127.0.0.1:${server.port}\r\nAuthorization: Bearer ${server.adminToken}\r\nConnection: close\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    expect(res).toContain('"name":"projects/demo/policy"');
  });

  it('refuses CONNECT tunnels plainly', async () => {
    const res = await raw(server.port, 'CONNECT oauth2.googleapis.com:443 HTTP/1.1\r\nHost: oauth2.googleapis.com:443\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 405/);
  });

  it('answers APIs it does not serve with a clear error', async () => {
    const r = await server.request('GET', '/unsupported/artifactregistry/v1/projects/demo/locations/us/repositories');
    expect(r).toMatchObject({ status: 400, body: { error: { status: 'FAILED_PRECONDITION' } } });
    expect(r.body.error.message).toContain('Artifact Registry');
    const g = await server.gcloud(['artifacts', 'repositories', 'list', '--location=us-central1']);
    expect(g.code).not.toBe(0);
    expect(g.stderr).toContain('Tollgate does not serve');
    expect(g.stderr).not.toMatch(/Traceback/);
    const unknown = await server.request('GET', '/v9/nothing/here');
    expect(unknown).toMatchObject({ status: 404, body: { error: { status: 'NOT_FOUND' } } });
  });

  it('limits request bodies and rejects malformed JSON with INVALID_ARGUMENT', async () => {
    const big = JSON.stringify({ description: 'x'.repeat(11 * 1024 * 1024) });
    const r = await fetch(`${server.url}/v1/projects/demo/policy`, { method: 'PUT', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: big }).catch((e: Error) => e);
    if (!(r instanceof Error)) {
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { status: string } }).error.status).toBe('INVALID_ARGUMENT');
    }
    const bad = await server.request('PUT', '/v1/projects/demo/policy', '{"defaultAdmissionRule": ');
    expect(bad).toMatchObject({ status: 400, body: { error: { status: 'INVALID_ARGUMENT' } } });
  });

  it('creates projects explicitly, with a stable number and service agents', async () => {
    const r = await server.tollgate(['projects', 'create', 'tenant-a', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as { projectNumber: string; binaryAuthorizationServiceAgent: string };
    expect(p.binaryAuthorizationServiceAgent).toBe(`service-${p.projectNumber}@gcp-sa-binaryauthorization.iam.gserviceaccount.com`);
    expect((await server.tollgate(['projects', 'create', 'tenant-a'])).code).toBe(1);
    const d = await server.gcloud(['projects', 'describe', 'tenant-a', '--format=value(projectNumber)']);
    expect(d.stdout.trim()).toBe(p.projectNumber);
  });

  it('gcloud services enable is recorded and listed', async () => {
    const r = await server.gcloud(['services', 'enable', 'binaryauthorization.googleapis.com', 'containeranalysis.googleapis.com']);
    expect(r.code, r.stderr).toBe(0);
    const list = await server.request('GET', '/v1/projects/demo/services');
    expect(list.body.services.map((s: { config: { name: string } }) => s.config.name)).toEqual(['binaryauthorization.googleapis.com', 'containeranalysis.googleapis.com']);
  });
});

describe('restart and shutdown', () => {
  it('keeps everything across a restart, keeps the admin token, and records admin activity', async () => {
    const created = await server.request('POST', '/v1/projects/demo/notes?noteId=restart-note', { attestation: { hint: { humanReadableName: 'r' } } });
    expect(created.status).toBe(200);
    await server.stop();
    const again = await startServer({ dataDir: server.dataDir });
    try {
      expect(again.adminToken).toBe(server.adminToken);
      expect(again.output()).not.toContain('Admin token written');
      expect((await again.request('GET', '/v1/projects/demo/notes/restart-note')).status).toBe(200);
    } finally {
      await again.stop();
    }
    const store = await openStore(join(server.dataDir, 'tollgate.db'));
    try {
      const audit = await store.queryAudit({ projects: ['demo'], limit: 100 });
      const methods = audit.map((a) => (a.entry['protoPayload'] as { methodName: string }).methodName);
      expect(methods).toContain('grafeas.v1.Grafeas.CreateNote');
      expect(methods.some((m) => m.includes('EnableService'))).toBe(true);
    } finally {
      await store.close();
    }
    server = await startServer({ dataDir: server.dataDir });
  }, 60_000);

  it('refuses to start with another master key', async () => {
    await server.stop();
    const r = await run(process.execPath, [BIN, 'serve', '--data-dir', server.dataDir, '--listen', '127.0.0.1:0'], { env: { TOLLGATE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/master key/i);
    server = await startServer({ dataDir: server.dataDir });
  }, 60_000);

  it('SIGTERM lets in-flight requests finish and exits 0', async () => {
    // A request whose body is still arriving when SIGTERM comes must still be answered.
    const body = JSON.stringify({ defaultAdmissionRule: { evaluationMode: 'ALWAYS_DENY', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } });
    const half = Math.floor(body.length / 2);
    const exit = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
    const response = new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => {
        socket.write(`PUT /v1/projects/demo/policy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.adminToken}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`);
        setTimeout(() => server.process.kill('SIGTERM'), 100);
        setTimeout(() => socket.end(body.slice(half)), 400);
      });
      let data = '';
      socket.on('data', (d) => { data += d.toString(); });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(await response).toMatch(/^HTTP\/1\.1 200/);
    expect(await exit).toBe(0);
    server = await startServer({ dataDir: server.dataDir });
    expect((await server.request('GET', '/v1/projects/demo/policy')).body.defaultAdmissionRule.evaluationMode).toBe('ALWAYS_DENY');
  }, 60_000);

  it('bad flags exit 2', async () => {
    const r = await run(process.execPath, [BIN, 'serve', '--listen', 'nonsense'], {});
    expect(r.code).toBe(2);
    const placement = await run(process.execPath, [BIN, 'serve', '--verify-placement', 'gpu'], {});
    expect(placement.code).toBe(2);
    expect(placement.stderr).toContain('--verify-placement must be one of adaptive, in-place, pool, not gpu');
    const fromEnv = await run(process.execPath, [BIN, 'serve'], { env: { TOLLGATE_VERIFY_PLACEMENT: 'later' } });
    expect(fromEnv.code).toBe(2);
    // An audit retention shorter than an hour, or not a duration, is refused before anything starts.
    for (const [args, env] of [[['--audit-retention', '10m'], {}], [['--audit-retention', 'a year'], {}], [[], { TOLLGATE_AUDIT_RETENTION: '0' }]] as const) {
      const bad = await run(process.execPath, [BIN, 'serve', ...args], { env: { ...env } });
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toContain('--audit-retention must be a duration of at least 1h');
    }
    writeFileSync(join(server.dataDir, 'x'), '');
  });
});

describe('audit retention', () => {
  it('removes entries older than --audit-retention soon after start, and counts them; newer entries stay', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-retention-'));
    try {
      const store = await openStore(join(dataDir, 'tollgate.db'));
      const at = (ms: number) => new Date(Date.now() - ms).toISOString();
      const DAY = 86_400_000;
      await store.appendAudit([
        ...Array.from({ length: 40 }, (_, i) => ({ time: at(3 * DAY + i), project: `p${i % 3}`, logId: 'cloudaudit.googleapis.com/activity', entry: { insertId: `old-${i}` } })),
        { time: at(DAY), project: 'p0', logId: 'cloudaudit.googleapis.com/activity', entry: { insertId: 'kept' } },
      ]);
      await store.close();
      const s = await startServer({ dataDir, args: ['--audit-retention', '2d'] });
      try {
        const reader = await openStore(join(dataDir, 'tollgate.db'));
        try {
          const deadline = Date.now() + 30_000;
          let ids: unknown[] = [];
          while (Date.now() < deadline) {
            ids = (await reader.queryAudit({ limit: 1000 })).map((r) => r.entry['insertId']);
            if (!ids.some((id) => String(id).startsWith('old-'))) break;
            await new Promise((r) => setTimeout(r, 250));
          }
          expect(ids.filter((id) => String(id).startsWith('old-'))).toEqual([]);
          expect(ids).toContain('kept');
        } finally {
          await reader.close();
        }
        const metrics = await (await fetch(`${s.url}/metrics`)).text();
        expect(metrics).toMatch(/^tollgate_audit_entries_removed_total 40$/m);
        expect(s.output()).toContain('audit retention: removed entries older than the retention period');
      } finally {
        await s.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
