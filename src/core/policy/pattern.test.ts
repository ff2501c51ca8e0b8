import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatImageReference, parseImageReference } from '../image/reference.js';
import { exemptPatternMatches, parseExemptPattern, patternMatchesImage, type ExemptPattern } from './pattern.js';

const H1 = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);
const H2 = 'b'.repeat(64);
const D1 = `sha256:${H1}`;
const D2 = `sha256:${H2}`;

/** [pattern, image, expected match] */
const matches: ReadonlyArray<readonly [string, string, boolean]> = [
  // Bare names: any tag and/or digest
  ['gcr.io/p/app', 'gcr.io/p/app', true],
  ['gcr.io/p/app', 'gcr.io/p/app:latest', true],
  ['gcr.io/p/app', `gcr.io/p/app@${D1}`, true],
  ['gcr.io/p/app', `gcr.io/p/app:v1@${D1}`, true],
  ['gcr.io/p/app', 'gcr.io/p/app2', false],
  ['gcr.io/p/app', 'gcr.io/p/app/sub', false],
  ['gcr.io/p/app', 'gcr.io/q/app', false],
  ['gcr.io/p/app', 'us.gcr.io/p/app', false],
  // name:tag
  ['gcr.io/p/app:v1', 'gcr.io/p/app:v1', true],
  ['gcr.io/p/app:v1', `gcr.io/p/app:v1@${D1}`, true],
  ['gcr.io/p/app:v1', 'gcr.io/p/app:v10', false],
  ['gcr.io/p/app:v1', 'gcr.io/p/app', false],
  ['gcr.io/p/app:v1', `gcr.io/p/app@${D1}`, false],
  ['gcr.io/p/app:V1', 'gcr.io/p/app:v1', false],
  // name:prefix*
  ['gcr.io/p/app:v1.*', 'gcr.io/p/app:v1.2', true],
  ['gcr.io/p/app:v1.*', 'gcr.io/p/app:v1.', true],
  ['gcr.io/p/app:v1.*', `gcr.io/p/app:v1.0@${D1}`, true],
  ['gcr.io/p/app:v1.*', 'gcr.io/p/app:v2.0', false],
  ['gcr.io/p/app:v1.*', 'gcr.io/p/app:v1', false],
  ['gcr.io/p/app:v1.*', `gcr.io/p/app@${D1}`, false],
  ['gcr.io/p/app:v1.*', 'gcr.io/p/app', false],
  ['gcr.io/p/app:v1.*', 'gcr.io/p/app2:v1.0', false],
  // name:* and name@* — every version, like the bare name
  ['gcr.io/p/app:*', 'gcr.io/p/app', true],
  ['gcr.io/p/app:*', 'gcr.io/p/app:anything', true],
  ['gcr.io/p/app:*', `gcr.io/p/app@${D1}`, true],
  ['gcr.io/p/app:*', 'gcr.io/p/app2:x', false],
  ['gcr.io/p/app@*', 'gcr.io/p/app:v1', true],
  ['gcr.io/p/app@*', `gcr.io/p/app@${D2}`, true],
  ['gcr.io/p/app@*', 'gcr.io/p/app/x', false],
  // name@digest
  [`gcr.io/p/app@${D1}`, `gcr.io/p/app@${D1}`, true],
  [`gcr.io/p/app@${D1}`, `gcr.io/p/app:any@${D1}`, true],
  [`gcr.io/p/app@sha256:${H1.toUpperCase()}`, `gcr.io/p/app@${D1}`, true],
  [`gcr.io/p/app@${D1}`, `gcr.io/p/app@${D2}`, false],
  [`gcr.io/p/app@${D1}`, 'gcr.io/p/app:v1', false],
  [`gcr.io/p/app@${D1}`, `gcr.io/q/app@${D1}`, false],
  // name:tag@digest — exactly
  [`gcr.io/p/app:v1@${D1}`, `gcr.io/p/app:v1@${D1}`, true],
  [`gcr.io/p/app:v1@${D1}`, `gcr.io/p/app@${D1}`, false],
  [`gcr.io/p/app:v1@${D1}`, `gcr.io/p/app:v2@${D1}`, false],
  [`gcr.io/p/app:v1@${D1}`, 'gcr.io/p/app:v1', false],
  // Trailing * — one level, tag and digest ignored
  ['gcr.io/my-project/nginx*', 'gcr.io/my-project/nginx:latest', true],
  ['gcr.io/my-project/nginx*', 'gcr.io/my-project/nginx', true],
  ['gcr.io/my-project/nginx*', `gcr.io/my-project/nginx-x@${D1}`, true],
  ['gcr.io/my-project/nginx*', 'gcr.io/my-project/nginx-images/nginx', false],
  ['gcr.io/my-project/nginx*', 'gcr.io/my-project/ngin', false],
  ['gcr.io/my-project/*', 'gcr.io/my-project/app:v1', true],
  ['gcr.io/my-project/*', 'gcr.io/my-project/team/app', false],
  ['gcr.io/my-project/*', 'gcr.io/my-project-exploit/app', false],
  ['gcr.io/*', 'gcr.io/app', true],
  ['gcr.io/*', 'gcr.io/p/app', false],
  // Trailing ** — any depth, and (documented caution) any suffix of the last component
  ['gcr.io/my-project/**', 'gcr.io/my-project/team/app:v1', true],
  ['gcr.io/my-project/**', 'gcr.io/my-project/app', true],
  ['gcr.io/my-project/**', 'gcr.io/my-project-exploit/app', false],
  ['gcr.io/my-project**', 'gcr.io/my-project-exploit/x', true],
  ['gcr.io/my-project**', 'gcr.io/my-project/a/b/c', true],
  ['gcr.io/my-project/nginx**', 'gcr.io/my-project/nginx-1.14.2/image:latest', true],
  ['gcr.io/**', 'gcr.io/a/b/c/d', true],
  ['gcr.io/**', 'gcr.io.evil.com/a', false],
  ['gcr.io/**', 'us.gcr.io/a', false],
  ['k8s.gcr.io/**', `k8s.gcr.io/pause:3.9@${D1}`, true],
  // Ports and localhost
  ['localhost:5000/app', 'localhost:5000/app:v1', true],
  ['localhost:5000/app', 'localhost/app', false],
  ['localhost:5000/app', 'localhost:5001/app', false],
  ['localhost:5000/*', 'localhost:5000/app', true],
  ['localhost:5000/*', 'localhost:5000/a/b', false],
  ['localhost/**', 'localhost/a/b', true],
  ['localhost/**', 'localhost:5000/a', false],
  ['10.0.0.1:5000/**', '10.0.0.1:5000/x/y', true],
  ['[::1]:5000/app:v1', 'https://[::1]:5000/app:v1', true],
  ['gcr.io:443/p/app', 'gcr.io/p/app', false],
  // Docker Hub, both ways
  ['nginx', 'docker.io/library/nginx:1.25', true],
  ['docker.io/library/nginx', 'nginx:1.25', true],
  ['index.docker.io/nginx', 'nginx', true],
  ['nginx:1.*', 'registry-1.docker.io/library/nginx:1.25', true],
  ['nginx', 'docker.io/user/nginx', false],
  ['user/app', 'docker.io/user/app:v1', true],
  ['docker.io/user/*', 'user/app', true],
  ['docker.io/user/*', 'nginx', false],
  ['docker.io/library/*', 'nginx:latest', true],
  ['docker.io/**', 'user/app', true],
  ['index.docker.io/**', 'nginx', true],
  ['docker.io/ngin**', 'nginx', false],
  ['nginx@*', 'docker.io/library/nginx@' + D1, true],
  // Upper-case hosts and scheme prefixes normalize like images
  ['GCR.IO/p/app', 'gcr.io/p/app:v1', true],
  ['gcr.io/p/app', 'GCR.io/p/app:v1', true],
  ['https://gcr.io/p/*', 'gcr.io/p/app', true],
  ['HTTP://GCR.IO/p/**', 'https://gcr.io/p/a/b', true],
  ['gcr.io/p/app:v1', 'https://gcr.io/p/app:v1', true],
];

/** [pattern, reason substring] */
const invalid: ReadonlyArray<readonly [string, string]> = [
  ['', 'empty'],
  [' ', 'whitespace'],
  ['gcr.io/p/app\n', 'control character'],
  ['gcr.io/p/n*x', 'very end'],
  ['gcr.io/p/*/app', 'very end'],
  ['gcr.i*', 'after the registry/ part'],
  ['*', 'after the registry/ part'],
  ['**', 'after the registry/ part'],
  ['*/foo', 'after the registry/ part'],
  ['gcr.io**', 'after the registry/ part'],
  ['nginx*', 'after the registry/ part'],
  ['library/nginx*', 'not a registry'],
  ['user/*', 'not a registry'],
  ['gcr.io/p/***', "'***'"],
  ['gcr.io/p/****', "'****'"],
  ['gcr.io/p/*:latest', 'cannot be combined with a tag'],
  ['gcr.io/p/**:v1*', 'cannot be combined with a tag'],
  [`gcr.io/p/*@${D1}`, 'cannot be combined with a digest'],
  [`gcr.io/p/app:v1*@${D1}`, 'cannot be combined with a digest'],
  [`gcr.io/p/app:*@${D1}`, 'cannot be combined with a digest'],
  ['gcr.io/p/app:v1@*', "'@*' cannot be combined with a tag"],
  ['gcr.io/p/*@*', 'very end'],
  ['gcr.io/p/app@*@*', 'very end'],
  ['gcr.io/p/app:v*1', 'very end'],
  ['gcr.io/p/app:v1**', "single trailing '*'"],
  ['gcr.io/p/app:**', "single trailing '*'"],
  ['gcr.io/p/app:.v*', 'tag prefix'],
  ['gcr.io/p/app:', 'empty tag'],
  ['gcr.io/p/app@', 'empty digest'],
  ['gcr.io/p/app@sha256:abc', '64 hex'],
  ['gcr.io/p/app:bad tag', 'whitespace'],
  ['gcr.io//p/*', "'//'"],
  ['gcr.io/p/', "ends with '/'"],
  ['gcr.io/My-Project/*', 'lower-case'],
  ['gcr.io/p/Ngin*', 'lower-case'],
  ['gcr.io/p/-ngin*', 'cannot begin'],
  ['gcr.io/p/a._*', 'cannot begin'],
  ['docker.io/*', 'can never match'],
  ['docker.io/ngin*', 'can never match'],
  ['gcr.io:99999/*', 'port'],
  ['ftp://gcr.io/p/*', 'scheme'],
  [`gcr.io/${'a'.repeat(260)}*`, 'too long'],
  ['x'.repeat(1 << 20), 'too long'],
];

describe('exempt patterns: matching table', () => {
  it.each(matches)('%s vs %s → %s', (pattern, image, expected) => {
    expect(patternMatchesImage(pattern, image)).toEqual({ ok: true, value: expected });
  });

  it('has at least 45 match cases and 12 invalid patterns', () => {
    expect(matches.length).toBeGreaterThanOrEqual(45);
    expect(invalid.length).toBeGreaterThanOrEqual(12);
  });
});

describe('exempt patterns: invalid', () => {
  it.each(invalid)('%j is rejected (%s)', (pattern, reason) => {
    const r = parseExemptPattern(pattern);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('INVALID_EXEMPT_PATTERN');
    expect(r.error.message).toContain(reason);
    expect(r.error.message).toMatch(/^[\x20-\x7e]*$/);
    expect(r.error.message.length).toBeLessThan(600);
  });

  it('patternMatchesImage reports an invalid image as an error', () => {
    const r = patternMatchesImage('gcr.io/p/*', 'gcr.io/p/App');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe('INVALID_IMAGE_REFERENCE');
  });
});

describe('exempt patterns: parsed shape', () => {
  it.each([
    ['nginx', { kind: 'repository', name: 'docker.io/library/nginx', normalized: 'docker.io/library/nginx' }],
    ['gcr.io/p/app:*', { kind: 'repository', name: 'gcr.io/p/app', normalized: 'gcr.io/p/app' }],
    ['gcr.io/p/app@*', { kind: 'repository', name: 'gcr.io/p/app', normalized: 'gcr.io/p/app' }],
    ['gcr.io/p/app:v1', { kind: 'tag', name: 'gcr.io/p/app', tag: 'v1', normalized: 'gcr.io/p/app:v1' }],
    ['nginx:1.*', { kind: 'tagPrefix', name: 'docker.io/library/nginx', tagPrefix: '1.', normalized: 'docker.io/library/nginx:1.*' }],
    [`gcr.io/p/app@${D1}`, { kind: 'digest', name: 'gcr.io/p/app', digest: D1, normalized: `gcr.io/p/app@${D1}` }],
    [
      `gcr.io/p/app:v1@${D1}`,
      { kind: 'tagAndDigest', name: 'gcr.io/p/app', tag: 'v1', digest: D1, normalized: `gcr.io/p/app:v1@${D1}` },
    ],
    ['HTTPS://GCR.IO/p/ngin*', { kind: 'namePrefix', prefix: 'gcr.io/p/ngin', normalized: 'gcr.io/p/ngin*' }],
    ['index.docker.io/**', { kind: 'namePrefixDeep', prefix: 'docker.io/', normalized: 'docker.io/**' }],
  ] as const)('%s', (raw, expected) => {
    expect(parseExemptPattern(raw)).toEqual({ ok: true, value: { raw, ...expected } });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties (generators mirror the ones in reference.test.ts)

const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
const alnum = fc.string({ unit: fc.constantFrom(...lower), minLength: 1, maxLength: 6 });
const component = fc
  .tuple(alnum, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--'), alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(''));
const pathArb = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join('/'));
const tagArb = fc
  .tuple(fc.constantFrom(...'Aa0_'), fc.string({ unit: fc.constantFrom(...'ABCabc019_.-'), maxLength: 12 }))
  .map(([h, t]) => h + t);
const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 64, maxLength: 64 });
const registryArb = fc.constantFrom(
  'gcr.io',
  'GCR.IO',
  'us-docker.pkg.dev',
  'docker.io',
  'index.docker.io',
  'localhost',
  'localhost:5000',
  '10.0.0.1:5000',
  '[::1]:5000',
);
/** An image written under `registry` (with an optional scheme, tag and digest). */
const imageUnder = (registry: fc.Arbitrary<string>) =>
  fc
    .record({
      scheme: fc.constantFrom('', 'https://', 'HTTP://'),
      registry,
      path: pathArb,
      tag: fc.option(tagArb, { nil: undefined }),
      digest: fc.option(hex64.map((h) => `sha256:${h}`), { nil: undefined }),
    })
    .map((r) => ({
      registry: r.registry,
      image:
        `${r.scheme}${r.registry}/${r.path}` +
        `${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`,
    }));

const patternish = fc.string({ unit: fc.constantFrom(...'aZ0:/@.-_*[]'), maxLength: 200 });
/** Well-formed patterns of every kind. */
const validPattern = fc
  .tuple(
    fc.constantFrom('', 'https://'),
    registryArb,
    pathArb,
    fc.oneof(
      fc.constantFrom('', ':*', '@*', '*', '**', '/*', '/**', '-*'),
      tagArb.map((t) => `:${t}`),
      tagArb.map((t) => `:${t}*`),
      hex64.map((h) => `@sha256:${h}`),
      fc.tuple(tagArb, hex64).map(([t, h]) => `:${t}@sha256:${h}`),
    ),
  )
  .map(([scheme, registry, path, suffix]) => `${scheme}${registry}/${path}${suffix}`);

describe('exempt pattern properties', () => {
  it('parseExemptPattern never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.string({ unit: 'grapheme', maxLength: 200 }),
          fc.string({ unit: 'grapheme-ascii', minLength: 500, maxLength: 3000 }),
          patternish,
        ),
        (s) => {
          const r = parseExemptPattern(s);
          expect(typeof r.ok).toBe('boolean');
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('matching never throws for any parsed pattern and image', () => {
    fc.assert(
      fc.property(patternish, imageUnder(registryArb), (p, { image }) => {
        const r = patternMatchesImage(p, image);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('a bare-name pattern built from any valid reference matches that reference', () => {
    fc.assert(
      fc.property(imageUnder(registryArb), ({ image }) => {
        const ref = parseImageReference(image);
        fc.pre(ref.ok);
        if (!ref.ok) return;
        for (const raw of [ref.value.name, `${ref.value.name}:*`, `${ref.value.name}@*`]) {
          const pattern = parseExemptPattern(raw);
          expect(pattern.ok).toBe(true);
          if (pattern.ok) expect(exemptPatternMatches(pattern.value, ref.value)).toBe(true);
        }
        // And the full reference, used as a pattern, matches it too.
        const exact = parseExemptPattern(formatImageReference(ref.value));
        expect(exact.ok && exemptPatternMatches(exact.value, ref.value)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('a registry/** pattern matches every image under that registry', () => {
    fc.assert(
      fc.property(imageUnder(registryArb), fc.constantFrom('', 'https://', 'HTTPS://'), ({ registry, image }, scheme) => {
        const r = patternMatchesImage(`${scheme}${registry}/**`, image);
        expect(r).toEqual({ ok: true, value: true });
      }),
      { numRuns: 1000 },
    );
  });

  it('a directory/* pattern matches images directly in it and nothing deeper', () => {
    fc.assert(
      fc.property(registryArb, pathArb, component, component, (registry, dir, leaf, deeper) => {
        fc.pre(registry.toLowerCase() !== 'docker.io' && registry.toLowerCase() !== 'index.docker.io');
        const pattern = `${registry}/${dir}/*`;
        expect(patternMatchesImage(pattern, `${registry}/${dir}/${leaf}:t`)).toEqual({ ok: true, value: true });
        expect(patternMatchesImage(pattern, `${registry}/${dir}/${leaf}/${deeper}`)).toEqual({ ok: true, value: false });
      }),
      { numRuns: 500 },
    );
  });

  it('generated well-formed patterns parse', () => {
    fc.assert(
      fc.property(validPattern, (p) => {
        const r = parseExemptPattern(p);
        // The only rejections: over-long names, and one-level wildcards in Docker Hub's top level.
        if (!r.ok) expect(r.error.message).toMatch(/too long|can never match/);
      }),
      { numRuns: 1000 },
    );
  });

  it('a parsed pattern re-parses from its normalized form to the same kind and fields', () => {
    fc.assert(
      fc.property(fc.oneof(validPattern, patternish), (p) => {
        const first = parseExemptPattern(p);
        fc.pre(first.ok);
        if (!first.ok) return;
        const again = parseExemptPattern(first.value.normalized);
        expect(again.ok).toBe(true);
        if (!again.ok) return;
        const strip = ({ raw: _r, ...rest }: ExemptPattern) => rest;
        expect(strip(again.value)).toEqual(strip(first.value));
      }),
      { numRuns: 2000 },
    );
  });
});
