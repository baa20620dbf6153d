import type { Secret } from '../util/secret.ts';

/** Where backups go: settings of each storage backend, as parsed from the configuration. */

export interface LocalStorageConfig {
  backend: 'local';
  /** Absolute directory that holds `<target>/<backup-id>.*`. */
  path: string;
}

export const S3_SSE_MODES = ['AES256', 'aws:kms'] as const;
/**
 * How an upload is checked before its manifest is written: `etag` compares the MD5 the service reports
 * (reading the object back when the ETag is not the MD5 of what was sent, e.g. under SSE-KMS),
 * `read-back` always downloads it and compares its sha256, `size` checks only the size.
 */
export const S3_VERIFY_MODES = ['etag', 'read-back', 'size'] as const;
export type S3VerifyMode = (typeof S3_VERIFY_MODES)[number];

/** An S3-compatible bucket (AWS, MinIO, Backblaze B2, Wasabi, Scaleway, R2...). */
export interface S3StorageConfig {
  backend: 's3';
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/`; '' for the bucket root. */
  prefix: string;
  /** Custom endpoint URL for S3-compatible services; undefined for AWS. */
  endpoint: string | undefined;
  region: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO and most self-hosted). */
  forcePathStyle: boolean;
  /** Static credentials; when unset, the AWS SDK's default chain (env, profile, container/instance role). */
  accessKey: Secret | undefined;
  secretKey: Secret | undefined;
  /** Server-side encryption: SSE-S3 (`AES256`) or SSE-KMS (`aws:kms`, optionally with a key id). */
  sse: (typeof S3_SSE_MODES)[number] | undefined;
  sseKmsKeyId: string | undefined;
  storageClass: string | undefined;
  /** First multipart part size, MiB (8-5120); parts double every 1,000 so 5 TiB fits in 10,000. */
  partSizeMb: number;
  /** Parts uploaded at once; memory is about (concurrency + 1) x part size. */
  uploadConcurrency: number;
  /** How each uploaded object is checked against what was sent before the manifest is written. */
  verifyUpload: S3VerifyMode;
}

export type StorageConfig = LocalStorageConfig | S3StorageConfig;
