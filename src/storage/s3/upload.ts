/**
 * One streamed `put` to S3, from the body's first byte to a checked object: the bytes go to a multipart
 * upload (multipart.ts), or to a single PutObject when the object is smaller than one part; the object is
 * published (the PUT, or completing the upload) with retries; the stored object is checked against what
 * was sent (upload-check.ts). A failed or aborted upload is aborted on the server, so no parts linger; an
 * object published but failing its check is deleted.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  type Body,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  StorageConflictError,
  StorageNotFoundError,
} from '../backend.ts';
import { retryOperation } from '../retry.ts';
import type { S3Bucket } from './client.ts';
import { MultipartUpload } from './multipart.ts';
import { type StoredObjects, UploadCheck } from './upload-check.ts';

/** What an upload needs of the S3 backend itself (not retrying on its own): to look, read and delete. */
export type UploadStorage = StoredObjects & Pick<StorageBackend, 'delete'>;

/**
 * One PutObject (not retried here) of `data` under object key `full`; returns its ETag. With `ifAbsent`
 * it sends `If-None-Match: *`. The storage class is for data objects only (`dataObject`).
 */
export async function putObject(
  bucket: S3Bucket,
  key: string,
  full: string,
  data: Buffer,
  options: PutOptions,
  dataObject: boolean,
): Promise<string | undefined> {
  const md5 = createHash('md5').update(data).digest('base64');
  const res = await bucket.send('write', key, options.signal, () =>
    bucket.client.send(
      new PutObjectCommand({
        Bucket: bucket.config.bucket,
        Key: full,
        Body: data,
        ContentLength: data.length,
        ContentMD5: md5,
        IfNoneMatch: options.ifAbsent ? '*' : undefined,
        ...bucket.writeParams(dataObject),
      }),
      { abortSignal: options.signal },
    ),
  );
  return res.ETag;
}

/**
 * Where the service does not enforce `If-None-Match`, `ifAbsent` is a HEAD just before publishing (racy;
 * see backend.ts): throws StorageConflictError when `key` exists.
 */
export async function assertAbsent(
  storage: UploadStorage,
  key: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  if ((await storage.stat(key, { signal })) !== undefined) {
    throw new StorageConflictError(storage.description, key);
  }
}

/** One streamed upload of `key`; `run` once. */
export class S3Upload {
  readonly #bucket: S3Bucket;
  readonly #storage: UploadStorage;
  readonly #key: string;
  readonly #full: string;
  readonly #options: PutOptions;
  /** Check with a HEAD that the key is absent before publishing (see assertAbsent). */
  readonly #checkFirst: boolean;
  readonly #check: UploadCheck;
  readonly #parts: MultipartUpload;
  /** Bytes read from the body so far. */
  #total = 0;
  /** What the service answered on publishing, for the check. */
  #etag: string | undefined;
  /** The object is published under its key: from here a failure must delete it, not abort an upload. */
  #completed = false;
  /** Completed by an earlier attempt whose answer was lost: not provably ours, so never deleted. */
  #adopted = false;

  constructor(
    bucket: S3Bucket,
    storage: UploadStorage,
    key: string,
    full: string,
    options: PutOptions,
    checkFirst: boolean,
  ) {
    this.#bucket = bucket;
    this.#storage = storage;
    this.#key = key;
    this.#full = full;
    this.#options = options;
    this.#checkFirst = checkFirst;
    this.#check = new UploadCheck(bucket.config.verifyUpload, bucket.retry);
    this.#parts = new MultipartUpload(bucket, key, full, options.signal, (n, md5) =>
      this.#check.part(n, md5),
    );
  }

  /**
   * Uploads `body`, publishes it and checks it. Rejects with the first failure (StorageError, the
   * signal's AbortError, or the body's own error) after cleaning up.
   */
  async run(body: Body): Promise<PutResult> {
    const { signal } = this.#options;
    try {
      for await (const chunk of body) {
        signal?.throwIfAborted();
        this.#parts.throwIfFailed();
        this.#check.update(chunk);
        this.#total += chunk.length;
        await this.#parts.write(chunk);
      }
      signal?.throwIfAborted();
      await this.#publish();
      this.#completed = true;
      await this.#check.verify(this.#storage, this.#key, this.#total, this.#etag, signal);
      return { size: this.#total, ifAbsentEnforced: !this.#checkFirst };
    } catch (err) {
      await this.#cleanUp();
      throw err;
    } finally {
      this.#parts.release();
    }
  }

  /** One PutObject for an object smaller than a part; otherwise the last part, and completing the upload. */
  async #publish(): Promise<void> {
    const parts = this.#parts;
    if (!parts.started) {
      const data = parts.pending;
      await this.#retryPublish('put', () =>
        putObject(this.#bucket, this.#key, this.#full, data, this.#options, true),
      );
      return;
    }
    await parts.finish();
    await this.#retryPublish('complete upload of', () => parts.complete(this.#options.ifAbsent));
  }

  /**
   * Publishes the object with `once`, retried. A retry whose first try's answer was lost may meet the
   * object that try published: "already exists", or for a multipart upload "no such upload". If an object
   * of exactly our size is there, it is adopted and read back by the check, which decides; an adopted
   * object is never deleted (it may not be ours).
   */
  async #retryPublish(what: string, once: () => Promise<string | undefined>): Promise<void> {
    const key = this.#key;
    const { signal } = this.#options;
    let tries = 0;
    await retryOperation(`${what} ${key}`, this.#bucket.retry, signal, async () => {
      tries++;
      try {
        if (this.#checkFirst) await assertAbsent(this.#storage, key, signal);
        this.#etag = await once();
      } catch (err) {
        const lost = err instanceof StorageConflictError || err instanceof StorageNotFoundError;
        if (tries > 1 && lost && (await this.#storage.stat(key, { signal }))?.size === this.#total) {
          this.#adopted = true;
          return;
        }
        throw err;
      }
    });
  }

  /**
   * After a failure: no parts left on the service, and no published object that failed its check left
   * looking like a good one. Not under the caller's (maybe aborted) signal; never throws.
   */
  async #cleanUp(): Promise<void> {
    await this.#parts.settle();
    if (!this.#completed) await this.#parts.abort();
    if (this.#completed && !this.#adopted) {
      const key = this.#key;
      await retryOperation(`delete ${key}`, this.#bucket.retry, undefined, () =>
        this.#storage.delete(key),
      ).catch(() => {});
    }
  }
}
