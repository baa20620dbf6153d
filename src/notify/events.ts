/**
 * Which notifications a run of a target produces, and what each says: the one rule behind both the
 * daemon and one-shot `datasaver backup`. The rule is pure: the caller says how the run ended and what
 * it remembers of the target, and gets the events to send, in order; `notification` turns one into the
 * payload. Which channels take an event, and delivering it, is channels.ts's job.
 *
 *   - a run announces `start` (see `startEvent`; the caller decides when: the daemon once the run holds
 *     the target's lease, the one-shot command before it asks for it);
 *   - a run stopped by shutdown, or skipped because another process held the lease before it started,
 *     sends nothing more;
 *   - a run that committed a backup with no problem sends `success`, or `recovery` when the target was
 *     failing (its last run failed, or it was reported stale); a caller that remembers no earlier run
 *     never sends `recovery`;
 *   - any other run sends `failure`, also one that committed a backup that an upload or the prune after it
 *     then failed on: someone has to look;
 *   - a committed backup whose size is out of line with the recent ones adds `size-change` after that;
 *   - a restore drill sends `drill-failure` when the backup failed it or it could not run, else
 *     `drill-success` (see `drillEvent`).
 */
import { hostname } from 'node:os';
import type { CycleResult } from '../jobs/cycle.ts';
import type { DrillStatus } from '../jobs/drill.ts';
import { describeSizeChange } from '../jobs/size-change.ts';
import { DatasaverError, ExitCode, errorMessage } from '../util/errors.ts';
import type { Notification, NotifyEvent } from './channels.ts';

/** One notification to send for a run: the report without the target and the time, which the caller adds. */
export type RunEvent = Omit<RunReport, 'target' | 'time'>;

/** Why a run failed: the text and the exit code `datasaver backup` exits with for it. */
export interface RunFailure {
  /** The error's message, or the run's problems joined by `; `. */
  message: string;
  /** 3 connection, 4 dump, 6 storage, 7 prune... (util/errors.ts). */
  exitCode: number;
}

/** How one run of a target ended. */
export type RunOutcome =
  /** Stopped by shutdown before the run returned. */
  | { kind: 'stopped' }
  /** Another process held the target's lease before this run started. */
  | { kind: 'skipped' }
  /** Committed a backup with no problem. */
  | { kind: 'succeeded'; result: CycleResult }
  /** Threw (`result` null), or committed a backup but an upload or the prune after it failed. */
  | { kind: 'failed'; result: CycleResult | null; failure: RunFailure };

/** The last successful backup, as notifications name it. */
export type LastSuccess = RunReport['lastSuccess'];

/** What a caller that keeps state (the daemon) knows of the target from before this run. */
export interface TargetHistory {
  /** Runs that failed in a row before this one. */
  consecutiveFailures: number;
  /** Whether a `stale` notification went out since the last success. */
  staleNotified: boolean;
  /** The last successful backup before this run; null when none is known. */
  lastSuccess: LastSuccess;
}

/**
 * How a run that returned `result` or threw `error` ended. A failure's text is the error's message, else
 * the problems of the result joined by `; `, passed through `clean` (which removes secrets); its exit
 * code is the error's own, else the first problem's, else the general one.
 */
export function finishedRun(
  result: CycleResult | undefined,
  error: unknown,
  clean: (text: string) => string = (text) => text,
): RunOutcome {
  const problems = result?.problems ?? [];
  if (result !== undefined && problems.length === 0) return { kind: 'succeeded', result };
  const message = error !== undefined ? errorMessage(error) : problems.map((p) => p.message).join('; ');
  const exitCode =
    error instanceof DatasaverError ? error.exitCode : (problems[0]?.exitCode ?? ExitCode.general);
  return { kind: 'failed', result: result ?? null, failure: { message: clean(message), exitCode } };
}

/** The `start` event of a run. `history` is null for a caller that remembers no earlier run. */
export function startEvent(history: TargetHistory | null): RunEvent {
  return {
    event: 'start',
    what: 'started',
    result: null,
    error: null,
    lastSuccess: history?.lastSuccess ?? null,
  };
}

/**
 * The events a run that ended as `outcome` sends, in order. `history` is what the caller remembers of the
 * target from before this run, or null when it remembers nothing (one-shot `datasaver backup`): then no
 * event names a last success, and none is a `recovery`.
 */
export function runEvents(outcome: RunOutcome, history: TargetHistory | null): RunEvent[] {
  if (outcome.kind === 'stopped' || outcome.kind === 'skipped') return [];
  const previous = history?.lastSuccess ?? null;
  const { result } = outcome;
  const events: RunEvent[] = [];
  if (outcome.kind === 'succeeded') {
    const id = outcome.result.backup.manifest.id;
    const failing = history !== null && (history.consecutiveFailures > 0 || history.staleNotified);
    events.push({
      event: failing ? 'recovery' : 'success',
      what: failing ? `recovered: backup ${id} succeeded` : `backup ${id} succeeded`,
      result,
      error: null,
      lastSuccess: previous,
    });
  } else {
    events.push({
      event: 'failure',
      what: `backup failed: ${outcome.failure.message}`,
      result,
      error: outcome.failure,
      lastSuccess: previous,
    });
  }
  if (result?.size?.alert) {
    const manifest = result.backup.manifest;
    events.push({
      event: 'size-change',
      what: describeSizeChange(result.size),
      result,
      error: null,
      // The backup just committed is by now the target's last success, for a caller that keeps one.
      lastSuccess: history ? { time: manifest.finishedAt, backupId: manifest.id } : null,
    });
  }
  return events;
}

/** The event of a finished restore drill of the target's newest backup. */
export function drillEvent(drill: DrillStatus, history: TargetHistory | null): RunEvent {
  const id = drill.backupId ?? 'the newest backup';
  const what =
    drill.result === 'passed'
      ? `backup ${id} restored in a drill to the data it was taken from (${drill.compared} items compared)`
      : drill.result === 'failed'
        ? `backup ${id} failed its restore drill: ${drill.message ?? drill.reason}`
        : `the restore drill of ${id} could not run: ${drill.message}`;
  return {
    event: drill.result === 'passed' ? 'drill-success' : 'drill-failure',
    what,
    result: null,
    error:
      drill.result === 'passed'
        ? null
        : {
            message: drill.message ?? '',
            // A backup that failed its drill exits 5, as `datasaver drill` does; a drill that could not run, 1.
            exitCode: drill.result === 'failed' ? ExitCode.verify : ExitCode.general,
          },
    lastSuccess: history?.lastSuccess ?? null,
    drill,
  };
}

/** The `stale` event of the dead man's switch; `reason` says since when no backup succeeded. */
export function staleEvent(reason: string, history: TargetHistory): RunEvent {
  return { event: 'stale', what: reason, result: null, error: null, lastSuccess: history.lastSuccess };
}

/** What a run of a target reports: its committed backup, if any, and its error, if any. */
export interface RunReport {
  event: NotifyEvent;
  target: string;
  /** What happened, e.g. `backup failed: connection refused`; prefixed with datasaver and the target. */
  what: string;
  /** ISO time; now by default. */
  time?: string;
  result: CycleResult | null;
  error: Notification['error'];
  lastSuccess: Notification['lastSuccess'];
  /** The drill, on drill events. */
  drill?: DrillStatus | undefined;
}

/** The notification for one run (or stale state) of a target, with the fields every notification has. */
export function notification(report: RunReport, version: string): Notification {
  const manifest = report.result?.backup.manifest;
  return {
    event: report.event,
    target: report.target,
    time: report.time ?? new Date().toISOString(),
    message: `datasaver: ${report.target}: ${report.what}`,
    backup: manifest
      ? {
          id: manifest.id,
          sizeBytes: manifest.sizeBytes,
          storedBytes: manifest.storedBytes,
          durationMs: manifest.durationMs,
          destinations: report.result?.backup.committed.map((d) => d.description) ?? [],
        }
      : null,
    error: report.error,
    lastSuccess: report.lastSuccess,
    sizeChange: sizeChangeOf(report),
    drill: report.drill
      ? {
          backupId: report.drill.backupId,
          result: report.drill.result,
          reason: report.drill.reason,
          restoreMs: report.drill.restoreMs,
          compared: report.drill.compared,
          mismatches: report.drill.mismatches,
        }
      : null,
    host: hostname(),
    datasaver: version,
  };
}

function sizeChangeOf(report: RunReport): Notification['sizeChange'] {
  const size = report.result?.size;
  if (report.event !== 'size-change' || !size) return null;
  const { sizeBytes, medianBytes, change, basis, threshold } = size;
  return { sizeBytes, medianBytes, change, basis, threshold };
}
