/**
 * S3-compatible storage on the AWS SDK for JavaScript v3.
 *
 * Uploads stream: the body is cut into parts held in memory and uploaded as a multipart upload, at most
 * `uploadConcurrency` parts at a time, each with Content-MD5 so the server rejects a part damaged on the
 * way. The part size starts at `partSizeMb` (at least 8 MiB) and doubles every 1,000 parts, so any object
 * up to S3's 5 TiB limit fits in 10,000 parts; memory is about (concurrency + 1) x part size, which only
 * grows past the first 1,000 parts (8 GB stored at the default 8 MiB). Objects smaller than one part
 * go up in a single PutObject. After the upload the stored object is checked against the bytes that were
 * sent, as `verifyUpload` says: `etag` compares the MD5 the service reports for what it stored (the
 * object's MD5 for a single PUT, the MD5 of the parts' MD5s for a multipart upload; some services report
 * the object's MD5 for both) and reads the object back when that ETag is not the MD5 of what was sent
 * (under SSE-KMS and on some services it is something else; the read-back decides); `read-back` always downloads it and compares size and sha256; `size` asks for the size.
 * A failed or aborted upload is aborted on the server, so no parts linger; if the server does not let go
 * of them, `listTemporary` finds them for prune.
 *
 * Whole operations are not retried here (see retry.ts, which wraps this backend); each part is retried
 * under the same policy, because only this code holds the part's bytes.
 *
 * Errors name the bucket and endpoint, never credentials. 403 and missing buckets are permanent; 5xx, 429
 * and network failures are marked transient.
 *
 * Partial services: conditional writes (`If-None-Match: *`) and ListMultipartUploads are optional. Whether
 * the service enforces `If-None-Match` is probed before the first `ifAbsent` put (a probe object under a
 * reserved name, written twice and deleted; an unmodified s3rver accepts the header and overwrites), and
 * where it does not, `ifAbsent` puts check with a HEAD just before publishing instead. A probe refused for
 * good (an access policy forbidding its key) leaves the answer unknown: puts then do both, header and HEAD. A service that
 * answers ListMultipartUploads with NotImplemented (s3rver) or MethodNotAllowed makes `listTemporary`
 * fail with StorageUnsupportedError from then on. Each is found once per process and destination and
 * reported through `onWarning`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
  type StorageClass,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { holdExternal } from '../../pipeline/memory.ts';
import { isAbortError, StorageError } from '../../util/errors.ts';
import { redact } from '../../util/secret.ts';
import {
  assertValidKey,
  type Body,
  type GetOptions,
  isValidKey,
  type ObjectInfo,
  type OpOptions,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  type StorageCapabilities,
  StorageConflictError,
  StorageNotFoundError,
  StorageUnsupportedError,
  type TemporaryInfo,
} from '../backend.ts';
import type { S3StorageConfig } from '../config.ts';
import { DEFAULT_RETRY, type RetryPolicy, retryOperation } from '../retry.ts';

const MIB = 1024 * 1024;
const MAX_PARTS = 10_000;
const MAX_PART_BYTES = 5 * 1024 * MIB;
const UPLOAD_ID = '?uploadId=';
/** Name of the conditional-write probe object: its leading `.` keeps it out of `list` (see isValidKey). */
const PROBE_NAME = '.datasaver-probe-';

/**
 * What is known of each destination's optional features, for the whole process (several targets may
 * share one destination; the daemon runs for days): found once, warned about once.
 */
interface Known {
  conditionalWrites?: Promise<ConditionalWrites> | undefined;
  listTemporary?: boolean | undefined;
}
const KNOWN = new Map<string, Known>();

/**
 * `unknown`: the probe itself was refused (an access policy that forbids writing its key): puts send
 * If-None-Match anyway and also check with a HEAD first, so that neither kind of service is trusted blindly.
 */
type ConditionalWrites = 'enforced' | 'ignored' | 'unknown';

/** A service answer that means "this is not implemented here", as opposed to a failure. */
function isUnsupportedAnswer(err: unknown): boolean {
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode;
  return e.name === 'NotImplemented' || e.name === 'MethodNotAllowed' || status === 501 || status === 405;
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as SdkError;
  return e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412;
}

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

/** Size of part `n` (1-based): the minimum for the first 1,000 parts, doubling every 1,000 after. */
export function partSize(minBytes: number, n: number): number {
  return Math.min(MAX_PART_BYTES, minBytes * 2 ** Math.floor((n - 1) / 1000));
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const TRANSIENT_CODES = new Set([
  'SlowDown',
  'RequestTimeout',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  'IncompleteBody',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export interface S3StorageOptions {
  retry?: RetryPolicy | undefined;
  client?: S3Client | undefined;
  /** Told, once per process and destination, about an optional feature the service lacks. */
  onWarning?: ((message: string) => void) | undefined;
}

export class S3Storage implements StorageBackend {
  readonly description: string;
  readonly #config: S3StorageConfig;
  readonly #client: S3Client;
  readonly #retry: RetryPolicy;
  readonly #onWarning: (message: string) => void;

  constructor(config: S3StorageConfig, options: S3StorageOptions = {}) {
    this.#config = config;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#onWarning = options.onWarning ?? (() => {});
    const where = `s3://${config.bucket}${config.prefix ? `/${config.prefix}` : ''}`;
    this.description = config.endpoint ? `${where} at ${redact(config.endpoint)}` : where;
    this.#client =
      options.client ??
      new S3Client({
        region: config.region,
        endpoint: config.endpoint,
        forcePathStyle: config.forcePathStyle,
        credentials:
          config.accessKey && config.secretKey
            ? { accessKeyId: config.accessKey.reveal(), secretAccessKey: config.secretKey.reveal() }
            : undefined,
        // Retries are datasaver's (retry.ts): one policy, counted and logged, for every backend.
        maxAttempts: 1,
        // Many S3-compatible services reject the SDK's newer default CRC checksum trailers.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000, requestTimeout: 120_000 }),
      });
  }

  async put(key: string, body: Body, putOptions: PutOptions = {}): Promise<PutResult> {
    const full = this.#full(key);
    const { signal } = putOptions;
    // Without conditional writes, `ifAbsent` is a HEAD just before publishing (racy; see backend.ts).
    const conditional = putOptions.ifAbsent === true ? await this.#conditionalWrites(signal) : 'enforced';
    const checkFirst = conditional !== 'enforced';
    const options = conditional === 'ignored' ? { ...putOptions, ifAbsent: false } : putOptions;
    const assertAbsent = async () => {
      if (checkFirst && (await this.stat(key, { signal })) !== undefined) {
        throw new StorageConflictError(this.description, key);
      }
    };
    if (Array.isArray(body)) {
      // Small objects held in memory (manifests, verify records): one request, no part buffers, and
      // Content-MD5 is all the checking they need.
      const data = Buffer.concat(body as Uint8Array[]);
      if (data.length <= this.#config.partSizeMb * MIB) {
        // The retry wrapper repeats in-memory puts; the storage class is for data objects only (a
        // manifest in an archive class could not be read back to list or restore).
        await assertAbsent();
        await this.#putSingle(key, full, data, options, false);
        return { size: data.length, ifAbsentEnforced: !checkFirst };
      }
    }
    const minPart = this.#config.partSizeMb * MIB;
    // The whole object's digest: MD5, what ETags hold; sha256, the manifest's own, when always reading back.
    const algorithm = { etag: 'md5', 'read-back': 'sha256', size: undefined }[this.#config.verifyUpload];
    const whole = algorithm ? { algorithm, hash: createHash(algorithm) } : undefined;
    /** Each part's MD5 by part number: what a multipart ETag is made of. */
    const partDigests = new Map<number, Buffer>();
    let etag: string | undefined;
    let total = 0;
    let uploadId: string | undefined;
    let completed = false;
    /** Completed by an earlier attempt whose answer was lost: not provably ours, so never deleted. */
    let adopted = false;
    const parts: CompletedPart[] = [];
    const inflight = new Set<Promise<void>>();
    const spare: Buffer<ArrayBuffer>[] = [];
    let failure: unknown;
    let partNumber = 1;
    // Part buffers are held on purpose: the memory governor must not take them for garbage.
    const holds = new Map<Buffer, () => void>();
    const allocate = (size: number): Buffer<ArrayBuffer> => {
      const b = Buffer.allocUnsafe(size);
      holds.set(b, holdExternal(size));
      return b;
    };
    let buffer = allocate(partSize(minPart, 1));
    let filled = 0;

    const sendPart = async () => {
      if (partNumber > MAX_PARTS) {
        throw new StorageError(`${this.description}: ${key} needs more than ${MAX_PARTS} parts`);
      }
      uploadId ??= await this.#createUpload(key, full, signal);
      const n = partNumber++;
      const data = buffer.subarray(0, filled);
      const owned = buffer;
      const digest = createHash('md5').update(data).digest();
      partDigests.set(n, digest);
      const task = this.#uploadPart(key, full, uploadId, n, data, digest, signal).then(
        (etag) => {
          parts.push({ PartNumber: n, ETag: etag });
          spare.push(owned);
        },
        (err: unknown) => {
          failure ??= err;
        },
      );
      inflight.add(task);
      void task.finally(() => inflight.delete(task));
      while (inflight.size >= this.#config.uploadConcurrency) await Promise.race(inflight);
      if (failure) throw failure;
      const size = partSize(minPart, partNumber);
      // After the part size doubles, smaller spares are of no more use: let them go.
      for (const b of spare.filter((x) => x.length !== size)) {
        holds.get(b)?.();
        holds.delete(b);
        spare.splice(spare.indexOf(b), 1);
      }
      buffer = spare.pop() ?? allocate(size);
      filled = 0;
    };

    try {
      for await (const chunk of body) {
        signal?.throwIfAborted();
        if (failure) throw failure;
        whole?.hash.update(chunk);
        total += chunk.length;
        for (let off = 0; off < chunk.length; ) {
          const n = Math.min(chunk.length - off, buffer.length - filled);
          buffer.set(chunk.subarray(off, off + n), filled);
          filled += n;
          off += n;
          if (filled === buffer.length) await sendPart();
        }
      }
      signal?.throwIfAborted();
      /**
       * Publishes the object (one PUT, or completing the multipart upload), retried. A retry whose first
       * try's answer was lost may meet the object that try published: "already exists", or for a
       * multipart upload "no such upload". If an object of exactly our size is there, it is adopted and
       * read back below, which decides; an adopted object is never deleted (it may not be ours).
       */
      const publish = async (what: string, once: () => Promise<string | undefined>) => {
        let tries = 0;
        await retryOperation(`${what} ${key}`, this.#retry, signal, async () => {
          tries++;
          try {
            await assertAbsent();
            etag = await once();
          } catch (err) {
            const lost = err instanceof StorageConflictError || err instanceof StorageNotFoundError;
            if (tries > 1 && lost && (await this.stat(key, { signal }))?.size === total) {
              adopted = true;
              return;
            }
            throw err;
          }
        });
      };
      if (uploadId === undefined) {
        const data = buffer.subarray(0, filled);
        await publish('put', () => this.#putSingle(key, full, data, options, true));
      } else {
        if (filled > 0) await sendPart();
        await Promise.all(inflight);
        if (failure) throw failure;
        parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
        const id = uploadId;
        await publish('complete upload of', () => this.#complete(key, full, id, parts, options, signal));
      }
      completed = true;
      const sent = whole && {
        algorithm: whole.algorithm,
        digest: whole.hash.digest(),
        parts: [...partDigests].sort(([a], [b]) => a - b).map(([, d]) => d),
      };
      await this.#checkStored(key, total, sent, etag, signal);
      return { size: total, ifAbsentEnforced: !checkFirst };
    } catch (err) {
      await Promise.allSettled(inflight);
      if (uploadId !== undefined && !completed) {
        // Not under the caller's (maybe aborted) signal: parts must not linger. If even this fails, prune
        // finds the upload with listTemporary and aborts it after the grace period.
        const temp = `${key}${UPLOAD_ID}${uploadId}`;
        await retryOperation(`abort ${temp}`, this.#retry, undefined, () => this.deleteTemporary(temp)).catch(
          () => {},
        );
      }
      // An object that was published but failed its check must not stay looking like a good one.
      if (completed && !adopted) {
        await retryOperation(`delete ${key}`, this.#retry, undefined, () => this.delete(key)).catch(() => {});
      }
      throw err;
    } finally {
      for (const release of holds.values()) release();
    }
  }

  async #complete(
    key: string,
    full: string,
    uploadId: string,
    parts: CompletedPart[],
    options: PutOptions,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const res = await this.#send('complete the upload of', key, signal, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#config.bucket,
          Key: full,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          IfNoneMatch: options.ifAbsent ? '*' : undefined,
        }),
        { abortSignal: signal },
      ),
    );
    return res.ETag;
  }

  async #createUpload(key: string, full: string, signal: AbortSignal | undefined): Promise<string> {
    const res = await retryOperation(`start upload of ${key}`, this.#retry, signal, () =>
      this.#send('start an upload of', key, signal, () =>
        this.#client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.#config.bucket,
            Key: full,
            ...this.#writeParams(true),
          }),
          { abortSignal: signal },
        ),
      ),
    );
    if (!res.UploadId) throw new StorageError(`${this.description}: no upload id for ${key}`);
    return res.UploadId;
  }

  async #uploadPart(
    key: string,
    full: string,
    uploadId: string,
    n: number,
    data: Buffer,
    md5: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const res = await retryOperation(`upload part ${n} of ${key}`, this.#retry, signal, () =>
      this.#send(`upload part ${n} of`, key, signal, () =>
        this.#client.send(
          unsignedPayload(
            new UploadPartCommand({
              Bucket: this.#config.bucket,
              Key: full,
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
    if (!res.ETag) throw new StorageError(`${this.description}: no ETag for part ${n} of ${key}`);
    return res.ETag;
  }

  /** One PutObject (not retried here); returns its ETag. */
  async #putSingle(
    key: string,
    full: string,
    data: Buffer,
    options: PutOptions,
    dataObject: boolean,
  ): Promise<string | undefined> {
    const md5 = createHash('md5').update(data).digest('base64');
    const res = await this.#send('write', key, options.signal, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.#config.bucket,
          Key: full,
          Body: data,
          ContentLength: data.length,
          ContentMD5: md5,
          IfNoneMatch: options.ifAbsent ? '*' : undefined,
          ...this.#writeParams(dataObject),
        }),
        { abortSignal: options.signal },
      ),
    );
    return res.ETag;
  }

  /**
   * Checks the stored object against what was sent (`sent`: its digest, MD5 or sha256, and its parts'
   * MD5s; undefined in `size` mode), as `verifyUpload` says. Transient errors are retried.
   */
  async #checkStored(
    key: string,
    size: number,
    sent: { algorithm: string; digest: Buffer; parts: Buffer[] } | undefined,
    etag: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (!sent) {
      const info = await retryOperation(`stat ${key}`, this.#retry, signal, () => this.stat(key, { signal }));
      if (info?.size !== size) {
        throw new StorageError(
          `${this.description}: ${key} holds ${info?.size ?? 'no'} bytes after upload, ${size} were sent`,
        );
      }
      return;
    }
    // The service's own MD5 of what it stored; when its ETag is something else, only a read-back can tell.
    if (
      this.#config.verifyUpload === 'etag' &&
      etag !== undefined &&
      etagMatches(etag, sent.digest, sent.parts)
    ) {
      return;
    }
    const { read, stored } = await retryOperation(`read back ${key}`, this.#retry, signal, async () => {
      const hash = createHash(sent.algorithm);
      let read = 0;
      for await (const chunk of await this.get(key, { signal })) {
        hash.update(chunk);
        read += chunk.length;
      }
      return { read, stored: hash.digest() };
    });
    if (read !== size || !stored.equals(sent.digest)) {
      const [a, got, want] = [sent.algorithm, stored.toString('hex'), sent.digest.toString('hex')];
      throw new StorageError(
        `${this.description}: ${key} does not match what was uploaded (${read} bytes, ${a} ${got}; sent ${size} bytes, ${a} ${want})`,
        { hint: 'the storage service changed or lost data in transit; try again, and check the service' },
      );
    }
  }

  #writeParams(dataObject: boolean) {
    const c = this.#config;
    return {
      ServerSideEncryption: c.sse as ServerSideEncryption | undefined,
      SSEKMSKeyId: c.sse === 'aws:kms' ? c.sseKmsKeyId : undefined,
      StorageClass: dataObject ? (c.storageClass as StorageClass | undefined) : undefined,
    };
  }

  async get(key: string, options: GetOptions = {}): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>> {
    const full = this.#full(key);
    const offset = options.offset ?? 0;
    let res: { Body?: unknown; ContentLength?: number | undefined };
    try {
      res = await this.#send('read', key, options.signal, () =>
        this.#client.send(
          new GetObjectCommand({
            Bucket: this.#config.bucket,
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
    body.on('error', (err) => out.destroy(this.#wrap(err, 'read', key)));
    out.on('close', () => body.destroy());
    return out;
  }

  async stat(key: string, options: OpOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.#send('stat', key, options.signal, () =>
        this.#client.send(new HeadObjectCommand({ Bucket: this.#config.bucket, Key: this.#full(key) }), {
          abortSignal: options.signal,
        }),
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
      const res = await this.#send('list', prefix || '/', options.signal, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#config.bucket,
            Prefix: this.#base() + prefix,
            ContinuationToken: token,
          }),
          { abortSignal: options.signal },
        ),
      );
      for (const o of res.Contents ?? []) {
        const key = o.Key?.slice(this.#base().length);
        if (key && isValidKey(key))
          out.push({ key, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(key: string, options: OpOptions = {}): Promise<void> {
    await this.#send('delete', key, options.signal, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.#config.bucket, Key: this.#full(key) }), {
        abortSignal: options.signal,
      }),
    );
  }

  /** Multipart uploads that were started and never completed or aborted. */
  async listTemporary(prefix: string, options: OpOptions = {}): Promise<TemporaryInfo[]> {
    const out: TemporaryInfo[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    const known = this.#known();
    do {
      if (known.listTemporary === false) throw this.#lacksUploadListing();
      let res: ListMultipartUploadsCommandOutput;
      try {
        res = await this.#client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.#config.bucket,
            Prefix: this.#base() + prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: idMarker,
          }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (!isUnsupportedAnswer(err)) throw this.#wrap(err, 'list uploads under', prefix || '/');
        throw this.#lacksUploadListing();
      }
      known.listTemporary = true;
      for (const u of res.Uploads ?? []) {
        const finalKey = u.Key?.slice(this.#base().length);
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
      await this.#send('abort the upload of', finalKey, options.signal, () =>
        this.#client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.#config.bucket,
            Key: this.#full(finalKey),
            UploadId: key.slice(at + UPLOAD_ID.length),
          }),
          { abortSignal: options.signal },
        ),
      );
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err; // NoSuchUpload: already gone
    }
  }

  /**
   * Both optional features, probing what is not known yet: conditional writes as `put` does, and
   * ListMultipartUploads with a listing that can match nothing but the probe's name.
   */
  async capabilities(options: OpOptions = {}): Promise<StorageCapabilities> {
    const conditionalWrites = await this.#conditionalWrites(options.signal);
    const known = this.#known();
    if (known.listTemporary === undefined) {
      await this.listTemporary(PROBE_NAME, options).catch((err: unknown) => {
        if (!(err instanceof StorageUnsupportedError)) throw err;
      });
    }
    return {
      conditionalWrites: conditionalWrites === 'enforced',
      listTemporary: known.listTemporary !== false,
    };
  }

  #known(): Known {
    let known = KNOWN.get(this.description);
    if (!known) {
      known = {};
      KNOWN.set(this.description, known);
    }
    return known;
  }

  /** Whether the service enforces `If-None-Match: *`: probed once per process and destination. */
  #conditionalWrites(signal: AbortSignal | undefined): Promise<ConditionalWrites> {
    const known = this.#known();
    if (!known.conditionalWrites) {
      const probe = retryOperation('probe conditional writes', this.#retry, signal, () =>
        this.#probeConditionalWrites(signal),
      ).then(
        (ok): ConditionalWrites => (ok ? 'enforced' : 'ignored'),
        (err: unknown): ConditionalWrites => {
          // Refused for good (access denied to the probe's key): not a reason to refuse every write.
          if (signal?.aborted || !(err instanceof StorageError) || err.transient) throw err;
          this.#onWarning(
            `${this.description}: could not probe whether the service enforces conditional writes (If-None-Match: *): ${err.message}; datasaver sends the header and also checks that a backup's files and the target's lease do not exist just before writing them`,
          );
          return 'unknown';
        },
      );
      known.conditionalWrites = probe;
      // A probe that could not finish (service down, interrupted) is tried again next time.
      probe.then(
        (answer) => {
          if (answer !== 'ignored') return;
          this.#onWarning(
            `${this.description} does not enforce conditional writes (If-None-Match: *): datasaver checks that a backup's files and the target's lease do not exist just before writing them, and reads the lease back after writing it; two writers starting at the same moment could both pass (best effort)`,
          );
        },
        () => {
          if (known.conditionalWrites === probe) known.conditionalWrites = undefined;
        },
      );
    }
    return known.conditionalWrites;
  }

  /**
   * Writes a probe object under a reserved name with `If-None-Match: *`, then again: a service that
   * enforces the header refuses the second write (412). The probe is deleted either way.
   */
  async #probeConditionalWrites(signal: AbortSignal | undefined): Promise<boolean> {
    const key = `${this.#base()}${PROBE_NAME}${randomBytes(8).toString('hex')}`;
    const write = async (body: string): Promise<'written' | 'refused' | 'unsupported'> => {
      try {
        await this.#client.send(
          new PutObjectCommand({
            Bucket: this.#config.bucket,
            Key: key,
            Body: body,
            IfNoneMatch: '*',
            ...this.#writeParams(false),
          }),
          { abortSignal: signal },
        );
        return 'written';
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (isPreconditionFailed(err)) return 'refused';
        if (isUnsupportedAnswer(err)) return 'unsupported';
        throw this.#wrap(err, 'write', 'a probe object');
      }
    };
    try {
      const first = await write('1');
      if (first !== 'written') return first === 'refused';
      return (await write('2')) === 'refused';
    } finally {
      // Best effort: a probe left behind is one byte under a name `list` never shows.
      await retryOperation('delete the probe object', this.#retry, undefined, () =>
        this.#send('delete', 'a probe object', undefined, () =>
          this.#client.send(new DeleteObjectCommand({ Bucket: this.#config.bucket, Key: key })),
        ),
      ).catch(() => {});
    }
  }

  /** The service lacks ListMultipartUploads: recorded, and warned about once per process and destination. */
  #lacksUploadListing(): StorageUnsupportedError {
    const err = new StorageUnsupportedError(
      `${this.description} cannot list unfinished multipart uploads (ListMultipartUploads): prune cannot remove uploads that a crash left behind`,
      {
        hint: 'add a lifecycle rule AbortIncompleteMultipartUpload (e.g. after 7 days) to the bucket, so that the service removes them',
      },
    );
    const known = this.#known();
    if (known.listTemporary !== false) {
      known.listTemporary = false;
      this.#onWarning(`${err.message}; ${err.hint}`);
    }
    return err;
  }

  #base(): string {
    return this.#config.prefix ? `${this.#config.prefix}/` : '';
  }

  #full(key: string): string {
    assertValidKey(key);
    return this.#base() + key;
  }

  async #send<T>(op: string, key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.#wrap(err, op, key);
    }
  }

  /** SDK and network errors -> StorageError naming the bucket and endpoint (never credentials). */
  #wrap(err: unknown, op: string, key: string): Error {
    if (err instanceof StorageError || isAbortError(err)) return err as Error;
    const e = err as SdkError;
    const status = e.$metadata?.httpStatusCode;
    // HEAD answers carry no body, so their errors have no S3 code: fall back to the HTTP status.
    const named = e.name && e.name !== 'Error' && e.name !== 'Unknown' ? e.name : e.code;
    const code = named ?? (status ? `HTTP ${status}` : 'Error');
    const bucket = this.#config.bucket;
    const endpoint = this.#config.endpoint ? redact(this.#config.endpoint) : 'AWS S3';
    if (code === 'NoSuchBucket') {
      return new StorageError(`bucket ${bucket} does not exist at ${endpoint}`, {
        hint: 'create the bucket, or check DATASAVER_S3_BUCKET, DATASAVER_S3_ENDPOINT and DATASAVER_S3_REGION',
      });
    }
    if (status === 404 && op.startsWith('list')) {
      return new StorageError(`bucket ${bucket} was not found at ${endpoint} (HTTP 404)`, {
        hint: 'check DATASAVER_S3_BUCKET, DATASAVER_S3_ENDPOINT and DATASAVER_S3_FORCE_PATH_STYLE',
      });
    }
    if (code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchUpload' || status === 404) {
      return new StorageNotFoundError(this.description, key);
    }
    if (code === 'PreconditionFailed' || status === 412)
      return new StorageConflictError(this.description, key);
    if (code === 'RequestTimeTooSkewed') {
      return new StorageError(`${this.description}: this machine's clock is off (${code})`, {
        transient: true,
        hint: 'set the clock right (NTP); datasaver retries meanwhile',
      });
    }
    if (code === 'InvalidObjectState') {
      return new StorageError(
        `${this.description}: ${key} is in an archive storage class and cannot be read`,
        {
          hint: 'restore it from the archive class first, and use a storage class that can be read at once',
        },
      );
    }
    if (code === 'NotImplemented' || status === 501) {
      return new StorageError(
        `${this.description}: the service does not support what datasaver needed to ${op} ${key}`,
        {
          hint: 'datasaver needs PutObject, GetObject with ranges, HeadObject, ListObjectsV2, DeleteObject and multipart uploads; check that the service supports them',
        },
      );
    }
    if (
      status === 403 ||
      code === 'AccessDenied' ||
      code === 'InvalidAccessKeyId' ||
      code === 'SignatureDoesNotMatch'
    ) {
      return new StorageError(
        `access denied (${code}) to bucket ${bucket} at ${endpoint} trying to ${op} ${key}`,
        {
          hint: 'check DATASAVER_S3_ACCESS_KEY and DATASAVER_S3_SECRET_KEY (or the role datasaver runs as) and that they may use this bucket',
        },
      );
    }
    if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301) {
      return new StorageError(
        `bucket ${bucket} at ${endpoint} is in another region than ${this.#config.region}`,
        {
          hint: "set DATASAVER_S3_REGION to the bucket's region",
        },
      );
    }
    if (code === 'CredentialsProviderError') {
      return new StorageError(`no S3 credentials found for bucket ${bucket} at ${endpoint}`, {
        hint: 'set DATASAVER_S3_ACCESS_KEY and DATASAVER_S3_SECRET_KEY (or *_FILE), or run with an AWS profile or role',
      });
    }
    const transient =
      (status !== undefined && (status >= 500 || status === 429)) ||
      TRANSIENT_CODES.has(code) ||
      TRANSIENT_CODES.has(e.code ?? '') ||
      /socket hang up|aborted|ECONNRESET|timed? ?out/i.test(e.message ?? '');
    const http = status && code !== `HTTP ${status}` ? ` (HTTP ${status})` : '';
    return new StorageError(
      `${this.description}: cannot ${op} ${key}: ${code}${http}: ${redact(e.message ?? '')}`,
      {
        transient,
        cause: err,
      },
    );
  }
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

function emptyStream(): NodeJS.ReadableStream & AsyncIterable<Buffer> {
  const s = new PassThrough();
  s.end();
  return s;
}
