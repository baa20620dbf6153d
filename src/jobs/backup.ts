/**
 * backup: dump -> 1 MB batches -> measure raw bytes -> compress -> encrypt (when the target encrypts) ->
 * sha256 + count stored bytes -> every destination, as one streaming pipeline (memory stays flat whatever the database size; no temp file;
 * the database is dumped once however many destinations there are), then the manifest, last, in each
 * destination that took the whole object. A destination that fails does not stop the others: the backup
 * is committed where it could be, and the failures are returned for the caller to report and retry.
 *
 * Commit rules:
 *   - the data object is written atomically and only once the dump tool has exited 0 with data, because
 *     the dump stream errors before its end when the tool fails, and an empty dump errors in the meter;
 *   - the manifest is written only after the data object is complete and its size checked;
 *   - anything that fails on the way leaves no manifest, so nothing half-done is ever listed or restored.
 *
 * With encryption on, no plaintext byte reaches a destination: the data object is an age file, and the
 * manifest's fields about the contents are sealed to the same key (catalog/sealed.ts) before it is
 * committed.
 */
import { dataExtension, dataKey } from '../catalog/layout.ts';
import { MANIFEST_VERSION, type Manifest } from '../catalog/manifest.ts';
import type { TargetConfig } from '../config/types.ts';
import type { Engine, ServerMembers } from '../engines/engine.ts';
import type { ConfirmLease } from '../lease/held.ts';
import { compressionExtension } from '../pipeline/compression.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ConfigError, StorageError, VerifyError } from '../util/errors.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { runBackupSet } from './backup-set.ts';
import { freeId, streamObject } from './backup-stream.ts';
import { type CommitOutcome, commitBackup, runFields } from './commit.ts';
import { verifyBackup } from './verify.ts';

export interface BackupRequest {
  target: TargetConfig;
  labels: string[];
  /** Overrides of the target's settings for this run. */
  format?: string | undefined;
  schemaOnly?: boolean | undefined;
  /** Verify the backup right after it is committed (checksum, decompress, structure). */
  verify: boolean;
}

export interface BackupDeps {
  engine: Engine;
  /** Where the backup goes, each a full copy from the one dump (local first). */
  destinations: StorageBackend[];
  signal?: AbortSignal | undefined;
  /** Raw dump bytes and stored bytes so far. */
  onProgress?: ((raw: number, stored: number) => void) | undefined;
  now?: () => Date;
  /** Checks the target's lease in a destination just before its manifest is written (lease/lease.ts). */
  confirmLease?: ConfirmLease | undefined;
}

export interface BackupResult extends CommitOutcome {
  /** As committed (sealed and signed when the target says so); of a whole-server backup, a set. */
  manifest: Manifest;
  /** Set when verification was requested and passed. */
  verified: boolean;
  /**
   * What the verification did not check (an encrypted backup verified without the key: its ciphertext
   * only; jobs/verify.ts VerifyResult.note); absent when it checked everything or did not run.
   */
  verifyNote?: string | undefined;
  /**
   * Of a whole-server set: what it holds, in clear for the output even when the manifest is sealed
   * (databases dumped, excluded, unreadable and why, whether role passwords were read). Absent for one dump.
   */
  members?: ServerMembers | undefined;
}

/**
 * Takes one backup of the target and commits it in every destination that took all of it; verifies it
 * when asked. A target whose engine makes whole-server sets (Engine.serverSet.wholeServer) gets a set
 * (jobs/backup-set.ts), any other one dump.
 */
export async function runBackup(request: BackupRequest, deps: BackupDeps): Promise<BackupResult> {
  const { target } = request;
  const { engine, destinations, signal } = deps;
  if (destinations.length === 0) throw new StorageError(`no destination is configured for ${target.name}`);
  assertSignsWhatItVerifies(target);
  const taken: Omit<BackupResult, 'verified'> = engine.serverSet?.wholeServer
    ? await runBackupSet(request, deps)
    : await backupOneDump(request, deps);
  const { manifest, committed } = taken;

  if (!request.verify) return { ...taken, verified: false };
  const result = await verifyBackup(manifest, {
    storage: committed[0]!,
    engine,
    signal,
    // Without the target's decryption key (a sidecar holding recipients only), the ciphertext's checksum.
    decrypt: target.encryption.decrypt,
  });
  if (!result.ok) {
    throw new VerifyError(
      manifest.id,
      result.reason ?? 'structure',
      `${result.message} (the backup is stored but failed verification)`,
    );
  }
  return { ...taken, verified: true, verifyNote: result.note ?? undefined };
}

/** A backup of one dump: one data object, then its manifest. */
async function backupOneDump(
  request: BackupRequest,
  deps: BackupDeps,
): Promise<CommitOutcome & { manifest: Manifest }> {
  const { target } = request;
  const { engine, destinations, signal } = deps;
  const now = deps.now ?? (() => new Date());
  const format = request.format ?? target.format;
  const schemaOnly = request.schemaOnly ?? target.schemaOnly;

  const [server, liveFacts] = await Promise.all([engine.preflight({ signal }), engine.facts({ signal })]);
  const startedAt = now();
  const extension = dataExtension(
    engine.descriptor.extension(format),
    compressionExtension(target.compression.algorithm),
    target.encryption.encrypt !== undefined,
  );
  const unreachable = new Map<StorageBackend, unknown>();
  const id = await freeId(
    destinations,
    unreachable,
    target.name,
    startedAt,
    (i) => dataKey(target.name, i, extension),
    signal,
  );
  const objectKey = dataKey(target.name, id, extension);
  let facts = liveFacts;
  const dump = await streamObject({
    target,
    destinations,
    unreachable,
    objectKey,
    engineName: engine.descriptor.name,
    label: target.name,
    source: (dumpSignal) =>
      engine.dump({ format, schemaOnly, signal: dumpSignal, onFacts: (f) => (facts = f) }),
    failpoint: true,
    signal,
    onProgress: deps.onProgress,
  });

  const finishedAt = now();
  const clear: Manifest = {
    version: MANIFEST_VERSION,
    ...runFields(request, engine.descriptor.name, id, { startedAt, finishedAt }),
    sizeBytes: dump.rawBytes,
    storedBytes: dump.storedBytes,
    sha256: dump.sha256,
    object: objectKey,
    database: target.connection.database ?? null,
    ...(server.databaseSettings ? { databaseSettings: server.databaseSettings } : {}),
    serverVersion: server.serverVersion,
    toolVersion: server.toolVersion,
    datasaverVersion: DATASAVER_VERSION,
    facts,
  };
  return commitBackup(clear, target, dump.uploads, deps);
}

/**
 * A target with verify keys but no signing key would write unsigned backups that it, and every reader
 * with the same keys, ignores: prune would never remove them and they would never count as a success.
 * Throws ConfigError (exit 2) before anything is dumped.
 */
function assertSignsWhatItVerifies(target: TargetConfig): void {
  if (target.signing.verifyKeys.length === 0 || target.signing.signingKey) return;
  throw new ConfigError(
    `target ${target.name} has verify keys (DATASAVER_VERIFY_KEYS) but no signing key: its backups would be unsigned, and ignored by every reader with those keys`,
    {
      hint: 'give the sidecar its signing key (DATASAVER_SIGNING_KEY_FILE), or set verify keys only where backups are read',
    },
  );
}
