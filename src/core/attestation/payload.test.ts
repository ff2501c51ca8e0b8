import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasGcloud, readFixtureText, runGcloud } from '../../../test/support/fixtures.js';
import { createSignaturePayload, parseSignaturePayload } from './payload.js';

interface Case { url: string; payload: string }
const cases = JSON.parse(readFixtureText('payloads', 'cases.json')) as Case[];

describe('createSignaturePayload', () => {
  it('has recorded gcloud output to compare against', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  for (const c of cases) {
    it(`matches gcloud byte for byte: ${c.url}`, () => {
      const r = createSignaturePayload(c.url);
      expect(r.ok && r.value).toBe(c.payload);
    });
  }

  it('refuses a tag without a digest, and malformed digests', () => {
    for (const url of ['gcr.io/p/app:v1', 'gcr.io/p/app@sha256:abc', 'gcr.io/p/app@sha256:' + 'A'.repeat(64), 'gcr.io/p/App@sha256:' + 'a'.repeat(64), '']) {
      expect(createSignaturePayload(url).ok, url).toBe(false);
    }
  });

  // The live comparison: run the installed gcloud on URLs it has not seen in the fixtures.
  const gcloud = hasGcloud();
  it.runIf(gcloud)('matches the installed gcloud on fresh URLs', () => {
    const hex = (seed: number) => Array.from({ length: 64 }, (_, i) => ((seed * 7 + i * 13) % 16).toString(16)).join('');
    const urls = [
      `europe-north1-docker.pkg.dev/proj-123/images/team/svc@sha256:${hex(1)}`,
      `https://gcr.io/a-b-c/d.e_f/g@sha256:${hex(2)}`,
      `docker.io/user/x:1.0@sha256:${hex(3)}`,
      `me-west1-docker.pkg.dev/p/r/very/deep/path/to/the/image@sha256:${hex(4)}`,
    ];
    for (const url of urls) {
      const expected = runGcloud(['container', 'binauthz', 'create-signature-payload', `--artifact-url=${url}`]);
      const r = createSignaturePayload(url);
      expect(r.ok && r.value, url).toBe(expected);
    }
  }, 120_000);
});

describe('parseSignaturePayload', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  it('reads what createSignaturePayload writes', () => {
    const r = createSignaturePayload(`gcr.io/p/app@sha256:${'0a'.repeat(32)}`);
    if (!r.ok) throw new Error('payload');
    expect(parseSignaturePayload(enc(r.value))).toEqual({
      ok: true,
      value: { type: 'Google cloud binauthz container signature', digest: `sha256:${'0a'.repeat(32)}`, dockerReference: 'gcr.io/p/app' },
    });
  });

  it('accepts the three known critical.type spellings, case-insensitively', () => {
    for (const type of ['Google cloud binauthz container signature', 'Google Cloud BinAuthz container signature', 'atomic container signature', 'ATOMIC CONTAINER SIGNATURE']) {
      const doc = { critical: { type, image: { 'docker-manifest-digest': `sha256:${'1'.repeat(64)}` }, identity: { 'docker-reference': 'x' } }, optional: { a: 'b' } };
      expect(parseSignaturePayload(enc(JSON.stringify(doc))).ok, type).toBe(true);
    }
  });

  it('names what is wrong', () => {
    const cases: [string, string][] = [
      ['not json', 'MALFORMED_PAYLOAD'],
      ['[]', 'MALFORMED_PAYLOAD'],
      ['{"critical":{}}', 'MALFORMED_PAYLOAD'],
      ['{"critical":{"type":"x","image":{"docker-manifest-digest":"sha256:11"},"identity":{"docker-reference":"r"}}}', 'UNKNOWN_PAYLOAD_TYPE'],
      ['{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"nope"},"identity":{"docker-reference":"r"}}}', 'MALFORMED_PAYLOAD'],
      ['{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"sha256:' + '1'.repeat(64) + '"}}}', 'MALFORMED_PAYLOAD'],
    ];
    for (const [text, code] of cases) {
      const r = parseSignaturePayload(enc(text));
      expect(r.ok ? 'ok' : r.error.code, text).toBe(code);
    }
    const r = parseSignaturePayload(new Uint8Array([0xff, 0xfe, 0x00]));
    expect(r.ok).toBe(false);
  });

  it('never throws on arbitrary bytes or JSON', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => { parseSignaturePayload(b); }));
    fc.assert(fc.property(fc.json(), (j) => { parseSignaturePayload(enc(j)); }));
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => { createSignaturePayload(s); }));
  });
});

