import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { MemoryGovernor } from './memory.ts';

/**
 * A pass-through that counts bytes, optionally hashes them (sha256) and reports progress. Placed at any
 * point of a pipeline it measures exactly the bytes that flow there: after the compressor it sees the
 * stored bytes, before it the raw dump.
 */
export class Meter extends Transform {
  bytes = 0;
  readonly #hash: Hash | undefined;
  readonly #onBytes: ((total: number) => void) | undefined;
  readonly #onEmpty: (() => Error) | undefined;
  readonly #memory: MemoryGovernor | undefined;

  constructor(
    options: {
      hash?: boolean;
      onBytes?: (total: number) => void;
      /** Fail at end-of-stream with this error if no byte passed. */
      onEmpty?: () => Error;
      /** Keeps buffer garbage in check on long streams; one meter per pipeline is enough. */
      memory?: MemoryGovernor;
    } = {},
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.#hash = options.hash ? createHash('sha256') : undefined;
    this.#onBytes = options.onBytes;
    this.#onEmpty = options.onEmpty;
    this.#memory = options.memory;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash?.update(chunk);
    this.#onBytes?.(this.bytes);
    this.#memory?.check();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    // Failing here, before end-of-stream reaches storage, keeps an empty dump from ever being committed.
    if (this.#onEmpty && this.bytes === 0) cb(this.#onEmpty());
    else cb();
  }

  /** Hex sha256 of everything that passed; call once the stream has finished. */
  digest(): string {
    if (!this.#hash) throw new Error('Meter created without hash');
    return this.#hash.digest('hex');
  }
}
