import { createHash } from 'node:crypto';
import { Duplex, pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { VerifyError } from '../util/errors.ts';
import type { CompressionAlgorithm } from './compression.ts';
import { createDecompressor } from './compression.ts';
import { DecryptError, type DecryptionKey, decryptStream } from './encryption.ts';
import type { MemoryGovernor } from './memory.ts';

/**
 * Chains a stored object's byte stream through optional meters, the decryption stage of an encrypted
 * object (`decryptStage`) and the decompressor, returning the raw dump as one stream. An error in any
 * stage (a read error, ciphertext that fails authentication, corrupt compressed data) destroys the chain
 * and surfaces as an error of the returned stream.
 */
export function rawDumpStream(
  stored: NodeJS.ReadableStream,
  algorithm: CompressionAlgorithm,
  stages: { stored?: Transform | undefined; decrypt?: Duplex | undefined; raw?: Transform | undefined } = {},
): Readable {
  const all = [stages.stored, stages.decrypt, createDecompressor(algorithm), stages.raw].filter(
    (s): s is NonNullable<typeof s> => s !== undefined,
  );
  return chain(stored, ...all);
}

/**
 * A stream stage that decrypts an age file (pipeline/encryption.ts), about one 64 KiB chunk at a time.
 * Ciphertext that cannot be decrypted (a wrong key, tampering, truncation) fails the stage with a
 * VerifyError (`decrypt`) for backup `id` before any unauthenticated byte passes it.
 */
export function decryptStage(id: string, key: DecryptionKey): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    try {
      yield* decryptStream(source, key);
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err;
      throw new VerifyError(id, 'decrypt', err.message, { cause: err });
    }
  });
}

/** What a checked read compares the stored object with (a manifest holds all of it). */
export interface StoredExpectation {
  /** The backup's id and the object's key, for messages. */
  id: string;
  object: string;
  compression: CompressionAlgorithm;
  /** Size and sha256 of the stored (compressed, and encrypted if it is) bytes. */
  storedBytes: number;
  sha256: string;
  /** Size of the raw dump, after decompression. */
  sizeBytes: number;
}

/**
 * The raw dump of a stored object, checked against its manifest on the way, for restore: the stored bytes
 * are counted and hashed as they flow and compared with the manifest at their end, the decompressed bytes
 * may not pass `sizeBytes` (a decompression bomb stops at `sizeBytes + 1`) and must reach it, and the last
 * chunk of the dump is held back until all of that has passed. So a reader of this stream (a restore
 * tool) never sees the end of a dump whose bytes differ from the manifest: the stream fails with a
 * VerifyError (`checksum` or `size`) instead, and a tool that commits only at the end of its input
 * commits nothing.
 */
export function checkedDumpStream(
  stored: NodeJS.ReadableStream,
  expected: StoredExpectation,
  options: {
    onStoredBytes?: ((n: number) => void) | undefined;
    memory?: MemoryGovernor | undefined;
    /** The key of an encrypted object: it is decrypted after the check, before the decompressor. */
    decrypt?: DecryptionKey | undefined;
  } = {},
): Readable {
  const check = new StoredCheck(expected, options);
  const decrypt = options.decrypt ? decryptStage(expected.id, options.decrypt) : undefined;
  const raw = new ByteLimit(expected.sizeBytes, {
    exact: true,
    tooMany: () => decompressesPast(expected),
    tooFew: (n) =>
      new VerifyError(
        expected.id,
        'size',
        `the dump decompresses to ${n} bytes, the manifest says ${expected.sizeBytes}`,
      ),
  });
  const stages = [check, decrypt, createDecompressor(expected.compression), raw, new HoldBackLast()];
  return chain(stored, ...stages.filter((s): s is Duplex => s !== undefined));
}

/** The error of a stored object that decompresses to more bytes than its manifest records. */
export function decompressesPast(expected: StoredExpectation): VerifyError {
  return new VerifyError(
    expected.id,
    'size',
    `${expected.object} decompresses past the ${expected.sizeBytes} bytes its manifest records; reading stopped there`,
  );
}

/**
 * Counts and hashes the stored bytes of a backup: fails as soon as more bytes arrive than the manifest
 * records (reading stops there), and at the end when the count or the sha256 differs from it.
 */
export class StoredCheck extends Transform {
  bytes = 0;
  readonly #hash = createHash('sha256');
  readonly #expected: StoredExpectation;
  readonly #onBytes: ((n: number) => void) | undefined;
  readonly #memory: MemoryGovernor | undefined;

  constructor(
    expected: StoredExpectation,
    options: { onStoredBytes?: ((n: number) => void) | undefined; memory?: MemoryGovernor | undefined } = {},
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.#expected = expected;
    this.#onBytes = options.onStoredBytes;
    this.#memory = options.memory;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#expected.storedBytes) {
      cb(
        new VerifyError(
          this.#expected.id,
          'size',
          `${this.#expected.object} holds more than the ${this.#expected.storedBytes} bytes its manifest records`,
        ),
      );
      return;
    }
    this.#hash.update(chunk);
    this.#onBytes?.(this.bytes);
    this.#memory?.check();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { id, object, storedBytes, sha256 } = this.#expected;
    if (this.bytes !== storedBytes) {
      cb(
        new VerifyError(
          id,
          'size',
          `read ${this.bytes} bytes of ${object}, the manifest says ${storedBytes}`,
        ),
      );
      return;
    }
    const digest = this.#hash.digest('hex');
    if (digest !== sha256) {
      cb(new VerifyError(id, 'checksum', `sha256 of ${object} is ${digest}, the manifest says ${sha256}`));
      return;
    }
    cb();
  }
}

/**
 * Passes at most `max` bytes: one more fails the stream with `tooMany()` at once, so whatever feeds it (a
 * decompressor) stops. With `exact`, ending short of `max` fails with `tooFew(count)`.
 */
export class ByteLimit extends Transform {
  bytes = 0;
  readonly #max: number;
  readonly #tooMany: () => Error;
  readonly #tooFew: ((n: number) => Error) | undefined;

  constructor(
    max: number,
    options: { tooMany: () => Error; exact?: boolean; tooFew?: (n: number) => Error },
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.#max = max;
    this.#tooMany = options.tooMany;
    this.#tooFew = options.exact ? options.tooFew : undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#max) cb(this.#tooMany());
    else cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#tooFew && this.bytes !== this.#max) cb(this.#tooFew(this.bytes));
    else cb();
  }
}

/**
 * Holds the latest chunk back and lets it go only at a clean end of everything upstream: a failure
 * anywhere before the end (a checksum found wrong at the last byte) means the reader never gets the end
 * of its input.
 */
class HoldBackLast extends Transform {
  #held: Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const previous = this.#held;
    this.#held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.#held);
  }
}

/**
 * Reads a small object (a manifest, a verify record) whole, but never more than `cap` bytes: past that the
 * stream is destroyed and `tooLarge()` thrown, so a huge or endless object cannot exhaust memory.
 */
export async function readCapped(
  stream: NodeJS.ReadableStream & AsyncIterable<Buffer>,
  cap: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > cap) {
      // Leaving the loop early destroys the stream (for await's return), which releases the object.
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * `source` piped through `stages`, as one readable stream: an error anywhere destroys the whole chain
 * and surfaces as an error of the returned stream (which `.pipe()` alone would not do).
 */
export function chain(source: NodeJS.ReadableStream, ...stages: Duplex[]): Readable {
  if (stages.length === 0) return source as Readable;
  // The callback form returns the last stream; errors reach consumers through it, so the callback is a no-op.
  return pipeline(
    [source, ...stages] as unknown as [NodeJS.ReadableStream, ...NodeJS.WritableStream[]],
    () => {},
  ) as unknown as Readable;
}
