/**
 * The rule that turns a run into notifications, as a table: how the run ended, what the caller remembers
 * of the target (null: one-shot `datasaver backup`), and the events that go out, in order.
 */
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import type { CycleResult } from '../../src/jobs/cycle.ts';
import type { SizeAssessment } from '../../src/jobs/size-change.ts';
import {
  finishedRun,
  type RunOutcome,
  runEvents,
  staleEvent,
  startEvent,
  type TargetHistory,
} from '../../src/notify/events.ts';
import { BackupError, ConnectionError } from '../../src/util/errors.ts';

const previous = { time: '2026-11-21T02:00:03.000Z', backupId: 'shop-old' };
const clean: TargetHistory = { consecutiveFailures: 0, staleNotified: false, lastSuccess: previous };
const failing: TargetHistory = { ...clean, consecutiveFailures: 2 };
const stale: TargetHistory = { ...clean, staleNotified: true };

const size = (alert: boolean): SizeAssessment => ({
  backupId: 'shop-new',
  series: 'full',
  sizeBytes: 400,
  medianBytes: 1000,
  basis: 5,
  change: -0.6,
  threshold: 0.5,
  alert,
});

function cycle(options: { problems?: CycleResult['problems']; size?: SizeAssessment } = {}): CycleResult {
  return {
    backup: {
      manifest: { id: 'shop-new', finishedAt: '2026-11-22T02:00:04.000Z' } as Manifest,
      verified: false,
      committed: [],
      failures: [],
    },
    copies: [],
    pruned: [],
    problems: options.problems ?? [],
    warnings: [],
    interrupted: false,
    size: options.size,
  };
}

const uploadFailed = cycle({
  problems: [
    { stage: 'upload', message: 's3://b/p: access denied', exitCode: 6, hint: undefined },
    { stage: 'prune', message: 'local:/b: permission denied', exitCode: 7, hint: undefined },
  ],
});
const refused: RunOutcome = finishedRun(undefined, new ConnectionError('connection refused'));

/** Each event as `event: what | lastSuccess id | error exit code` (what up to its first ` (`). */
function summary(outcome: RunOutcome, history: TargetHistory | null): string[] {
  return runEvents(outcome, history).map(
    (e) =>
      `${e.event}: ${e.what.split(' (')[0]} | ${e.lastSuccess?.backupId ?? '-'} | ${e.error?.exitCode ?? '-'}`,
  );
}

describe('the events a run sends', () => {
  it.each<[string, RunOutcome, TargetHistory | null, string[]]>([
    ['stopped by shutdown, daemon', { kind: 'stopped' }, clean, []],
    ['stopped by a signal, one-shot', { kind: 'stopped' }, null, []],
    ['skipped for another lease holder', { kind: 'skipped' }, failing, []],
    [
      'success, one-shot',
      finishedRun(cycle(), undefined),
      null,
      ['success: backup shop-new succeeded | - | -'],
    ],
    [
      'success after a success',
      finishedRun(cycle(), undefined),
      clean,
      ['success: backup shop-new succeeded | shop-old | -'],
    ],
    [
      'success after failures',
      finishedRun(cycle(), undefined),
      failing,
      ['recovery: recovered: backup shop-new succeeded | shop-old | -'],
    ],
    [
      'success after a stale alert',
      finishedRun(cycle(), undefined),
      stale,
      ['recovery: recovered: backup shop-new succeeded | shop-old | -'],
    ],
    ['failure, one-shot', refused, null, ['failure: backup failed: connection refused | - | 3']],
    [
      'failure after failures',
      refused,
      failing,
      ['failure: backup failed: connection refused | shop-old | 3'],
    ],
    [
      'committed, but the upload and the prune failed',
      finishedRun(uploadFailed, undefined),
      clean,
      ['failure: backup failed: s3://b/p: access denied; local:/b: permission denied | shop-old | 6'],
    ],
    [
      'size out of line, daemon: the new backup is the last success by then',
      finishedRun(cycle({ size: size(true) }), undefined),
      clean,
      [
        'success: backup shop-new succeeded | shop-old | -',
        'size-change: backup shop-new is 60% smaller than the median of the last 5 full backups | shop-new | -',
      ],
    ],
    [
      'size out of line, one-shot',
      finishedRun(cycle({ size: size(true) }), undefined),
      null,
      [
        'success: backup shop-new succeeded | - | -',
        'size-change: backup shop-new is 60% smaller than the median of the last 5 full backups | - | -',
      ],
    ],
    [
      'size out of line on a failed upload',
      finishedRun({ ...uploadFailed, size: size(true) }, undefined),
      failing,
      [
        'failure: backup failed: s3://b/p: access denied; local:/b: permission denied | shop-old | 6',
        'size-change: backup shop-new is 60% smaller than the median of the last 5 full backups | shop-new | -',
      ],
    ],
    [
      'size within bounds',
      finishedRun(cycle({ size: size(false) }), undefined),
      clean,
      ['success: backup shop-new succeeded | shop-old | -'],
    ],
  ])('%s', (_name, outcome, history, expected) => {
    expect(summary(outcome, history)).toEqual(expected);
  });

  it('carries the run result and the error into the events', () => {
    const committed = cycle({ size: size(true) });
    const events = runEvents(finishedRun(committed, undefined), clean);
    expect(events.map((e) => e.result)).toEqual([committed, committed]);
    const [failure] = runEvents(refused, null);
    expect(failure).toEqual({
      event: 'failure',
      what: 'backup failed: connection refused',
      result: null,
      error: { message: 'connection refused', exitCode: 3 },
      lastSuccess: null,
    });
  });
});

describe('how a run ended', () => {
  it('the error thrown, with its exit code, or 1 when it is no datasaver error', () => {
    expect(finishedRun(undefined, new BackupError('pg_dump exited with code 1'))).toEqual({
      kind: 'failed',
      result: null,
      failure: { message: 'pg_dump exited with code 1', exitCode: 4 },
    });
    expect(finishedRun(undefined, new Error('bug'))).toMatchObject({
      failure: { message: 'bug', exitCode: 1 },
    });
  });

  it("a result's problems, joined, with the first one's exit code; the text passed through clean", () => {
    expect(finishedRun(uploadFailed, undefined, (t) => t.replace('access denied', '***'))).toEqual({
      kind: 'failed',
      result: uploadFailed,
      failure: { message: 's3://b/p: ***; local:/b: permission denied', exitCode: 6 },
    });
    const ok = cycle();
    expect(finishedRun(ok, undefined)).toEqual({ kind: 'succeeded', result: ok });
  });
});

describe('start and stale', () => {
  it('start names the last success the caller knows of', () => {
    expect(startEvent(null)).toEqual({
      event: 'start',
      what: 'started',
      result: null,
      error: null,
      lastSuccess: null,
    });
    expect(startEvent(failing).lastSuccess).toEqual(previous);
  });

  it('stale carries the reason and the last success', () => {
    expect(staleEvent('no successful backup for 27 h', clean)).toEqual({
      event: 'stale',
      what: 'no successful backup for 27 h',
      result: null,
      error: null,
      lastSuccess: previous,
    });
  });
});
