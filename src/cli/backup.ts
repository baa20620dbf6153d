import { LABEL_PATTERN } from '../catalog/manifest.ts';
import type { TargetConfig } from '../config/types.ts';
import { createEngine } from '../engines/index.ts';
import type { BackupResult } from '../jobs/backup.ts';
import { type CycleProblem, type CycleResult, resumeTarget, runCycle } from '../jobs/cycle.ts';
import { targetLeaseOptions, waitingMessage, withLeases } from '../jobs/lease.ts';
import type { LeaseRecord } from '../jobs/lease-record.ts';
import type { PruneResult } from '../jobs/prune.ts';
import type { CopyResult } from '../jobs/resume.ts';
import { describeSizeChange, type SizeAssessment } from '../jobs/size-change.ts';
import { Notifier, type NotifyEvent, notification } from '../notify/channels.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { DatasaverError, ExitCode, errorMessage, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { redact } from '../util/secret.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { type CliContext, openDestinations, readConfig, selectTargets } from './context.ts';
import { formatBytes, formatDuration, Progress, printJson } from './output.ts';

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
}

interface Failure {
  target: string;
  exitCode: number;
  message: string;
  hint?: string | undefined;
}

/**
 * `datasaver backup`: one backup of each selected target, one after another, written to each of its
 * destinations; then missed uploads are resumed and each destination is pruned. With --resume-uploads,
 * only the resuming is done.
 *
 * Notifications go to the channels the daemon uses: start (pings), failure, success (with on_success,
 * and pings), and size-change when the backup's size is out of line. A one-shot run remembers no earlier run, so it never sends recovery or stale. Deliveries are
 * awaited before the command returns, at most 30 s.
 */
export async function backupCommand(ctx: CliContext, opts: BackupOptions): Promise<number> {
  const config = await readConfig(ctx);
  const targets = selectTargets(config, opts.target, opts.all);
  const labels = [...new Set(opts.label ?? [])];
  for (const l of labels) {
    if (!LABEL_PATTERN.test(l))
      throw new UsageError(`invalid label '${l}'`, {
        hint: 'labels are lowercase letters, digits, `_` and `-`, e.g. daily, manual',
      });
  }

  const done: (BackupResult['manifest'] & {
    verified: boolean;
    destinations: string[];
    sizeChange: SizeAssessment | null;
  })[] = [];
  const failures: Failure[] = [];
  const copies: CopyResult[] = [];
  const pruned: PruneResult[] = [];
  // Errors are redacted where they are made; this also hides a password a tool printed in some other form.
  const passwords = targets.map((t) => t.connection.password);
  const fail = (target: string, problem: Omit<Failure, 'target'>) => {
    // Storage's and tools' own words can carry terminal escapes: shown escaped.
    const message = printable(redact(problem.message, passwords), { multiline: true });
    failures.push({ target, ...problem, message });
    ctx.stderr.write(`Error: ${target}: ${message}\n`);
    if (problem.hint) ctx.stderr.write(`Try: ${problem.hint}\n`);
  };
  const notifier = new Notifier({
    log: {
      warn: (fields, message) =>
        ctx.stderr.write(`warning: ${message}${fields.error ? `: ${String(fields.error)}` : ''}\n`),
      debug: () => {},
    },
  });
  const announce = (
    target: TargetConfig,
    event: NotifyEvent,
    what: string,
    result: CycleResult | null,
    error: { message: string; exitCode: number } | null,
  ) => {
    const clean = (text: string) => redact(text, [target.connection.password]);
    const e = error && { ...error, message: clean(error.message) };
    notifier.notify(
      target.notify,
      notification(
        { event, target: target.name, what: clean(what), result, error: e, lastSuccess: null },
        DATASAVER_VERSION,
      ),
    );
  };
  try {
    await backupTargets();
  } finally {
    await notifier.flush(30_000, ctx.signal);
  }
  if (opts.json) printJson(ctx.stdout, { backups: done, copies, pruned, failures });
  return failures[0]?.exitCode ?? ExitCode.ok;

  function onWait(storage: StorageBackend, lease: LeaseRecord) {
    ctx.stderr.write(`${waitingMessage(storage, lease)}\n`);
  }

  /** Resuming writes to the destinations: it holds the target's lease there, as a backup does. */
  async function resumeLeased(target: TargetConfig, destinations: StorageBackend[]) {
    const leased = await withLeases(
      target.name,
      destinations,
      targetLeaseOptions(target, 'resume', { onWait }, ctx.signal),
      (held, signal, confirmLease) => resumeTarget(target, held, new Date(), signal, confirmLease),
    );
    for (const w of leased.warnings) ctx.stderr.write(`warning: ${w}\n`);
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

  async function backupTargets(): Promise<void> {
    for (const target of targets) {
      const destinations = await openDestinations(ctx, target);
      if (opts.resumeUploads) {
        // Resuming takes no backup, so it prunes nothing.
        if (destinations.length < 2 && !opts.json)
          ctx.stdout.write(`${target.name} has one destination; nothing to resume\n`);
        let resumed: Awaited<ReturnType<typeof resumeLeased>>;
        try {
          resumed = await resumeLeased(target, destinations);
        } catch (err) {
          // Another run holds this target (or its storage failed): reported, and the others go on.
          if (targets.length === 1 || ctx.signal.aborted) throw err;
          fail(target.name, {
            message: errorMessage(err),
            exitCode: err instanceof DatasaverError ? err.exitCode : ExitCode.general,
            hint: err instanceof DatasaverError ? err.hint : undefined,
          });
          continue;
        }
        report(resumed.copies, resumed.problems);
        ctx.signal.throwIfAborted();
        const clean = resumed.copies.length === 0 && resumed.problems.length === 0;
        if (destinations.length > 1 && clean && !opts.json) {
          ctx.stdout.write(`${target.name}: every destination holds every backup retention keeps\n`);
        }
        continue;
      }
      const progress = new Progress(ctx.stderr, !opts.json);
      announce(target, 'start', 'started', null, null);
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
            onProgress: (raw, stored) =>
              progress.update(
                `backup ${target.name}: ${formatBytes(raw)} dumped, ${formatBytes(stored)} stored`,
                raw,
              ),
          },
        );
        progress.done();
      } catch (err) {
        progress.done();
        const exitCode = err instanceof DatasaverError ? err.exitCode : ExitCode.general;
        // Stopped on purpose (a signal): like the daemon, no failure is announced.
        if (!ctx.signal.aborted) {
          announce(target, 'failure', `backup failed: ${errorMessage(err)}`, null, {
            message: errorMessage(err),
            exitCode,
          });
        }
        if (targets.length === 1 || ctx.signal.aborted) throw err;
        // One target failing never stops the others; each failure is reported and sets the exit code.
        fail(target.name, {
          message: errorMessage(err),
          exitCode,
          hint: err instanceof DatasaverError ? err.hint : undefined,
        });
        continue;
      }
      // A committed backup whose other destinations or prune failed is announced as a failure, as the
      // daemon does: someone has to look.
      const problems = cycle.problems;
      if (problems.length === 0) {
        announce(target, 'success', `backup ${cycle.backup.manifest.id} succeeded`, cycle, null);
      } else {
        const message = problems.map((p) => p.message).join('; ');
        announce(target, 'failure', `backup failed: ${message}`, cycle, {
          message,
          exitCode: problems[0]!.exitCode,
        });
      }
      if (cycle.size?.alert) {
        const what = describeSizeChange(cycle.size);
        ctx.stderr.write(`warning: ${target.name}: ${what}\n`);
        announce(target, 'size-change', what, cycle, null);
      }
      for (const p of cycle.prunedFirst ?? []) {
        ctx.stderr.write(
          `note: ${p.storage} was full: pruned ${p.removed} item(s) (${formatBytes(p.removedBytes)}) that retention removes, then backed up again\n`,
        );
      }
      const { backup } = cycle;
      const where = backup.committed.map((d) => d.description);
      done.push({
        ...backup.manifest,
        verified: backup.verified,
        destinations: where,
        sizeChange: cycle.size ?? null,
      });
      if (!opts.json) {
        const m = backup.manifest;
        ctx.stdout.write(
          `backup ${m.id} committed${destinations.length > 1 ? ` to ${where.join(', ')}` : ''}: ${formatBytes(m.sizeBytes)} dumped, ${formatBytes(m.storedBytes)} stored (${m.format}, ${m.compression}) in ${formatDuration(m.durationMs)}${backup.verified ? ', verified' : ''}\n`,
        );
      }
      const uploads = cycle.problems.filter((p) => p.stage === 'upload');
      report([], uploads);
      if (uploads.length > 0) {
        ctx.stderr.write(
          `note: ${backup.manifest.id} is kept in ${where.join(', ')}; the next backup, or \`datasaver backup --resume-uploads\`, uploads it to the rest\n`,
        );
      }
      report(
        cycle.copies,
        cycle.problems.filter((p) => p.stage !== 'upload' && p.stage !== 'prune'),
      );
      for (const w of cycle.warnings) ctx.stderr.write(`warning: ${w}\n`);
      report(
        [],
        cycle.problems.filter((p) => p.stage === 'prune'),
      );
      pruned.push(...(cycle.prunedFirst ?? []), ...cycle.pruned);
      if (!opts.json) {
        for (const result of cycle.pruned.filter((r) => r.removed > 0)) {
          ctx.stdout.write(
            `pruned ${result.removed} old item(s) of ${target.name} from ${result.storage} (${formatBytes(result.removedBytes)}); \`datasaver prune --dry-run\` shows why\n`,
          );
        }
      }
      if (cycle.interrupted) {
        fail(target.name, {
          message: `interrupted after ${backup.manifest.id} was committed; resuming uploads and pruning stopped early`,
          exitCode: ExitCode.general,
          hint: 'the backup is kept; the next backup (or `datasaver prune`) finishes the rest',
        });
        break;
      }

      function report(newCopies: CopyResult[], problems: CycleProblem[]) {
        copies.push(...newCopies);
        if (!opts.json) {
          for (const c of newCopies.filter((x) => !x.error))
            ctx.stdout.write(`uploaded ${c.id} to ${c.to} (${formatBytes(c.bytes)}) from ${c.from}\n`);
        }
        for (const p of problems) fail(target.name, p);
      }
    }
  }
}
