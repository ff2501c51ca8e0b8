import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cString, parseCrc32cField } from './crc32c.js';

/** The textbook bit-at-a-time definition, to check the table-driven one against. */
function bitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('crc32c', () => {
  it('matches the published check values', () => {
    // The CRC catalogue's check value, and the RFC 3720 (iSCSI) B.4 test vectors.
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0x00))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
    const iscsiRead = Buffer.from(
      '01c00000000000000000000000000000' + '14000000000004000000001400000018' + '28000000000000000200000000000000',
      'hex',
    );
    expect(crc32c(iscsiRead)).toBe(0xd9963a56);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(Buffer.from('a'))).toBe(0xc1d04330);
  });

  it('agrees with the bit-at-a-time definition at every length and alignment', () => {
    const data = randomBytes(300);
    for (let start = 0; start < 9; start++) {
      for (let len = 0; len + start <= data.length; len += 7) {
        const slice = data.subarray(start, start + len);
        expect(crc32c(slice)).toBe(bitwise(slice));
      }
    }
  });

  it('continues over data in pieces', () => {
    const data = randomBytes(1000);
    expect(crc32c(data.subarray(123), crc32c(data.subarray(0, 123)))).toBe(crc32c(data));
  });

  it('formats checksums as KMS does (int64 as a decimal string)', () => {
    expect(crc32cString(Buffer.from('123456789'))).toBe(String(0xe3069283));
  });

  it('parses checksum fields as strings or numbers and refuses anything else', () => {
    expect(parseCrc32cField(undefined)).toBeUndefined();
    expect(parseCrc32cField('3808858755')).toBe(3808858755);
    expect(parseCrc32cField(42)).toBe(42);
    for (const bad of ['-1', '4294967296', 'abc', '1.5', 1.5, -3, true, {}]) expect(() => parseCrc32cField(bad)).toThrow(RangeError);
  });
});
