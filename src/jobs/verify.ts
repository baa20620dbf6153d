/**
 * verify: proves a stored backup is intact and usable, and names the reason when it is not:
 *   missing    - the data object is gone
 *   size       - stored size, or decompressed size, differs from the manifest (a stored object that
 *                decompresses past the manifest's size is stopped there: a decompression bomb)
 *   checksum   - sha256 of the stored bytes differs from the manifest
 *   decrypt    - an encrypted object's ciphertext fails authentication (tampered, truncated)
 *   decompress - the compressed stream is damaged
 *   structure  - the dump itself is truncated or malformed (pg_restore / completion marker)
 * The checksum pass reads only the stored bytes; the decompress + structure pass runs only when it passed,
 * so a flipped byte is always reported as a checksum failure, the most precise reason.
 *
 * An encrypted backup is opened with the key in VerifyDeps.decrypt (its manifest's sealed part first:
 * catalog/sealed.ts), then decrypted on the way to the decompressor. Without a key only the checksum pass
 * runs (size and sha256 of the ciphertext), and the result says what was not checked. A key that opens
 * none of the backup's recipients throws a ConfigError and records nothing: it is no finding about the
 * backup.
 */
import { finished } from 'node:stream/promises';
import { verifyKey } from '../catalog/layout.ts';
import type { Manifest, VerifyRecord } from '../catalog/manifest.ts';
import { recordableMessage, writeRecord } from '../catalog/records.ts';
import { DECRYPTION_SETTINGS, openManifest } from '../catalog/sealed.ts';
import type { Engine } from '../engines/engine.ts';
import type { DecryptionKey } from '../pipeline/encryption.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { Meter } from '../pipeline/meter.ts';
import {
  ByteLimit,
  chain,
  decompressesPast,
  decryptStage,
  rawDumpStream,
  StoredCheck,
} from '../pipeline/read.ts';
import type { StorageBackend } from '../storage/backend.ts';
import {
  errorMessage,
  StorageError,
  ToolMissingError,
  VerifyError,
  type VerifyReason,
} from '../util/errors.ts';
import { DATASAVER_VERSION } from '../util/version.ts';

export interface VerifyDeps {
  storage: StorageBackend;
  engine: Engine;
  signal?: AbortSignal | undefined;
  /** Stored bytes read so far, per pass. */
  onProgress?: ((pass: 'checksum' | 'structure', bytes: number) => void) | undefined;
  now?: () => Date;
  /**
   * The key that opens encrypted backups (the target's encryption settings' `decrypt`). Without it an
   * encrypted backup gets the checksum pass only, and a note saying so.
   */
  decrypt?: DecryptionKey | undefined;
}

export interface VerifyResult {
  id: string;
  ok: boolean;
  reason: VerifyReason | null;
  message: string | null;
  /** Objects in the dump's table of contents (tables, views, functions, data...). */
  entries: number;
  /**
   * What was not checked, and which setting would check it: an encrypted backup verified without its
   * key passes on the size and sha256 of its ciphertext alone. Null when everything was checked.
   */
  note: string | null;
  /** Why the result could not be recorded in storage (read-only storage, say); the result stands. */
  recordError?: string;
}

/** Checks size and sha256 of the stored object against the manifest. Throws VerifyError. */
export async function checkStoredObject(
  manifest: Manifest,
  deps: Pick<VerifyDeps, 'storage' | 'signal' | 'onProgress'>,
): Promise<void> {
  const { storage, signal } = deps;
  const info = await storage.stat(manifest.object, { signal });
  if (!info)
    throw new VerifyError(
      manifest.id,
      'missing',
      `data object ${manifest.object} is missing from ${storage.description}`,
    );
  if (info.size !== manifest.storedBytes) {
    throw new VerifyError(
      manifest.id,
      'size',
      `${manifest.object} holds ${info.size} bytes, the manifest says ${manifest.storedBytes}`,
    );
  }
  const check = new StoredCheck(manifest, {
    memory: new MemoryGovernor(),
    onStoredBytes: (n) => deps.onProgress?.('checksum', n),
  });
  const source = await storage.get(manifest.object, { signal });
  const checked = chain(source, check);
  checked.resume();
  try {
    await finished(checked);
  } catch (err) {
    // The object's bytes differ from the manifest (more of them than it records, or another hash).
    if (err instanceof VerifyError || signal?.aborted) throw err;
    throw new StorageError(
      `cannot read ${manifest.object} from ${storage.description}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/**
 * Decrypts (when encrypted, with `deps.decrypt`) and decompresses the whole object, and checks the dump's
 * structure. Throws VerifyError.
 */
export async function checkDumpStructure(manifest: Manifest, deps: VerifyDeps): Promise<number> {
  const { storage, engine, signal } = deps;
  const stored = new Meter({
    memory: new MemoryGovernor(),
    onBytes: (n) => deps.onProgress?.('structure', n),
  });
  // A decompression bomb stops at sizeBytes + 1, long before it could fill memory or a disk.
  const raw = new ByteLimit(manifest.sizeBytes, { tooMany: () => decompressesPast(manifest) });
  const source = await storage.get(manifest.object, { signal });
  const decrypt = manifest.encryption && deps.decrypt ? decryptStage(manifest.id, deps.decrypt) : undefined;
  const chain = rawDumpStream(source, manifest.compression, { stored, decrypt, raw });
  let decompressFailed: unknown;
  chain.on('error', (err) => {
    decompressFailed ??= err;
  });
  let entries: number;
  try {
    entries = (
      await engine.inspect(chain, manifest.format, { signal, dumpToolVersion: manifest.toolVersion })
    ).entries.length;
  } catch (err) {
    chain.destroy(); // a reader that refused to start read nothing: release the object
    if (err instanceof ToolMissingError || signal?.aborted) throw err;
    if (decompressFailed instanceof VerifyError) throw decompressFailed;
    if (decompressFailed) {
      throw new VerifyError(
        manifest.id,
        'decompress',
        `cannot decompress ${manifest.compression} data: ${errorMessage(decompressFailed)}`,
        { cause: decompressFailed },
      );
    }
    throw new VerifyError(manifest.id, 'structure', errorMessage(err), { cause: err });
  }
  if (raw.bytes !== manifest.sizeBytes) {
    throw new VerifyError(
      manifest.id,
      'size',
      `the dump decompresses to ${raw.bytes} bytes, the manifest says ${manifest.sizeBytes}`,
    );
  }
  return entries;
}

/**
 * Verifies one backup and records the result as `<id>.verify.json` beside its manifest (best effort).
 * Returns the result instead of throwing for verification failures, so `verify all` can go on; errors
 * reading storage throw.
 */
export async function verifyBackup(manifest: Manifest, deps: VerifyDeps): Promise<VerifyResult> {
  let result: VerifyResult;
  try {
    await checkStoredObject(manifest, deps);
    if (manifest.encryption && deps.decrypt === undefined) {
      result = { ...passed(manifest.id, 0), note: CIPHERTEXT_ONLY };
    } else {
      const opened = await openManifest(manifest, deps.decrypt);
      result = passed(manifest.id, await checkDumpStructure(opened, deps));
    }
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    result = { ...passed(manifest.id, 0), ok: false, reason: err.reason, message: err.message };
  }
  const record: VerifyRecord = {
    id: manifest.id,
    ok: result.ok,
    reason: result.reason,
    message: recordableMessage(manifest.encryption !== null, result.reason, result.message),
    ...(result.note ? { note: result.note } : {}),
    checkedAt: (deps.now?.() ?? new Date()).toISOString(),
    datasaverVersion: DATASAVER_VERSION,
  };
  const key = verifyKey(manifest.target, manifest.id);
  const failed = await writeRecord(deps.storage, key, record, deps.signal);
  if (failed !== undefined) result.recordError = failed;
  return result;
}

/** What a verify of an encrypted backup without its key leaves unchecked. */
export const CIPHERTEXT_ONLY = `encrypted: checked the size and sha256 of the stored ciphertext only; decryption, decompression and the dump's structure were not checked (set ${DECRYPTION_SETTINGS} to check them)`;

function passed(id: string, entries: number): VerifyResult {
  return { id, ok: true, reason: null, message: null, entries, note: null };
}
