import { DEFAULT_SCHEDULE } from '../daemon/schedule.ts';
import { DEFAULT_RULES } from '../retention/policy.ts';
import type { NotifyConfig, TargetConfig } from './types.ts';

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
export function offlineTarget(name: string, toolDir: string | undefined): TargetConfig {
  return {
    name,
    engine: 'postgres',
    connection: {
      host: undefined,
      port: undefined,
      database: undefined,
      user: undefined,
      password: undefined,
      sslmode: undefined,
    },
    format: 'custom',
    schemaOnly: false,
    compression: { algorithm: 'zstd', level: undefined },
    destinations: [],
    toolDir,
    timeZone: 'UTC',
    retention: { ...DEFAULT_RULES, incompleteGraceHours: 24 },
    schedule: { cron: DEFAULT_SCHEDULE, jitterSeconds: 0, retryAttempts: 3, retryDelaySeconds: 30 },
    alertAfterHours: 26,
    notify: NO_NOTIFICATIONS,
  };
}
