import { NO_CONNECTION } from '../engines/engine.ts';
import { DEFAULT_ENGINE, type EngineName, engineDescriptor } from '../engines/registry.ts';
import { DEFAULT_RULES } from '../retention/policy.ts';
import { DEFAULT_SCHEDULE } from '../schedule/cron.ts';
import { NO_ENCRYPTION } from './encryption-settings.ts';
import { NO_SIGNING } from './signing-settings.ts';
import type { NotifyConfig, TargetConfig } from './types.ts';

/** A backup half or one and a half times the usual size is worth a look (a dropped table looks like this). */
export const DEFAULT_SIZE_CHANGE_ALERT = 0.5;

/** How long a target's lease (lease/lease.ts) lasts without renewal. */
export const DEFAULT_LEASE_TTL_SECONDS = 300;
/**
 * The longest lease TTL. A lease is never believed past its last write plus this, whatever `expiresAt` it
 * claims: storage is untrusted, and a lease planted with an expiry in the year 3000 must not stop a
 * target's backups for good.
 */
export const MAX_LEASE_TTL_SECONDS = 86_400;

export const NO_NOTIFICATIONS: NotifyConfig = {
  webhookUrl: undefined,
  slackWebhookUrl: undefined,
  discordWebhookUrl: undefined,
  ntfy: undefined,
  telegram: undefined,
  healthchecksUrl: undefined,
  onSuccess: false,
};

/**
 * A target with no connection settings and default dump settings: enough for an engine to read and
 * check dumps (verify from storage alone), not to reach a server.
 */
export function offlineTarget(
  name: string,
  toolDir: string | undefined,
  engine: EngineName = DEFAULT_ENGINE,
): TargetConfig {
  return {
    name,
    engine,
    connection: { ...NO_CONNECTION },
    format: engineDescriptor(engine).formatNames[0]!,
    schemaOnly: false,
    excludeDatabases: [],
    dumpJobs: 1,
    compression: { algorithm: 'zstd', level: undefined },
    destinations: [],
    toolDir,
    timeZone: 'UTC',
    retention: { ...DEFAULT_RULES, incompleteGraceHours: 24 },
    schedule: { cron: DEFAULT_SCHEDULE, jitterSeconds: 0, retryAttempts: 3, retryDelaySeconds: 30 },
    alertAfterHours: 26,
    sizeChangeAlert: DEFAULT_SIZE_CHANGE_ALERT,
    notify: NO_NOTIFICATIONS,
    drill: { server: undefined, schedule: undefined },
    encryption: NO_ENCRYPTION,
    signing: NO_SIGNING,
  };
}
