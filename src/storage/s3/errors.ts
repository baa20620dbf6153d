/**
 * What the AWS SDK and the network throw, mapped to datasaver's storage errors: a missing object is
 * StorageNotFoundError, an object in the way of a conditional write StorageConflictError, everything else
 * a StorageError naming the bucket and endpoint (never credentials) with a hint. 5xx, 429 and network
 * failures are marked transient, so that retry.ts tries them again; 403 and missing buckets are permanent.
 */
import { isAbortError, StorageError } from '../../util/errors.ts';
import { redact } from '../../util/secret.ts';
import { StorageConflictError, StorageNotFoundError } from '../backend.ts';
import type { S3StorageConfig } from '../config.ts';

/** The fields of an SDK or network error that say what went wrong. */
export interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Where an error happened, for its message: the backend's description and its settings. */
export interface S3Where {
  readonly description: string;
  readonly config: Pick<S3StorageConfig, 'bucket' | 'endpoint' | 'region'>;
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

/** A service answer that means "this is not implemented here", as opposed to a failure. */
export function isUnsupportedAnswer(err: unknown): boolean {
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode;
  return e.name === 'NotImplemented' || e.name === 'MethodNotAllowed' || status === 501 || status === 405;
}

/** The service refused a conditional write (`If-None-Match: *`) because the object exists. */
export function isPreconditionFailed(err: unknown): boolean {
  const e = err as SdkError;
  return e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412;
}

/**
 * SDK and network errors -> StorageError naming the bucket and endpoint (never credentials), for the
 * operation `op` (a verb phrase: `read`, `upload part 3 of`) on `key`. StorageErrors and AbortErrors
 * pass through unchanged.
 */
export function toStorageError(err: unknown, op: string, key: string, where: S3Where): Error {
  if (err instanceof StorageError || isAbortError(err)) return err as Error;
  const { description, config } = where;
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode;
  // HEAD answers carry no body, so their errors have no S3 code: fall back to the HTTP status.
  const named = e.name && e.name !== 'Error' && e.name !== 'Unknown' ? e.name : e.code;
  const code = named ?? (status ? `HTTP ${status}` : 'Error');
  const bucket = config.bucket;
  const endpoint = config.endpoint ? redact(config.endpoint) : 'AWS S3';
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
    return new StorageNotFoundError(description, key);
  }
  if (code === 'PreconditionFailed' || status === 412) return new StorageConflictError(description, key);
  if (code === 'RequestTimeTooSkewed') {
    return new StorageError(`${description}: this machine's clock is off (${code})`, {
      transient: true,
      hint: 'set the clock right (NTP); datasaver retries meanwhile',
    });
  }
  if (code === 'InvalidObjectState') {
    return new StorageError(`${description}: ${key} is in an archive storage class and cannot be read`, {
      hint: 'restore it from the archive class first, and use a storage class that can be read at once',
    });
  }
  if (code === 'NotImplemented' || status === 501) {
    return new StorageError(
      `${description}: the service does not support what datasaver needed to ${op} ${key}`,
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
    return new StorageError(`bucket ${bucket} at ${endpoint} is in another region than ${config.region}`, {
      hint: "set DATASAVER_S3_REGION to the bucket's region",
    });
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
  return new StorageError(`${description}: cannot ${op} ${key}: ${code}${http}: ${redact(e.message ?? '')}`, {
    transient,
    cause: err,
  });
}
