import type { RetentionRules } from '../retention/policy.ts';
import type { Secret } from '../util/secret.ts';

/** Database engines datasaver knows (`mysql` covers MySQL and MariaDB). */
export const ENGINE_NAMES = ['postgres', 'mysql', 'redis', 'sqlite'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** Dump formats per engine; the first is the default. */
export const ENGINE_FORMATS: Readonly<Record<EngineName, readonly string[]>> = {
  postgres: ['custom', 'plain'],
  mysql: ['sql'],
  redis: ['rdb'],
  sqlite: ['sqlite'],
};

export const COMPRESSION_ALGORITHMS = ['zstd', 'gzip', 'none'] as const;
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];

export interface CompressionConfig {
  algorithm: CompressionAlgorithm;
  /** Algorithm-specific level; undefined means the algorithm's default (zstd 2 with a larger match table, gzip 6). */
  level: number | undefined;
}

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

/**
 * How to reach the database. Every field is optional: the engine's defaults apply (libpq's for
 * PostgreSQL, localhost:3306 for MySQL, localhost:6379 for Redis).
 */
export interface ConnectionConfig {
  host: string | undefined;
  port: number | undefined;
  /**
   * PostgreSQL: the database. MySQL: one database, or several separated by commas; unset for all.
   * SQLite: the absolute path of the database file. Redis: unused (a backup holds every database).
   */
  database: string | undefined;
  user: string | undefined;
  password: Secret | undefined;
  /** libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full); PostgreSQL only. */
  sslmode: string | undefined;
  /** Connect with TLS (Redis: `rediss://` or DATASAVER_DB_TLS; MySQL: DATASAVER_DB_TLS). */
  tls: boolean;
  /**
   * MySQL and Redis: a PEM file with the CA certificate(s) the server's certificate must chain to; with
   * it, the certificate and the host name are verified (and TLS is on). Without it, MySQL's TLS encrypts
   * without verifying, and Redis verifies against the system's CAs.
   */
  tlsCa: string | undefined;
}

/** One database that datasaver backs up: where it is, how to dump it and where backups go. */
export interface TargetConfig {
  /** Name used in storage keys and backup ids: letters, digits, `_` and `-`. */
  name: string;
  engine: EngineName;
  connection: ConnectionConfig;
  /** Engine-specific dump format (ENGINE_FORMATS: postgres custom or plain; mysql sql; redis rdb; sqlite). */
  format: string;
  schemaOnly: boolean;
  compression: CompressionConfig;
  /** Where backups are written, each from the same dump; local first. */
  destinations: StorageConfig[];
  /** Directory holding the engine's client tools, when they are not the ones on PATH. */
  toolDir: string | undefined;
  /** IANA time zone for retention periods (and schedules); default UTC. */
  timeZone: string;
  retention: RetentionConfig;
  /** When the daemon backs this target up (cron, in `timeZone`), and how it retries. */
  schedule: ScheduleConfig;
  /** Dead man's switch: no successful backup for this long makes the target unhealthy and sends `stale`. */
  alertAfterHours: number;
  /**
   * A committed backup whose raw size differs from the median of the target's last good backups by more
   * than this fraction (0.5 = 50%) raises a warning; 0 turns the check off.
   */
  sizeChangeAlert: number;
  /**
   * How long the target's lease (one writer per target, jobs/lease.ts) lasts without renewal: a run
   * killed without releasing it holds the target that long. Absent: DEFAULT_LEASE_TTL_SECONDS.
   */
  leaseTtlSeconds?: number | undefined;
  notify: NotifyConfig;
}

export interface ScheduleConfig {
  /** Cron expression: 5 fields, or 6 with seconds first. */
  cron: string;
  /** Each run starts up to this many seconds after its cron time (random), 0 for none. */
  jitterSeconds: number;
  /** Tries per run when the database cannot be reached (1 = no retry). */
  retryAttempts: number;
  /** Wait before the first retry; doubles for each further one. */
  retryDelaySeconds: number;
}

/** Where the daemon reports failures, recoveries, stale targets and (optionally) successes. */
export interface NotifyConfig {
  /** Generic JSON POST (payload documented in docs/notifications.md). */
  webhookUrl: Secret | undefined;
  slackWebhookUrl: Secret | undefined;
  discordWebhookUrl: Secret | undefined;
  /** ntfy topic URL (https://ntfy.sh/my-topic), with an optional access token. */
  ntfy: { url: Secret; token: Secret | undefined } | undefined;
  telegram: { botToken: Secret; chatId: string; apiUrl: string } | undefined;
  /** healthchecks.io-style ping URL: `/start` when a run begins, the URL on success, `/fail` on failure. */
  healthchecksUrl: Secret | undefined;
  /** Also notify on every success (failures, recoveries and stale targets always notify). */
  onSuccess: boolean;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Settings of `datasaver daemon` as a process. */
export interface DaemonConfig {
  /** The one HTTP port for /health, /ready and /metrics. */
  metricsPort: number;
  /**
   * Address to listen on: loopback unless set, so the port is no one else's to reach by accident. An
   * image or manifest that publishes the port sets `0.0.0.0` (or `::`) explicitly.
   */
  metricsHost: string;
  /** `/health` shows error texts and destinations in full (they name hosts, users, paths, endpoints). */
  healthDetails: boolean;
  /** After SIGTERM/SIGINT, how long running backups get to stop before the process exits anyway. */
  shutdownTimeoutSeconds: number;
  logLevel: LogLevel;
  /** `auto`: readable lines on a terminal, JSON lines otherwise. */
  logFormat: LogFormat;
}

/** What prune keeps (see retention/policy.ts), and how long incomplete uploads are left alone. */
export interface RetentionConfig extends RetentionRules {
  /** Data with no manifest younger than this may be an upload in flight and is never removed. */
  incompleteGraceHours: number;
}

export interface Config {
  /** The YAML file the config came from, if any. */
  file: string | undefined;
  targets: TargetConfig[];
  /** Storage from the shared settings, for list/verify/restore of backups whose target is not configured. */
  defaultDestinations: StorageConfig[];
  /** Client tool directory used when no target is configured (verify from storage alone). */
  defaultToolDir: string | undefined;
  daemon: DaemonConfig;
  /** Settings that were given but have no effect, for `config check` to point out. */
  warnings: string[];
}
