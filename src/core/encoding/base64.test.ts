import { describe, expect, it } from 'vitest';
import { decodeBase64Bytes, encodeBase64 } from './base64.js';

const bytesOf = (r: ReturnType<typeof decodeBase64Bytes>) => {
  if (!r.ok) throw new Error(r.error.message);
  return Buffer.from(r.value).toString('hex');
};
const failure = (r: ReturnType<typeof decodeBase64Bytes>) => (r.ok ? undefined : r.error.code);

/** Deterministic bytes of every length 0..n (core tests use no randomness). */
function samples(n: number): Buffer[] {
  return Array.from({ length: n + 1 }, (_, len) => Buffer.from(Array.from({ length: len }, (_, i) => (i * 97 + len * 31 + 7) % 256)));
}

describe('decodeBase64Bytes', () => {
  it('decodes both alphabets, padded or not, and wrapped lines', () => {
    for (const b of samples(70)) {
      const std = b.toString('base64');
      const url = b.toString('base64url'); // unpadded
      const hex = b.toString('hex');
      expect(bytesOf(decodeBase64Bytes(std, 'f')), std).toBe(hex);
      expect(bytesOf(decodeBase64Bytes(std.replace(/=+$/, ''), 'f'))).toBe(hex);
      expect(bytesOf(decodeBase64Bytes(url, 'f')), url).toBe(hex);
      expect(bytesOf(decodeBase64Bytes(url.padEnd(std.length, '='), 'f'))).toBe(hex);
      const wrapped = std.replace(/(.{8})/g, '$1\r\n');
      expect(bytesOf(decodeBase64Bytes(wrapped, 'f'))).toBe(hex);
    }
    expect(bytesOf(decodeBase64Bytes('', 'f'))).toBe('');
  });

  it('round-trips encodeBase64', () => {
    for (const b of samples(40)) expect(bytesOf(decodeBase64Bytes(encodeBase64(new Uint8Array(b)), 'f'))).toBe(b.toString('hex'));
  });

  it('refuses characters outside one alphabet, naming the field', () => {
    const mixed = decodeBase64Bytes('ab+_', 'signature');
    expect(failure(mixed)).toBe('INVALID_BASE64');
    expect(mixed.ok ? '' : mixed.error.message).toContain('signature');
    for (const bad of ['ab cd', 'ab*d', 'abc\u00e9', '=abc', 'ab=c', 'abc===', 'a\tbc']) expect(failure(decodeBase64Bytes(bad, 'f')), JSON.stringify(bad)).toBe('INVALID_BASE64');
  });

  it('refuses impossible lengths', () => {
    // One character left over carries no whole byte; padding must fill the last quantum.
    for (const bad of ['a', 'abcde', 'abcde===', 'abc==', 'ab=', 'abcdef=']) expect(failure(decodeBase64Bytes(bad, 'f')), bad).toBe('INVALID_BASE64');
    for (const good of ['ab', 'abc', 'ab==', 'abc=', 'abcd']) expect(decodeBase64Bytes(good, 'f').ok, good).toBe(true);
  });
});
