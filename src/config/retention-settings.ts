/** A target's retention settings: the GFS rules and the grace of incomplete uploads. */
import { DEFAULT_RULES, policyProblem, type RetentionRules } from '../retention/policy.ts';
import type { FieldName } from './fields.ts';
import type { Problems, RawTarget } from './raw.ts';
import type { RetentionConfig } from './types.ts';
import { check, intIn, type Validator } from './values.ts';

const RULE_FIELDS = [
  'keepLast',
  'keepDaily',
  'keepWeekly',
  'keepMonthly',
  'keepYearly',
  'maxAgeDays',
  'minKeep',
] as const satisfies readonly (keyof RetentionRules & FieldName)[];

/** An upload in flight must never look abandoned: at least an hour. */
const GRACE_HOURS: Validator<number> = {
  parse: (v) => {
    const text = String(v).trim();
    return /^\d+(\.\d+)?$/.test(text) && Number(text) >= 1 ? Number(text) : undefined;
  },
  expected: 'a number of hours, at least 1 (fractions allowed)',
};

/** The retention of a target, or undefined (a problem recorded) when its rules cannot work together. */
export function buildRetention(
  raw: RawTarget,
  name: string | undefined,
  problems: Problems,
): RetentionConfig | undefined {
  const rules = { ...DEFAULT_RULES };
  for (const f of RULE_FIELDS) {
    const n = check(raw[f], intIn(0, 100_000, 'a whole number, 0 to turn the rule off'), problems);
    if (n !== undefined) rules[f] = n;
  }
  const grace = check(raw.incompleteGraceHours, GRACE_HOURS, problems) ?? 24;
  const problem = policyProblem(rules);
  if (problem) {
    const given = RULE_FIELDS.filter((f) => raw[f]).map((f) => raw[f]!.origin);
    problems.add(given.join(', ') || `retention of target ${name}`, problem);
    return undefined;
  }
  return { ...rules, incompleteGraceHours: grace };
}
