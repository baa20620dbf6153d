/** Helpers for tests that use the suite's S3 server (from global setup). */
import { inject } from 'vitest';
import type { S3StorageConfig } from '../../src/storage/config.ts';
import { uniqueName } from './pg.ts';
import { S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, s3StorageConfig } from './s3-server.ts';

export function s3Endpoint(): string {
  return inject('s3Endpoint');
}

/**
 * The suite's two S3 servers, for tests that run against both: `extended` has every feature datasaver
 * uses; `plain` is s3rver unmodified (no ListMultipartUploads, `If-None-Match` ignored).
 */
export const S3_SERVERS = ['extended', 'plain'] as const;
export type S3ServerKind = (typeof S3_SERVERS)[number];

export function s3EndpointOf(kind: S3ServerKind): string {
  return kind === 'plain' ? inject('s3PlainEndpoint') : inject('s3Endpoint');
}

/** A prefix no other test uses. */
export function s3Prefix(label = 's3'): string {
  return uniqueName(label).replace(/_/g, '-');
}

export function s3Config(prefix: string, overrides: Partial<S3StorageConfig> = {}): S3StorageConfig {
  return { ...s3StorageConfig(s3Endpoint(), prefix), ...overrides };
}

/** Environment that points datasaver at the test S3 server under `prefix`. */
export function s3Env(prefix: string, endpoint = s3Endpoint()): Record<string, string> {
  return {
    DATASAVER_S3_ENDPOINT: endpoint,
    DATASAVER_S3_BUCKET: S3_BUCKET,
    DATASAVER_S3_PREFIX: prefix,
    DATASAVER_S3_ACCESS_KEY: S3_ACCESS_KEY,
    DATASAVER_S3_SECRET_KEY: S3_SECRET_KEY,
    DATASAVER_S3_PART_SIZE_MB: '8',
  };
}
