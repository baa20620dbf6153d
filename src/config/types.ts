import type { ConnectionConfig } from '../engines/engine.ts';
import type { EngineName } from '../engines/registry.ts';
import type { CompressionConfig } from '../pipeline/compression.ts';
import type { RetentionRules } from '../retention/policy.ts';
import type { StorageConfig } from '../storage/config.ts';
import type { LogFormat, LogLevel } from '../util/log.ts';
import type { Secret } from '../util/secret.ts';
import type { DrillConfig } from './drill-settings.ts';
import type { EncryptionConfig } from './encryption-settings.ts';
import type { SigningConfig } from './signing-settings.ts';

/** One database that datasaver backs up: where it is, how to dump it and where backups go. */
export interface TargetConfig {
  /** Name used in storage keys and backup ids: letters, digits, `_` and `-`. */
  name: string;
  engine: EngineName;
  connection: ConnectionConfig;
  /** One of the engine's dump formats (its descriptor's `formats`: postgres custom or plain, mysql sql...). */
  format: string;
  schemaOnly: boolean;
  /**
   * Databases a whole-server backup set leaves out (DATASAVER_DB_EXCLUDE): only for a target whose
   * engine makes sets and that names no database (Engine.serverSet).
   */
  excludeDatabases: string[];
  /** How many databases of a whole-server backup set are dumped at once (DATASAVER_DUMP_JOBS). */
  dumpJobs: number;
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
   * How long the target's lease (one writer per target, lease/lease.ts) lasts without renewal: a run
   * killed without releasing it holds the target that long. Absent: DEFAULT_LEASE_TTL_SECONDS.
   */
  leaseTtlSeconds?: number | undefined;
  notify: NotifyConfig;
  /**
   * A Prometheus Pushgateway (`http://pushgateway:9091`) that one-shot runs push their metrics to; a
   * failed push is a warning, never a failed run. Absent: no push.
   */
  pushgatewayUrl?: Secret | undefined;
  /** Where restore drills of this target's backups restore, and when the daemon runs them. */
  drill: DrillConfig;
  /** How this target's backups are encrypted, and how they are opened (restore, verify, drill). */
  encryption: EncryptionConfig;
  /** The key this target's manifests are signed with, and the keys its backups' manifests are checked against. */
  signing: SigningConfig;
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
  /** Drill settings from the shared settings, for drills of backups whose target is not configured. */
  defaultDrill: DrillConfig;
  /** Encryption from the shared settings, for backups whose target is not configured. */
  defaultEncryption: EncryptionConfig;
  /** Signing settings from the shared settings, for backups whose target is not configured. */
  defaultSigning: SigningConfig;
  daemon: DaemonConfig;
  /** Settings that were given but have no effect, for `config check` to point out. */
  warnings: string[];
}
