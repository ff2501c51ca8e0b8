/**
 * CRC32C (Castagnoli): the checksum Cloud KMS puts on every byte field it sends or receives
 * (`digestCrc32c`, `signatureCrc32c`, `pemCrc32c`). Reflected polynomial 0x82F63B78, initial value
 * and final XOR 0xFFFFFFFF, as in iSCSI (RFC 3720) and gcloud's own `crc32c` module.
 */

const POLYNOMIAL = 0x82f63b78;

/** 8 tables of 256 entries: table 0 is the classic byte table, the rest serve slicing-by-8. */
const TABLES: readonly Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0] as Uint32Array;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n] as number;
    for (let t = 1; t < 8; t++) {
      c = ((t0[c & 0xff] as number) ^ (c >>> 8)) >>> 0;
      (tables[t] as Uint32Array)[n] = c;
    }
  }
  return tables;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/**
 * The CRC32C of `data` as an unsigned 32-bit number. Pass a previous result as `previous` to
 * continue over data that arrives in pieces: `crc32c(b, crc32c(a)) === crc32c(a ‖ b)`.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  // Slicing-by-8: eight bytes per step through the eight tables.
  for (; i < end8; i += 8) {
    const lo = (crc ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0;
    crc =
      (T7[lo & 0xff] as number) ^
      (T6[(lo >>> 8) & 0xff] as number) ^
      (T5[(lo >>> 16) & 0xff] as number) ^
      (T4[lo >>> 24] as number) ^
      (T3[data[i + 4] as number] as number) ^
      (T2[data[i + 5] as number] as number) ^
      (T1[data[i + 6] as number] as number) ^
      (T0[data[i + 7] as number] as number);
  }
  for (; i < data.length; i++) crc = (T0[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The CRC32C as KMS writes int64 checksums in JSON: a decimal string. */
export function crc32cString(data: Uint8Array): string {
  return String(crc32c(data));
}

/**
 * Parses a checksum field as it arrives in JSON (int64 as a decimal string, or a plain number).
 * Returns undefined when absent; throws a RangeError naming the problem when it is not a uint32.
 */
export function parseCrc32cField(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*\d{1,20}\s*$/.test(value)) n = Number(value.trim());
  else throw new RangeError('must be an unsigned 32-bit integer (a decimal string or number)');
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError('must be an unsigned 32-bit integer (a decimal string or number)');
  return n;
}
