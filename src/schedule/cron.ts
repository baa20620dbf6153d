/**
 * When a target's backups run: a cron expression (5 fields, or 6 with seconds first) read in the target's
 * time zone, plus an optional random delay (jitter) so that many sidecars sharing one schedule do not all
 * hit their storage in the same second. Pure: every function takes `now`; the daemon owns the timers.
 *
 * Parsing and stepping are croner's (day-of-month and day-of-week combine with OR, like Vixie cron; a run
 * that falls in a daylight-saving gap happens at the first valid time after it, and a repeated hour runs
 * once).
 */
import { Cron } from 'croner';

export const DEFAULT_SCHEDULE = '0 2 * * *';

export interface Schedule {
  /** The expression as configured. */
  readonly expression: string;
  readonly timeZone: string;
  /** The first run strictly after `after`, or undefined when the expression never matches again. */
  next(after: Date): Date | undefined;
}

/** Parses a cron expression, or returns what is wrong with it (for config errors). */
export function parseSchedule(expression: string, timeZone: string): Schedule | { problem: string } {
  let cron: Cron;
  try {
    cron = new Cron(expression.trim(), { timezone: timeZone, paused: true, mode: '5-or-6-parts' });
  } catch (err) {
    return { problem: (err as Error).message.replace(/^CronPattern: /, '') };
  }
  const first = cron.nextRun(new Date());
  if (!first) return { problem: 'never matches a date (e.g. 30 February)' };
  return {
    expression,
    timeZone,
    next: (after) => cron.nextRun(after) ?? undefined,
  };
}

/**
 * The longest gap between runs over the next `runs` runs, in ms: the dead man's switch window must be
 * longer than this or a healthy target looks stale between two runs.
 */
export function longestInterval(schedule: Schedule, now: Date, runs = 8): number | undefined {
  let longest: number | undefined;
  let prev = schedule.next(now);
  for (let i = 1; prev && i < runs; i++) {
    const next = schedule.next(prev);
    if (!next) break;
    longest = Math.max(longest ?? 0, next.getTime() - prev.getTime());
    prev = next;
  }
  return longest;
}

/** A planned run: the cron time it stands for, and when it actually fires (cron time plus jitter). */
export interface PlannedRun {
  nominal: Date;
  at: Date;
}

/**
 * The next run after `now`. `previous` is the cron time of the run that just fired (so that a run that
 * fired late, after jitter or a busy event loop, does not make the schedule skip its next slot); runs
 * whose time has already passed are not caught up, the schedule resumes from `now`.
 */
export function planNext(
  schedule: Schedule,
  now: Date,
  jitterMs: number,
  random: () => number,
  previous?: Date,
): PlannedRun | undefined {
  // A timer may fire a little early: never plan the slot that is firing now a second time.
  const from = previous && previous.getTime() > now.getTime() ? previous : now;
  const nominal = schedule.next(from);
  if (!nominal) return undefined;
  const jitter = jitterMs > 0 ? Math.floor(random() * jitterMs) : 0;
  return { nominal, at: new Date(nominal.getTime() + jitter) };
}
