/**
 * Restore drills: the proof that a backup restores to the data it was taken from. A drill restores the
 * backup into a scratch place (a throwaway server, or a scratch database on a drill server the user
 * names: jobs/drill-place.ts), reads the restored copy's facts the way the engine counted the dump's,
 * compares them item by item with the facts the backup recorded (jobs/facts-compare.ts), and always
 * removes the scratch copy. The restore is the one a user would run (checksum pass, streamed from
 * storage, checked again on the way), so its time is the recovery time they would see.
 *
 * A drill judges the backup, or fails to run:
 *   - the backup failed: its stored object is damaged (a verify reason), it does not restore (`restore`),
 *     or the restored copy differs from the recorded facts (`drill`). The result is recorded as
 *     `<id>.drill.json` beside the manifest, and a failed record makes the backup not good (retention,
 *     `latest`: catalog/records.ts).
 *   - the drill could not run (no scratch server, a drill server that cannot be reached, storage that
 *     cannot be read, an abort, an encrypted backup without the key that opens it): the error is thrown
 *     and nothing is recorded, since it says nothing about the backup.
 *
 * An encrypted backup is opened first (catalog/sealed.ts): its recorded facts are sealed, and a drill
 * never compares a copy with the placeholders a sealed manifest holds in their place.
 *
 * The restore and the comparison are jobs/drill-restore.ts: one dump, or a whole-server set database by
 * database (its globals checked, not applied), with one result and one record for the set.
 */
import { drillKey } from '../catalog/layout.ts';
import type { DrillRecord, Manifest } from '../catalog/manifest.ts';
import { isBackupSet } from '../catalog/parts.ts';
import { recordableMessage, writeRecord } from '../catalog/records.ts';
import { openManifest } from '../catalog/sealed.ts';
import type { Engine } from '../engines/engine.ts';
import type { DecryptionKey } from '../pipeline/encryption.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage } from '../util/errors.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { drillDump, drillSet } from './drill-restore.ts';
import type { FactDifference } from './facts-compare.ts';

/** Where a drill restores: a scratch place no one else uses, bound to an engine. */
export interface DrillPlace {
  /** The engine bound to the scratch server. */
  engine: Engine;
  /**
   * The database to restore into and read back; undefined for the backup's own names (a throwaway
   * server holds nothing else) or for an engine whose backup is the whole server. Always a scratch
   * database for a whole-server backup set: its databases restore into it one after the other.
   */
  database: string | undefined;
  /** For reports: `throwaway PostgreSQL 15.18 server`, `scratch database … on db:5432`. */
  description: string;
  /**
   * Removes the scratch copy: drops the scratch database, or stops the throwaway server and removes
   * its directory. Throws when it could not (the caller reports it; the next drill sweeps it).
   */
  release(): Promise<void>;
}

/** Opens the scratch place for a backup (jobs/drill-place.ts), or throws: the drill cannot run. */
export type OpenDrillPlace = (manifest: Manifest, signal?: AbortSignal) => Promise<DrillPlace>;

export type DrillPhase = 'place' | 'checksum' | 'restore' | 'compare' | 'cleanup';

export interface DrillDeps {
  storage: StorageBackend;
  openPlace: OpenDrillPlace;
  /** Parallel restore workers, where the format allows them. */
  jobs?: number | undefined;
  /** Where the restore may spool (a tool that needs a seekable input). */
  tempDir?: string | undefined;
  signal?: AbortSignal | undefined;
  now?: () => Date;
  /** Milliseconds from some fixed point (performance.now), to time the restore. */
  clock?: () => number;
  onPhase?: ((phase: DrillPhase) => void) | undefined;
  /** Stored bytes read so far, in the checksum pass and the restore. */
  onProgress?: ((phase: 'checksum' | 'restore', bytes: number) => void) | undefined;
  /** The key that opens encrypted backups (the encryption settings' `decrypt`); needed to drill one. */
  decrypt?: DecryptionKey | undefined;
}

export interface DrillResult {
  id: string;
  target: string;
  ok: boolean;
  /**
   * Why the backup failed its drill: `drill` (the restored copy differs from the recorded facts),
   * `restore` (it did not restore), or a verify reason (the stored object is damaged); null when ok.
   */
  reason: string | null;
  message: string | null;
  /** Where it was restored. */
  place: string;
  /** The restore's wall time, checksum pass included: the recovery time a user would see. */
  restoreMs: number | null;
  /** Items compared (tables, object kinds, sequences, key spaces). */
  compared: number;
  /** Every item that differs, by name. */
  differences: FactDifference[];
  /** Counts lower than recorded by no more than the keys with a time to live the copy lacks: they expired. */
  expired: FactDifference[];
  /** Why the facts could not be compared although the backup restored (they are estimates). */
  note: string | null;
  /** Why the result could not be recorded in storage (read-only storage); the result stands. */
  recordError?: string;
  /** Why the scratch copy could not be removed (the next drill's sweep removes it). */
  cleanupError?: string;
}

/** How a drill of a target's newest backup ended, as the daemon, `/health` and notifications report it. */
export interface DrillStatus {
  /** ISO times. */
  startedAt: string;
  finishedAt: string;
  /** The backup drilled; null when the drill found none or could not read storage. */
  backupId: string | null;
  /**
   * `passed`: it restored to the recorded facts; `failed`: the backup failed its drill (it differs, does
   * not restore, or is damaged); `error`: the drill could not run, which says nothing of the backup.
   */
  result: 'passed' | 'failed' | 'error';
  /** Why it failed: `drill`, `restore`, a verify reason; null otherwise. */
  reason: string | null;
  /** The restore's wall time (the recovery time a user would see); null when it did not restore. */
  restoreMs: number | null;
  /** Items compared, and those that differ. */
  compared: number;
  mismatches: number;
  /** What failed or could not run (secrets removed); null when passed. */
  message: string | null;
}

/**
 * A drill's status for the daemon: from the result of a drill that ran, or the error of one that could
 * not run (its text with secrets already removed).
 */
export function drillStatus(
  outcome: { result: DrillResult } | { error: string; backupId: string | null },
  startedAt: Date,
  finishedAt: Date,
): DrillStatus {
  const times = { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString() };
  if ('error' in outcome) {
    return {
      ...times,
      backupId: outcome.backupId,
      result: 'error',
      reason: null,
      restoreMs: null,
      compared: 0,
      mismatches: 0,
      message: outcome.error,
    };
  }
  const r = outcome.result;
  return {
    ...times,
    backupId: r.id,
    result: r.ok ? 'passed' : 'failed',
    reason: r.reason,
    restoreMs: r.restoreMs,
    compared: r.compared,
    mismatches: r.differences.length,
    message: r.message,
  };
}

/**
 * The status of a drill recorded in storage (a daemon restarted since: a restart is not a reset). The
 * record says when the drill ended, not when it started: both times are that.
 */
export function drillStatusOfRecord(record: DrillRecord): DrillStatus {
  return {
    startedAt: record.drilledAt,
    finishedAt: record.drilledAt,
    backupId: record.id,
    result: record.ok ? 'passed' : 'failed',
    reason: record.reason,
    restoreMs: record.restoreMs,
    compared: record.compared,
    mismatches: record.differenceCount,
    message: record.message,
  };
}

/** Keeps a drill record small whatever a broken backup restores to: the rest is counted, not listed. */
export const MAX_RECORDED_DIFFERENCES = 100;

/** Drills one backup and records the result beside its manifest (best effort). Throws: see above. */
export async function drillBackup(stored: Manifest, deps: DrillDeps): Promise<DrillResult> {
  const { signal } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const manifest = await openManifest(stored, deps.decrypt);
  deps.onPhase?.('place');
  const place = await deps.openPlace(manifest, signal);
  const result: DrillResult = {
    id: manifest.id,
    target: manifest.target,
    ok: false,
    reason: null,
    message: null,
    place: place.description,
    restoreMs: null,
    compared: 0,
    differences: [],
    expired: [],
    note: null,
  };
  try {
    Object.assign(
      result,
      isBackupSet(manifest)
        ? await drillSet(place, manifest, deps, clock)
        : await drillDump(place, manifest, deps, clock),
    );
  } finally {
    deps.onPhase?.('cleanup');
    try {
      await place.release();
    } catch (err) {
      result.cleanupError = errorMessage(err);
    }
  }
  await record(result, manifest.encryption !== null, deps);
  return result;
}

/**
 * Records the result beside the backup. An encrypted backup's record names no table, count or tool
 * output (catalog/records.ts recordableMessage): only whether it passed, why not, and how many items.
 */
async function record(result: DrillResult, encrypted: boolean, deps: DrillDeps): Promise<void> {
  const entry: DrillRecord = {
    id: result.id,
    ok: result.ok,
    reason: result.reason,
    message: recordableMessage(encrypted, result.reason, result.message),
    drilledAt: (deps.now?.() ?? new Date()).toISOString(),
    restoreMs: result.restoreMs,
    compared: encrypted ? 0 : result.compared,
    differences: encrypted ? [] : result.differences.slice(0, MAX_RECORDED_DIFFERENCES),
    differenceCount: result.differences.length,
    place: result.place,
    datasaverVersion: DATASAVER_VERSION,
  };
  const failed = await writeRecord(deps.storage, drillKey(result.target, result.id), entry, deps.signal);
  if (failed !== undefined) result.recordError = failed;
}
