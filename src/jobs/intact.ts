/**
 * Picking the backup a restore can trust: the first of some candidates (newest first) that is intact.
 * Intact means its last recorded verify and restore drill did not fail, and its data objects (a set's
 * every part) are there with the recorded size and sha256 (the checksum pass of verify.ts, which reads
 * the stored bytes and writes nothing).
 * A candidate that is not is passed over with the reason; nothing here touches a database.
 */

import type { StoredBackup } from '../catalog/catalog.ts';
import { recordedFailure } from '../catalog/records.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { VerifyError } from '../util/errors.ts';
import { checkStoredObjects } from './verify.ts';

export interface PassedOver {
  id: string;
  /** The storage the copy passed over is in (the same id may be intact in another). */
  storage: string;
  reason: string;
}

export interface IntactPick {
  /** The first intact candidate, checksum pass done; absent when none was. */
  chosen?: StoredBackup;
  /** The candidates before it, and why each was not taken. */
  passedOver: PassedOver[];
}

export async function pickIntact(
  candidates: StoredBackup[],
  deps: {
    signal?: AbortSignal | undefined;
    /** A candidate's checksum pass starts. */
    onChecking?: ((candidate: StoredBackup) => void) | undefined;
    /** Stored bytes of the candidate being checked read so far. */
    onProgress?: ((storedBytes: number) => void) | undefined;
  },
): Promise<IntactPick> {
  const passedOver: PassedOver[] = [];
  for (const candidate of candidates) {
    const { manifest, storage } = candidate;
    const skip = (reason: string) =>
      passedOver.push({ id: manifest.id, storage: storage.description, reason });
    const failed = await failedCheck(storage, manifest.target, manifest.id, deps.signal);
    if (failed !== undefined) {
      skip(failed);
      continue;
    }
    deps.onChecking?.(candidate);
    try {
      await checkStoredObjects(manifest, {
        storage,
        signal: deps.signal,
        onProgress: (_pass, n) => deps.onProgress?.(n),
      });
    } catch (err) {
      // Damage passes over; storage that cannot be read (a network error) is no finding about the
      // backup, and must not make an older one restore in its place.
      if (!(err instanceof VerifyError)) throw err;
      skip(`${err.reason}: ${err.detail}`);
      continue;
    }
    return { chosen: candidate, passedOver };
  }
  return { passedOver };
}

/**
 * Why the backup's recorded verify or drill failed, or undefined when it has none, passing ones, or ones
 * that cannot be read: the checksum pass that follows decides then (a record is storage's word, as
 * untrusted as the rest, and only ever makes `latest` more careful).
 */
async function failedCheck(
  storage: StorageBackend,
  target: string,
  id: string,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const size = async (key: string) => (await storage.stat(key, { signal }))?.size;
  return (await recordedFailure(storage, target, id, size, signal)).failed;
}
