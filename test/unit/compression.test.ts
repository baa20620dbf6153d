import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor } from '../../src/pipeline/compression.ts';

const sample = Buffer.from(
  Array.from(
    { length: 20_000 },
    (_, i) => `${i}\torder-${i % 97}\t{"sku": ${i % 13}, "qty": ${i % 7}}\t2026-01-${(i % 28) + 1}\n`,
  ).join(''),
);

async function run(stream: NodeJS.ReadWriteStream): Promise<Buffer> {
  return buffer(Readable.from([sample]).pipe(stream));
}

function zstdWith(params: Record<number, number>) {
  return zlib.createZstdCompress({
    chunkSize: 256 * 1024,
    params: { [zlib.constants.ZSTD_c_checksumFlag]: 1, ...params },
  });
}

describe('compression', () => {
  it('the zstd default is level 2 with hashLog 18; explicit levels are stock zstd', async () => {
    const { ZSTD_c_compressionLevel: level, ZSTD_c_hashLog: hashLog } = zlib.constants;
    const ours = await run(createCompressor({ algorithm: 'zstd', level: undefined })!);
    expect(ours.equals(await run(zstdWith({ [level]: 2, [hashLog]: 18 })))).toBe(true);
    const explicit = await run(createCompressor({ algorithm: 'zstd', level: 5 })!);
    expect(explicit.equals(await run(zstdWith({ [level]: 5 })))).toBe(true);
  });

  it('every algorithm round-trips, and zstd frames carry a checksum', async () => {
    for (const algorithm of ['zstd', 'gzip'] as const) {
      const packed = await run(createCompressor({ algorithm, level: undefined })!);
      expect(packed.length).toBeLessThan(sample.length / 3);
      expect(
        (await buffer(Readable.from([packed]).pipe(createDecompressor(algorithm)!))).equals(sample),
      ).toBe(true);
    }
    expect(createCompressor({ algorithm: 'none', level: undefined })).toBeUndefined();
    const packed = await run(createCompressor({ algorithm: 'zstd', level: undefined })!);
    packed[packed.length - 2]! ^= 0xff; // inside the content checksum
    await expect(buffer(Readable.from([packed]).pipe(createDecompressor('zstd')!))).rejects.toThrow();
  });
});
