/**
 * One run of a target with its retries: a run that cannot reach the database is tried again
 * (`retry_attempts`, the delay doubling from `retry_delay_seconds`); other failures are not retried, the
 * next scheduled run is the retry. Says how the run ended; what that means for status, metrics and
 * notifications is record.ts's.
 */
import type { TargetConfig } from '../config/types.ts';
import type { CycleResult } from '../jobs/cycle.ts';
import { LeaseHeldError } from '../lease/lease.ts';
import { finishedRun, type RunOutcome } from '../notify/events.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ConnectionError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { redact } from '../util/secret.ts';

/**
 * One run of a target: backup, resume, prune. Throws when the backup itself fails. Calls `onStarted` once
 * it holds the target's lease, before it writes anything (a run skipped for another holder never starts).
 */
export type RunTarget = (
  target: TargetConfig,
  destinations: StorageBackend[],
  signal: AbortSignal,
  onStarted: () => void,
) => Promise<CycleResult>;

export interface RunDeps {
  /** The backup itself (runCycle in production). */
  runTarget: RunTarget;
  /** Waits between connection retries; rejects when `signal` aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The target's logger. */
  log: Logger;
  /** Aborts the run (shutdown). */
  signal: AbortSignal;
  /** Called once, when the run holds the target's lease. */
  onStarted: () => void;
  /** Called before each retry after the database could not be reached. */
  onRetry: () => void;
}

/**
 * Runs `target` until it succeeds, fails for good, or is stopped. Error texts in the outcome have the
 * target's password removed. Never throws.
 */
export async function runWithRetries(
  target: TargetConfig,
  destinations: StorageBackend[],
  deps: RunDeps,
): Promise<RunOutcome> {
  const { log, signal } = deps;
  // Errors are redacted before shown anywhere; this also hides the target's own password if a tool
  // printed it in some form the engine did not catch.
  const clean = (text: string) => redact(text, [target.connection.password]);
  let announced = false;
  // After the lease is taken: a standby daemon that skips must not ping `start` with no end to it.
  const onStarted = () => {
    if (announced) return;
    announced = true;
    deps.onStarted();
  };
  for (let attempt = 1; ; attempt++) {
    try {
      return finishedRun(await deps.runTarget(target, destinations, signal, onStarted), undefined, clean);
    } catch (err) {
      if (signal.aborted) {
        log.warn(
          { error: clean(errorMessage(err)) },
          'backup interrupted by shutdown; no partial backup was committed',
        );
        return { kind: 'stopped' };
      }
      // A run that already announced its start (it held the lease, then lost the target to another
      // process while it waited to retry) ends as a failure: its `start` ping needs an end.
      if (err instanceof LeaseHeldError && !announced) {
        log.warn(
          { holder: err.lease.holder, expiresAt: err.lease.expiresAt, error: clean(err.message) },
          'skipped this run: another datasaver process holds the lease of this target',
        );
        return { kind: 'skipped' };
      }
      if (!(err instanceof ConnectionError && err.transient && attempt < target.schedule.retryAttempts)) {
        return finishedRun(undefined, err, clean);
      }
      const delayMs = Math.round(target.schedule.retryDelaySeconds * 1000 * 2 ** (attempt - 1));
      deps.onRetry();
      log.warn(
        { attempt, retryInMs: delayMs, error: clean(errorMessage(err)) },
        'cannot reach the database; retrying',
      );
      try {
        await deps.sleep(delayMs, signal);
      } catch {
        log.warn('backup interrupted by shutdown while waiting to retry');
        return { kind: 'stopped' };
      }
    }
  }
}
