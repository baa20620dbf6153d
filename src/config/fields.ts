/**
 * Every setting of a target, with its environment variable and its YAML key. This table is the single
 * place that names them: parsing, `*_FILE` handling, redaction and error messages all read it.
 */
export interface FieldSpec {
  /** Environment variable (one-target mode, and shared defaults in file mode where `shared`). */
  env: string;
  /** YAML key inside a target or `defaults` (dotted for nested keys). */
  yaml: string;
  /** A secret: redacted everywhere, and also read from `<env>_FILE` / `<yaml>_file`. */
  secret?: boolean;
  /**
   * Also read from `<env>_FILE` / `<yaml>_file`, as a secret is, but shown as it is: a value that is
   * public yet long enough to belong in a file (age recipients, verify keys).
   */
  fromFile?: boolean;
  /** Describes where the database is: taken from the environment only when no config file is used. */
  connection?: boolean;
}

const fields = {
  engine: { env: 'DATASAVER_ENGINE', yaml: 'engine', connection: true },
  url: { env: 'DATASAVER_DATABASE_URL', yaml: 'url', secret: true, connection: true },
  host: { env: 'DATASAVER_DB_HOST', yaml: 'host', connection: true },
  port: { env: 'DATASAVER_DB_PORT', yaml: 'port', connection: true },
  database: { env: 'DATASAVER_DB_NAME', yaml: 'database', connection: true },
  user: { env: 'DATASAVER_DB_USER', yaml: 'user', connection: true },
  password: { env: 'DATASAVER_DB_PASSWORD', yaml: 'password', secret: true, connection: true },
  sslmode: { env: 'DATASAVER_DB_SSLMODE', yaml: 'sslmode', connection: true },
  tls: { env: 'DATASAVER_DB_TLS', yaml: 'tls', connection: true },
  tlsCa: { env: 'DATASAVER_DB_TLS_CA', yaml: 'tls_ca', connection: true },
  name: { env: 'DATASAVER_TARGET_NAME', yaml: 'name', connection: true },
  // Names databases of one server: taken with the connection, never shared by every target of a file.
  excludeDatabases: { env: 'DATASAVER_DB_EXCLUDE', yaml: 'exclude_databases', connection: true },
  dumpJobs: { env: 'DATASAVER_DUMP_JOBS', yaml: 'dump_jobs' },
  format: { env: 'DATASAVER_FORMAT', yaml: 'format' },
  schemaOnly: { env: 'DATASAVER_SCHEMA_ONLY', yaml: 'schema_only' },
  compression: { env: 'DATASAVER_COMPRESSION', yaml: 'compression' },
  compressionLevel: { env: 'DATASAVER_COMPRESSION_LEVEL', yaml: 'compression_level' },
  storageBackend: { env: 'DATASAVER_STORAGE_BACKEND', yaml: 'storage.backend' },
  storagePath: { env: 'DATASAVER_STORAGE_PATH', yaml: 'storage.path' },
  s3Endpoint: { env: 'DATASAVER_S3_ENDPOINT', yaml: 's3.endpoint' },
  s3Region: { env: 'DATASAVER_S3_REGION', yaml: 's3.region' },
  s3Bucket: { env: 'DATASAVER_S3_BUCKET', yaml: 's3.bucket' },
  s3Prefix: { env: 'DATASAVER_S3_PREFIX', yaml: 's3.prefix' },
  s3ForcePathStyle: { env: 'DATASAVER_S3_FORCE_PATH_STYLE', yaml: 's3.force_path_style' },
  s3AccessKey: { env: 'DATASAVER_S3_ACCESS_KEY', yaml: 's3.access_key', secret: true },
  s3SecretKey: { env: 'DATASAVER_S3_SECRET_KEY', yaml: 's3.secret_key', secret: true },
  s3Sse: { env: 'DATASAVER_S3_SSE', yaml: 's3.sse' },
  s3SseKmsKeyId: { env: 'DATASAVER_S3_SSE_KMS_KEY_ID', yaml: 's3.sse_kms_key_id' },
  s3StorageClass: { env: 'DATASAVER_S3_STORAGE_CLASS', yaml: 's3.storage_class' },
  s3PartSizeMb: { env: 'DATASAVER_S3_PART_SIZE_MB', yaml: 's3.part_size_mb' },
  s3UploadConcurrency: { env: 'DATASAVER_S3_UPLOAD_CONCURRENCY', yaml: 's3.upload_concurrency' },
  s3VerifyUpload: { env: 'DATASAVER_S3_VERIFY_UPLOAD', yaml: 's3.verify_upload' },
  toolDir: { env: 'DATASAVER_TOOL_DIR', yaml: 'tool_dir' },
  timeZone: { env: 'DATASAVER_TIMEZONE', yaml: 'timezone' },
  keepLast: { env: 'DATASAVER_KEEP_LAST', yaml: 'retention.keep_last' },
  keepDaily: { env: 'DATASAVER_KEEP_DAILY', yaml: 'retention.keep_daily' },
  keepWeekly: { env: 'DATASAVER_KEEP_WEEKLY', yaml: 'retention.keep_weekly' },
  keepMonthly: { env: 'DATASAVER_KEEP_MONTHLY', yaml: 'retention.keep_monthly' },
  keepYearly: { env: 'DATASAVER_KEEP_YEARLY', yaml: 'retention.keep_yearly' },
  maxAgeDays: { env: 'DATASAVER_MAX_AGE_DAYS', yaml: 'retention.max_age_days' },
  minKeep: { env: 'DATASAVER_MIN_KEEP', yaml: 'retention.min_keep' },
  incompleteGraceHours: {
    env: 'DATASAVER_INCOMPLETE_GRACE_HOURS',
    yaml: 'retention.incomplete_grace_hours',
  },
  schedule: { env: 'DATASAVER_SCHEDULE', yaml: 'schedule' },
  jitterSeconds: { env: 'DATASAVER_SCHEDULE_JITTER_SECONDS', yaml: 'schedule_jitter_seconds' },
  retryAttempts: { env: 'DATASAVER_RETRY_ATTEMPTS', yaml: 'retry_attempts' },
  retryDelaySeconds: { env: 'DATASAVER_RETRY_DELAY_SECONDS', yaml: 'retry_delay_seconds' },
  alertAfterHours: { env: 'DATASAVER_ALERT_AFTER_HOURS', yaml: 'alert_after_hours' },
  sizeChangeAlert: { env: 'DATASAVER_SIZE_CHANGE_ALERT', yaml: 'size_change_alert' },
  leaseTtlSeconds: { env: 'DATASAVER_LEASE_TTL_SECONDS', yaml: 'lease_ttl_seconds' },
  // A drill server's URL carries its password.
  drillUrl: { env: 'DATASAVER_DRILL_URL', yaml: 'drill.url', secret: true },
  drillSchedule: { env: 'DATASAVER_DRILL_SCHEDULE', yaml: 'drill.schedule' },
  // Notification URLs carry tokens (Slack, Discord, Telegram, healthchecks.io ping ids): all secrets.
  webhookUrl: { env: 'DATASAVER_WEBHOOK_URL', yaml: 'notify.webhook_url', secret: true },
  slackWebhookUrl: { env: 'DATASAVER_SLACK_WEBHOOK_URL', yaml: 'notify.slack_webhook_url', secret: true },
  discordWebhookUrl: {
    env: 'DATASAVER_DISCORD_WEBHOOK_URL',
    yaml: 'notify.discord_webhook_url',
    secret: true,
  },
  ntfyUrl: { env: 'DATASAVER_NTFY_URL', yaml: 'notify.ntfy_url', secret: true },
  ntfyToken: { env: 'DATASAVER_NTFY_TOKEN', yaml: 'notify.ntfy_token', secret: true },
  telegramBotToken: {
    env: 'DATASAVER_TELEGRAM_BOT_TOKEN',
    yaml: 'notify.telegram_bot_token',
    secret: true,
  },
  telegramChatId: { env: 'DATASAVER_TELEGRAM_CHAT_ID', yaml: 'notify.telegram_chat_id' },
  telegramApiUrl: { env: 'DATASAVER_TELEGRAM_API_URL', yaml: 'notify.telegram_api_url' },
  healthchecksUrl: { env: 'DATASAVER_HEALTHCHECKS_URL', yaml: 'notify.healthchecks_url', secret: true },
  notifyOnSuccess: { env: 'DATASAVER_NOTIFY_ON_SUCCESS', yaml: 'notify.on_success' },
  // A Pushgateway's URL may carry basic-auth credentials.
  pushgatewayUrl: { env: 'DATASAVER_PUSHGATEWAY_URL', yaml: 'pushgateway_url', secret: true },
  // Public keys: whoever holds them can encrypt, not decrypt; a recipients file is read like a secret's.
  encryptionRecipients: {
    env: 'DATASAVER_ENCRYPTION_RECIPIENTS',
    yaml: 'encryption.recipients',
    fromFile: true,
  },
  encryptionPassphrase: {
    env: 'DATASAVER_ENCRYPTION_PASSPHRASE',
    yaml: 'encryption.passphrase',
    secret: true,
  },
  // A path: the identity file itself is read when the configuration is (config/encryption-settings.ts).
  encryptionIdentityFile: {
    env: 'DATASAVER_ENCRYPTION_IDENTITY_FILE',
    yaml: 'encryption.identity_file',
  },
  // An Ed25519 private key: whoever holds it can sign manifests that readers believe.
  signingKey: { env: 'DATASAVER_SIGNING_KEY', yaml: 'signing.key', secret: true },
  verifyKeys: { env: 'DATASAVER_VERIFY_KEYS', yaml: 'signing.verify_keys', fromFile: true },
} as const satisfies Record<string, FieldSpec>;

export type FieldName = keyof typeof fields;
export const FIELDS: Readonly<Record<FieldName, FieldSpec>> = fields;

export const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

/**
 * Settings of the daemon process itself (one HTTP port, one log), not of a target: environment variables,
 * or the `daemon:` section of the config file.
 */
const daemonFields = {
  metricsPort: { env: 'DATASAVER_METRICS_PORT', yaml: 'metrics_port' },
  metricsHost: { env: 'DATASAVER_METRICS_HOST', yaml: 'metrics_host' },
  shutdownTimeoutSeconds: {
    env: 'DATASAVER_SHUTDOWN_TIMEOUT_SECONDS',
    yaml: 'shutdown_timeout_seconds',
  },
  logLevel: { env: 'DATASAVER_LOG_LEVEL', yaml: 'log_level' },
  logFormat: { env: 'DATASAVER_LOG_FORMAT', yaml: 'log_format' },
  healthDetails: { env: 'DATASAVER_HEALTH_DETAILS', yaml: 'health_details' },
} as const satisfies Record<string, Omit<FieldSpec, 'secret' | 'connection' | 'fromFile'>>;

export type DaemonFieldName = keyof typeof daemonFields;
export const DAEMON_FIELDS: Readonly<Record<DaemonFieldName, { env: string; yaml: string }>> = daemonFields;
