import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { admissionReview, fixture, type Json } from '../../../test/support/k8s.js';
import { reviewText } from './review-text.js';

/** The value with every `managedFields` property that holds an array set to `[]`: what reviewText must parse to. */
function emptied(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(emptied);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'managedFields' && Array.isArray(v) ? [] : emptied(v)]));
}

const parsed = (text: string) => JSON.parse(reviewText(Buffer.from(text, 'utf8'))) as unknown;

const FIXTURES = readdirSync(new URL('../../../testdata/k8s/', import.meta.url)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));

describe('reviewText', () => {
  it.each(FIXTURES)('%s: an AdmissionReview as the API server encodes it parses as if its managedFields were empty', (name) => {
    const object = fixture(name);
    const review = admissionReview(object, { operation: 'UPDATE', oldObject: fixture(name) });
    const text = JSON.stringify(review);
    const out = reviewText(Buffer.from(text));
    expect(JSON.parse(out)).toEqual(emptied(review));
    const managed = (object['metadata'] as Json | undefined)?.['managedFields'];
    if (Array.isArray(managed) && managed.length > 0) expect(out.length).toBeLessThan(text.length);
  });

  it('cuts exactly: strings with brackets, quotes, backslashes and non-ASCII text inside and around the array', () => {
    const review = {
      request: {
        uid: 'ü-1',
        object: {
          metadata: {
            annotations: { note: 'ends with a backslash \\', other: '[{"managedFields":[1]}]', 'x"managedFields': 'y' },
            managedFields: [{ manager: 'kubectl ]}[{ "\\"\\\\', fieldsV1: { 'f:spec': { 'k:{"name":"web"}': {} } }, note: '…日本' }, [], [[{}]]],
            labels: { app: 'wéb' },
          },
          spec: { containers: [{ name: 'web', image: 'gcr.io/p/web@sha256:' + 'a'.repeat(64) }] },
        },
      },
    };
    expect(parsed(JSON.stringify(review))).toEqual(emptied(review));
  });

  it('leaves the key alone where it is text: inside a string, or a key that only ends with the name', () => {
    const inString = { a: 'x,"managedFields":[1,2]', b: '{"managedFields":["y"]}' };
    expect(parsed(JSON.stringify(inString))).toEqual(inString);
    const longerKey = { 'x"managedFields': [1, 2], '\\"managedFields': [3], xmanagedFields: [4], '{managedFields': [5], ',managedFields': [6] };
    expect(parsed(JSON.stringify(longerKey))).toEqual(longerKey);
  });

  it('empties every managedFields array wherever it is, and only arrays', () => {
    const value = { managedFields: [1], a: { managedFields: { kept: true } }, b: [{ managedFields: ['x'] }], c: { managedFields: 'text' } };
    expect(parsed(JSON.stringify(value))).toEqual({ managedFields: [], a: { managedFields: { kept: true } }, b: [{ managedFields: [] }], c: { managedFields: 'text' } });
  });

  it('cuts nothing in JSON that is not compact, and returns the text as it was', () => {
    const review = admissionReview(fixture('pod'));
    const text = JSON.stringify(review, null, 2);
    expect(reviewText(Buffer.from(text))).toBe(text);
  });

  it('leaves an array that does not close as it is, so the parser reports it', () => {
    const text = '{"request":{"object":{"metadata":{"managedFields":[{"a":"]"}';
    expect(reviewText(Buffer.from(text))).toBe(text);
    expect(() => JSON.parse(reviewText(Buffer.from(text)))).toThrow(SyntaxError);
    const mismatched = '{"managedFields":[1}, "x": 2}';
    expect(reviewText(Buffer.from(mismatched))).toBe(mismatched);
  });

  it('agrees with JSON.parse on random documents full of the characters that matter', () => {
    // A small deterministic generator: keys and strings built from quotes, backslashes,
    // brackets, commas, colons, non-ASCII text and the key itself, nested a few levels deep.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const atoms = ['"', '\\', '[', ']', '{', '}', ',', ':', 'managedFields', '"managedFields":[', '…', 'é', 'a', ' ', '\n', '\u2028'];
    const str = () => Array.from({ length: rand(6) }, () => atoms[rand(atoms.length)]).join('');
    const gen = (depth: number): unknown => {
      const r = rand(depth > 3 ? 3 : 6);
      if (r === 0) return str();
      if (r === 1) return rand(1000);
      if (r === 2) return rand(2) === 0;
      if (r === 3) return Array.from({ length: rand(4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = 0; i < rand(5); i++) o[rand(3) === 0 ? 'managedFields' : str()] = gen(depth + 1);
      return o;
    };
    for (let i = 0; i < 2_000; i++) {
      const doc = gen(0);
      expect(parsed(JSON.stringify(doc))).toEqual(emptied(doc));
    }
  });
});
