import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDockerConfig, normalizeCredentialKey, parseDockerConfig, staticCredentials } from './credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-creds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function write(name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('normalizeCredentialKey', () => {
  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['docker.io', 'docker.io'],
    ['https://GHCR.io', 'ghcr.io'],
    ['http://localhost:5000/v2/', 'localhost:5000'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['us-docker.pkg.dev', 'us-docker.pkg.dev'],
  ])('%s → %s', (key, host) => {
    expect(normalizeCredentialKey(key)).toBe(host);
  });

  it('rejects what is not a host', () => {
    expect(normalizeCredentialKey('')).toBeUndefined();
    expect(normalizeCredentialKey('https://')).toBeUndefined();
    expect(normalizeCredentialKey('bad host')).toBeUndefined();
  });
});

describe('loadDockerConfig', () => {
  it('reads auth, username/password, identitytoken and registrytoken entries', async () => {
    const file = write('config.json', {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass:with:colons') },
        'ghcr.io': { username: 'gh', password: 'ghp_x' },
        'us-docker.pkg.dev': { auth: b64('oauth2accesstoken:ya29'), identitytoken: 'refresh' },
        'http://localhost:5000/v2/': { registrytoken: 'rt' },
        'quay.io': {},
      },
    });
    const creds = await loadDockerConfig(file);
    expect(creds.lookup('docker.io')).toEqual({ username: 'hubuser', password: 'hub:pass:with:colons' });
    expect(creds.lookup('index.docker.io')).toEqual(creds.lookup('docker.io'));
    expect(creds.lookup('GHCR.IO')).toEqual({ username: 'gh', password: 'ghp_x' });
    expect(creds.lookup('us-docker.pkg.dev')).toEqual({ username: 'oauth2accesstoken', password: 'ya29', identityToken: 'refresh' });
    expect(creds.lookup('localhost:5000')).toEqual({ registryToken: 'rt' });
    expect(creds.lookup('localhost')).toBeUndefined();
    expect(creds.lookup('quay.io')).toBeUndefined();
    expect(creds.registries).toEqual(['docker.io', 'ghcr.io', 'localhost:5000', 'us-docker.pkg.dev']);
    expect(creds.warnings).toEqual([]);
  });

  it('reads a $DOCKER_CONFIG directory and the legacy .dockercfg shape', async () => {
    const sub = join(dir, 'docker-dir');
    mkdirSync(sub);
    writeFileSync(join(sub, 'config.json'), JSON.stringify({ auths: { 'reg.example': { auth: b64('a:b') } } }));
    expect((await loadDockerConfig(sub)).lookup('reg.example')).toEqual({ username: 'a', password: 'b' });
    const legacy = write('dockercfg', { 'https://index.docker.io/v1/': { auth: b64('x:y'), email: 'x@example.com' } });
    expect((await loadDockerConfig(legacy)).lookup('docker.io')).toEqual({ username: 'x', password: 'y' });
  });

  it('warns about credential helpers, which are not supported', async () => {
    const file = write('helpers.json', {
      auths: { 'ghcr.io': {}, 'reg.example': { auth: b64('u:p') } },
      credsStore: 'desktop',
      credHelpers: { 'us-docker.pkg.dev': 'gcloud', 'reg.example': 'pass' },
    });
    const creds = await loadDockerConfig(file);
    expect(creds.lookup('ghcr.io')).toBeUndefined();
    expect(creds.lookup('reg.example')).toEqual({ username: 'u', password: 'p' });
    expect(creds.warnings).toHaveLength(2);
    expect(creds.warnings[0]).toContain('"credsStore": "desktop" is not supported');
    expect(creds.warnings[1]).toContain('docker-credential-gcloud');
    expect(creds.warnings[1]).toContain('us-docker.pkg.dev is accessed anonymously');
  });

  it('throws clear errors that never echo a secret', async () => {
    await expect(loadDockerConfig(join(dir, 'missing.json'))).rejects.toThrow(/registry config .*missing\.json: cannot read it \(no such file\)/);
    await expect(loadDockerConfig(write('bad.json', '{"auths": '))).rejects.toThrow(/not valid JSON/);
    await expect(loadDockerConfig(write('arr.json', '[]'))).rejects.toThrow(/expected a JSON object/);
    await expect(loadDockerConfig(write('auths.json', { auths: [] }))).rejects.toThrow(/"auths" must be an object/);
    const noColon = loadDockerConfig(write('nocolon.json', { auths: { 'reg.example': { auth: b64('secretwithoutcolon') } } }));
    await expect(noColon).rejects.toThrow(/auths\["reg.example"\]\.auth: the decoded value is not "user:password"/);
    await expect(noColon).rejects.not.toThrow(/secretwithoutcolon/);
    await expect(loadDockerConfig(write('notb64.json', { auths: { 'reg.example': { auth: '!!!' } } }))).rejects.toThrow(/auth: not base64/);
    await expect(loadDockerConfig(write('badkey.json', { auths: { 'not a host': { auth: b64('a:b') } } }))).rejects.toThrow(/not a registry host/);
    await expect(loadDockerConfig(write('type.json', { auths: { 'reg.example': { password: 5 } } }))).rejects.toThrow(/password: expected a string/);
    await expect(loadDockerConfig(write('nouser.json', { auths: { 'reg.example': { password: 'p' } } }))).rejects.toThrow(/a password without a user name/);
  });
});

describe('staticCredentials', () => {
  it('normalizes keys like the Docker config does', () => {
    const creds = staticCredentials({ 'https://index.docker.io/v1/': { username: 'u', password: 'p' } });
    expect(creds.lookup('docker.io')).toEqual({ username: 'u', password: 'p' });
    expect(() => parseDockerConfig({ auths: { 'a b': {} } }, 'x')).toThrow(/not a registry host/);
  });
});
