/**
 * The parts of one streamed upload. The body is cut into parts held in memory and uploaded as a
 * multipart upload, at most `uploadConcurrency` parts at a time, each with Content-MD5 so the server
 * rejects a part damaged on the way. The part size starts at `partSizeMb` (at least 8 MiB) and doubles
 * every 1,000 parts, so any object up to S3's 5 TiB limit fits in 10,000 parts; memory is about
 * (concurrency + 1) x part size, which only grows past the first 1,000 parts (8 GB stored at the default
 * 8 MiB). The upload is only started on the service once the first part is full: a smaller object stays
 * in the buffer, for a single PutObject.
 *
 * Starting the upload and each part are retried here under the backend's policy (retry.ts cannot: only
 * this code holds the part's bytes). Completing the upload is not retried here: the caller retries it with the adoption rule
 * of upload.ts.
 */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { StorageError } from '../../util/errors.ts';
import { retryOperation } from '../retry.ts';
import type { S3Bucket } from './client.ts';
import { PartBuffers } from './part-buffers.ts';

const MIB = 1024 * 1024;
const MAX_PARTS = 10_000;
const MAX_PART_BYTES = 5 * 1024 * MIB;
/** Joins an object key and an upload id into the key of an unfinished upload (see listTemporary). */
export const UPLOAD_ID = '?uploadId=';

/** Size of part `n` (1-based): the minimum for the first 1,000 parts, doubling every 1,000 after. */
export function partSize(minBytes: number, n: number): number {
  return Math.min(MAX_PART_BYTES, minBytes * 2 ** Math.floor((n - 1) / 1000));
}

/** One multipart upload of `key`, from its first byte to CompleteMultipartUpload or its abort. */
export class MultipartUpload {
  readonly #bucket: S3Bucket;
  readonly #key: string;
  readonly #full: string;
  readonly #signal: AbortSignal | undefined;
  /** Told the MD5 of each part as it is sent. */
  readonly #onPart: (n: number, md5: Buffer) => void;
  readonly #minPart: number;
  readonly #buffers = new PartBuffers();
  /** Parts stored, in the order their answers came. */
  readonly #parts: CompletedPart[] = [];
  readonly #inflight = new Set<Promise<void>>();
  /** The service's id of the upload, once the first part started it. */
  #uploadId: string | undefined;
  #nextPart = 1;
  /** The part being filled, and how much of it is. */
  #buffer: Buffer<ArrayBuffer>;
  #filled = 0;
  /** The first part that failed for good: it fails the upload. */
  #failure: unknown;

  constructor(
    bucket: S3Bucket,
    key: string,
    full: string,
    signal: AbortSignal | undefined,
    onPart: (n: number, md5: Buffer) => void,
  ) {
    this.#bucket = bucket;
    this.#key = key;
    this.#full = full;
    this.#signal = signal;
    this.#onPart = onPart;
    this.#minPart = bucket.config.partSizeMb * MIB;
    this.#buffer = this.#buffers.take(partSize(this.#minPart, 1));
  }

  /** Whether the upload was started on the service (at least one part was full). */
  get started(): boolean {
    return this.#uploadId !== undefined;
  }

  /** The bytes written and not yet sent as a part: the whole object, while not `started`. */
  get pending(): Buffer {
    return this.#buffer.subarray(0, this.#filled);
  }

  /** Throws the failure of a part that failed for good. */
  throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Appends `chunk`, sending each part that fills up; waits while as many parts as allowed are in flight. */
  async write(chunk: Uint8Array): Promise<void> {
    for (let off = 0; off < chunk.length; ) {
      const n = Math.min(chunk.length - off, this.#buffer.length - this.#filled);
      this.#buffer.set(chunk.subarray(off, off + n), this.#filled);
      this.#filled += n;
      off += n;
      if (this.#filled === this.#buffer.length) await this.#sendPart();
    }
  }

  /** Sends the last part and waits for every part; throws the failure of any. Only once `started`. */
  async finish(): Promise<void> {
    if (this.#filled > 0) await this.#sendPart();
    await Promise.all(this.#inflight);
    this.throwIfFailed();
    this.#parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
  }

  /**
   * CompleteMultipartUpload, once (the caller retries); with `ifAbsent`, refused when the key exists.
   * Returns the ETag the service answered.
   */
  async complete(ifAbsent: boolean | undefined): Promise<string | undefined> {
    const bucket = this.#bucket;
    const signal = this.#signal;
    const res = await bucket.send('complete the upload of', this.#key, signal, () =>
      bucket.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket.config.bucket,
          Key: this.#full,
          UploadId: this.#uploadId,
          MultipartUpload: { Parts: this.#parts },
          IfNoneMatch: ifAbsent ? '*' : undefined,
        }),
        { abortSignal: signal },
      ),
    );
    return res.ETag;
  }

  /**
   * After a failure, once the parts in flight settled: aborts the upload on the service, if it was
   * started, so that its parts do not linger. Not under the caller's (maybe aborted) signal; never throws.
   * If even this fails, prune finds the upload with listTemporary and aborts it after the grace period.
   */
  async abort(): Promise<void> {
    if (this.#uploadId === undefined) return;
    const id = this.#uploadId;
    const temp = `${this.#key}${UPLOAD_ID}${id}`;
    await retryOperation(`abort ${temp}`, this.#bucket.retry, undefined, () =>
      abortUpload(this.#bucket, this.#key, id, undefined),
    ).catch(() => {});
  }

  /** Waits for the parts in flight to settle, whatever they do. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#inflight);
  }

  /** Lets go of the part buffers; call once no part is in flight. */
  release(): void {
    this.#buffers.releaseAll();
  }

  /** Sends the filled buffer as the next part (starting the upload first) and takes a new buffer. */
  async #sendPart(): Promise<void> {
    if (this.#nextPart > MAX_PARTS) {
      throw new StorageError(`${this.#bucket.description}: ${this.#key} needs more than ${MAX_PARTS} parts`);
    }
    this.#uploadId ??= await this.#createUpload();
    const n = this.#nextPart++;
    const data = this.#buffer.subarray(0, this.#filled);
    const owned = this.#buffer;
    const digest = createHash('md5').update(data).digest();
    this.#onPart(n, digest);
    const task = this.#uploadPart(this.#uploadId, n, data, digest).then(
      (etag) => {
        this.#parts.push({ PartNumber: n, ETag: etag });
        this.#buffers.recycle(owned);
      },
      (err: unknown) => {
        this.#failure ??= err;
      },
    );
    this.#inflight.add(task);
    void task.finally(() => this.#inflight.delete(task));
    while (this.#inflight.size >= this.#bucket.config.uploadConcurrency) await Promise.race(this.#inflight);
    this.throwIfFailed();
    const size = partSize(this.#minPart, this.#nextPart);
    this.#buffers.dropSparesOtherThan(size);
    this.#buffer = this.#buffers.take(size);
    this.#filled = 0;
  }

  async #createUpload(): Promise<string> {
    const bucket = this.#bucket;
    const signal = this.#signal;
    const res = await retryOperation(`start upload of ${this.#key}`, bucket.retry, signal, () =>
      bucket.send('start an upload of', this.#key, signal, () =>
        bucket.client.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket.config.bucket,
            Key: this.#full,
            ...bucket.writeParams(true),
          }),
          { abortSignal: signal },
        ),
      ),
    );
    if (!res.UploadId) throw new StorageError(`${bucket.description}: no upload id for ${this.#key}`);
    return res.UploadId;
  }

  async #uploadPart(uploadId: string, n: number, data: Buffer, md5: Buffer): Promise<string> {
    const bucket = this.#bucket;
    const signal = this.#signal;
    const key = this.#key;
    const res = await retryOperation(`upload part ${n} of ${key}`, bucket.retry, signal, () =>
      bucket.send(`upload part ${n} of`, key, signal, () =>
        bucket.client.send(
          unsignedPayload(
            new UploadPartCommand({
              Bucket: bucket.config.bucket,
              Key: this.#full,
              UploadId: uploadId,
              PartNumber: n,
              Body: data,
              ContentLength: data.length,
              ContentMD5: md5.toString('base64'),
            }),
          ),
          { abortSignal: signal },
        ),
      ),
    );
    if (!res.ETag) throw new StorageError(`${bucket.description}: no ETag for part ${n} of ${key}`);
    return res.ETag;
  }
}

/**
 * AbortMultipartUpload of `uploadId` for storage key `finalKey`: its parts are deleted. Not retried
 * here. Rejects with StorageNotFoundError when the service knows no such upload (already completed or
 * aborted), StorageError otherwise.
 */
export async function abortUpload(
  bucket: S3Bucket,
  finalKey: string,
  uploadId: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await bucket.send('abort the upload of', finalKey, signal, () =>
    bucket.client.send(
      new AbortMultipartUploadCommand({
        Bucket: bucket.config.bucket,
        Key: bucket.full(finalKey),
        UploadId: uploadId,
      }),
      { abortSignal: signal },
    ),
  );
}

/**
 * Signs a part upload without hashing its body (`UNSIGNED-PAYLOAD`): Content-MD5 already makes the
 * service check every byte of the part, so a second pass over it for the signature buys nothing.
 */
function unsignedPayload<C extends UploadPartCommand>(command: C): C {
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'datasaverUnsignedPayload' },
  );
  return command;
}
