/** A target's schedule settings: cron expression, jitter and retries, and what to warn about them. */
import { DEFAULT_SCHEDULE, longestInterval, parseSchedule } from '../schedule/cron.ts';
import { FIELDS } from './fields.ts';
import type { Problems, RawTarget } from './raw.ts';
import type { ScheduleConfig } from './types.ts';
import { check, intIn, POSITIVE_NUMBER } from './values.ts';

/** The schedule of a target, or undefined (a problem recorded) when its cron expression is not valid. */
export function buildSchedule(
  raw: RawTarget,
  timeZone: string,
  problems: Problems,
): ScheduleConfig | undefined {
  const cron = raw.schedule ? String(raw.schedule.value).trim() : DEFAULT_SCHEDULE;
  const parsed = parseSchedule(cron, timeZone);
  if ('problem' in parsed) {
    problems.add(
      raw.schedule?.origin ?? FIELDS.schedule.env,
      `'${cron}' is not a valid schedule (${parsed.problem}); expected a cron expression such as '0 2 * * *' (02:00 daily) or, with seconds first, '*/30 * * * * *'`,
    );
  }
  const settings = {
    cron,
    jitterSeconds: check(raw.jitterSeconds, intIn(0, 86_400, 'a number of seconds, 0-86400'), problems) ?? 0,
    retryAttempts:
      check(raw.retryAttempts, intIn(1, 100, 'a number of tries, 1 (no retry) to 100'), problems) ?? 3,
    retryDelaySeconds: check(raw.retryDelaySeconds, POSITIVE_NUMBER('seconds'), problems) ?? 30,
  };
  return 'problem' in parsed ? undefined : settings;
}

/** A dead man's switch shorter than the gap between runs would call a healthy target stale. */
export function scheduleWarning(
  raw: RawTarget,
  name: string,
  schedule: ScheduleConfig,
  timeZone: string,
  alertAfterHours: number,
  warnings: string[],
): void {
  const parsed = parseSchedule(schedule.cron, timeZone);
  if ('problem' in parsed) return;
  const gap = longestInterval(parsed, new Date());
  const windowMs = alertAfterHours * 3_600_000;
  if (gap !== undefined && schedule.jitterSeconds * 1000 >= gap) {
    warnings.push(
      `target ${name}: ${raw.jitterSeconds?.origin ?? FIELDS.jitterSeconds.env} (${schedule.jitterSeconds} s) is not shorter than the gap between scheduled runs (${Math.round(gap / 1000)} s), so runs will be skipped; keep the jitter well below the gap`,
    );
  }
  if (gap !== undefined && gap + schedule.jitterSeconds * 1000 >= windowMs) {
    warnings.push(
      `target ${name}: ${raw.alertAfterHours?.origin ?? FIELDS.alertAfterHours.env} (${alertAfterHours} h) is not longer than the gap between scheduled runs (${(gap / 3_600_000).toFixed(2)} h), so the target will look stale between runs; raise it above the gap`,
    );
  }
}
