/**
 * One run of a target, as both `datasaver backup` and the daemon do it: take the backup, copy backups that
 * some destinations missed from the others, then apply retention to every destination that holds the new
 * backup. A failed backup throws and prunes nothing; what goes wrong after the backup is committed
 * somewhere (a destination's upload, a copy, a prune) is collected as a problem, so the caller reports it
 * without losing the backup.
 */
import type { TargetConfig } from '../config/types.ts';
import type { Engine } from '../engines/engine.ts';
import type { ConfirmLease } from '../lease/held.ts';
import { type LeasePolicy, targetLeaseOptions, withLeases } from '../lease/lease.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { CleanupError, DatasaverError, ExitCode, errorMessage } from '../util/errors.ts';
import type { BackupRequest, BackupResult } from './backup.ts';
import { backupMakingRoom } from './full-disk.ts';
import { type PruneResult, prune, throwIfPruneFailed } from './prune.ts';
import { type CopyResult, resumeUploads } from './resume.ts';
import { checkBackupSize, type SizeAssessment } from './size-change.ts';

export interface CycleDeps {
  engine: Engine;
  destinations: StorageBackend[];
  signal?: AbortSignal | undefined;
  /** How to meet another run's lease on the target (default: wait a little over its TTL). */
  lease?: LeasePolicy | undefined;
  /** Called once the run holds the target's leases, before it writes anything. */
  onLeased?: (() => void) | undefined;
  onProgress?: ((raw: number, stored: number) => void) | undefined;
  now?: () => Date;
  /** Set by runCycle from the leases it holds: checked before each commit and deletion. */
  confirmLease?: ConfirmLease | undefined;
}

/** Something that failed after the backup was committed somewhere. */
export interface CycleProblem {
  /** `lease`: the run lost the target's lease and was stopped (see lease/lease.ts). */
  stage: 'upload' | 'copy' | 'resume' | 'prune' | 'lease';
  /** What failed and why, starting with where (a destination, a backup id). */
  message: string;
  /** What `datasaver backup` exits with for it: 6 (storage) or 7 (prune). */
  exitCode: ExitCode;
  hint: string | undefined;
}

export interface CycleResult {
  backup: BackupResult;
  copies: CopyResult[];
  pruned: PruneResult[];
  problems: CycleProblem[];
  /** Things prune skipped (foreign files, unreadable manifests). */
  warnings: string[];
  /**
   * The signal fired after the backup was committed: resuming and pruning stopped early. The backup
   * stands; the caller reports the interruption without calling the backup failed.
   */
  interrupted: boolean;
  /**
   * How the new backup's raw size compares with the target's recent backups (`alert` when it is out of
   * line); undefined when the check is off or there is too little history.
   */
  size?: SizeAssessment | undefined;
  /** Prunes that made room on a full disk before the backup's one retry (see full-disk.ts). */
  prunedFirst?: PruneResult[] | undefined;
}

/**
 * The run, holding the target's lease in every destination (lease/lease.ts): another run's lease is waited
 * for (LeaseHeldError when it stays); a destination whose lease cannot be written is left out and
 * reported like a failed upload.
 */
export async function runCycle(
  request: BackupRequest & { prune: boolean },
  deps: CycleDeps,
): Promise<CycleResult> {
  const leased = await withLeases(
    request.target.name,
    deps.destinations,
    targetLeaseOptions(request.target, 'backup', deps.lease, deps.signal),
    (destinations, signal, confirmLease) => {
      deps.onLeased?.();
      return runLeasedCycle(request, { ...deps, destinations, signal, confirmLease });
    },
  );
  const { result } = leased;
  result.problems.unshift(
    ...leased.unavailable.map((u) => problem('upload', u.error, `${u.storage.description}: `)),
  );
  if (leased.lost) result.problems.push(problem('lease', leased.lost));
  result.warnings.push(...leased.warnings);
  return result;
}

async function runLeasedCycle(
  request: BackupRequest & { prune: boolean },
  deps: CycleDeps,
): Promise<CycleResult> {
  const { target } = request;
  const { destinations, signal } = deps;
  const now = deps.now ?? (() => new Date());
  const { backup, prunedFirst } = await backupMakingRoom(request, { ...deps, now });
  const warnings: string[] = [];
  const size = await checkBackupSize(target, backup.manifest, backup.committed[0]!, now(), signal, warnings);
  const problems: CycleProblem[] = backup.failures.map((f) =>
    problem('upload', f.error, `${f.destination.description}: `),
  );
  // A destination that has just failed is not tried again in the same run.
  const resumed =
    backup.committed.length === destinations.length && !signal?.aborted
      ? await resumeTarget(target, destinations, now(), signal, deps.confirmLease)
      : { copies: [], problems: [] };
  problems.push(...resumed.problems);

  const pruned: PruneResult[] = [];
  if (request.prune) {
    for (const storage of backup.committed) {
      if (signal?.aborted) break;
      try {
        const result = await prune(target, { storage, now: now(), signal, confirmLease: deps.confirmLease });
        pruned.push(result);
        warnings.push(...result.warnings);
        throwIfPruneFailed(result);
      } catch (err) {
        if (signal?.aborted) break;
        // The backup is committed whatever happens here; a failed prune is exit code 7.
        const error =
          err instanceof CleanupError
            ? err
            : new CleanupError(`prune of ${storage.description}: ${errorMessage(err)}`, {
                hint: 'the backup is committed; fix the storage problem and run `datasaver prune`',
                cause: err,
              });
        problems.push(problem('prune', error));
      }
    }
  }
  return {
    backup,
    copies: resumed.copies,
    pruned,
    problems,
    warnings,
    interrupted: signal?.aborted ?? false,
    size,
    prunedFirst,
  };
}

/** Copies what some destinations of `target` lack from the others (nothing to do with one destination). */
export async function resumeTarget(
  target: TargetConfig,
  destinations: StorageBackend[],
  now: Date,
  signal: AbortSignal | undefined,
  confirmLease?: ConfirmLease,
): Promise<{ copies: CopyResult[]; problems: CycleProblem[] }> {
  if (destinations.length < 2) return { copies: [], problems: [] };
  try {
    const copies = await resumeUploads(target, { destinations, now, signal, confirmLease });
    const problems = copies
      .filter((c) => c.error)
      .map((c) => problem('copy', new Error(c.error), `copying ${c.id} to ${c.to}: `));
    return { copies, problems };
  } catch (err) {
    // Interrupted: what was copied before stays copied, the rest waits for the next run.
    if (signal?.aborted) return { copies: [], problems: [] };
    return {
      copies: [],
      problems: [problem('resume', err, 'resuming uploads: ')],
    };
  }
}

function problem(stage: CycleProblem['stage'], err: unknown, prefix = ''): CycleProblem {
  const known = err instanceof DatasaverError;
  return {
    stage,
    message: `${prefix}${errorMessage(err)}`,
    exitCode: known ? err.exitCode : stage === 'prune' ? ExitCode.cleanup : ExitCode.storage,
    hint: known ? err.hint : undefined,
  };
}
