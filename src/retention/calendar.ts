/**
 * Calendar periods in an IANA time zone, pure: which day, ISO week, month and year an instant falls in
 * there. Retention and the scheduler both compute periods in the configured zone (default UTC).
 */

export interface CivilDate {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws RangeError for a zone the runtime does not know; config validation catches that first.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'iso8601',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * True when `name` is an IANA time zone this runtime knows (`UTC`, `Europe/Berlin`...). Fixed offsets such
 * as `+05:00` are refused: they have no DST, and not every runtime accepts them.
 */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z]/.test(name)) return false;
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

/** The calendar date of `at` as a wall clock in `timeZone` shows it. */
export function civilDate(at: Date, timeZone: string): CivilDate {
  const parts = formatter(timeZone).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return { year: get('year'), month: get('month'), day: get('day') };
}

const DAY_MS = 86_400_000;

/** ISO 8601 week of a calendar date: weeks run Monday-Sunday and week 1 holds the year's first Thursday. */
export function isoWeek(date: CivilDate): { year: number; week: number } {
  const days = Date.UTC(date.year, date.month - 1, date.day) / DAY_MS;
  const weekday = (new Date(days * DAY_MS).getUTCDay() + 6) % 7; // Monday 0 ... Sunday 6
  const thursday = days - weekday + 3;
  const year = new Date(thursday * DAY_MS).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(year, 0, 1) / DAY_MS) / 7) + 1;
  return { year, week };
}

export type PeriodUnit = 'daily' | 'weekly' | 'monthly' | 'yearly';

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The period `at` belongs to, as a label that is also its identity: `2026-01-11`, `2026-W02`, `2026-01`, `2026`. */
export function periodOf(unit: PeriodUnit, at: Date, timeZone: string): string {
  const d = civilDate(at, timeZone);
  switch (unit) {
    case 'daily':
      return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;
    case 'weekly': {
      const w = isoWeek(d);
      return `${pad(w.year, 4)}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${pad(d.year, 4)}-${pad(d.month)}`;
    case 'yearly':
      return pad(d.year, 4);
  }
}
