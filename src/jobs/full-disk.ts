/**
 * A backup that fails because its disk is full, while retention would remove backups from that disk
 * anyway, is worth one more try after those are removed: otherwise a disk sized for the retention policy
 * stops taking backups the first time the newest one does not fit beside the ones about to expire.
 *
 * The rules:
 *   - only for a target with one destination, when the backup failed there for lack of space (ENOSPC,
 *     EDQUOT: local disks; S3 has its own quota errors, which are not this), and only when the run prunes;
 *   - what is removed is what `datasaver prune` would remove right now, judged as if the new backup did
 *     not exist (it does not: nothing of a failed backup is left): retention's own decisions, never
 *     below min-keep, never a backup the policy keeps;
 *   - one retry; when retention removes nothing, or the retry fails again, the error says so.
 * With several destinations a full disk does not fail the backup: the others take it, and the full one
 * is reported as an upload problem, as any destination that fails is.
 */
import { errorMessage, StorageError } from '../errors.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { formatBytes } from '../util/format.ts';
import { type BackupDeps, type BackupRequest, type BackupResult, runBackup } from './backup.ts';
import { executePrune, type PruneResult, planPrune } from './prune.ts';

/** Whether `err` (or an error it was caused by) says the disk or the user's quota is full. */
export function isDiskFull(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    e = e.cause;
  }
  return false;
}

/**
 * Runs the backup; when it fails on a full disk that retention would prune anyway, prunes first and
 * tries once more. Returns the backup and the prune that made room for it (if one ran).
 */
export async function backupMakingRoom(
  request: BackupRequest & { prune: boolean },
  deps: BackupDeps & { now: () => Date },
): Promise<{ backup: BackupResult; prunedFirst: PruneResult | undefined }> {
  try {
    return { backup: await runBackup(request, deps), prunedFirst: undefined };
  } catch (err) {
    const storage = deps.destinations.length === 1 ? deps.destinations[0] : undefined;
    if (!storage || !isDiskFull(err) || deps.signal?.aborted) throw err;
    if (!request.prune) {
      throw fullDisk(err, storage, 'pruning is off for this run (--no-prune), so nothing was removed');
    }
    const plan = await planPrune(request.target, { storage, now: deps.now(), signal: deps.signal });
    if (!plan.items.some((i) => i.action === 'remove')) {
      throw fullDisk(err, storage, 'retention keeps every backup there, so nothing was removed to make room');
    }
    const pruned = await executePrune(plan, { storage, signal: deps.signal });
    if (pruned.removed === 0) {
      throw fullDisk(
        err,
        storage,
        `pruning to make room removed nothing: ${pruned.failures[0] ?? 'unknown'}`,
      );
    }
    try {
      return { backup: await runBackup(request, deps), prunedFirst: pruned };
    } catch (again) {
      if (!isDiskFull(again)) throw again;
      throw fullDisk(
        again,
        storage,
        `it did not fit even after pruning ${pruned.removed} item(s) (${formatBytes(pruned.removedBytes)}) that retention removes`,
      );
    }
  }
}

function fullDisk(err: unknown, storage: StorageBackend, what: string): StorageError {
  return new StorageError(`${errorMessage(err)}; ${what}`, {
    hint: `free space on ${storage.description}, keep fewer backups (DATASAVER_KEEP_*, DATASAVER_MIN_KEEP), or point DATASAVER_STORAGE_PATH at a larger disk`,
    cause: err,
  });
}
