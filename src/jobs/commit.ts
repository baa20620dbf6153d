/**
 * The commit of a backup in one destination: the data object's size checked, the lease confirmed, the
 * manifest written last (`ifAbsent`). A backup exists in a destination exactly when its manifest does, so
 * every failure here removes the data object again, unless the manifest may be there after all.
 */
import { MAX_RECORD_BYTES, readRecord } from '../catalog/catalog.ts';
import { manifestKey } from '../catalog/layout.ts';
import { type Manifest, serializeManifest } from '../catalog/manifest.ts';
import { parseManifest } from '../catalog/manifest-read.ts';
import { type VerifyKey, verifyManifestSignature } from '../catalog/signature.ts';
import { type ConfirmLease, LeaseLostError } from '../lease/held.ts';
import type { ObjectInfo, StorageBackend } from '../storage/backend.ts';
import { BackupError, errorMessage, isAbortError, StorageError } from '../util/errors.ts';

/**
 * Checks the data object in one destination and writes the manifest there: the commit. On failure the
 * data object is removed, so the destination holds nothing of this backup. With `confirmLease`, the
 * manifest is written only after the run's lease there reads back as its own.
 */
export async function commit(
  storage: StorageBackend,
  manifest: Manifest,
  signal: AbortSignal | undefined,
  confirmLease?: ConfirmLease,
): Promise<void> {
  const objectKey = manifest.object;
  const info = await storage.stat(objectKey, { signal }).catch((err: unknown) => err);
  if (info instanceof Error || (info as ObjectInfo | undefined)?.size !== manifest.storedBytes) {
    await storage.delete(objectKey).catch(() => {});
    if (info instanceof Error) throw info;
    throw new StorageError(
      `${storage.description}: ${objectKey} holds ${(info as ObjectInfo | undefined)?.size ?? 'no'} bytes after writing ${manifest.storedBytes}; the backup was not committed there`,
    );
  }
  const key = manifestKey(manifest.target, manifest.id);
  try {
    await confirmLease?.(storage);
  } catch (err) {
    // Not this run's target any more: its data is left for prune, as a crash would leave it.
    if (err instanceof LeaseLostError) throw err;
    await storage.delete(objectKey).catch(() => {});
    throw err;
  }
  try {
    await storage.put(key, [serializeManifest(manifest)], { signal, ifAbsent: true });
  } catch (err) {
    // A write whose answer was lost may have landed (a retry then meets our own manifest), and a
    // manifest that is there, ours or not, must never be left pointing at deleted data.
    const there = await existingManifest(storage, key, signal);
    if (there === 'present' && (await sameManifest(storage, key, manifest, signal))) return;
    if (there === 'absent') await storage.delete(objectKey).catch(() => {});
    if (isAbortError(err)) throw err;
    throw new StorageError(
      `${storage.description}: cannot write the manifest of ${manifest.id}: ${errorMessage(err)}; the backup was not committed there`,
      { cause: err },
    );
  }
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
      hint: 'a database comment, setting or role name datasaver cannot record is the likely cause: report it with this message',
    },
  );
}
