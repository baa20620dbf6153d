/**
 * Is a new backup's size out of line with the target's recent ones? A dump that shrank by half is what a
 * dropped table, a truncated schema or a failed data load looks like; one that doubled can be a runaway
 * log table. Neither is an error (the backup is committed), but someone should look.
 *
 * The rule, pure: the new backup's raw size (`sizeBytes`, before compression, so a change of compression
 * level does not count) is compared with the median raw size of up to SIZE_HISTORY of the target's good
 * backups taken before it, in the same series (a schema-only dump is never compared with a full one). With
 * fewer than SIZE_HISTORY_MIN of them there is nothing to judge by, and no assessment. The change is
 * `(size - median) / median`; the backup is flagged when its magnitude is above the threshold (0 = off).
 * The median, not the mean, so that one odd backup in the history does not move the yardstick.
 * `assessSize` is the rule; `checkBackupSize` reads the history from storage for it.
 */

import { type ManifestTrust, readCatalog } from '../catalog/catalog.ts';
import { manifestDistrust } from '../catalog/manifest-trust.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { missingData } from './prune.ts';

/** How many earlier backups make up the yardstick, at most. */
export const SIZE_HISTORY = 7;
/** Fewer earlier backups than this: no judgement. */
export const SIZE_HISTORY_MIN = 3;

/** What the rule needs of a backup (a manifest has all of it). */
export interface SizedBackup {
  id: string;
  /** ISO time the backup started. */
  createdAt: string;
  schemaOnly: boolean;
  /** Raw dump bytes. */
  sizeBytes: number;
}

export interface SizeAssessment {
  backupId: string;
  series: 'full' | 'schema-only';
  sizeBytes: number;
  /** Median raw size of the earlier backups judged by. */
  medianBytes: number;
  /** How many earlier backups the median is of. */
  basis: number;
  /** (size - median) / median: -0.6 is 60% smaller, 1.0 twice the size. */
  change: number;
  /** The threshold it was judged against (a fraction). */
  threshold: number;
  /** |change| is above the threshold. */
  alert: boolean;
}

/**
 * Judges `backup` against `earlier` (good backups of the same target; any order, may include `backup`
 * itself and later ones, which are ignored). Undefined when the check is off or there is too little
 * history to judge by.
 */
export function assessSize(
  backup: SizedBackup,
  earlier: readonly SizedBackup[],
  threshold: number,
): SizeAssessment | undefined {
  if (!(threshold > 0)) return undefined;
  const before = earlier
    .filter((b) => b.id !== backup.id && b.schemaOnly === backup.schemaOnly && b.createdAt < backup.createdAt)
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
    .slice(-SIZE_HISTORY);
  if (before.length < SIZE_HISTORY_MIN) return undefined;
  const medianBytes = median(before.map((b) => b.sizeBytes));
  if (medianBytes <= 0) return undefined;
  const change = (backup.sizeBytes - medianBytes) / medianBytes;
  return {
    backupId: backup.id,
    series: backup.schemaOnly ? 'schema-only' : 'full',
    sizeBytes: backup.sizeBytes,
    medianBytes,
    basis: before.length,
    change,
    threshold,
    alert: Math.abs(change) > threshold,
  };
}

/** One line for people: `backup X is 62% smaller than the median of the last 7 (...)`. */
export function describeSizeChange(a: SizeAssessment): string {
  const pct = Math.round(Math.abs(a.change) * 100);
  const direction = a.change < 0 ? 'smaller' : 'larger';
  return `backup ${a.backupId} is ${pct}% ${direction} than the median of the last ${a.basis} ${a.series} backups (${formatBytes(a.sizeBytes)} against ${formatBytes(a.medianBytes)}); a dropped table or a failed data load looks like this, so check the database (the alert threshold is ${Math.round(a.threshold * 100)}%)`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Judges a just-committed backup against what its first destination holds (good backups only: manifest
 * read, data object there with the recorded size, dates to be trusted at `now`, so backups planted with
 * forged dates cannot move the yardstick). Storage that cannot be read skips the check with a
 * warning: it never fails a committed backup.
 */
export async function checkBackupSize(
  target: { name: string; sizeChangeAlert: number; signing?: ManifestTrust | undefined },
  backup: SizedBackup,
  storage: StorageBackend,
  now: Date,
  signal: AbortSignal | undefined,
  warnings: string[],
): Promise<SizeAssessment | undefined> {
  if (!(target.sizeChangeAlert > 0)) return undefined;
  try {
    const catalog = await readCatalog(storage, { target: target.name, signal, trust: target.signing });
    const good = catalog.backups.filter(
      (m) =>
        m.target === target.name &&
        missingData(m, catalog.objects) === undefined &&
        manifestDistrust(m, now) === undefined,
    );
    return assessSize(backup, good, target.sizeChangeAlert);
  } catch (err) {
    if (!signal?.aborted)
      warnings.push(`size check of ${backup.id} skipped: ${storage.description}: ${errorMessage(err)}`);
    return undefined;
  }
}
