import type { TargetConfig } from '../config/types.ts';
import { createEngine } from '../engines/index.ts';
import { CleanupError, DatasaverError, ExitCode, errorMessage, UsageError } from '../errors.ts';
import { type BackupResult, runBackup } from '../jobs/backup.ts';
import { type PruneResult, prune, throwIfPruneFailed } from '../jobs/prune.ts';
import { type CopyResult, resumeUploads } from '../jobs/resume.ts';
import type { StorageBackend } from '../storage/backend.ts';
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

const LABEL = /^[a-z0-9][a-z0-9_-]{0,31}$/;

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
 */
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

  const done: (BackupResult['manifest'] & { verified: boolean; destinations: string[] })[] = [];
  const failures: Failure[] = [];
  const copies: CopyResult[] = [];
  const pruned: PruneResult[] = [];
  const fail = (target: string, err: unknown, fallback: number, prefix = '') => {
    const failure: Failure = {
      target,
      exitCode: err instanceof DatasaverError ? err.exitCode : fallback,
      message: `${prefix}${errorMessage(err)}`,
      hint: err instanceof DatasaverError ? err.hint : undefined,
    };
    failures.push(failure);
    ctx.stderr.write(`Error: ${target}: ${failure.message}\n`);
    if (failure.hint) ctx.stderr.write(`Try: ${failure.hint}\n`);
  };

  for (const target of targets) {
    const destinations = await openDestinations(ctx, target);
    let committed: StorageBackend[] = destinations;
    if (!opts.resumeUploads) {
      const progress = new Progress(ctx.stderr, !opts.json);
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
            destinations,
            signal: ctx.signal,
            onProgress: (raw, stored) =>
              progress.update(
                `backup ${target.name}: ${formatBytes(raw)} dumped, ${formatBytes(stored)} stored`,
                raw,
              ),
          },
        );
        progress.done();
        committed = result.committed;
        const where = committed.map((d) => d.description);
        done.push({ ...result.manifest, verified: result.verified, destinations: where });
        if (!opts.json) {
          const m = result.manifest;
          ctx.stdout.write(
            `backup ${m.id} committed${destinations.length > 1 ? ` to ${where.join(', ')}` : ''}: ${formatBytes(m.sizeBytes)} dumped, ${formatBytes(m.storedBytes)} stored (${m.format}, ${m.compression}) in ${formatDuration(m.durationMs)}${result.verified ? ', verified' : ''}\n`,
          );
        }
        for (const f of result.failures) {
          fail(target.name, f.error, ExitCode.storage, `${f.destination.description}: `);
        }
        if (result.failures.length > 0) {
          ctx.stderr.write(
            `note: ${result.manifest.id} is kept in ${where.join(', ')}; the next backup, or \`datasaver backup --resume-uploads\`, uploads it to the rest\n`,
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
    }

    // After a successful backup (or on request): copy what some destinations missed, then thin each
    // destination that holds the new backup. A failed run never gets here, so it never prunes. A
    // destination that has just failed is not tried again in the same run.
    if (committed.length === destinations.length) {
      copies.push(...(await resume(ctx, target, destinations, opts, fail)));
    }
    // Only a new backup is followed by a prune; resuming uploads takes none, so it deletes nothing.
    if (opts.prune === false || opts.resumeUploads) continue;
    for (const storage of committed) {
      try {
        const result = await prune(target, { storage, now: new Date(), signal: ctx.signal });
        pruned.push(result);
        for (const w of result.warnings) ctx.stderr.write(`warning: ${w}\n`);
        throwIfPruneFailed(result);
        if (!opts.json && result.removed > 0) {
          ctx.stdout.write(
            `pruned ${result.removed} old item(s) of ${target.name} from ${storage.description} (${formatBytes(result.removedBytes)}); \`datasaver prune --dry-run\` shows why\n`,
          );
        }
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        // The backup is committed whatever happens here; a failed prune only sets exit code 7.
        const cleanup =
          err instanceof CleanupError
            ? err
            : new CleanupError(`prune of ${storage.description}: ${errorMessage(err)}`, {
                hint: 'the backup is committed; fix the storage problem and run `datasaver prune`',
                cause: err,
              });
        fail(target.name, cleanup, ExitCode.cleanup);
      }
    }
  }
  if (opts.json) printJson(ctx.stdout, { backups: done, copies, pruned, failures });
  return failures[0]?.exitCode ?? ExitCode.ok;
}

async function resume(
  ctx: CliContext,
  target: TargetConfig,
  destinations: StorageBackend[],
  opts: BackupOptions,
  fail: (target: string, err: unknown, fallback: number, prefix?: string) => void,
): Promise<CopyResult[]> {
  if (destinations.length < 2) {
    if (opts.resumeUploads && !opts.json)
      ctx.stdout.write(`${target.name} has one destination; nothing to resume\n`);
    return [];
  }
  try {
    const copies = await resumeUploads(target, { destinations, now: new Date(), signal: ctx.signal });
    for (const c of copies) {
      if (c.error) fail(target.name, new Error(c.error), ExitCode.storage, `copying ${c.id} to ${c.to}: `);
      else if (!opts.json)
        ctx.stdout.write(`uploaded ${c.id} to ${c.to} (${formatBytes(c.bytes)}) from ${c.from}\n`);
    }
    if (opts.resumeUploads && copies.length === 0 && !opts.json) {
      ctx.stdout.write(`${target.name}: every destination holds every backup retention keeps\n`);
    }
    return copies;
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    fail(target.name, err, ExitCode.storage, 'resuming uploads: ');
    return [];
  }
}
