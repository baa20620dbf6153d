/** LZF, the compression RDB files use for long strings. */
import { RdbError } from './rdb-format.ts';

/** LZF decompression (lzf_d.c), for the few strings the RDB reader needs to see. Throws RdbError. */
export function lzfDecompress(input: Buffer, outLen: number): Buffer {
  const out = Buffer.alloc(outLen);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      const run = ctrl + 1;
      if (op + run > outLen || ip + run > input.length) throw new RdbError('damaged LZF-compressed string');
      input.copy(out, op, ip, ip + run);
      op += run;
      ip += run;
    } else {
      let len = ctrl >> 5;
      if (len === 7) len += input[ip++]!;
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++]!;
      len += 2;
      if (ref < 0 || op + len > outLen) throw new RdbError('damaged LZF-compressed string');
      for (let i = 0; i < len; i++) out[op++] = out[ref + i]!;
    }
  }
  if (op !== outLen) throw new RdbError('damaged LZF-compressed string');
  return out;
}
