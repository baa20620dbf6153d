/**
 * The commit of a backup in one destination: every data object's size checked (a backup set has
 * several), the lease confirmed, the manifest written last (`ifAbsent`). A backup exists in a destination
 * exactly when its manifest does, so every failure here removes its data objects again, unless the
 * manifest may be there after all.
 */
import { MAX_RECORD_BYTES, readRecord } from '../catalog/catalog.ts';
import { manifestKey } from '../catalog/layout.ts';
import { type Manifest, serializeManifest } from '../catalog/manifest.ts';
import { parseManifest } from '../catalog/manifest-read.ts';
import { isBackupSet, storedObjects } from '../catalog/parts.ts';
import { sealManifest } from '../catalog/sealed.ts';
import { signManifest, type VerifyKey, verifyManifestSignature } from '../catalog/signature.ts';
import type { TargetConfig } from '../config/types.ts';
import { type ConfirmLease, LeaseLostError } from '../lease/held.ts';
import { effectiveLevel } from '../pipeline/compression.ts';
import type { ObjectInfo, StorageBackend } from '../storage/backend.ts';
import { BackupError, errorMessage, isAbortError, StorageError } from '../util/errors.ts';
import { failpoint } from '../util/failpoint.ts';

/**
 * Checks the data objects in one destination and writes the manifest there: the commit. On failure the
 * data objects are removed, so the destination holds nothing of this backup. With `confirmLease`, the
 * manifest is written only after the run's lease there reads back as its own.
 */
export async function commit(
  storage: StorageBackend,
  manifest: Manifest,
  signal: AbortSignal | undefined,
  confirmLease?: ConfirmLease,
): Promise<void> {
  const objects = storedObjects(manifest);
  const removeData = () => deleteObjects(storage, manifest);
  for (const { object, storedBytes } of objects) {
    const info: ObjectInfo | undefined | Error = await storage
      .stat(object, { signal })
      .catch((err: unknown) => (err instanceof Error ? err : new StorageError(errorMessage(err))));
    if (info instanceof Error || info?.size !== storedBytes) {
      await removeData();
      if (info instanceof Error) throw info;
      throw new StorageError(
        `${storage.description}: ${object} holds ${info?.size ?? 'no'} bytes after writing ${storedBytes}; the backup was not committed there`,
      );
    }
  }
  const key = manifestKey(manifest.target, manifest.id);
  try {
    await confirmLease?.(storage);
  } catch (err) {
    // Not this run's target any more: its data is left for prune, as a crash would leave it.
    if (err instanceof LeaseLostError) throw err;
    await removeData();
    throw err;
  }
  try {
    await storage.put(key, [serializeManifest(manifest)], { signal, ifAbsent: true });
  } catch (err) {
    // A write whose answer was lost may have landed (a retry then meets our own manifest), and a
    // manifest that is there, ours or not, must never be left pointing at deleted data.
    const there = await existingManifest(storage, key, signal);
    if (there === 'present' && (await sameManifest(storage, key, manifest, signal))) return;
    if (there === 'absent') await removeData();
    if (isAbortError(err)) throw err;
    throw new StorageError(
      `${storage.description}: cannot write the manifest of ${manifest.id}: ${errorMessage(err)}; the backup was not committed there`,
      { cause: err },
    );
  }
}

/** Deletes every data object of `manifest` from `storage`, ignoring failures (prune collects them). */
export async function deleteObjects(storage: StorageBackend, manifest: Manifest): Promise<void> {
  await Promise.all(storedObjects(manifest).map((o) => storage.delete(o.object).catch(() => {})));
}

/** What a backup's manifest says of the run that took it, whatever it holds. */
export type RunFields = Pick<
  Manifest,
  | 'id'
  | 'target'
  | 'engine'
  | 'status'
  | 'createdAt'
  | 'finishedAt'
  | 'durationMs'
  | 'labels'
  | 'format'
  | 'schemaOnly'
  | 'compression'
  | 'compressionLevel'
  | 'encryption'
>;

/**
 * The manifest fields of a run: its id, times, labels, format (the request's, else the target's) and how
 * it is stored (`encryption` null: sealing fills it in).
 */
export function runFields(
  request: {
    target: Pick<TargetConfig, 'name' | 'compression' | 'format' | 'schemaOnly'>;
    labels: string[];
    format?: string | undefined;
    schemaOnly?: boolean | undefined;
  },
  engine: string,
  id: string,
  time: { startedAt: Date; finishedAt: Date },
): RunFields {
  const { startedAt, finishedAt } = time;
  const { target } = request;
  return {
    id,
    target: target.name,
    engine,
    status: 'success',
    createdAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    labels: request.labels,
    format: request.format ?? target.format,
    schemaOnly: request.schemaOnly ?? target.schemaOnly,
    compression: target.compression.algorithm,
    compressionLevel: effectiveLevel(target.compression),
    encryption: null,
  };
}

/** Where a backup was committed, and where not and why. */
export interface CommitOutcome {
  /** Destinations that hold the committed backup. */
  committed: StorageBackend[];
  /** Destinations that failed, and why; the backup is committed on the others. */
  failures: { destination: StorageBackend; error: unknown }[];
}

/**
 * Seals (when the target encrypts), signs (when it has a signing key) and checks that the manifest reads
 * back, then commits it in every destination whose `uploads` entry is undefined (it holds every data
 * object). Throws when the lease was lost anywhere, or when no destination committed.
 */
export async function commitBackup(
  clear: Manifest,
  target: Pick<TargetConfig, 'encryption' | 'signing'>,
  uploads: (unknown | undefined)[],
  deps: {
    destinations: StorageBackend[];
    signal?: AbortSignal | undefined;
    confirmLease?: ConfirmLease | undefined;
  },
): Promise<CommitOutcome & { manifest: Manifest }> {
  const { destinations, signal } = deps;
  // Sealed first (the contents encrypted), then signed over the manifest as it will be stored.
  const { encrypt } = target.encryption;
  const { signingKey } = target.signing;
  let manifest: Manifest;
  try {
    const sealed = encrypt ? await sealManifest(clear, encrypt) : clear;
    manifest = signingKey ? signManifest(sealed, signingKey) : sealed;
    assertReadsBack(manifest, signingKey?.verifyKey);
  } catch (err) {
    // Nothing can commit what was stored: removed now, not left for prune's grace period.
    await Promise.all(
      destinations.map((d, i) => (uploads[i] === undefined ? deleteObjects(d, clear) : undefined)),
    );
    throw err;
  }
  await failpoint('backup.before-manifest');
  const outcomes = await Promise.all(
    destinations.map(async (storage, i) => {
      if (uploads[i] !== undefined) return uploads[i];
      try {
        await commit(storage, manifest, signal, deps.confirmLease);
        return undefined;
      } catch (err) {
        return err;
      }
    }),
  );
  signal?.throwIfAborted();
  // Another run holds the target now: this one stops, whatever it committed before it found out.
  const lost = outcomes.find((o) => o instanceof LeaseLostError);
  if (lost) throw lost;
  const committed = destinations.filter((_, i) => outcomes[i] === undefined);
  const failures = destinations
    .map((destination, i) => ({ destination, error: outcomes[i] }))
    .filter((f) => f.error !== undefined);
  if (committed.length === 0) throw failures[0]!.error;
  return { manifest, committed, failures };
}

/** Whether a manifest is stored under `key`; 'unknown' when storage cannot say. */
async function existingManifest(
  storage: StorageBackend,
  key: string,
  signal: AbortSignal | undefined,
): Promise<'present' | 'absent' | 'unknown'> {
  try {
    return (await storage.stat(key, { signal })) ? 'present' : 'absent';
  } catch {
    return 'unknown';
  }
}

/** True when the manifest under `key` describes exactly this backup (same id, object and sha256). */
async function sameManifest(
  storage: StorageBackend,
  key: string,
  manifest: Manifest,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  try {
    const found = parseManifest(await readRecord(storage, key, { signal }));
    return (
      'manifest' in found &&
      found.manifest.id === manifest.id &&
      found.manifest.object === manifest.object &&
      found.manifest.sha256 === manifest.sha256
    );
  } catch {
    return false;
  }
}

/**
 * A manifest that list, restore and prune would skip as unreadable (or, when signed, as badly signed by
 * `signedBy`) must never be committed: that backup would count as a success nobody can use. Throws
 * BackupError naming what would not read back.
 */
export function assertReadsBack(manifest: Manifest, signedBy?: VerifyKey): void {
  const bytes = serializeManifest(manifest);
  const problem =
    bytes.length > MAX_RECORD_BYTES
      ? `it is ${bytes.length} bytes, more than the ${MAX_RECORD_BYTES} a manifest may have`
      : (() => {
          const parsed = parseManifest(bytes.toString('utf8'));
          if ('error' in parsed) return parsed.error;
          const check = signedBy && verifyManifestSignature(parsed.json, [signedBy]);
          return check && check.status !== 'ok' ? `its signature does not check: ${check.reason}` : undefined;
        })();
  if (problem === undefined) return;
  throw new BackupError(
    `the manifest of ${manifest.id} would not read back (${problem}); nothing was committed`,
    {
      hint:
        bytes.length > MAX_RECORD_BYTES && isBackupSet(manifest)
          ? "the facts of the server's every table do not fit in one manifest: back up its biggest databases as targets of their own and leave them out of the set (DATASAVER_DB_EXCLUDE)"
          : 'a database comment, setting or role name datasaver cannot record is the likely cause: report it with this message',
    },
  );
}
