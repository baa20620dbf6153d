/**
 * A backup that fails because its disk is full, while retention would remove backups from that disk
 * anyway, is worth one more try after those are removed: otherwise a disk sized for the retention policy
 * stops taking backups the first time the newest one does not fit beside the ones about to expire.
 *
 * The rules:
 *   - only when the backup failed on a destination for lack of space (ENOSPC, EDQUOT: local disks; S3
 *     has its own quota errors, which are not this), and only when the run prunes;
 *   - what is removed there is what `datasaver prune` would remove right now, judged as if the new backup
 *     did not exist (it does not: nothing of a failed write is left): retention's own decisions, never
 *     below min-keep, never a backup the policy keeps;
 *   - one retry: with one destination, the backup is taken again; with several, the others took the
 *     backup, and it is copied from one of them to the destination that was full (checked against its
 *     manifest, as every copy is);
 *   - when retention removes nothing there, or the retry fails again, the error says so.
 */

import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage, StorageError } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { type BackupDeps, type BackupRequest, type BackupResult, runBackup } from './backup.ts';
import { executePrune, type PruneResult, planPrune } from './prune.ts';
import { copyBackup } from './resume.ts';

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
 * tries once more. Returns the backup and the prunes that made room for it (if any ran).
 */
export async function backupMakingRoom(
  request: BackupRequest & { prune: boolean },
  deps: BackupDeps & { now: () => Date },
): Promise<{ backup: BackupResult; prunedFirst: PruneResult[] }> {
  let backup: BackupResult;
  try {
    backup = await runBackup(request, deps);
  } catch (err) {
    const storage = deps.destinations.length === 1 ? deps.destinations[0] : undefined;
    if (!storage || !isDiskFull(err) || deps.signal?.aborted) throw err;
    const pruned = await makeRoom(err, storage, request, deps);
    try {
      return { backup: await runBackup(request, deps), prunedFirst: [pruned] };
    } catch (again) {
      if (!isDiskFull(again)) throw again;
      throw fullDisk(again, storage, `it did not fit even after ${prunedText(pruned)}`);
    }
  }
  return copyWhereFull(backup, request, deps);
}

/**
 * Several destinations, some of them full: the backup is committed on the others. Each full one that
 * retention would prune is pruned and gets a copy of the backup; one that cannot be helped stays a
 * failure, saying why.
 */
async function copyWhereFull(
  backup: BackupResult,
  request: BackupRequest & { prune: boolean },
  deps: BackupDeps & { now: () => Date },
): Promise<{ backup: BackupResult; prunedFirst: PruneResult[] }> {
  const prunedFirst: PruneResult[] = [];
  const committed = [...backup.committed];
  const failures: BackupResult['failures'] = [];
  for (const failure of backup.failures) {
    const storage = failure.destination;
    if (!isDiskFull(failure.error) || deps.signal?.aborted) {
      failures.push(failure);
      continue;
    }
    try {
      const pruned = await makeRoom(failure.error, storage, request, deps);
      prunedFirst.push(pruned);
      await copyBackup(backup.manifest, committed[0]!, storage, deps.signal, deps.confirmLease).catch(
        (err: unknown) => {
          const why = `copying the backup there after ${prunedText(pruned)} failed: ${errorMessage(err)}`;
          throw fullDisk(failure.error, storage, why);
        },
      );
      committed.push(storage);
    } catch (err) {
      failures.push({ destination: storage, error: err });
    }
  }
  // Destinations keep their configured order (local first), as the backup job reports them.
  const order = (d: StorageBackend) => deps.destinations.indexOf(d);
  committed.sort((a, b) => order(a) - order(b));
  return { backup: { ...backup, committed, failures }, prunedFirst };
}

/**
 * Removes from `storage` what retention removes there now; throws the full-disk error `err`, saying
 * why, when the run does not prune or nothing could be removed.
 */
async function makeRoom(
  err: unknown,
  storage: StorageBackend,
  request: BackupRequest & { prune: boolean },
  deps: BackupDeps & { now: () => Date },
): Promise<PruneResult> {
  if (!request.prune) {
    throw fullDisk(err, storage, 'pruning is off for this run (--no-prune), so nothing was removed');
  }
  const plan = await planPrune(request.target, { storage, now: deps.now(), signal: deps.signal });
  if (!plan.items.some((i) => i.action === 'remove')) {
    throw fullDisk(err, storage, 'retention keeps every backup there, so nothing was removed to make room');
  }
  const pruned = await executePrune(plan, { storage, signal: deps.signal, confirmLease: deps.confirmLease });
  if (pruned.removed === 0) {
    throw fullDisk(err, storage, `pruning to make room removed nothing: ${pruned.failures[0] ?? 'unknown'}`);
  }
  return pruned;
}

function prunedText(pruned: PruneResult): string {
  return `pruning ${pruned.removed} item(s) (${formatBytes(pruned.removedBytes)}) that retention removes`;
}

function fullDisk(err: unknown, storage: StorageBackend, what: string): StorageError {
  return new StorageError(`${errorMessage(err)}; ${what}`, {
    hint: `free space on ${storage.description}, keep fewer backups (DATASAVER_KEEP_*, DATASAVER_MIN_KEEP), or point DATASAVER_STORAGE_PATH at a larger disk`,
    cause: err,
  });
}
