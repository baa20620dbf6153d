/**
 * The part buffers of one multipart upload: allocated as parts need them, reused once their part is
 * stored, and counted as held memory so that the memory governor (pipeline/memory.ts) does not take them
 * for garbage and collect in vain.
 */
import { holdExternal } from '../../pipeline/memory.ts';

export class PartBuffers {
  /** Every buffer allocated, with the release of its hold. */
  readonly #holds = new Map<Buffer, () => void>();
  /** Buffers whose part is stored, ready for another part. */
  readonly #spare: Buffer<ArrayBuffer>[] = [];

  /** A buffer of `size` bytes: a spare one, or a new one. */
  take(size: number): Buffer<ArrayBuffer> {
    return this.#spare.pop() ?? this.#allocate(size);
  }

  /** `buffer`'s part is stored: it can hold another. */
  recycle(buffer: Buffer<ArrayBuffer>): void {
    this.#spare.push(buffer);
  }

  /** After the part size doubles, smaller spares are of no more use: let them go. */
  dropSparesOtherThan(size: number): void {
    for (const b of this.#spare.filter((x) => x.length !== size)) {
      this.#holds.get(b)?.();
      this.#holds.delete(b);
      this.#spare.splice(this.#spare.indexOf(b), 1);
    }
  }

  /** Releases the holds of every buffer; call once no part is in flight any more. */
  releaseAll(): void {
    for (const release of this.#holds.values()) release();
  }

  #allocate(size: number): Buffer<ArrayBuffer> {
    const b = Buffer.allocUnsafe(size);
    this.#holds.set(b, holdExternal(size));
    return b;
  }
}
