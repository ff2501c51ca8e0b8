import fc from 'fast-check';
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
    // Keys and strings built from quotes, backslashes, brackets, commas, colons, non-ASCII text
    // and the key itself; `managedFields` keys common enough to hold every kind of value.
    const atoms = ['"', '\\', '[', ']', '{', '}', ',', ':', 'managedFields', '"managedFields":[', '…', 'é', 'a', ' ', '\n', '\u2028'];
    const text = fc.array(fc.constantFrom(...atoms), { maxLength: 6 }).map((parts) => parts.join(''));
    const key = fc.oneof(text, fc.constant('managedFields'));
    const { doc } = fc.letrec<{ doc: unknown }>((tie) => ({
      doc: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        text,
        fc.integer(),
        fc.boolean(),
        fc.array(tie('doc'), { maxLength: 4 }),
        fc.dictionary(key, tie('doc'), { maxKeys: 5 }),
      ),
    }));
    fc.assert(
      fc.property(doc, (d) => {
        expect(parsed(JSON.stringify(d))).toEqual(emptied(d));
      }),
      { numRuns: 2_000 },
    );
  });
});
