import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatImageReference, isSha256Digest, parseImageReference, type ImageReference } from './reference.js';

const H64 = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);
const H64_UPPER = H64.toUpperCase();
const H128 = '0123456789abcdef'.repeat(8);
const D = `sha256:${H64}`;

type Expected = Partial<ImageReference> & Pick<ImageReference, 'registry' | 'repository'>;

const valid: ReadonlyArray<readonly [string, Expected]> = [
  // Docker Hub short names and aliases
  ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
  ['nginx:latest', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
  [`nginx@${D}`, { registry: 'docker.io', repository: 'library/nginx', digest: D }],
  ['user/app', { registry: 'docker.io', repository: 'user/app' }],
  ['user/app:v2', { registry: 'docker.io', repository: 'user/app', tag: 'v2' }],
  ['library/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ['docker.io/library/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ['index.docker.io/library/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ['index.docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ['registry-1.docker.io/user/app:1', { registry: 'docker.io', repository: 'user/app', tag: '1' }],
  ['Docker.IO/user/app', { registry: 'docker.io', repository: 'user/app' }],
  ['a/b/c/d', { registry: 'docker.io', repository: 'a/b/c/d' }],
  // Google registries
  ['gcr.io/my-project/app', { registry: 'gcr.io', repository: 'my-project/app' }],
  ['gcr.io/my-project/app:v1.2.3', { registry: 'gcr.io', repository: 'my-project/app', tag: 'v1.2.3' }],
  [`gcr.io/my-project/app@${D}`, { registry: 'gcr.io', repository: 'my-project/app', digest: D }],
  [`gcr.io/my-project/app:v1@${D}`, { registry: 'gcr.io', repository: 'my-project/app', tag: 'v1', digest: D }],
  [
    'us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0',
    { registry: 'us-docker.pkg.dev', repository: 'google-samples/containers/gke/hello-app', tag: '1.0' },
  ],
  ['europe-west1-docker.pkg.dev/p/repo/img', { registry: 'europe-west1-docker.pkg.dev', repository: 'p/repo/img' }],
  ['k8s.gcr.io/pause:3.9', { registry: 'k8s.gcr.io', repository: 'pause', tag: '3.9' }],
  ['gcr.io/app', { registry: 'gcr.io', repository: 'app' }],
  // Scheme prefixes
  ['https://gcr.io/p/app', { registry: 'gcr.io', repository: 'p/app' }],
  ['http://gcr.io/p/app:v1', { registry: 'gcr.io', repository: 'p/app', tag: 'v1' }],
  ['HTTPS://GCR.IO/p/app', { registry: 'gcr.io', repository: 'p/app' }],
  ['HtTpS://gcr.io/p/app', { registry: 'gcr.io', repository: 'p/app' }],
  ['https://nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  // Upper-case hosts
  ['GCR.IO/my-project/app', { registry: 'gcr.io', repository: 'my-project/app' }],
  ['Us-Docker.Pkg.Dev/p/r/i', { registry: 'us-docker.pkg.dev', repository: 'p/r/i' }],
  // localhost, ports, IPs
  ['localhost/app', { registry: 'localhost', repository: 'app' }],
  ['LOCALHOST/app', { registry: 'localhost', repository: 'app' }],
  ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app' }],
  ['localhost:5000/team/app:dev', { registry: 'localhost:5000', repository: 'team/app', tag: 'dev' }],
  ['localhost', { registry: 'docker.io', repository: 'library/localhost' }],
  ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
  ['registry.example.com:443/a/b', { registry: 'registry.example.com:443', repository: 'a/b' }],
  ['10.0.0.1:5000/app:v1', { registry: '10.0.0.1:5000', repository: 'app', tag: 'v1' }],
  ['192.168.1.10/app', { registry: '192.168.1.10', repository: 'app' }],
  ['[::1]:5000/app', { registry: '[::1]:5000', repository: 'app' }],
  ['[::1]/app', { registry: '[::1]', repository: 'app' }],
  ['[FE80::1]:5000/app:v1', { registry: '[fe80::1]:5000', repository: 'app', tag: 'v1' }],
  ['myhost:5000/app', { registry: 'myhost:5000', repository: 'app' }],
  // Path separators
  ['gcr.io/p/my_app', { registry: 'gcr.io', repository: 'p/my_app' }],
  ['gcr.io/p/my__app', { registry: 'gcr.io', repository: 'p/my__app' }],
  ['gcr.io/p/my---app', { registry: 'gcr.io', repository: 'p/my---app' }],
  ['gcr.io/p/my.app', { registry: 'gcr.io', repository: 'p/my.app' }],
  ['gcr.io/p/0', { registry: 'gcr.io', repository: 'p/0' }],
  // Tags
  ['gcr.io/p/app:_internal', { registry: 'gcr.io', repository: 'p/app', tag: '_internal' }],
  ['gcr.io/p/app:V1-RC.2_x', { registry: 'gcr.io', repository: 'p/app', tag: 'V1-RC.2_x' }],
  [`gcr.io/p/app:${'t'.repeat(128)}`, { registry: 'gcr.io', repository: 'p/app', tag: 't'.repeat(128) }],
  // Digests
  [`gcr.io/p/app@sha256:${H64_UPPER}`, { registry: 'gcr.io', repository: 'p/app', digest: D }],
  [`gcr.io/p/app@sha512:${H128}`, { registry: 'gcr.io', repository: 'p/app', digest: `sha512:${H128}` }],
  [
    'gcr.io/p/app@multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8',
    { registry: 'gcr.io', repository: 'p/app', digest: 'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8' },
  ],
  [`nginx:1.25@${D}`, { registry: 'docker.io', repository: 'library/nginx', tag: '1.25', digest: D }],
  [`https://localhost:5000/a/b:c@${D}`, { registry: 'localhost:5000', repository: 'a/b', tag: 'c', digest: D }],
];

const invalid: ReadonlyArray<readonly [string, string]> = [
  ['', 'empty'],
  [' ', 'whitespace'],
  [' nginx', 'whitespace'],
  ['nginx ', 'whitespace'],
  ['gcr.io/p/app:v 1', 'whitespace'],
  ['gcr.io/p/\u00a0app', 'whitespace'],
  ['gcr.io/p/app\n', 'control character'],
  ['gcr.io/p/\u0000app', 'control character'],
  ['gcr.io/p/app\u0085', 'control character'],
  ['gcr.io/p/\u00e4pp', 'non-ASCII'],
  ['gcr.io/p/app\u202e', 'non-ASCII'],
  ['gcr.io/p/app:', 'empty tag'],
  ['nginx:', 'empty tag'],
  ['gcr.io/p/app:.v1', 'tag'],
  ['gcr.io/p/app:-v1', 'tag'],
  ['gcr.io/p/app:v1:v2', 'tag'],
  [`gcr.io/p/app:${'t'.repeat(129)}`, 'tag is too long'],
  ['gcr.io/p/app@', 'empty digest'],
  ['gcr.io/p/app@sha256', 'algorithm:hex'],
  ['gcr.io/p/app@sha256:', 'empty encoded'],
  ['gcr.io/p/app@sha256:abc', '64 hex'],
  [`gcr.io/p/app@sha256:${H64}0`, '64 hex'],
  [`gcr.io/p/app@sha256:${'g'.repeat(64)}`, 'hex'],
  [`gcr.io/p/app@sha512:${H64}`, '128 hex'],
  [`gcr.io/p/app@SHA256:${H64}`, 'lower-case'],
  [`gcr.io/p/app@:${H64}`, 'empty algorithm'],
  [`gcr.io/p/app@sha256:${H64}@sha256:${H64}`, "more than one '@'"],
  ['gcr.io/p/app@md5:a!b', 'invalid encoded'],
  ['gcr.io//app', "'//'"],
  ['gcr.io/p//app', "'//'"],
  ['gcr.io/p/app/', "ends with '/'"],
  ['gcr.io/', "ends with '/'"],
  ['/app', "start with '/'"],
  ['gcr.io/My-Project/app', 'lower-case'],
  ['Nginx', 'lower-case'],
  ['User/app', 'lower-case'],
  ['gcr.io/p/-app', 'invalid'],
  ['gcr.io/p/app-', 'invalid'],
  ['gcr.io/p/a._b', 'invalid'],
  ['gcr.io/p/a___b', 'invalid'],
  ['gcr.io/p/*', 'wildcard'],
  ['gcr.io/p/app:*', 'wildcard'],
  ['gcr.io/p/app@*', 'wildcard'],
  [`gcr.io/${'a'.repeat(250)}`, 'too long'],
  [`${'a'.repeat(240)}`, 'too long'],
  ['x'.repeat(5000), 'too long'],
  ['ftp://gcr.io/p/app', 'scheme'],
  ['docker://nginx', 'scheme'],
  ['https://', 'empty after'],
  ['gcr.io:/p/app', 'empty port'],
  ['gcr.io:99999/p/app', 'port'],
  ['gcr.io:0/p/app', 'port'],
  ['gcr.io:ab/p/app', 'port'],
  ['-gcr.io/p/app', 'registry host'],
  ['gcr..io/p/app', 'registry host'],
  [':5000/app', 'empty host'],
  ['[::1/app', 'IPv6'],
  ['[zz::1]:5000/app', 'IPv6'],
  ['[::1]x/app', 'IPv6'],
  ['gcr.io/p/a+b', 'invalid'],
];

describe('parseImageReference: valid references', () => {
  it.each(valid)('%s', (input, expected) => {
    const r = parseImageReference(input);
    expect(r).toEqual({
      ok: true,
      value: { ...expected, name: `${expected.registry}/${expected.repository}` },
    });
  });
});

describe('parseImageReference: invalid references', () => {
  it.each(invalid)('%j is rejected (%s)', (input, reason) => {
    const r = parseImageReference(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('INVALID_IMAGE_REFERENCE');
    expect(r.error.message).toContain(reason);
    // The message quotes the input, but only as printable ASCII.
    expect(r.error.message).toMatch(/^[\x20-\x7e]*$/);
  });

  it('has at least 60 table cases', () => {
    expect(valid.length + invalid.length).toBeGreaterThanOrEqual(60);
  });

  it('rejects a 1 MB string quickly without throwing', () => {
    const r = parseImageReference('a'.repeat(1 << 20));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.message).toContain('too long');
  });

  it('truncates the quoted input in messages', () => {
    const r = parseImageReference(`gcr.io/p/${'A'.repeat(900)}`);
    expect(!r.ok && r.error.message.length).toBeLessThan(300);
  });
});

describe('formatImageReference', () => {
  it('writes name[:tag][@digest]', () => {
    const r = parseImageReference(`https://Index.Docker.IO/nginx:1.25@sha256:${H64_UPPER}`);
    expect(r.ok && formatImageReference(r.value)).toBe(`docker.io/library/nginx:1.25@${D}`);
    const s = parseImageReference('localhost:5000/app');
    expect(s.ok && formatImageReference(s.value)).toBe('localhost:5000/app');
  });
});

describe('isSha256Digest', () => {
  it.each([
    [D, true],
    [`sha256:${H64_UPPER}`, false],
    [`sha512:${H128}`, false],
    [`sha256:${H64.slice(1)}`, false],
    ['sha256:', false],
    ['', false],
    [undefined, false],
  ] as const)('%s → %s', (digest, expected) => {
    expect(isSha256Digest(digest)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
const alnum = fc.string({ unit: fc.constantFrom(...lower), minLength: 1, maxLength: 6 });
const component = fc
  .tuple(alnum, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--'), alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(''));
const path = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join('/'));
const tagChars = 'ABCXYZabcxyz0189_.-';
const tag = fc
  .tuple(fc.constantFrom(...'Aa0_'), fc.string({ unit: fc.constantFrom(...tagChars), maxLength: 20 }))
  .map(([h, t]) => h + t);
const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
const digest = fc.oneof(hex(64).map((h) => `sha256:${h}`), hex(128).map((h) => `sha512:${h}`));
/** A registry as a user may write it, or '' for a Docker Hub short name. */
const registryArb = fc.oneof(
  fc.constantFrom(
    '',
    'gcr.io',
    'GCR.IO',
    'us-docker.pkg.dev',
    'docker.io',
    'index.docker.io',
    'registry-1.docker.io',
    'localhost',
    'localhost:5000',
    '10.0.0.1:5000',
    '[::1]:5000',
    '[fe80::1]',
  ),
  fc.tuple(alnum, alnum, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })).map(
    ([a, b, port]) => `${a}.${b}${port === undefined ? '' : `:${port}`}`,
  ),
);
function looksLikeHost(p: string): boolean {
  const first = p.split('/')[0] ?? '';
  return p.includes('/') && (first.includes('.') || first === 'localhost');
}
const scheme = fc.constantFrom('', '', 'https://', 'http://', 'HTTPS://');
const imageArb = fc
  .record({
    scheme,
    registry: registryArb,
    path,
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  .map(
    (r) =>
      // A short name whose first component looks like a host (`a.b/c`) is a registry by Docker's
      // rule, so give such paths an explicit Docker Hub registry.
      `${r.scheme}${r.registry === '' && !looksLikeHost(r.path) ? '' : `${r.registry || 'docker.io'}/`}${r.path}` +
      `${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`,
  );

describe('parseImageReference properties', () => {
  it('never throws on arbitrary strings (binary units)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
        const r = parseImageReference(s);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on long and grapheme strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 200 }),
          fc.string({ unit: 'grapheme-ascii', minLength: 200, maxLength: 3000 }),
          fc.string({ unit: fc.constantFrom(...'aA0:/@.-_*[]'), maxLength: 300 }),
        ),
        (s) => {
          const r = parseImageReference(s);
          expect(typeof r.ok).toBe('boolean');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never throws on mutations of valid references', () => {
    fc.assert(
      fc.property(imageArb, fc.nat(), fc.string({ unit: 'binary', maxLength: 3 }), (s, at, insert) => {
        const i = at % (s.length + 1);
        const r = parseImageReference(s.slice(0, i) + insert + s.slice(i));
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts generated valid references (unless the normalized name is too long)', () => {
    fc.assert(
      fc.property(imageArb, (s) => {
        const r = parseImageReference(s);
        if (!r.ok) expect(r.error.message).toContain('too long');
        else {
          expect(r.value.name).toBe(`${r.value.registry}/${r.value.repository}`);
          expect(r.value.registry).toBe(r.value.registry.toLowerCase());
          if (r.value.digest !== undefined) expect(r.value.digest).toBe(r.value.digest.toLowerCase());
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('parse(format(parse(x))) equals parse(x)', () => {
    fc.assert(
      fc.property(imageArb, (s) => {
        const first = parseImageReference(s);
        fc.pre(first.ok);
        if (!first.ok) return;
        const again = parseImageReference(formatImageReference(first.value));
        expect(again).toEqual(first);
        // The formatted form is a fixed point.
        expect(again.ok && formatImageReference(again.value)).toBe(formatImageReference(first.value));
      }),
      { numRuns: 1000 },
    );
  });
});
