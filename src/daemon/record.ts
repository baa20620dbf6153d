/**
 * What a finished run changes: the target's status (what `/health` reports and the dead man's switch
 * reads), the metrics, the log, and the notifications the rule in notify/events.ts picks.
 */
import { setWarnings } from '../jobs/backup-set.ts';
import { describeSizeChange } from '../jobs/size-change.ts';
import { type RunOutcome, runEvents } from '../notify/events.ts';
import type { RunRecord } from '../server/health.ts';
import { ExitCode } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { type DaemonContext, historyOf, type Slot } from './slot.ts';
import { updateHealthGauge } from './watchdog.ts';

/** How a run ended, and when it started and ended (the daemon's clock; retries included). */
export interface FinishedRun {
  outcome: RunOutcome;
  startedAt: Date;
  finishedAt: Date;
}

/** A run that returned or threw (not one stopped or skipped). */
type Ended = Extract<RunOutcome, { kind: 'succeeded' | 'failed' }>;

/** Records how a run of the slot's target ended, and announces it. */
export function recordRun(ctx: DaemonContext, slot: Slot, run: FinishedRun, log: Logger): void {
  const { outcome } = run;
  if (outcome.kind === 'stopped') return;
  if (outcome.kind === 'skipped') {
    slot.status.skippedRuns++;
    ctx.metrics.leaseHeld.inc({ target: slot.target.name });
    return;
  }
  const record = runRecord(outcome, run.startedAt, run.finishedAt);
  const history = historyOf(slot);
  updateStatus(slot, outcome, record);
  ctx.metrics.observeRun(slot.target.name, {
    ok: record.ok,
    durationMs: record.durationMs,
    finishedAt: run.finishedAt,
    result: outcome.result ?? undefined,
  });
  logRun(log, outcome, record);
  for (const event of runEvents(outcome, history)) ctx.announce(slot, event);
  updateHealthGauge(ctx, slot);
}

/** The run as `/health` reports it. */
function runRecord(outcome: Ended, startedAt: Date, finishedAt: Date): RunRecord {
  const manifest = outcome.result?.backup.manifest;
  const failure = outcome.kind === 'failed' ? outcome.failure : null;
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    ok: outcome.kind === 'succeeded',
    backupId: manifest?.id ?? null,
    sizeBytes: manifest?.sizeBytes ?? null,
    storedBytes: manifest?.storedBytes ?? null,
    error: failure?.message ?? null,
    exitCode: failure?.exitCode ?? ExitCode.ok,
  };
}

function updateStatus(slot: Slot, outcome: Ended, record: RunRecord): void {
  slot.status.lastAttempt = record;
  const manifest = outcome.result?.backup.manifest;
  if (manifest) {
    // A committed backup is what the dead man's switch waits for, even when an upload to another
    // destination or the prune after it failed (that failure is reported on its own).
    slot.status.lastSuccess = {
      time: manifest.finishedAt,
      backupId: manifest.id,
      sizeBytes: manifest.sizeBytes,
      durationMs: record.durationMs,
    };
  }
  if (outcome.kind === 'succeeded') {
    slot.status.consecutiveFailures = 0;
    slot.staleNotifiedAt = undefined;
  } else {
    slot.status.consecutiveFailures++;
  }
}

function logRun(log: Logger, outcome: Ended, record: RunRecord): void {
  const result = outcome.result;
  for (const p of result?.prunedFirst ?? []) {
    log.warn(
      { destination: p.storage, removed: p.removed, removedBytes: p.removedBytes },
      'the disk was full: pruned what retention removes there, then tried again',
    );
  }
  for (const w of result?.warnings ?? []) log.warn(w);
  if (result?.interrupted) {
    log.warn(
      { backupId: result.backup.manifest.id },
      'interrupted by shutdown after the backup was committed',
    );
  }
  if (outcome.kind === 'succeeded') {
    const { manifest, members } = outcome.result.backup;
    // A set short of what the backup user could not read succeeds, and says so every time.
    for (const w of setWarnings(members)) log.warn({ backupId: manifest.id }, w);
    log.info(
      {
        backupId: manifest.id,
        ...(members ? { databases: members.databases, excluded: members.excluded } : {}),
        sizeBytes: manifest.sizeBytes,
        storedBytes: manifest.storedBytes,
        durationMs: record.durationMs,
        destinations: outcome.result.backup.committed.map((d) => d.description),
        pruned: outcome.result.pruned.reduce((n, p) => n + p.removed, 0),
      },
      'backup succeeded',
    );
  } else {
    log.error(
      {
        backupId: record.backupId,
        exitCode: record.exitCode,
        durationMs: record.durationMs,
        error: record.error,
      },
      'backup failed',
    );
  }
  const size = result?.size;
  if (size?.alert) {
    log.warn(
      { backupId: size.backupId, change: size.change, medianBytes: size.medianBytes },
      describeSizeChange(size),
    );
  }
}
