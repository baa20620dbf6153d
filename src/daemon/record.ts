/**
 * What a finished run changes: the target's status (what `/health` reports and the dead man's switch
 * reads), the metrics, the log, and the notifications the rule in notify/events.ts picks.
 */
import { describeSizeChange } from '../jobs/size-change.ts';
import { type RunOutcome, runEvents } from '../notify/events.ts';
import type { RunRecord } from '../server/health.ts';
import { ExitCode } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { DaemonContext, Slot } from './slot.ts';
import { historyOf } from './slot.ts';
import { updateHealthGauge } from './watchdog.ts';

export interface FinishedRun {
  outcome: RunOutcome;
  startedAt: Date;
  finishedAt: Date;
}

/** Records how a run of the slot's target ended, and announces it. */
export function recordRun(ctx: DaemonContext, slot: Slot, run: FinishedRun, log: Logger): void {
  const { outcome } = run;
  const { metrics } = ctx;
  const labels = { target: slot.target.name };
  if (outcome.kind === 'stopped') return;
  if (outcome.kind === 'skipped') {
    slot.status.skippedRuns++;
    metrics.leaseHeld.inc(labels);
    return;
  }
  const result = outcome.result ?? undefined;
  const manifest = result?.backup.manifest;
  const durationMs = run.finishedAt.getTime() - run.startedAt.getTime();
  const ok = outcome.kind === 'succeeded';
  const failure = outcome.kind === 'failed' ? outcome.failure : null;
  const record: RunRecord = {
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt.toISOString(),
    durationMs,
    ok,
    backupId: manifest?.id ?? null,
    sizeBytes: manifest?.sizeBytes ?? null,
    storedBytes: manifest?.storedBytes ?? null,
    error: failure?.message ?? null,
    exitCode: failure?.exitCode ?? ExitCode.ok,
  };
  const history = historyOf(slot);
  slot.status.lastAttempt = record;
  metrics.observeRun(slot.target.name, { ok, durationMs, finishedAt: run.finishedAt, result });
  for (const p of result?.prunedFirst ?? []) {
    log.warn(
      { destination: p.storage, removed: p.removed, removedBytes: p.removedBytes },
      'the disk was full: pruned what retention removes there, then tried again',
    );
  }
  for (const w of result?.warnings ?? []) log.warn(w);
  if (result?.interrupted) {
    log.warn({ backupId: manifest?.id }, 'interrupted by shutdown after the backup was committed');
  }
  if (manifest) {
    // A committed backup is what the dead man's switch waits for, even when an upload to another
    // destination or the prune after it failed (that failure is reported on its own).
    slot.status.lastSuccess = {
      time: manifest.finishedAt,
      backupId: manifest.id,
      sizeBytes: manifest.sizeBytes,
      durationMs,
    };
  }
  if (ok && manifest) {
    slot.status.consecutiveFailures = 0;
    slot.staleNotifiedAt = undefined;
    log.info(
      {
        backupId: manifest.id,
        sizeBytes: manifest.sizeBytes,
        storedBytes: manifest.storedBytes,
        durationMs,
        destinations: result?.backup.committed.map((d) => d.description),
        pruned: result?.pruned.reduce((n, p) => n + p.removed, 0),
      },
      'backup succeeded',
    );
  } else {
    slot.status.consecutiveFailures++;
    log.error(
      { backupId: record.backupId, exitCode: record.exitCode, durationMs, error: record.error },
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
  for (const event of runEvents(outcome, history)) ctx.announce(slot, event);
  updateHealthGauge(ctx, slot);
}
