/**
 * Retention as a pure function: golden cases on a 400-day history, hand-checked small cases, and
 * calendar periods in non-UTC zones, across DST changes and at year and ISO-week boundaries.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupId } from '../../src/catalog/layout.ts';
import { civilDate, isoWeek, isTimeZone, periodOf } from '../../src/retention/calendar.ts';
import {
  DEFAULT_RULES,
  planRetention,
  policyProblem,
  type RetentionCandidate,
  type RetentionPolicy,
} from '../../src/retention/policy.ts';
import { HISTORY_NOW, history400Days } from '../support/retention-history.ts';

const GOLDEN = join(import.meta.dirname, '..', 'fixtures', 'retention');
const UTC: RetentionPolicy = { ...DEFAULT_RULES, timeZone: 'UTC' };
const NONE: RetentionPolicy = {
  keepLast: 0,
  keepDaily: 0,
  keepWeekly: 0,
  keepMonthly: 0,
  keepYearly: 0,
  maxAgeDays: 0,
  minKeep: 0,
  timeZone: 'UTC',
};

function at(iso: string, extra: Partial<RetentionCandidate> = {}): RetentionCandidate {
  const time = new Date(iso);
  return { id: backupId('shop', time), time, ...extra };
}

function kept(decisions: { id: string; keep: boolean }[]): string[] {
  return decisions.filter((d) => d.keep).map((d) => d.id);
}

function reasonsOf(decisions: { id: string; reasons: string[] }[]): Record<string, string[]> {
  return Object.fromEntries(decisions.map((d) => [d.id, d.reasons]));
}

describe('golden cases: 400 days of backups with gaps, second backups and failed runs', () => {
  for (const file of readdirSync(GOLDEN).filter((f) => f.endsWith('.json'))) {
    it(file, () => {
      const golden = JSON.parse(readFileSync(join(GOLDEN, file), 'utf8')) as {
        now: string;
        policy: RetentionPolicy;
        kept: Record<string, string[]>;
      };
      expect(golden.now).toBe(HISTORY_NOW.toISOString());
      const history = history400Days();
      const decisions = planRetention(history, golden.policy, new Date(golden.now));
      const keptNow = Object.fromEntries(decisions.filter((d) => d.keep).map((d) => [d.id, d.reasons]));
      expect(keptNow).toEqual(golden.kept);
      // Everything else is removed, each with the reason that applies to it.
      for (const d of decisions.filter((x) => !x.keep)) {
        const c = history.find((h) => h.id === d.id)!;
        expect(d.reasons).toEqual([
          c.problem ??
            (golden.policy.maxAgeDays > 0 &&
            HISTORY_NOW.getTime() - c.time.getTime() > golden.policy.maxAgeDays * 86_400_000
              ? `max-age: older than ${golden.policy.maxAgeDays} days`
              : 'no rule keeps it'),
        ]);
      }
    });
  }
});

describe('rules', () => {
  const now = new Date('2026-01-20T12:00:00Z');
  // One backup a day, 2026-01-01 ... 2026-01-19.
  const daily = Array.from({ length: 19 }, (_, i) =>
    at(`2026-01-${String(i + 1).padStart(2, '0')}T02:00:00Z`),
  );

  it('keep-last keeps the N newest and nothing else', () => {
    const d = planRetention(daily, { ...NONE, keepLast: 3 }, now);
    expect(kept(d)).toEqual([daily[18]!.id, daily[17]!.id, daily[16]!.id]);
    expect(reasonsOf(d)[daily[18]!.id]).toEqual(['last 1', 'newest good backup']);
    expect(reasonsOf(d)[daily[16]!.id]).toEqual(['last 3']);
  });

  it('each period rule keeps the newest backup of each period and walks the list on its own', () => {
    const d = planRetention(daily, { ...NONE, keepDaily: 2, keepWeekly: 3 }, now);
    // ISO weeks: 2026-W04 starts Mon 19th, W03 12-18, W02 5-11, W01 Dec 29 - Jan 4.
    expect(reasonsOf(d)).toMatchObject({
      [daily[18]!.id]: ['daily 2026-01-19', 'weekly 2026-W04', 'newest good backup'],
      [daily[17]!.id]: ['daily 2026-01-18', 'weekly 2026-W03'],
      [daily[10]!.id]: ['weekly 2026-W02'],
    });
    expect(kept(d)).toHaveLength(3);
  });

  it('only periods that hold a backup count', () => {
    const sparse = [at('2026-01-02T02:00:00Z'), at('2026-01-09T02:00:00Z'), at('2026-01-19T02:00:00Z')];
    const d = planRetention(sparse, { ...NONE, keepDaily: 3 }, now);
    expect(kept(d)).toHaveLength(3);
  });

  it('the newest backup of a day represents it', () => {
    const day = [at('2026-01-19T02:00:00Z'), at('2026-01-19T14:00:00Z'), at('2026-01-19T23:59:59Z')];
    const d = planRetention(day, { ...NONE, keepDaily: 7 }, now);
    expect(kept(d)).toEqual([day[2]!.id]);
  });

  it('max-age removes what rules kept, and min-keep is the floor under it', () => {
    const d = planRetention(daily, { ...NONE, keepDaily: 30, maxAgeDays: 5, minKeep: 2 }, now);
    // Newer than 5 days before now: the 15th 12:00 onwards.
    expect(kept(d)).toEqual(
      daily
        .slice(15)
        .reverse()
        .map((c) => c.id),
    );
    expect(reasonsOf(d)[daily[14]!.id]).toEqual(['max-age: older than 5 days']);

    const later = new Date('2026-06-01T00:00:00Z');
    const all = planRetention(daily, { ...NONE, keepDaily: 30, maxAgeDays: 5, minKeep: 2 }, later);
    expect(kept(all)).toEqual([daily[18]!.id, daily[17]!.id]);
    expect(reasonsOf(all)[daily[18]!.id]).toEqual(['min-keep']);
  });

  it('the newest good backup stays even with min-keep 0 and everything past max-age', () => {
    const d = planRetention(
      daily,
      { ...NONE, keepDaily: 1, maxAgeDays: 1 },
      new Date('2027-01-01T00:00:00Z'),
    );
    expect(kept(d)).toEqual([daily[18]!.id]);
    expect(reasonsOf(d)[daily[18]!.id]).toEqual(['newest good backup']);
  });

  it('a run of failed backups never displaces the last good ones', () => {
    const good = daily.slice(0, 4);
    const failed = daily.slice(4).map((c) => ({ ...c, problem: 'verify failed (checksum)' }));
    const d = planRetention([...good, ...failed], { ...UTC, maxAgeDays: 3 }, now);
    // Max-age would take all four good ones; min-keep 3 keeps the three newest good ones. The failed ones
    // count for nothing; they stay only because they are inside the window the kept good backups span.
    expect(kept(d).filter((id) => good.some((g) => g.id === id))).toEqual([
      good[3]!.id,
      good[2]!.id,
      good[1]!.id,
    ]);
    for (const f of failed) {
      expect(reasonsOf(d)[f.id]).toEqual(['verify failed (checksum)', 'inside the retention window']);
    }
    // When good backups succeed again, they take over and the failed ones age out of the window.
    const recovered = [at('2026-01-20T02:00:00Z'), at('2026-01-20T03:00:00Z'), at('2026-01-20T04:00:00Z')];
    const after = planRetention([...good, ...failed, ...recovered], { ...UTC, maxAgeDays: 3 }, now);
    expect(kept(after)).toEqual(recovered.map((c) => c.id).reverse());
    for (const f of failed) expect(reasonsOf(after)[f.id]).toEqual(['verify failed (checksum)']);
  });

  it('a bad backup is kept only inside the retention window, and never for a rule', () => {
    const list = [
      at('2026-01-01T02:00:00Z', { problem: 'data object missing' }),
      at('2026-01-18T02:00:00Z'),
      at('2026-01-19T02:00:00Z', { problem: 'verify failed (checksum)' }),
      at('2026-01-19T12:00:00Z'),
    ];
    const d = planRetention(list, { ...NONE, keepLast: 2 }, now);
    expect(reasonsOf(d)).toEqual({
      [list[3]!.id]: ['last 1', 'newest good backup'],
      [list[2]!.id]: ['verify failed (checksum)', 'inside the retention window'],
      [list[1]!.id]: ['last 2'],
      [list[0]!.id]: ['data object missing'],
    });
    expect(kept(d)).toEqual([list[3]!.id, list[2]!.id, list[1]!.id]);
    // With nothing good at all, nothing is removed: a broken verifier cannot empty storage.
    const allBad = daily.map((c) => ({ ...c, problem: 'verify failed (structure)' }));
    expect(kept(planRetention(allBad, UTC, now))).toHaveLength(allBad.length);
  });

  it('series are thinned separately: schema-only backups never displace full ones', () => {
    const full = daily.slice(0, 5).map((c) => ({ ...c, series: 'full' }));
    const schema = daily.slice(5).map((c) => ({ ...c, series: 'schema-only' }));
    const d = planRetention([...full, ...schema], { ...NONE, keepLast: 2 }, now);
    expect(kept(d)).toEqual([schema[13]!.id, schema[12]!.id, full[4]!.id, full[3]!.id]);
  });

  it('refuses a policy that keeps nothing', () => {
    expect(policyProblem(NONE)).toMatch(/would keep nothing/);
    expect(policyProblem({ ...NONE, minKeep: 1 })).toBeUndefined();
    expect(policyProblem({ ...NONE, keepYearly: 1 })).toBeUndefined();
    expect(policyProblem(DEFAULT_RULES)).toBeUndefined();
  });

  it('ties in time are broken by id, so the result never depends on input order', () => {
    const same = new Date('2026-01-19T02:00:00Z');
    const a = { id: backupId('shop', same), time: same };
    const b = { id: backupId('shop', same, 1), time: same };
    const policy = { ...NONE, keepLast: 1 };
    expect(kept(planRetention([a, b], policy, now))).toEqual([b.id]);
    expect(kept(planRetention([b, a], policy, now))).toEqual([b.id]);
  });
});

describe('calendar periods', () => {
  it('knows IANA zones and rejects others', () => {
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });

  it('ISO weeks at year boundaries', () => {
    const w = (year: number, month: number, day: number) => {
      const r = isoWeek({ year, month, day });
      return `${r.year}-W${String(r.week).padStart(2, '0')}`;
    };
    // 2026-12-31 (Thu) and 2027-01-01 (Fri): different months and years, the same ISO week.
    expect(w(2026, 12, 31)).toBe('2026-W53');
    expect(w(2027, 1, 1)).toBe('2026-W53');
    expect(w(2027, 1, 3)).toBe('2026-W53'); // Sunday ends the week
    expect(w(2027, 1, 4)).toBe('2027-W01'); // Monday starts the next
    expect(w(2024, 12, 30)).toBe('2025-W01');
    expect(w(2021, 1, 3)).toBe('2020-W53');
    expect(w(2026, 1, 1)).toBe('2026-W01');
    expect(w(2026, 6, 15)).toBe('2026-W25');
  });

  it('year and ISO-week boundaries split and join periods as the calendar does', () => {
    const dec31 = new Date('2026-12-31T12:00:00Z');
    const jan1 = new Date('2027-01-01T12:00:00Z');
    for (const unit of ['daily', 'monthly', 'yearly'] as const) {
      expect(periodOf(unit, dec31, 'UTC')).not.toBe(periodOf(unit, jan1, 'UTC'));
    }
    expect(periodOf('weekly', dec31, 'UTC')).toBe(periodOf('weekly', jan1, 'UTC'));
    const d = planRetention(
      [at('2026-12-31T12:00:00Z'), at('2027-01-01T12:00:00Z')],
      { ...NONE, keepWeekly: 5 },
      new Date('2027-01-02T00:00:00Z'),
    );
    expect(kept(d)).toEqual([backupId('shop', jan1)]);
    const m = planRetention(
      [at('2026-12-31T12:00:00Z'), at('2027-01-01T12:00:00Z')],
      { ...NONE, keepMonthly: 5 },
      new Date('2027-01-02T00:00:00Z'),
    );
    expect(kept(m)).toHaveLength(2);
  });

  it('periods follow the configured zone, not UTC', () => {
    // 03:00 UTC on Dec 1 is still Nov 30 in New York.
    const t = new Date('2026-12-01T03:00:00Z');
    expect(periodOf('monthly', t, 'UTC')).toBe('2026-12');
    expect(periodOf('monthly', t, 'America/New_York')).toBe('2026-11');
    expect(periodOf('daily', t, 'America/New_York')).toBe('2026-11-30');
    // New Year arrives in Auckland half a day before UTC.
    const nz = new Date('2026-12-31T11:30:00Z');
    expect(periodOf('yearly', nz, 'Pacific/Auckland')).toBe('2027');
    expect(periodOf('weekly', nz, 'Pacific/Auckland')).toBe('2026-W53');
    expect(civilDate(nz, 'Asia/Kolkata')).toEqual({ year: 2026, month: 12, day: 31 });
  });

  it('days across DST changes in Europe/Berlin', () => {
    // Spring forward 2026-03-29: nightly backups at 00:30 UTC are 01:30 CET, then 02:30 CEST; one per day.
    const spring = Array.from({ length: 6 }, (_, i) => new Date(Date.UTC(2026, 2, 26 + i, 0, 30)));
    expect(spring.map((t) => periodOf('daily', t, 'Europe/Berlin'))).toEqual([
      '2026-03-26',
      '2026-03-27',
      '2026-03-28',
      '2026-03-29',
      '2026-03-30',
      '2026-03-31',
    ]);
    // Fall back 2026-10-25 is 25 hours long: 22:30 UTC on the 24th (00:30 CEST) and 22:30 UTC on the 25th
    // (23:30 CET) are the same Berlin day but two UTC days.
    const a = at('2026-10-24T22:30:00Z');
    const b = at('2026-10-25T22:30:00Z');
    const now = new Date('2026-10-27T00:00:00Z');
    expect(kept(planRetention([a, b], { ...NONE, keepDaily: 7, timeZone: 'Europe/Berlin' }, now))).toEqual([
      b.id,
    ]);
    expect(kept(planRetention([a, b], { ...NONE, keepDaily: 7 }, now))).toEqual([b.id, a.id]);
    // 23:30 UTC on Mar 28 is already Mar 29 in Berlin (00:30 CET), the day the clocks change.
    expect(periodOf('daily', new Date('2026-03-28T23:30:00Z'), 'Europe/Berlin')).toBe('2026-03-29');
    expect(periodOf('daily', new Date('2026-03-29T21:59:59Z'), 'Europe/Berlin')).toBe('2026-03-29');
    expect(periodOf('daily', new Date('2026-03-29T22:00:00Z'), 'Europe/Berlin')).toBe('2026-03-30');
  });
});
