/**
 * Grandfather-father-son retention as a pure function: `(backups, policy, now) -> decisions with reasons`.
 * No I/O and no clock: `jobs/prune.ts` feeds it the catalog and carries out what it decides.
 *
 * Rules, applied to each series (full and schema-only backups of a target are separate series) on its own:
 *
 * 1. Only good backups count: committed, data object present, last verification not failed, dates
 *    believable (not in the future, matching the id: manifest-trust.ts). Backups that are not good never
 *    satisfy a rule and never count towards min-keep.
 * 2. Good backups are walked newest first. keep-last keeps the N newest. Each period rule (daily, weekly =
 *    ISO week Monday-Sunday, monthly, yearly, in `timeZone`) keeps the newest backup of each period until
 *    it has used N periods; only periods that hold a backup count. Each rule walks the list on its own, so
 *    one backup can be kept by several rules.
 * 3. max-age-days then takes away every rule's hold on backups older than the limit.
 * 4. min-keep is the floor: the N newest good backups stay whatever rules 2-3 say, and the newest good
 *    backup always stays (even with min-keep 0).
 * 5. A backup that is not good is kept while it is no older than the oldest good backup that stays (it is
 *    inside the retention window), and removed once it falls out of it. So a bad verification (a tool
 *    mismatch failing every backup, say) never empties storage, and damaged backups age out.
 */
import { compareIds } from '../catalog/layout.ts';
import { type PeriodUnit, periodOf } from './calendar.ts';

/** Counts of each rule; 0 turns a rule off. */
export interface RetentionRules {
  keepLast: number;
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  keepYearly: number;
  /** Days; 0 turns the limit off. */
  maxAgeDays: number;
  minKeep: number;
}

export interface RetentionPolicy extends RetentionRules {
  /** IANA zone the periods are computed in. */
  timeZone: string;
}

/** The defaults: 7 daily, 4 weekly, 6 monthly, min-keep 3. */
export const DEFAULT_RULES: RetentionRules = {
  keepLast: 0,
  keepDaily: 7,
  keepWeekly: 4,
  keepMonthly: 6,
  keepYearly: 0,
  maxAgeDays: 0,
  minKeep: 3,
};

/** Why a policy is unusable, or undefined. A policy must keep something: one rule or min-keep above 0. */
export function policyProblem(p: RetentionRules): string | undefined {
  const keeps = p.keepLast + p.keepDaily + p.keepWeekly + p.keepMonthly + p.keepYearly + p.minKeep;
  return keeps === 0
    ? 'every keep rule and min-keep are 0, so retention would keep nothing; set at least one above 0'
    : undefined;
}

export interface RetentionCandidate {
  id: string;
  /** When the backup was taken. */
  time: Date;
  /** Why the backup cannot be relied on (`verify failed: checksum`); undefined for a good backup. */
  problem?: string | undefined;
  /** Backups are thinned per series; different series never displace each other. */
  series?: string | undefined;
}

export interface RetentionDecision {
  id: string;
  keep: boolean;
  /** Every reason for the decision: `daily 2026-01-11`, `weekly 2026-W02`, `min-keep`, `max-age: older than 30 days`... */
  reasons: string[];
}

const PERIOD_RULES: [PeriodUnit, 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepYearly'][] = [
  ['daily', 'keepDaily'],
  ['weekly', 'keepWeekly'],
  ['monthly', 'keepMonthly'],
  ['yearly', 'keepYearly'],
];

const DAY_MS = 86_400_000;

/**
 * Decides keep or remove for every candidate. The result is sorted newest first (ties by id) and does not
 * depend on the order of `candidates`.
 */
export function planRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision[] {
  const sorted = [...candidates].sort(newestFirst);
  const series = new Map<string, RetentionCandidate[]>();
  for (const c of sorted) {
    const key = c.series ?? '';
    const list = series.get(key);
    if (list) list.push(c);
    else series.set(key, [c]);
  }
  const decisions = new Map<string, RetentionDecision>();
  for (const list of series.values()) {
    for (const d of planSeries(list, policy, now)) decisions.set(d.id, d);
  }
  return sorted.map((c) => decisions.get(c.id)!);
}

/** One series, newest first. */
function planSeries(list: RetentionCandidate[], policy: RetentionPolicy, now: Date): RetentionDecision[] {
  const good = list.filter((c) => c.problem === undefined);
  const held = new Map<string, string[]>(good.map((c) => [c.id, []]));

  for (const [i, c] of good.slice(0, policy.keepLast).entries()) held.get(c.id)!.push(`last ${i + 1}`);
  for (const [unit, field] of PERIOD_RULES) {
    const count = policy[field];
    const used = new Set<string>();
    for (const c of good) {
      const period = periodOf(unit, c.time, policy.timeZone);
      if (used.has(period)) continue;
      if (used.size === count) break;
      used.add(period);
      held.get(c.id)!.push(`${unit} ${period}`);
    }
  }

  const tooOld = (c: RetentionCandidate) =>
    policy.maxAgeDays > 0 && now.getTime() - c.time.getTime() > policy.maxAgeDays * DAY_MS;
  const floor = Math.max(policy.minKeep, 1);
  const rank = new Map(good.map((c, i) => [c.id, i]));

  const keptGood = new Map<string, string[]>();
  for (const c of good) {
    const reasons = tooOld(c) ? [] : held.get(c.id)!;
    if (rank.get(c.id)! < floor) reasons.push(policy.minKeep > 0 ? 'min-keep' : 'newest good backup');
    if (reasons.length > 0) keptGood.set(c.id, reasons);
  }
  const oldestKept = good.findLast((c) => keptGood.has(c.id));

  return list.map((c): RetentionDecision => {
    if (c.problem !== undefined) {
      const inWindow = oldestKept === undefined || newestFirst(c, oldestKept) <= 0;
      return inWindow
        ? { id: c.id, keep: true, reasons: [c.problem, 'inside the retention window'] }
        : { id: c.id, keep: false, reasons: [c.problem] };
    }
    const reasons = keptGood.get(c.id);
    if (reasons) return { id: c.id, keep: true, reasons };
    return {
      id: c.id,
      keep: false,
      reasons: [tooOld(c) ? `max-age: older than ${policy.maxAgeDays} days` : 'no rule keeps it'],
    };
  });
}

function newestFirst(a: RetentionCandidate, b: RetentionCandidate): number {
  return b.time.getTime() - a.time.getTime() || compareIds(b.id, a.id);
}
