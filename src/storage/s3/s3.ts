/**
 * S3-compatible storage on the AWS SDK for JavaScript v3: the StorageBackend over one bucket and key
 * prefix. Its parts, one concern each:
 *
 * - client.ts: the SDK client and its settings, storage keys to object keys, sending a request;
 * - errors.ts: SDK and network errors to StorageError, StorageNotFoundError, StorageConflictError;
 * - capabilities.ts: the optional features of the service (conditional writes, ListMultipartUploads),
 *   probed once per process and destination and reported once through `onWarning`;
 * - upload.ts: one streamed `put`, published with retries and cleaned up after a failure, on
 *   multipart.ts (parts, their sizes, concurrency and retries; part-buffers.ts holds their memory) and
 *   upload-check.ts (the stored object against what was sent, as `verifyUpload` says).
 *
 * Whole operations are not retried here (see retry.ts, which wraps this backend); the steps of a streamed
 * upload, which cannot be replayed from outside, are retried where they happen, each part because only
 * this code holds its bytes (see backend.ts).
 *
 * Errors name the bucket and endpoint, never credentials. 403 and missing buckets are permanent; 5xx, 429
 * and network failures are marked transient.
 */
import { PassThrough, type Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { StorageError } from '../../util/errors.ts';
import {
  type Body,
  type GetOptions,
  isValidKey,
  type ObjectInfo,
  type OpOptions,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  type StorageCapabilities,
  StorageNotFoundError,
  StorageUnsupportedError,
  type TemporaryInfo,
} from '../backend.ts';
import type { S3StorageConfig } from '../config.ts';
import { DEFAULT_RETRY, type RetryPolicy } from '../retry.ts';
import { PROBE_NAME, S3Capabilities } from './capabilities.ts';
import { createS3Client, S3Bucket } from './client.ts';
import { isUnsupportedAnswer, type SdkError } from './errors.ts';
import { abortUpload, UPLOAD_ID } from './multipart.ts';
import { assertAbsent, putObject, S3Upload } from './upload.ts';

const MIB = 1024 * 1024;

export interface S3StorageOptions {
  /** The policy for the steps this backend retries itself (see backend.ts); default DEFAULT_RETRY. */
  retry?: RetryPolicy | undefined;
  /** An SDK client to use instead of one made from the config. */
  client?: S3Client | undefined;
  /** Told, once per process and destination, about an optional feature the service lacks. */
  onWarning?: ((message: string) => void) | undefined;
}

export class S3Storage implements StorageBackend {
  readonly description: string;
  readonly #bucket: S3Bucket;
  readonly #capabilities: S3Capabilities;

  constructor(config: S3StorageConfig, options: S3StorageOptions = {}) {
    const client = options.client ?? createS3Client(config);
    this.#bucket = new S3Bucket(config, client, options.retry ?? DEFAULT_RETRY);
    this.description = this.#bucket.description;
    this.#capabilities = new S3Capabilities(this.#bucket, options.onWarning ?? (() => {}));
  }

  async put(key: string, body: Body, putOptions: PutOptions = {}): Promise<PutResult> {
    const full = this.#bucket.full(key);
    const { signal } = putOptions;
    // Without conditional writes, `ifAbsent` is a HEAD just before publishing (racy; see backend.ts).
    const conditional =
      putOptions.ifAbsent === true ? await this.#capabilities.conditionalWrites(signal) : 'enforced';
    const checkFirst = conditional !== 'enforced';
    const options = conditional === 'ignored' ? { ...putOptions, ifAbsent: false } : putOptions;
    if (Array.isArray(body)) {
      // Small objects held in memory (manifests, verify records): one request, no part buffers, and
      // Content-MD5 is all the checking they need.
      const data = Buffer.concat(body as Uint8Array[]);
      if (data.length <= this.#bucket.config.partSizeMb * MIB) {
        // The retry wrapper repeats in-memory puts; the storage class is for data objects only (a
        // manifest in an archive class could not be read back to list or restore).
        if (checkFirst) await assertAbsent(this, key, signal);
        await putObject(this.#bucket, key, full, data, options, false);
        return { size: data.length, ifAbsentEnforced: !checkFirst };
      }
    }
    return new S3Upload(this.#bucket, this, key, full, options, checkFirst).run(body);
  }

  async get(key: string, options: GetOptions = {}): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>> {
    const full = this.#bucket.full(key);
    const offset = options.offset ?? 0;
    let res: { Body?: unknown; ContentLength?: number | undefined };
    try {
      res = await this.#bucket.send('read', key, options.signal, () =>
        this.#bucket.client.send(
          new GetObjectCommand({
            Bucket: this.#bucket.config.bucket,
            Key: full,
            Range: offset > 0 ? `bytes=${offset}-` : undefined,
          }),
          { abortSignal: options.signal },
        ),
      );
    } catch (err) {
      // Resuming exactly at the end: nothing is left to read.
      if (offset > 0 && ((err as Error).cause as SdkError | undefined)?.name === 'InvalidRange') {
        return emptyStream();
      }
      throw err;
    }
    const body = res.Body as Readable;
    const expected = res.ContentLength;
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    let received = 0;
    body.on('data', (c: Buffer) => {
      received += c.length;
      if (!out.write(c)) body.pause();
    });
    out.on('drain', () => body.resume());
    body.on('end', () => {
      if (expected !== undefined && received !== expected) {
        out.destroy(
          new StorageError(
            `${this.description}: ${key}: connection closed after ${received} of ${expected} bytes`,
            {
              transient: true,
            },
          ),
        );
      } else out.end();
    });
    body.on('error', (err) => out.destroy(this.#bucket.wrap(err, 'read', key)));
    out.on('close', () => body.destroy());
    return out;
  }

  async stat(key: string, options: OpOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.#bucket.send('stat', key, options.signal, () =>
        this.#bucket.client.send(
          new HeadObjectCommand({ Bucket: this.#bucket.config.bucket, Key: this.#bucket.full(key) }),
          {
            abortSignal: options.signal,
          },
        ),
      );
      return { key, size: res.ContentLength ?? 0, modified: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (err instanceof StorageNotFoundError) return undefined;
      throw err;
    }
  }

  async list(prefix: string, options: OpOptions = {}): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.#bucket.send('list', prefix || '/', options.signal, () =>
        this.#bucket.client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket.config.bucket,
            Prefix: this.#bucket.base() + prefix,
            ContinuationToken: token,
          }),
          { abortSignal: options.signal },
        ),
      );
      for (const o of res.Contents ?? []) {
        const key = o.Key?.slice(this.#bucket.base().length);
        if (key && isValidKey(key))
          out.push({ key, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(key: string, options: OpOptions = {}): Promise<void> {
    await this.#bucket.send('delete', key, options.signal, () =>
      this.#bucket.client.send(
        new DeleteObjectCommand({ Bucket: this.#bucket.config.bucket, Key: this.#bucket.full(key) }),
        {
          abortSignal: options.signal,
        },
      ),
    );
  }

  /** Multipart uploads that were started and never completed or aborted. */
  async listTemporary(prefix: string, options: OpOptions = {}): Promise<TemporaryInfo[]> {
    const out: TemporaryInfo[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    const capabilities = this.#capabilities;
    do {
      if (capabilities.uploadListing === false) throw capabilities.lacksUploadListing();
      let res: ListMultipartUploadsCommandOutput;
      try {
        res = await this.#bucket.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.#bucket.config.bucket,
            Prefix: this.#bucket.base() + prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: idMarker,
          }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (!isUnsupportedAnswer(err)) throw this.#bucket.wrap(err, 'list uploads under', prefix || '/');
        throw capabilities.lacksUploadListing();
      }
      capabilities.uploadListingWorks();
      for (const u of res.Uploads ?? []) {
        const finalKey = u.Key?.slice(this.#bucket.base().length);
        if (!finalKey || !u.UploadId || !isValidKey(finalKey)) continue;
        out.push({
          key: `${finalKey}${UPLOAD_ID}${u.UploadId}`,
          finalKey,
          size: 0,
          modified: u.Initiated ?? new Date(0),
        });
      }
      keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
      idMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return out;
  }

  async deleteTemporary(key: string, options: OpOptions = {}): Promise<void> {
    const at = key.lastIndexOf(UPLOAD_ID);
    if (at <= 0) throw new StorageError(`${this.description}: ${key} is not an unfinished upload`);
    const finalKey = key.slice(0, at);
    try {
      await abortUpload(this.#bucket, finalKey, key.slice(at + UPLOAD_ID.length), options.signal);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err; // NoSuchUpload: already gone
    }
  }

  /**
   * Both optional features, probing what is not known yet: conditional writes as `put` does, and
   * ListMultipartUploads with a listing that can match nothing but the probe's name.
   */
  async capabilities(options: OpOptions = {}): Promise<StorageCapabilities> {
    const conditionalWrites = await this.#capabilities.conditionalWrites(options.signal);
    if (this.#capabilities.uploadListing === undefined) {
      await this.listTemporary(PROBE_NAME, options).catch((err: unknown) => {
        if (!(err instanceof StorageUnsupportedError)) throw err;
      });
    }
    return {
      conditionalWrites: conditionalWrites === 'enforced',
      listTemporary: this.#capabilities.uploadListing !== false,
    };
  }
}

function emptyStream(): NodeJS.ReadableStream & AsyncIterable<Buffer> {
  const s = new PassThrough();
  s.end();
  return s;
}
