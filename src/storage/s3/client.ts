/**
 * One S3 destination (bucket and key prefix) behind one SDK client: the client's settings, the mapping
 * of storage keys to object keys, the write parameters every object gets, and sending a request with its
 * errors mapped (errors.ts). Every other file of the S3 backend works through an S3Bucket.
 */
import { S3Client, type ServerSideEncryption, type StorageClass } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { redact } from '../../util/secret.ts';
import { assertValidKey } from '../backend.ts';
import type { S3StorageConfig } from '../config.ts';
import type { RetryPolicy } from '../retry.ts';
import { toStorageError } from './errors.ts';

/** An SDK client as datasaver uses it: no SDK retries, no checksum trailers, bounded timeouts. */
export function createS3Client(config: S3StorageConfig): S3Client {
  return new S3Client({
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

/** `s3://bucket/prefix`, and the endpoint when there is one (credentials in it redacted). */
export function describeS3(config: S3StorageConfig): string {
  const where = `s3://${config.bucket}${config.prefix ? `/${config.prefix}` : ''}`;
  return config.endpoint ? `${where} at ${redact(config.endpoint)}` : where;
}

/** One destination: its settings, its client, and the retry policy of the steps the backend retries itself. */
export class S3Bucket {
  readonly description: string;
  readonly config: S3StorageConfig;
  readonly client: S3Client;
  /** The policy for what the backend retries itself: parts, publishing, probes, checks and cleanup. */
  readonly retry: RetryPolicy;

  constructor(config: S3StorageConfig, client: S3Client, retry: RetryPolicy) {
    this.config = config;
    this.client = client;
    this.retry = retry;
    this.description = describeS3(config);
  }

  /** The object key prefix of this destination: `prefix/`, or '' at the bucket root. */
  base(): string {
    return this.config.prefix ? `${this.config.prefix}/` : '';
  }

  /** The object key of storage key `key`; throws StorageError for a key backend.ts does not allow. */
  full(key: string): string {
    assertValidKey(key);
    return this.base() + key;
  }

  /**
   * Runs one request; its failure becomes a StorageError naming `op` and `key`, or the signal's reason
   * when the signal aborted it.
   */
  async send<T>(op: string, key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.wrap(err, op, key);
    }
  }

  /** `err` as a storage error of `op` on `key` (see errors.ts). */
  wrap(err: unknown, op: string, key: string): Error {
    return toStorageError(err, op, key, this);
  }

  /**
   * Encryption for every object; the storage class for data objects only (a manifest in an archive class
   * could not be read back to list or restore).
   */
  writeParams(dataObject: boolean) {
    const c = this.config;
    return {
      ServerSideEncryption: c.sse as ServerSideEncryption | undefined,
      SSEKMSKeyId: c.sse === 'aws:kms' ? c.sseKmsKeyId : undefined,
      StorageClass: dataObject ? (c.storageClass as StorageClass | undefined) : undefined,
    };
  }
}
