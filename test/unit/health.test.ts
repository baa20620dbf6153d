import { describe, expect, it } from 'vitest';
import { healthReport, type TargetStatus, targetHealth } from '../../src/server/health.ts';

const since = new Date('2026-11-22T00:00:00Z');
const base: TargetStatus = {
  target: 'shop',
  schedule: '0 2 * * *',
  timeZone: 'UTC',
  alertAfterHours: 26,
  running: false,
  lastAttempt: null,
  lastSuccess: null,
  nextRun: '2026-11-23T02:00:00.000Z',
  skippedRuns: 0,
  consecutiveFailures: 0,
  destinations: [],
  drillSchedule: null,
  nextDrill: null,
  drilling: false,
  lastDrill: null,
};
const h = (hours: number) => new Date(since.getTime() + hours * 3_600_000);
const run = (ok: boolean, hoursAfterStart: number) => ({
  startedAt: h(hoursAfterStart).toISOString(),
  finishedAt: h(hoursAfterStart).toISOString(),
  durationMs: 1000,
  ok,
  backupId: ok ? 'shop-x' : null,
  sizeBytes: ok ? 10 : null,
  storedBytes: ok ? 5 : null,
  error: ok ? null : 'connection refused',
  exitCode: ok ? 0 : 3,
});

describe('target health', () => {
  it('a fresh daemon is healthy until the alert window has passed without a success', () => {
    expect(targetHealth(base, h(25), since)).toEqual({ healthy: true, stale: false, reasons: [] });
    const later = targetHealth(base, h(27), since);
    expect(later).toMatchObject({ healthy: false, stale: true });
    expect(later.reasons[0]).toMatch(/no successful backup since the daemon started 27 h ago/);
  });

  it('the last run failing makes it unhealthy at once, with the error', () => {
    const status = { ...base, lastAttempt: run(false, 1), lastSuccess: null };
    const health = targetHealth(status, h(2), since);
    expect(health).toMatchObject({ healthy: false, stale: false });
    expect(health.reasons[0]).toMatch(/last run failed at .*: connection refused/);
  });

  it('measures staleness from the last success, fractions of hours included', () => {
    const status: TargetStatus = {
      ...base,
      alertAfterHours: 0.5,
      lastAttempt: run(true, 1),
      lastSuccess: { time: h(1).toISOString(), backupId: 'shop-x', sizeBytes: 10, durationMs: 1000 },
    };
    expect(targetHealth(status, h(1.4), since).healthy).toBe(true);
    const stale = targetHealth(status, h(1.6), since);
    expect(stale).toMatchObject({ healthy: false, stale: true });
    expect(stale.reasons[0]).toMatch(/no successful backup for 0\.6 h \(last shop-x/);
  });

  it('the report is 503 when any target is unhealthy', () => {
    const good = {
      ...base,
      lastAttempt: run(true, 1),
      lastSuccess: { time: h(1).toISOString(), backupId: 'a', sizeBytes: 1, durationMs: 1 },
    };
    expect(healthReport([good], h(2), since, 'v').httpStatus).toBe(200);
    const { httpStatus, report } = healthReport(
      [good, { ...base, target: 'b', lastAttempt: run(false, 1) }],
      h(2),
      since,
      'v',
    );
    expect(httpStatus).toBe(503);
    expect(report.status).toBe('unhealthy');
    expect(report.targets.map((t) => t.healthy)).toEqual([true, false]);
  });
});
