import { createEngine } from '../engines/index.ts';
import { DatasaverError, ExitCode, errorMessage, UsageError } from '../errors.ts';
import { type BackupResult, runBackup } from '../jobs/backup.ts';
import { type PruneResult, prune, throwIfPruneFailed } from '../jobs/prune.ts';
import { openStorage } from '../storage/index.ts';
import { type CliContext, readConfig, selectTargets } from './context.ts';
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
  json?: boolean;
}

const LABEL = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** `datasaver backup`: one backup of each selected target, one after another. */
export async function backupCommand(ctx: CliContext, opts: BackupOptions): Promise<number> {
  const config = await readConfig(ctx);
  const targets = selectTargets(config, opts.target, opts.all);
  const labels = [...new Set(opts.label ?? [])];
  for (const l of labels) {
    if (!LABEL.test(l))
      throw new UsageError(`invalid label '${l}'`, {
        hint: 'labels are lowercase letters, digits, `_` and `-`, e.g. daily, manual',
      });
  }

  const done: (BackupResult['manifest'] & { verified: boolean })[] = [];
  const failures: { target: string; exitCode: number; message: string; hint?: string | undefined }[] = [];
  const pruned: PruneResult[] = [];
  for (const target of targets) {
    const progress = new Progress(ctx.stderr, !opts.json);
    const storage = openStorage(target.storage);
    try {
      const result = await runBackup(
        {
          target,
          labels,
          format: opts.format,
          schemaOnly: opts.schemaOnly ? true : undefined,
          verify: opts.verify ?? false,
        },
        {
          engine: createEngine(target),
          storage,
          signal: ctx.signal,
          onProgress: (raw, stored) =>
            progress.update(
              `backup ${target.name}: ${formatBytes(raw)} dumped, ${formatBytes(stored)} stored`,
              raw,
            ),
        },
      );
      progress.done();
      done.push({ ...result.manifest, verified: result.verified });
      if (!opts.json) {
        const m = result.manifest;
        ctx.stdout.write(
          `backup ${m.id} committed: ${formatBytes(m.sizeBytes)} dumped, ${formatBytes(m.storedBytes)} stored (${m.format}, ${m.compression}) in ${formatDuration(m.durationMs)}${result.verified ? ', verified' : ''}\n`,
        );
      }
    } catch (err) {
      progress.done();
      if (targets.length === 1 || ctx.signal.aborted) throw err;
      // One target failing never stops the others; each failure is reported and sets the exit code.
      failures.push({
        target: target.name,
        exitCode: err instanceof DatasaverError ? err.exitCode : ExitCode.general,
        message: errorMessage(err),
        hint: err instanceof DatasaverError ? err.hint : undefined,
      });
      ctx.stderr.write(`Error: ${target.name}: ${errorMessage(err)}\n`);
      continue;
    }
    // Retention runs only after a successful backup: a failed run never thins what is there.
    if (opts.prune === false) continue;
    try {
      const result = await prune(target, { storage, now: new Date(), signal: ctx.signal });
      pruned.push(result);
      for (const w of result.warnings) ctx.stderr.write(`warning: ${w}\n`);
      throwIfPruneFailed(result);
      if (!opts.json && result.removed > 0) {
        ctx.stdout.write(
          `pruned ${result.removed} old item(s) of ${target.name} (${formatBytes(result.removedBytes)}); \`datasaver prune --dry-run\` shows why\n`,
        );
      }
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      // The backup is committed whatever happens here; a failed prune only sets exit code 7.
      const failure = {
        target: target.name,
        exitCode: err instanceof DatasaverError ? err.exitCode : ExitCode.cleanup,
        message: `prune: ${errorMessage(err)}`,
        hint: err instanceof DatasaverError ? err.hint : undefined,
      };
      failures.push(failure);
      ctx.stderr.write(`Error: ${target.name}: ${failure.message}\n`);
      if (failure.hint) ctx.stderr.write(`Try: ${failure.hint}\n`);
    }
  }
  if (opts.json) printJson(ctx.stdout, { backups: done, pruned, failures });
  return failures[0]?.exitCode ?? ExitCode.ok;
}
