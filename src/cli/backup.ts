import { LABEL_PATTERN } from '../catalog/manifest.ts';
import { assertIdentityOpensRecipients } from '../config/encryption-settings.ts';
import type { TargetConfig } from '../config/types.ts';
import { createEngine } from '../engines/index.ts';
import { type CycleProblem, type CycleResult, resumeTarget, runCycle } from '../jobs/cycle.ts';
import { targetLeaseOptions, withLeases } from '../lease/lease.ts';
import type { LeaseRecord } from '../lease/record.ts';
import { Notifier } from '../notify/channels.ts';
import {
  finishedRun,
  notification,
  type RunEvent,
  type RunOutcome,
  runEvents,
  startEvent,
} from '../notify/events.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { DatasaverError, ExitCode, errorMessage, UsageError } from '../util/errors.ts';
import { redact } from '../util/secret.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { BackupMetricsReport, metricsFilePath } from './backup-metrics.ts';
import { BackupOutput } from './backup-output.ts';
import { type CliContext, openDestinations, readConfig, selectTargets } from './context.ts';

export interface BackupOptions {
  target?: string;
  all?: boolean;
  label?: string[];
  schemaOnly?: boolean;
  format?: string;
  verify?: boolean;
  /** False with --no-prune. */
  prune?: boolean;
  resumeUploads?: boolean;
  json?: boolean;
  /** Where to write the run's metrics for a Prometheus textfile collector. */
  metricsFile?: string;
}

/**
 * `datasaver backup`: one backup of each selected target, one after another, written to each of its
 * destinations; then missed uploads are resumed and each destination is pruned. With --resume-uploads,
 * only the resuming is done.
 *
 * Notifications go to the channels the daemon uses, picked by the same rule (notify/events.ts): start
 * (pings; sent before the run waits for the target's lease), failure, success (with on_success, and
 * pings), and size-change when the backup's size is out of line. A one-shot run remembers no earlier run,
 * so it never sends recovery or stale. Deliveries are awaited before the command returns, at most 30 s.
 * Then, whatever the outcome, each backup run's metrics go to --metrics-file and the target's Pushgateway
 * (backup-metrics.ts). What it prints is backup-output.ts's.
 */
export async function backupCommand(ctx: CliContext, opts: BackupOptions): Promise<number> {
  const config = await readConfig(ctx);
  const targets = selectTargets(config, opts.target, opts.all);
  for (const t of targets) await assertIdentityOpensRecipients(t.name, t.encryption);
  const metrics = new BackupMetricsReport(ctx, await metricsFilePath(opts.metricsFile));
  const labels = [...new Set(opts.label ?? [])];
  for (const l of labels) {
    if (!LABEL_PATTERN.test(l))
      throw new UsageError(`invalid label '${l}'`, {
        hint: 'labels are lowercase letters, digits, `_` and `-`, e.g. daily, manual',
      });
  }
  // Errors are redacted where they are made; this also hides a password a tool printed in some other form.
  const out = new BackupOutput(
    ctx,
    opts.json ?? false,
    targets.map((t) => t.connection.password),
  );
  const notifier = new Notifier({ log: out.notifierLog() });
  const announce = (target: TargetConfig, event: RunEvent) => {
    const clean = (text: string) => redact(text, [target.connection.password]);
    const error = event.error && { ...event.error, message: clean(event.error.message) };
    notifier.notify(
      target.notify,
      notification({ ...event, target: target.name, what: clean(event.what), error }, DATASAVER_VERSION),
    );
  };
  // A one-shot run remembers no earlier run: it has no history to give the rule (never a recovery).
  const announceEnd = (target: TargetConfig, outcome: RunOutcome) => {
    for (const event of runEvents(outcome, null)) announce(target, event);
  };
  const onWait = (storage: StorageBackend, lease: LeaseRecord) => out.waiting(storage, lease);
  try {
    await backupTargets();
  } finally {
    await notifier.flush(30_000, ctx.signal);
    await metrics.publish();
  }
  out.finish();
  return out.exitCode;

  /** Resuming writes to the destinations: it holds the target's lease there, as a backup does. */
  async function resumeLeased(target: TargetConfig, destinations: StorageBackend[]) {
    const leased = await withLeases(
      target.name,
      destinations,
      targetLeaseOptions(target, 'resume', { onWait }, ctx.signal),
      (held, signal, confirmLease) => resumeTarget(target, held, new Date(), signal, confirmLease),
    );
    for (const w of leased.warnings) out.warn(w);
    const problems: CycleProblem[] = leased.unavailable.map((u) => ({
      stage: 'resume',
      message: `${u.storage.description}: ${errorMessage(u.error)}`,
      exitCode: ExitCode.storage,
      hint: u.error instanceof DatasaverError ? u.error.hint : undefined,
    }));
    if (leased.lost)
      problems.push({
        stage: 'lease',
        message: leased.lost.message,
        exitCode: ExitCode.storage,
        hint: leased.lost.hint,
      });
    return { copies: leased.result.copies, problems: [...problems, ...leased.result.problems] };
  }

  /** A failure of the target that does not stop the others; with one target, or once stopped, it throws. */
  function failOrThrow(target: TargetConfig, err: unknown): void {
    if (targets.length === 1 || ctx.signal.aborted) throw err;
    out.fail(target.name, {
      message: errorMessage(err),
      exitCode: err instanceof DatasaverError ? err.exitCode : ExitCode.general,
      hint: err instanceof DatasaverError ? err.hint : undefined,
    });
  }

  /** Resumes missed uploads of `target`; takes no backup, so it prunes nothing. */
  async function resumeOne(target: TargetConfig, destinations: StorageBackend[]): Promise<void> {
    out.resuming(target.name, destinations.length);
    let resumed: Awaited<ReturnType<typeof resumeLeased>>;
    try {
      resumed = await resumeLeased(target, destinations);
    } catch (err) {
      // Another run holds this target (or its storage failed): reported, and the others go on.
      return failOrThrow(target, err);
    }
    out.copied(target.name, resumed.copies, resumed.problems);
    ctx.signal.throwIfAborted();
    if (resumed.copies.length === 0 && resumed.problems.length === 0) {
      out.nothingToResume(target.name, destinations.length);
    }
  }

  /** Backs `target` up; false when the run was interrupted and no further target should start. */
  async function backupOne(target: TargetConfig, destinations: StorageBackend[]): Promise<boolean> {
    const progress = out.progress(target.name);
    const startedAt = new Date();
    announce(target, startEvent(null));
    let cycle: CycleResult;
    try {
      cycle = await runCycle(
        {
          target,
          labels,
          format: opts.format,
          schemaOnly: opts.schemaOnly ? true : undefined,
          verify: opts.verify ?? false,
          prune: opts.prune !== false,
        },
        {
          engine: createEngine(target),
          destinations,
          signal: ctx.signal,
          lease: { onWait },
          onProgress: (raw, stored) => progress.update(raw, stored),
        },
      );
      progress.done();
    } catch (err) {
      progress.done();
      // Stopped on purpose or not, no backup is a failure for monitoring: the job did not do its work.
      metrics.record(target, destinations, startedAt, { ok: false, result: undefined });
      // Stopped on purpose (a signal): like the daemon, no failure is announced.
      announceEnd(target, ctx.signal.aborted ? { kind: 'stopped' } : finishedRun(undefined, err));
      // One target failing never stops the others; each failure is reported and sets the exit code.
      failOrThrow(target, err);
      return true;
    }
    // A committed backup whose other destinations or prune failed is announced as a failure, as the
    // daemon does: someone has to look.
    const outcome = finishedRun(cycle, undefined);
    announceEnd(target, outcome);
    metrics.record(target, destinations, startedAt, {
      ok: outcome.kind === 'succeeded' && !cycle.interrupted,
      result: cycle,
    });
    out.committed(target.name, destinations.length, cycle);
    if (!cycle.interrupted) return true;
    out.fail(target.name, {
      message: `interrupted after ${cycle.backup.manifest.id} was committed; resuming uploads and pruning stopped early`,
      exitCode: ExitCode.general,
      hint: 'the backup is kept; the next backup (or `datasaver prune`) finishes the rest',
    });
    return false;
  }

  async function backupTargets(): Promise<void> {
    for (const target of targets) {
      const destinations = await openDestinations(ctx, target).catch((err: unknown) => {
        if (!opts.resumeUploads) metrics.record(target, [], new Date(), { ok: false, result: undefined });
        throw err;
      });
      if (opts.resumeUploads) await resumeOne(target, destinations);
      else if (!(await backupOne(target, destinations))) break;
    }
  }
}
