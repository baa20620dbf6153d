/**
 * Properties of retention that must hold for every history and every policy (fast-check): what
 * retention promises, which no list of golden cases can cover on its own.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backupId } from '../../src/catalog/layout.ts';
import { periodOf } from '../../src/retention/calendar.ts';
import {
  planRetention,
  policyProblem,
  type RetentionCandidate,
  type RetentionDecision,
} from '../../src/retention/policy.ts';

const NOW = new Date('2027-01-02T06:00:00Z');
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Pacific/Auckland', 'Asia/Kolkata'];
const RULES = ['last', 'daily', 'weekly', 'monthly', 'yearly'];

const history = fc
  .uniqueArray(
    fc.record({
      // Up to ~800 days before NOW, to the second; a few land after NOW (clock skew).
      secondsAgo: fc.integer({ min: -7200, max: 800 * 86_400 }),
      bad: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      schemaOnly: fc.boolean(),
    }),
    { selector: (b) => b.secondsAgo, maxLength: 60 },
  )
  .map((list) =>
    list.map((b): RetentionCandidate => {
      const time = new Date(NOW.getTime() - b.secondsAgo * 1000);
      return {
        id: backupId('shop', time),
        time,
        problem: b.bad ? 'verify failed (checksum)' : undefined,
        series: b.schemaOnly ? 'schema-only' : 'full',
      };
    }),
  );

const policy = fc
  .record({
    keepLast: fc.integer({ min: 0, max: 5 }),
    keepDaily: fc.integer({ min: 0, max: 10 }),
    keepWeekly: fc.integer({ min: 0, max: 6 }),
    keepMonthly: fc.integer({ min: 0, max: 8 }),
    keepYearly: fc.integer({ min: 0, max: 3 }),
    maxAgeDays: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 500 })),
    minKeep: fc.integer({ min: 0, max: 5 }),
    timeZone: fc.constantFrom(...ZONES),
  })
  .filter((p) => policyProblem(p) === undefined);

const RUNS = { numRuns: 400 };

function bySeries(list: RetentionCandidate[]): RetentionCandidate[][] {
  const groups = new Map<string, RetentionCandidate[]>();
  for (const c of list) groups.set(c.series ?? '', [...(groups.get(c.series ?? '') ?? []), c]);
  return [...groups.values()].map((g) =>
    g.sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1)),
  );
}

function decisionMap(d: RetentionDecision[]): Map<string, RetentionDecision> {
  return new Map(d.map((x) => [x.id, x]));
}

describe('retention properties', () => {
  it('decides every backup exactly once, and the newest good backup of each series is always kept', () => {
    fc.assert(
      fc.property(history, policy, (list, p) => {
        const d = decisionMap(planRetention(list, p, NOW));
        expect(d.size).toBe(list.length);
        for (const series of bySeries(list)) {
          const newestGood = series.find((c) => c.problem === undefined);
          if (newestGood) expect(d.get(newestGood.id)!.keep).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('keeps at least min(min-keep, good) good backups per series: the newest ones', () => {
    fc.assert(
      fc.property(history, policy, (list, p) => {
        const d = decisionMap(planRetention(list, p, NOW));
        for (const series of bySeries(list)) {
          const good = series.filter((c) => c.problem === undefined);
          for (const c of good.slice(0, p.minKeep)) expect(d.get(c.id)!.keep).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('does not depend on the order of its input', () => {
    fc.assert(
      fc.property(
        history.chain((list) =>
          fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length })),
        ),
        policy,
        ([list, shuffled], p) => {
          expect(planRetention(shuffled, p, NOW)).toEqual(planRetention(list, p, NOW));
        },
      ),
      RUNS,
    );
  });

  it('is idempotent: pruning the kept set again removes nothing', () => {
    fc.assert(
      fc.property(history, policy, (list, p) => {
        const keptIds = new Set(
          planRetention(list, p, NOW)
            .filter((x) => x.keep)
            .map((x) => x.id),
        );
        const again = planRetention(
          list.filter((c) => keptIds.has(c.id)),
          p,
          NOW,
        );
        expect(again.every((x) => x.keep)).toBe(true);
      }),
      RUNS,
    );
  });

  it('keeps no more good backups per series than the sum of rule counts plus min-keep', () => {
    fc.assert(
      fc.property(history, policy, (list, p) => {
        const d = decisionMap(planRetention(list, p, NOW));
        const bound =
          p.keepLast + p.keepDaily + p.keepWeekly + p.keepMonthly + p.keepYearly + Math.max(p.minKeep, 1);
        for (const series of bySeries(list)) {
          const keptGood = series.filter((c) => c.problem === undefined && d.get(c.id)!.keep);
          expect(keptGood.length).toBeLessThanOrEqual(bound);
        }
      }),
      RUNS,
    );
  });

  it('never keeps a failed backup for a rule, nor once it is older than every good backup kept', () => {
    fc.assert(
      fc.property(history, policy, (list, p) => {
        const d = decisionMap(planRetention(list, p, NOW));
        for (const series of bySeries(list)) {
          const oldestKeptGood = series.findLastIndex((c) => c.problem === undefined && d.get(c.id)!.keep);
          series.forEach((c, i) => {
            if (c.problem === undefined) return;
            const decision = d.get(c.id)!;
            const forRule = decision.reasons.some(
              (r) => RULES.includes(r.split(' ')[0]!) || r === 'min-keep',
            );
            expect(forRule).toBe(false);
            expect(decision.keep).toBe(oldestKeptGood === -1 || i < oldestKeptGood);
          });
        }
      }),
      RUNS,
    );
  });

  it('gives every kept backup a true reason: its own period, and max-age only under the floor', () => {
    fc.assert(
      fc.property(history, policy, (list, p) => {
        const d = decisionMap(planRetention(list, p, NOW));
        for (const series of bySeries(list)) {
          const good = series.filter((c) => c.problem === undefined);
          good.forEach((c, rank) => {
            const decision = d.get(c.id)!;
            for (const r of decision.reasons) {
              const [rule, period] = r.split(' ');
              if (rule === 'daily' || rule === 'weekly' || rule === 'monthly' || rule === 'yearly') {
                expect(period).toBe(periodOf(rule, c.time, p.timeZone));
              }
            }
            const old = p.maxAgeDays > 0 && NOW.getTime() - c.time.getTime() > p.maxAgeDays * 86_400_000;
            if (old && decision.keep) expect(rank).toBeLessThan(Math.max(p.minKeep, 1));
          });
        }
      }),
      RUNS,
    );
  });
});
