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
 * A whole-server backup set (catalog/parts.ts) is checked part by part: the checksum pass over every
 * object first, then the structure pass over each (a database's dump through `Engine.inspect`, the
 * globals script through `ServerSet.inspectGlobals`); a failure names its part (`database shop: …`,
 * `globals: …`) and the backup fails as one.
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
import { type BackupPart, backupParts, isBackupSet } from '../catalog/parts.ts';
import { recordableMessage, writeRecord } from '../catalog/records.ts';
import { DECRYPTION_SETTINGS, openManifest } from '../catalog/sealed.ts';
import type { DumpInspection, Engine, InspectOptions } from '../engines/engine.ts';
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
  UsageError,
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
  /**
   * Objects in the dump's table of contents (tables, views, functions, data...); of a set, summed over
   * its parts (the globals' roles and tablespaces, every database's entries).
   */
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
 * Checks size and sha256 of every stored object of a backup (checkStoredObject): a set's parts one after
 * the other, progress counted over them all. Throws VerifyError naming the part that failed.
 */
export async function checkStoredObjects(
  manifest: Manifest,
  deps: Pick<VerifyDeps, 'storage' | 'signal' | 'onProgress'>,
): Promise<void> {
  await forEachPart(manifest, deps.onProgress, (part, onProgress) =>
    checkStoredObject(part.manifest, { ...deps, onProgress }),
  );
}

/**
 * Runs `check` on every part of a backup in order, a failure named by its part (`inPart`), with progress
 * counted over the whole backup: each part's bytes after those of the parts before it.
 */
async function forEachPart<T>(
  manifest: Manifest,
  onProgress: VerifyDeps['onProgress'],
  check: (part: BackupPart, onProgress: NonNullable<VerifyDeps['onProgress']>) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  let done = 0;
  for (const part of backupParts(manifest)) {
    const before = done;
    results.push(await inPart(part, () => check(part, (pass, n) => onProgress?.(pass, before + n))));
    done += part.manifest.storedBytes;
  }
  return results;
}

/**
 * How messages name a part of a set: `globals`, `database shop`, or `part db2` for a database of an
 * encrypted set, whose name is sealed: the messages of verify and drill records, stored in clear, must
 * not carry it. Undefined for a one-dump backup's only part.
 */
export function partLabel(part: BackupPart): string | undefined {
  if (part.part === undefined) return undefined;
  if (part.kind === 'globals') return part.part;
  const sealed = part.manifest.encryption !== null || part.manifest.database === null;
  return sealed ? `part ${part.part}` : `database ${part.manifest.database}`;
}

/** Runs `check` on one part; a VerifyError it throws names the part (`database shop: …`). */
export async function inPart<T>(part: BackupPart, check: () => Promise<T>): Promise<T> {
  const label = partLabel(part);
  try {
    return await check();
  } catch (err) {
    if (label === undefined || !(err instanceof VerifyError)) throw err;
    throw new VerifyError(err.backupId, err.reason, `${label}: ${err.detail}`, {
      hint: err.hint,
      cause: err,
    });
  }
}

/**
 * Decrypts (when encrypted, with `deps.decrypt`) and decompresses the whole object, and checks the dump's
 * structure. Throws VerifyError.
 */
export async function checkDumpStructure(
  manifest: Manifest,
  deps: VerifyDeps,
  inspect: Inspect = (source, options) => deps.engine.inspect(source, manifest.format, options),
): Promise<number> {
  const { storage, signal } = deps;
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
    entries = (await inspect(chain, { signal, dumpToolVersion: manifest.toolVersion })).entries.length;
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

/** Reads a whole raw part and returns its table of contents (Engine.inspect, ServerSet.inspectGlobals). */
type Inspect = (source: AsyncIterable<Buffer>, options: InspectOptions) => Promise<DumpInspection>;

/** The structure pass over every part of an opened backup: the entries of all of them. */
async function checkStructure(manifest: Manifest, deps: VerifyDeps): Promise<number> {
  const entries = await forEachPart(manifest, deps.onProgress, (part, onProgress) => {
    const inspect: Inspect | undefined =
      part.kind === 'globals'
        ? (source, options) => deps.engine.serverSet!.inspectGlobals(source, options)
        : undefined;
    return checkDumpStructure(part.manifest, { ...deps, onProgress }, inspect);
  });
  return entries.reduce((n, e) => n + e, 0);
}

/**
 * A set's globals are read by the engine's server-set support: without it (a set's manifest naming an
 * engine that has none) the backup cannot be checked here, which is no finding about the backup.
 */
function assertReadable(manifest: Manifest, engine: Engine): void {
  if (!isBackupSet(manifest) || engine.serverSet !== undefined) return;
  throw new UsageError(
    `backup ${manifest.id} is a whole-server set, and the ${engine.descriptor.label} engine has no whole-server backups to read it with`,
    { hint: 'the manifest names the wrong engine: it was altered, or written by another program' },
  );
}

/**
 * Verifies one backup and records the result as `<id>.verify.json` beside its manifest (best effort).
 * Returns the result instead of throwing for verification failures, so `verify all` can go on; errors
 * reading storage throw.
 */
export async function verifyBackup(manifest: Manifest, deps: VerifyDeps): Promise<VerifyResult> {
  assertReadable(manifest, deps.engine);
  let result: VerifyResult;
  try {
    await checkStoredObjects(manifest, deps);
    if (manifest.encryption && deps.decrypt === undefined) {
      result = { ...passed(manifest.id, 0), note: CIPHERTEXT_ONLY };
    } else {
      const opened = await openManifest(manifest, deps.decrypt);
      result = passed(manifest.id, await checkStructure(opened, deps));
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
