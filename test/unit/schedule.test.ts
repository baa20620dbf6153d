import { describe, expect, it } from 'vitest';
import { longestInterval, parseSchedule, planNext, type Schedule } from '../../src/schedule/cron.ts';

function schedule(expr: string, tz = 'UTC'): Schedule {
  const s = parseSchedule(expr, tz);
  if ('problem' in s) throw new Error(s.problem);
  return s;
}
const at = (iso: string) => new Date(iso);

describe('parseSchedule', () => {
  it('reads five fields, or six with seconds first', () => {
    expect(schedule('0 2 * * *').next(at('2026-11-22T03:00:00Z'))).toEqual(at('2026-11-23T02:00:00Z'));
    expect(schedule('*/2 * * * * *').next(at('2026-11-22T03:00:00.500Z'))).toEqual(
      at('2026-11-22T03:00:02Z'),
    );
    expect(schedule('30 15 2 * * *').next(at('2026-11-22T03:00:00Z'))).toEqual(at('2026-11-23T02:15:30Z'));
  });

  it('says what is wrong with a bad expression', () => {
    expect(parseSchedule('61 * * * *', 'UTC')).toEqual({ problem: expect.stringMatching(/minute/) });
    expect(parseSchedule('0 2 * *', 'UTC')).toEqual({ problem: expect.stringMatching(/five, six/) });
    expect(parseSchedule('0 0 0 0 0 0 2030', 'UTC')).toHaveProperty('problem');
    expect(parseSchedule('0 0 30 2 *', 'UTC')).toEqual({ problem: expect.stringMatching(/never/) });
  });

  it('reads times in the target time zone, across daylight saving changes', () => {
    const berlin = schedule('0 2 * * *', 'Europe/Berlin');
    // Winter: 02:00 CET is 01:00Z.
    expect(berlin.next(at('2026-11-22T12:00:00Z'))).toEqual(at('2026-11-23T01:00:00Z'));
    // 2026-03-29 02:00 does not exist in Berlin: the run happens once, at the first valid time after.
    const spring = berlin.next(at('2026-03-28T12:00:00Z'))!;
    expect(spring).toEqual(at('2026-03-29T01:00:00Z'));
    expect(berlin.next(spring)).toEqual(at('2026-03-30T00:00:00Z'));
    // 2026-10-25 02:00 happens twice in Berlin; the backup runs once that day.
    const runs: Date[] = [];
    let t = at('2026-10-24T12:00:00Z');
    for (let i = 0; i < 2; i++) {
      t = berlin.next(t)!;
      runs.push(t);
    }
    expect(runs).toEqual([at('2026-10-25T00:00:00Z'), at('2026-10-26T01:00:00Z')]);
    const ny = schedule('30 23 * * *', 'America/New_York');
    expect(ny.next(at('2026-07-01T00:00:00Z'))).toEqual(at('2026-07-01T03:30:00Z'));
  });
});

describe('planNext', () => {
  const every10 = schedule('*/10 * * * * *');

  it('plans the next cron time, plus jitter drawn from [0, jitter)', () => {
    const now = at('2026-11-22T00:00:01Z');
    expect(planNext(every10, now, 0, () => 0.99)).toEqual({
      nominal: at('2026-11-22T00:00:10Z'),
      at: at('2026-11-22T00:00:10Z'),
    });
    const jittered = planNext(every10, now, 4000, () => 0.5)!;
    expect(jittered.at).toEqual(at('2026-11-22T00:00:12Z'));
    expect(planNext(every10, now, 4000, () => 0.9999)!.at.getTime()).toBeLessThan(
      at('2026-11-22T00:00:14Z').getTime(),
    );
  });

  it('never plans the slot that is firing again, even when the timer fires early', () => {
    const fired = at('2026-11-22T00:00:10Z');
    const early = new Date(fired.getTime() - 3);
    expect(planNext(every10, early, 0, Math.random, fired)!.nominal).toEqual(at('2026-11-22T00:00:20Z'));
  });

  it('does not catch up slots missed while busy: it resumes from now', () => {
    const fired = at('2026-11-22T00:00:10Z');
    const late = at('2026-11-22T00:00:45Z');
    expect(planNext(every10, late, 0, Math.random, fired)!.nominal).toEqual(at('2026-11-22T00:00:50Z'));
  });

  it('measures the longest gap between runs', () => {
    expect(longestInterval(schedule('0 2 * * *'), at('2026-11-22T00:00:00Z'))).toBe(86_400_000);
    expect(longestInterval(schedule('0 2 * * 1'), at('2026-11-22T00:00:00Z'))).toBe(7 * 86_400_000);
    expect(longestInterval(schedule('0 2,20 * * *'), at('2026-11-22T00:00:00Z'))).toBe(18 * 3_600_000);
  });
});
