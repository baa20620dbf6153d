/**
 * CRC-64/Jones, as Redis computes it (crc64.c: reflected, polynomial 0xad93d23594c935a9, init 0, no final
 * xor): the checksum in the last 8 bytes of an RDB file. 64-bit values are kept as two 32-bit halves so
 * the hot loop stays in small integers; eight tables (slicing-by-8) process 8 bytes per step.
 */
/** Slicing-by-8 tables, flat: entry i of table k is at k * 256 + i. */
const LO = new Uint32Array(8 * 256);
const HI = new Uint32Array(8 * 256);
{
  // The polynomial, bit-reversed (reflected): 0x95ac9329ac4bc9b5.
  const POLY_HI = 0x95ac9329;
  const POLY_LO = 0xac4bc9b5;
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let bit = 0; bit < 8; bit++) {
      const lsb = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi >>>= 1;
      if (lsb) {
        lo = (lo ^ POLY_LO) >>> 0;
        hi = (hi ^ POLY_HI) >>> 0;
      }
    }
    LO[i] = lo;
    HI[i] = hi;
  }
  for (let k = 1; k < 8; k++) {
    for (let i = 0; i < 256; i++) {
      // T[k][i] = T[0][T[k-1][i] & 0xff] ^ (T[k-1][i] >>> 8)
      const pl = LO[(k - 1) * 256 + i]!;
      const ph = HI[(k - 1) * 256 + i]!;
      LO[k * 256 + i] = (LO[pl & 0xff]! ^ ((pl >>> 8) | (ph << 24))) >>> 0;
      HI[k * 256 + i] = (HI[pl & 0xff]! ^ (ph >>> 8)) >>> 0;
    }
  }
}

/** An incremental CRC-64/Jones. */
export class Crc64 {
  #lo = 0;
  #hi = 0;

  update(data: Uint8Array): this {
    let lo = this.#lo;
    let hi = this.#hi;
    let i = 0;
    const n = data.length;
    const end8 = n - (n % 8);
    for (; i < end8; i += 8) {
      const a = (lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
      const b =
        (hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24))) >>> 0;
      const x0 = 1792 + (a & 0xff);
      const x1 = 1536 + ((a >>> 8) & 0xff);
      const x2 = 1280 + ((a >>> 16) & 0xff);
      const x3 = 1024 + (a >>> 24);
      const x4 = 768 + (b & 0xff);
      const x5 = 512 + ((b >>> 8) & 0xff);
      const x6 = 256 + ((b >>> 16) & 0xff);
      const x7 = b >>> 24;
      lo = (LO[x0]! ^ LO[x1]! ^ LO[x2]! ^ LO[x3]! ^ LO[x4]! ^ LO[x5]! ^ LO[x6]! ^ LO[x7]!) >>> 0;
      hi = (HI[x0]! ^ HI[x1]! ^ HI[x2]! ^ HI[x3]! ^ HI[x4]! ^ HI[x5]! ^ HI[x6]! ^ HI[x7]!) >>> 0;
    }
    for (; i < n; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = (LO[idx]! ^ ((lo >>> 8) | (hi << 24))) >>> 0;
      hi = (HI[idx]! ^ (hi >>> 8)) >>> 0;
    }
    this.#lo = lo;
    this.#hi = hi;
    return this;
  }

  /** The CRC as a bigint. */
  value(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }
}

/** CRC-64/Jones of `data` in one call. */
export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).value();
}
