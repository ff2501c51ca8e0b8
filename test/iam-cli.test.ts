/**
 * `tollgate iam` end to end against a running server (the built binary), then an authorization
 * matrix: principals with different roles calling the real APIs with their own tokens, and gcloud
 * granting those roles.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
});

/** Creates a principal and a token for it through the CLI; returns the secret. */
async function principalWithToken(email: string, ...flags: string[]): Promise<string> {
  const created = await server.tollgate(['iam', 'principals', 'create', email, ...flags]);
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  const token = await server.tollgate(['iam', 'tokens', 'create', email]);
  expect(token.code).toBe(0);
  return token.stdout.trim();
}

function tokenFile(name: string, secret: string): string {
  const file = join(server.dataDir, `${name}-token`);
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

describe('tollgate iam', () => {
  it('lists the bootstrap admin', async () => {
    const text = await server.tollgate(['iam', 'principals', 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^EMAIL\s+TYPE\s+SUPERUSER/);
    expect(text.stdout).toMatch(/admin@tollgate\.local\s+user\s+yes/);
    const json = await server.tollgate(['iam', 'principals', 'list', '--format', 'json']);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ name: 'principals/admin@tollgate.local', email: 'admin@tollgate.local', type: 'user', superuser: true })]);
  });

  it('creates principals and tokens; the secret is printed once and stored nowhere', async () => {
    const created = await server.tollgate(['iam', 'principals', 'create', 'Alice@Example.com', '--description', 'release manager']);
    expect(created.code).toBe(0);
    expect(created.stdout).toBe('Created user alice@example.com.\n');
    const sa = await server.tollgate(['iam', 'principals', 'create', 'ci@demo.iam.gserviceaccount.com', '--service-account', '--format', 'json']);
    expect(JSON.parse(sa.stdout)).toMatchObject({ email: 'ci@demo.iam.gserviceaccount.com', type: 'serviceAccount', superuser: false });

    const token = await server.tollgate(['iam', 'tokens', 'create', 'alice@example.com', '--expires-in', '24h', '--description', 'laptop']);
    expect(token.code).toBe(0);
    const secret = token.stdout.trim();
    expect(secret).toMatch(/^tg_[A-Za-z0-9_-]{43}$/);
    expect(token.stderr).toMatch(/^Created token [0-9a-f]{16} for alice@example\.com, expires \d{4}-/);

    // Authenticated (403 from the admin API, not 401) as alice.
    const asAlice = await server.request('GET', '/tollgate/v1/principals', undefined, secret);
    expect(asAlice.status).toBe(403);

    const list = await server.tollgate(['iam', 'tokens', 'list', '--principal', 'alice@example.com', '--format', 'json']);
    const tokens = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ principal: 'alice@example.com', description: 'laptop' });
    expect(list.stdout).not.toContain(secret);

    // Nowhere in the data folder: database, WAL, audit log.
    for (const f of readdirSync(server.dataDir)) {
      if (f.endsWith('-token') || f === 'admin-token') continue;
      expect(readFileSync(join(server.dataDir, f)).toString('latin1'), f).not.toContain(secret);
    }
  });

  it('revokes a token at once', async () => {
    const secret = await principalWithToken('bob@example.com');
    expect((await server.request('GET', '/tollgate/v1/principals', undefined, secret)).status).toBe(403);
    const list = await server.tollgate(['iam', 'tokens', 'list', '--principal', 'bob@example.com']);
    const id = /^([0-9a-f]{16})\s+bob@example\.com\s+never/m.exec(list.stdout)?.[1];
    expect(id).toBeDefined();
    const revoked = await server.tollgate(['iam', 'tokens', 'revoke', id as string]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`Revoked token ${id as string}.\n`);
    const after = await server.request('GET', '/tollgate/v1/principals', undefined, secret);
    expect(after.status).toBe(401);
    expect(after.body.error.status).toBe('UNAUTHENTICATED');
    expect((await server.tollgate(['iam', 'tokens', 'revoke', id as string])).code).toBe(1);
  });

  it('refuses expired tokens', async () => {
    await server.tollgate(['iam', 'principals', 'create', 'brief@example.com']);
    const token = await server.tollgate(['iam', 'tokens', 'create', 'brief@example.com', '--expires-in', '1s']);
    const secret = token.stdout.trim();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await server.request('GET', '/tollgate/v1/principals', undefined, secret)).status).toBe(401);
  });

  it('deletes a principal with its tokens', async () => {
    const secret = await principalWithToken('carol@example.com');
    const deleted = await server.tollgate(['iam', 'principals', 'delete', 'carol@example.com']);
    expect(deleted.code).toBe(0);
    expect((await server.request('GET', '/tollgate/v1/principals', undefined, secret)).status).toBe(401);
    const list = await server.tollgate(['iam', 'tokens', 'list', '--principal', 'carol@example.com', '--format', 'json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
    // The last superuser cannot be deleted.
    const last = await server.tollgate(['iam', 'principals', 'delete', 'admin@tollgate.local']);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('FAILED_PRECONDITION');
  });

  it('exits 1 on API errors, 2 on usage errors, 3 when no answer can be had', async () => {
    const dup = await server.tollgate(['iam', 'principals', 'create', 'alice@example.com']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('ALREADY_EXISTS');
    const badDuration = await server.tollgate(['iam', 'tokens', 'create', 'alice@example.com', '--expires-in', 'soon']);
    expect(badDuration.code).toBe(1);
    expect(badDuration.stderr).toContain('INVALID_ARGUMENT');
    expect((await server.tollgate(['iam', 'principals', 'list', '--format', 'yaml'])).code).toBe(2);
    expect((await server.tollgate(['iam', 'principals', 'list', '--token-file', join(server.dataDir, 'missing')])).code).toBe(2);
    expect((await server.tollgate(['iam', 'principals', 'frobnicate'])).code).toBe(2);
    expect((await server.tollgate(['iam', 'principals', 'list', '--url', 'http://127.0.0.1:9'])).code).toBe(3);
    const notAdmin = tokenFile('alice-cli', (await server.tollgate(['iam', 'tokens', 'create', 'alice@example.com'])).stdout.trim());
    const denied = await server.tollgate(['iam', 'principals', 'list', '--token-file', notAdmin]);
    expect(denied.code).toBe(3);
    expect(denied.stderr).toContain('PERMISSION_DENIED');
    writeFileSync(join(server.dataDir, 'bogus-token'), 'tg_bogus\n');
    expect((await server.tollgate(['iam', 'principals', 'list', '--token-file', join(server.dataDir, 'bogus-token')])).code).toBe(3);
  });
});

describe('authorization matrix', () => {
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    expect((await server.request('POST', '/tollgate/v1/projects', { projectId: 'demo' })).status).toBe(200);
    tokens['viewer'] = await principalWithToken('viewer@example.com');
    tokens['editor'] = await principalWithToken('editor@example.com');
    tokens['attestorAdmin'] = await principalWithToken('attestor-admin@example.com');
    tokens['nobody'] = await principalWithToken('nobody@example.com');
    tokens['root'] = await principalWithToken('root@example.com', '--superuser');
    // Roles granted the way the tutorials do: gcloud projects add-iam-policy-binding.
    for (const [member, role] of [
      ['user:viewer@example.com', 'roles/binaryauthorization.policyViewer'],
      ['user:editor@example.com', 'roles/binaryauthorization.policyEditor'],
      ['user:attestor-admin@example.com', 'roles/binaryauthorization.attestorsAdmin'],
    ] as const) {
      const r = await server.gcloud(['projects', 'add-iam-policy-binding', 'demo', `--member=${member}`, `--role=${role}`, '--format=json']);
      expect(r.stderr + r.stdout, `${member} ${role}`).not.toMatch(/ERROR/);
      expect(r.code).toBe(0);
    }
  });

  const POLICY = { defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' }, globalPolicyEvaluationMode: 'ENABLE' };
  const cases: ReadonlyArray<{ what: string; method: string; path: string; body?: unknown; allowed: readonly string[] }> = [
    { what: 'get the policy', method: 'GET', path: '/v1/projects/demo/policy', allowed: ['viewer', 'editor', 'root'] },
    { what: 'update the policy', method: 'PUT', path: '/v1/projects/demo/policy', body: { name: 'projects/demo/policy', ...POLICY }, allowed: ['editor', 'root'] },
    { what: 'list attestors', method: 'GET', path: '/v1/projects/demo/attestors', allowed: ['attestorAdmin', 'root'] },
    { what: 'read the project IAM policy', method: 'POST', path: '/v1/projects/demo:getIamPolicy', body: {}, allowed: ['root'] },
    { what: 'manage principals', method: 'GET', path: '/tollgate/v1/principals', allowed: ['root'] },
  ];

  for (const c of cases) {
    it(`${c.what}: only ${c.allowed.join(', ')}`, async () => {
      for (const who of ['viewer', 'editor', 'attestorAdmin', 'nobody', 'root']) {
        const r = await server.request(c.method, c.path, c.body, tokens[who]);
        if (c.allowed.includes(who)) {
          expect(r.status, `${who}: ${JSON.stringify(r.body)}`).toBe(200);
        } else {
          expect(r.status, `${who}: ${JSON.stringify(r.body)}`).toBe(403);
          expect(r.body.error.status).toBe('PERMISSION_DENIED');
        }
      }
    });
  }

  it('answers the same for a missing resource as for one the caller may not see', async () => {
    const missing = await server.request('GET', '/v1/projects/demo/attestors/missing', undefined, tokens['nobody']);
    const other = await server.request('GET', '/v1/projects/elsewhere/attestors/a', undefined, tokens['nobody']);
    expect(missing.status).toBe(403);
    expect(other.status).toBe(403);
    expect(missing.body.error.message).toBe("Permission 'binaryauthorization.attestors.get' denied on resource 'projects/demo/attestors/missing' (or it may not exist).");
  });

  it('gcloud with a non-admin token gets PERMISSION_DENIED', async () => {
    const r = await server.gcloud(['projects', 'add-iam-policy-binding', 'demo', '--member=user:nobody@example.com', '--role=roles/owner'], {
      tokenFile: tokenFile('nobody', tokens['nobody'] as string),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Permission 'resourcemanager.projects.getIamPolicy' denied on resource 'projects/demo' (or it may not exist).");
  });
});
