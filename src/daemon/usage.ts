/**
 * What storage holds of each target: the counts `/health` and `/metrics` show, and, after a restart, the
 * last success (a restart is not a reset).
 */
import { type ManifestTrust, readTargetUsage } from '../catalog/catalog.ts';
import type { DestinationUsage, SuccessRecord } from '../server/health.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage } from '../util/errors.ts';
import { redact } from '../util/secret.ts';
import type { DaemonContext, Slot } from './slot.ts';

/**
 * Committed backups of a target in one destination that `trust` believes (the target's verify keys), and
 * the newest of them that can be trusted at `now` (the daemon's clock): a backup dated in the future, or
 * one whose manifest is not signed by a verify key, must never stand for a recent success.
 */
export type ReadUsage = (
  storage: StorageBackend,
  target: string,
  signal: AbortSignal,
  now: Date,
  trust?: ManifestTrust,
) => Promise<{ backups: number; bytes: number; newest: SuccessRecord | undefined }>;

/** The production ReadUsage: storage's catalog, with suspect backups never counted as the newest. */
export const readStorageUsage: ReadUsage = async (storage, target, signal, now, trust) => {
  const usage = await readTargetUsage(storage, target, { now, signal, trust });
  const newest = usage.newest;
  return {
    backups: usage.backups,
    bytes: usage.bytes,
    newest: newest && {
      time: newest.finishedAt,
      backupId: newest.id,
      sizeBytes: newest.sizeBytes,
      durationMs: newest.durationMs,
    },
  };
};

/**
 * Counts what each destination holds. Until this process has seen a backup of the target, the newest
 * one in storage is its last success; `onLastSuccess` is then called (to check staleness at once).
 * Never throws: a destination that cannot be listed is reported in the status and the log.
 */
export async function refreshUsage(
  ctx: DaemonContext,
  slot: Slot,
  readUsage: ReadUsage,
  onLastSuccess: () => void,
): Promise<void> {
  const { metrics, signal } = ctx;
  const name = slot.target.name;
  const seq = ++slot.usageSeq;
  let newest: SuccessRecord | undefined;
  const usage: DestinationUsage[] = await Promise.all(
    slot.destinations.map(async (d) => {
      try {
        const u = await readUsage(d, name, signal, ctx.clock.now(), slot.target.signing);
        if (u.newest && (!newest || u.newest.time > newest.time)) newest = u.newest;
        return { destination: d.description, backups: u.backups, bytes: u.bytes, error: null };
      } catch (err) {
        const error = redact(errorMessage(err));
        if (!signal.aborted)
          ctx.log.warn({ target: name, destination: d.description, error }, 'cannot list storage');
        return { destination: d.description, backups: 0, bytes: 0, error };
      }
    }),
  );
  if (seq !== slot.usageSeq) return; // a newer listing started meanwhile: its counts win
  slot.status.destinations = usage;
  for (const u of usage.filter((x) => x.error === null)) {
    metrics.storedBackups.set({ target: name, destination: u.destination }, u.backups);
    metrics.storedBytes.set({ target: name, destination: u.destination }, u.bytes);
  }
  if (newest && !slot.status.lastSuccess) {
    slot.status.lastSuccess = newest;
    metrics.lastSuccess.set({ target: name }, Date.parse(newest.time) / 1000);
    // A sidecar restarted long after its last backup says so at once, not a minute later.
    if (!signal.aborted) onLastSuccess();
  }
}
