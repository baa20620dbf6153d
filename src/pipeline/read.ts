import { pipeline, type Readable, type Transform } from 'node:stream';
import type { CompressionAlgorithm } from '../config/types.ts';
import { createDecompressor } from './compression.ts';

/**
 * Chains a stored object's byte stream through optional meters and the decompressor, returning the raw
 * dump as one stream. An error in any stage (a read error, corrupt compressed data) destroys the chain
 * and surfaces as an error of the returned stream.
 */
export function rawDumpStream(
  stored: NodeJS.ReadableStream,
  algorithm: CompressionAlgorithm,
  meters: { stored?: Transform | undefined; raw?: Transform | undefined } = {},
): Readable {
  const stages = [meters.stored, createDecompressor(algorithm), meters.raw].filter(
    (s): s is NonNullable<typeof s> => s !== undefined,
  );
  return chain(stored, ...stages);
}

/**
 * `source` piped through `stages`, as one readable stream: an error anywhere destroys the whole chain
 * and surfaces as an error of the returned stream (which `.pipe()` alone would not do).
 */
export function chain(source: NodeJS.ReadableStream, ...stages: Transform[]): Readable {
  if (stages.length === 0) return source as Readable;
  // The callback form returns the last stream; errors reach consumers through it, so the callback is a no-op.
  return pipeline(
    [source, ...stages] as unknown as [NodeJS.ReadableStream, ...NodeJS.WritableStream[]],
    () => {},
  ) as unknown as Readable;
}
