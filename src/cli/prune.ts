import type { TargetConfig } from '../config/types.ts';
import { type PruneResult, prune, throwIfPruneFailed } from '../jobs/prune.ts';
import { LeaseHeldError, targetLeaseOptions, waitingMessage, withLeases } from '../lease/lease.ts';
import type { LeaseRecord } from '../lease/record.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { CleanupError, errorMessage, StorageError, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { type CliContext, openDestinations, readConfig, selectTargets } from './context.ts';
import { formatBytes, formatTime, printJson, renderTable } from './output.ts';

export interface PruneOptions {
  target?: string;
  all?: boolean;
  dryRun?: boolean;
  now?: string;
  json?: boolean;
}

/** `datasaver prune` (alias `cleanup`): applies each selected target's retention policy to its storage. */
export async function pruneCommand(ctx: CliContext, opts: PruneOptions): Promise<number> {
  if (opts.now !== undefined && !opts.dryRun) {
    // A pretend clock would also age in-flight uploads past their grace period: only ever a question.
    throw new UsageError('--now only works with --dry-run', {
      hint: 'add --dry-run to see what prune would do at that time',
    });
  }
  const now = opts.now === undefined ? new Date() : parseNow(opts.now);
  const config = await readConfig(ctx);
  const targets = selectTargets(config, opts.target, opts.all);
  const results: PruneResult[] = [];
  const errors: { target: string; storage: string; message: string; held: boolean }[] = [];
  for (const target of targets) {
    // Each destination is thinned on its own: they may hold different backups after a failed upload.
    for (const storage of await openDestinations(ctx, target)) {
      try {
        const result = await pruneLeased(ctx, target, storage, now, opts.dryRun);
        results.push(result);
        for (const w of result.warnings) ctx.stderr.write(`warning: ${w}\n`);
        if (!opts.json) ctx.stdout.write(renderPrune(result));
        throwIfPruneFailed(result);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        // One target or destination failing never stops the others.
        const held = err instanceof LeaseHeldError;
        const message = printable(errorMessage(err));
        errors.push({ target: target.name, storage: storage.description, message, held });
        ctx.stderr.write(`Error: prune of ${target.name} in ${storage.description}: ${message}\n`);
      }
    }
  }
  if (opts.json) printJson(ctx.stdout, { results, errors });
  if (errors.length > 0 && errors.every((e) => e.held)) {
    throw new StorageError(
      `prune skipped ${errors.length} destination(s): another datasaver run holds them`,
      {
        hint: 'run one writer per target; prune runs after every backup anyway',
      },
    );
  }
  if (errors.length > 0) {
    throw new CleanupError(`prune failed for ${errors.length} destination(s); see the errors above`, {
      hint: 'nothing kept was touched; fix the storage problem and run `datasaver prune` again',
    });
  }
  return 0;
}

/** A prune that deletes holds the target's lease in that destination; a dry run only reads. */
async function pruneLeased(
  ctx: CliContext,
  target: TargetConfig,
  storage: StorageBackend,
  now: Date,
  dryRun: boolean | undefined,
): Promise<PruneResult> {
  if (dryRun) return prune(target, { storage, now, signal: ctx.signal }, { dryRun });
  const onWait = (s: StorageBackend, lease: LeaseRecord) => ctx.stderr.write(`${waitingMessage(s, lease)}\n`);
  const leased = await withLeases(
    target.name,
    [storage],
    targetLeaseOptions(target, 'prune', { onWait }, ctx.signal),
    ([held], signal, confirmLease) => prune(target, { storage: held!, now, signal, confirmLease }),
  );
  for (const w of leased.warnings) ctx.stderr.write(`warning: ${w}\n`);
  if (leased.lost) throw leased.lost;
  return leased.result;
}

function parseNow(text: string): Date {
  const at = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(at.getTime())) {
    throw new UsageError(`--now '${text}' is not an ISO 8601 time`, {
      hint: 'e.g. --now 2027-01-01T00:00:00Z (a time without zone is read as local time)',
    });
  }
  return at;
}

/** The per-item table and a one-line summary. */
export function renderPrune(r: PruneResult): string {
  const header = `prune ${r.target} in ${r.storage}${r.dryRun ? ' (dry run: nothing is deleted)' : ''}\n`;
  if (r.items.length === 0) return `${header}nothing stored\n`;
  const rows = r.items.map((i) => [
    i.id || '-',
    i.kind === 'backup' ? 'backup' : i.kind,
    formatTime(i.time),
    formatBytes(i.bytes),
    i.action,
    i.reasons.join(', '),
  ]);
  const table = renderTable(['ID', 'KIND', 'TIME (UTC)', 'SIZE', 'ACTION', 'WHY'], rows);
  const remove = r.items.filter((i) => i.action === 'remove');
  const bytes = remove.reduce((n, i) => n + i.bytes, 0);
  const kept = r.items.length - remove.length;
  const summary = r.dryRun
    ? `would keep ${kept}, remove ${remove.length} (${formatBytes(bytes)})`
    : `kept ${kept}, removed ${r.removed} (${formatBytes(r.removedBytes)})${r.failures.length ? `, ${r.failures.length} failed` : ''}`;
  return `${header}${table}${summary}\n`;
}
