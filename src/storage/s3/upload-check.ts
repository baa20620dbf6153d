/**
 * The check of an uploaded object against the bytes that were sent, as `verifyUpload` says: `etag`
 * compares the MD5 the service reports for what it stored (the object's MD5 for a single PUT, the MD5 of
 * the parts' MD5s for a multipart upload; some services report the object's MD5 for both) and reads the
 * object back when that ETag is not the MD5 of what was sent (under SSE-KMS and on some services it is
 * something else; the read-back decides); `read-back` always downloads it and compares size and sha256;
 * `size` asks for the size. A multipart upload's own success is not trusted: a part the service or the
 * SDK lost would otherwise go unnoticed.
 */
import { createHash, type Hash } from 'node:crypto';
import { StorageError } from '../../util/errors.ts';
import type { StorageBackend } from '../backend.ts';
import type { S3VerifyMode } from '../config.ts';
import { type RetryPolicy, retryOperation } from '../retry.ts';

/**
 * Does `etag`, as the service returned it, hold the MD5 of the bytes that were sent? Either the object's
 * MD5 or the multipart form: the MD5 of the parts' MD5s joined in part order, then `-` and the number of
 * parts.
 */
export function etagMatches(etag: string, whole: Buffer, parts: readonly Buffer[]): boolean {
  const tag = etag.replaceAll('"', '').toLowerCase();
  if (tag === whole.toString('hex')) return true;
  if (parts.length === 0) return false;
  return tag === `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

/** What the check reads the stored object through: the S3 backend itself, not retrying on its own. */
export type StoredObjects = Pick<StorageBackend, 'description' | 'stat' | 'get'>;

/** What was sent of one object: its digest (MD5 or sha256) and its parts' MD5s. */
interface Sent {
  algorithm: string;
  digest: Buffer;
  parts: Buffer[];
}

/**
 * Follows one upload's bytes as they are sent (`update`, `part`), then checks the stored object against
 * them (`verify`).
 */
export class UploadCheck {
  readonly #mode: S3VerifyMode;
  readonly #retry: RetryPolicy;
  /** The whole object's digest: MD5, what ETags hold; sha256, the manifest's own, when always reading back. */
  readonly #whole: { algorithm: string; hash: Hash } | undefined;
  /** Each part's MD5 by part number: what a multipart ETag is made of. */
  readonly #parts = new Map<number, Buffer>();

  constructor(mode: S3VerifyMode, retry: RetryPolicy) {
    this.#mode = mode;
    this.#retry = retry;
    const algorithm = { etag: 'md5', 'read-back': 'sha256', size: undefined }[mode];
    this.#whole = algorithm ? { algorithm, hash: createHash(algorithm) } : undefined;
  }

  /** The next bytes of the object, in order. */
  update(chunk: Uint8Array): void {
    this.#whole?.hash.update(chunk);
  }

  /** The MD5 of part `n` (1-based), sent as its Content-MD5. */
  part(n: number, md5: Buffer): void {
    this.#parts.set(n, md5);
  }

  /**
   * Checks the stored object `key` against the `size` bytes that were sent, given the ETag the service
   * answered when publishing it (undefined for an adopted object). Throws StorageError when it does not
   * match or cannot be read; transient errors of the stat or read-back are retried. Call once, after the
   * last `update`.
   */
  async verify(
    storage: StoredObjects,
    key: string,
    size: number,
    etag: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const whole = this.#whole;
    const sent = whole && {
      algorithm: whole.algorithm,
      digest: whole.hash.digest(),
      parts: [...this.#parts].sort(([a], [b]) => a - b).map(([, d]) => d),
    };
    if (!sent) return this.#checkSize(storage, key, size, signal);
    // The service's own MD5 of what it stored; when its ETag is something else, only a read-back can tell.
    if (this.#mode === 'etag' && etag !== undefined && etagMatches(etag, sent.digest, sent.parts)) return;
    await this.#readBack(storage, key, size, sent, signal);
  }

  async #checkSize(
    storage: StoredObjects,
    key: string,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const info = await retryOperation(`stat ${key}`, this.#retry, signal, () =>
      storage.stat(key, { signal }),
    );
    if (info?.size !== size) {
      throw new StorageError(
        `${storage.description}: ${key} holds ${info?.size ?? 'no'} bytes after upload, ${size} were sent`,
      );
    }
  }

  async #readBack(
    storage: StoredObjects,
    key: string,
    size: number,
    sent: Sent,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const { read, stored } = await retryOperation(`read back ${key}`, this.#retry, signal, async () => {
      const hash = createHash(sent.algorithm);
      let read = 0;
      for await (const chunk of await storage.get(key, { signal })) {
        hash.update(chunk);
        read += chunk.length;
      }
      return { read, stored: hash.digest() };
    });
    if (read !== size || !stored.equals(sent.digest)) {
      const [a, got, want] = [sent.algorithm, stored.toString('hex'), sent.digest.toString('hex')];
      throw new StorageError(
        `${storage.description}: ${key} does not match what was uploaded (${read} bytes, ${a} ${got}; sent ${size} bytes, ${a} ${want})`,
        { hint: 'the storage service changed or lost data in transit; try again, and check the service' },
      );
    }
  }
}
