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
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { backupId, dataExtension, dataKey, manifestKey } from '../catalog/layout.ts';
import { MANIFEST_VERSION, type Manifest } from '../catalog/manifest.ts';
import { sealManifest } from '../catalog/sealed.ts';
import { signManifest } from '../catalog/signature.ts';
import type { TargetConfig } from '../config/types.ts';
import type { DatabaseFacts, Engine } from '../engines/engine.ts';
import { type ConfirmLease, LeaseLostError } from '../lease/held.ts';
import { coalesce } from '../pipeline/coalesce.ts';
import { compressionExtension, createCompressor, effectiveLevel } from '../pipeline/compression.ts';
import { encryptStream } from '../pipeline/encryption.ts';
import { fanOut } from '../pipeline/fanout.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { Meter } from '../pipeline/meter.ts';
import type { StorageBackend } from '../storage/backend.ts';
import {
  BackupError,
  ConfigError,
  DatasaverError,
  errorMessage,
  isAbortError,
  StorageError,
  VerifyError,
} from '../util/errors.ts';
import { failpoint, failpointAfterFirst } from '../util/failpoint.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { assertReadsBack, commit } from './commit.ts';
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

export interface BackupResult {
  manifest: Manifest;
  /** Set when verification was requested and passed. */
  verified: boolean;
  /**
   * What the verification did not check (an encrypted backup verified without the key: its ciphertext
   * only; jobs/verify.ts VerifyResult.note); absent when it checked everything or did not run.
   */
  verifyNote?: string | undefined;
  /** Destinations that hold the committed backup. */
  committed: StorageBackend[];
  /** Destinations that failed, and why; the backup is committed on the others. */
  failures: { destination: StorageBackend; error: unknown }[];
}

export async function runBackup(request: BackupRequest, deps: BackupDeps): Promise<BackupResult> {
  const { target } = request;
  const { engine, destinations, signal } = deps;
  if (destinations.length === 0) throw new StorageError(`no destination is configured for ${target.name}`);
  assertSignsWhatItVerifies(target);
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
  const id = await freeId(destinations, unreachable, target.name, startedAt, extension, signal);
  const objectKey = dataKey(target.name, id, extension);
  const dump = await streamDump({ ...deps, target, format, schemaOnly, objectKey, unreachable, liveFacts });

  const finishedAt = now();
  const clear: Manifest = {
    version: MANIFEST_VERSION,
    id,
    target: target.name,
    engine: engine.descriptor.name,
    status: 'success',
    createdAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    labels: request.labels,
    format,
    schemaOnly,
    compression: target.compression.algorithm,
    compressionLevel: effectiveLevel(target.compression),
    encryption: null,
    sizeBytes: dump.rawBytes,
    storedBytes: dump.storedBytes,
    sha256: dump.sha256,
    object: objectKey,
    database: target.connection.database ?? null,
    ...(server.databaseSettings ? { databaseSettings: server.databaseSettings } : {}),
    serverVersion: server.serverVersion,
    toolVersion: server.toolVersion,
    datasaverVersion: DATASAVER_VERSION,
    facts: dump.facts,
  };
  // Sealed first (the contents encrypted), then signed over the manifest as it will be stored.
  const { encrypt } = target.encryption;
  const sealed = encrypt ? await sealManifest(clear, encrypt) : clear;
  const { signingKey } = target.signing;
  const manifest = signingKey ? signManifest(sealed, signingKey) : sealed;
  assertReadsBack(manifest, signingKey?.verifyKey);
  await failpoint('backup.before-manifest');
  const { committed, failures } = await commitEverywhere(manifest, dump.uploads, deps);

  if (!request.verify) return { manifest, verified: false, committed, failures };
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
  return { manifest, verified: true, verifyNote: result.note ?? undefined, committed, failures };
}

interface StreamRequest extends BackupDeps {
  target: TargetConfig;
  format: string;
  schemaOnly: boolean;
  objectKey: string;
  /** Destinations that could not be reached when the id was chosen, and why; they get no upload. */
  unreachable: Map<StorageBackend, unknown>;
  /** Facts read from the live database before the dump. */
  liveFacts: DatabaseFacts;
}

interface StreamedDump {
  rawBytes: number;
  storedBytes: number;
  sha256: string;
  /** The live facts, or the counts the engine read from the dump's own copy, which replace them. */
  facts: DatabaseFacts;
  /** Per destination (in order): undefined when it holds the whole data object, else why not. */
  uploads: (unknown | undefined)[];
}

/**
 * The one streaming pipeline: dump -> batches -> raw meter -> compressor -> stored meter -> every
 * reachable destination's `put` of `objectKey`. Throws when the dump fails or no destination took the
 * object, after deleting what this run wrote; a destination failing alone is recorded in `uploads`.
 */
async function streamDump(request: StreamRequest): Promise<StreamedDump> {
  const { engine, destinations, signal, target, objectKey, unreachable } = request;
  const live = destinations.filter((d) => !unreachable.has(d));
  let facts = request.liveFacts;
  const raw = new Meter({
    memory: new MemoryGovernor(),
    onBytes: (n) => request.onProgress?.(n, stored.bytes),
    onEmpty: () =>
      new BackupError(`${engine.descriptor.name} dump of ${target.name} produced no data`, {
        hint: 'the backup was not committed; check the database and the dump tool',
      }),
  });
  const stored = new Meter({ hash: true });
  const compressor = createCompressor(target.compression) ?? new PassThrough();
  // Any stage failing stops the dump at once: without this, a storage error would wait for pg_dump to
  // produce more output (or forever, if pg_dump waits on a lock) before the pipeline could settle.
  const stopDump = new AbortController();
  const dumpSignal = signal ? AbortSignal.any([signal, stopDump.signal]) : stopDump.signal;
  for (const stage of [raw, compressor, stored]) stage.once('error', () => stopDump.abort());
  const { encrypt } = target.encryption;
  // Between the compressor and the stored meter: the sha256 and size a manifest records are of what is
  // stored, the ciphertext, so verify without the key still checks every stored byte.
  const encryptor = encrypt
    ? async function* (source: AsyncIterable<Buffer>) {
        try {
          yield* encryptStream(source, encrypt);
        } catch (err) {
          stopDump.abort();
          throw err;
        }
      }
    : new PassThrough();
  const written = destinations.map(() => false);
  const uploads: (unknown | undefined)[] = destinations.map((d) => unreachable.get(d));
  const writerErrors: unknown[] = [];
  const writers = live.map((storage) => async (body: AsyncIterable<Buffer>) => {
    const i = destinations.indexOf(storage);
    try {
      await storage.put(objectKey, body, { signal, ifAbsent: true });
      written[i] = true;
    } catch (err) {
      uploads[i] = err;
      writerErrors.push(err);
      // Every destination gone: stop the dump now, not when it next produces output.
      if (writerErrors.length === live.length) stopDump.abort();
      throw err;
    }
  });
  try {
    const dump = engine.dump({
      format: request.format,
      schemaOnly: request.schemaOnly,
      signal: dumpSignal,
      onFacts: (f) => (facts = f),
    });
    await pipeline(
      // Two batches queued at most: when compression is the slow stage, memory stays at a few MB.
      Readable.from(failpointAfterFirst('backup.dumping', coalesce(dump)), {
        objectMode: true,
        highWaterMark: 2,
      }),
      raw,
      compressor,
      encryptor,
      stored,
      async (body: AsyncIterable<Buffer>) => {
        try {
          // One destination reads the stream directly; several share it, and one failing leaves the others.
          if (writers.length === 1) await writers[0]!(body);
          else await fanOut(body, writers);
        } catch (err) {
          stopDump.abort();
          throw err;
        }
      },
      { signal },
    );
  } catch (err) {
    // Only remove what this run wrote: after a conflict the object under this key is another run's.
    await Promise.all(
      destinations.map((d, i) => (written[i] ? d.delete(objectKey).catch(() => {}) : undefined)),
    );
    // When storage failed everywhere (and not merely passed on the dump's own failure), the dump was
    // stopped because of it: storage's error is the news.
    const storageFailure =
      writerErrors.length === live.length &&
      writerErrors.every((e) => e instanceof StorageError) &&
      !signal?.aborted;
    throw classifyPipelineError(storageFailure ? writerErrors[0] : err, target.name);
  }
  const notWritten = uploads.map((u, i) =>
    written[i]
      ? undefined
      : (u ?? new StorageError(`${destinations[i]!.description}: upload did not finish`)),
  );
  return {
    rawBytes: raw.bytes,
    storedBytes: stored.bytes,
    sha256: stored.digest(),
    facts,
    uploads: notWritten,
  };
}

/**
 * Commits the manifest in every destination that holds the data object. Throws when the lease was lost
 * anywhere, or when no destination committed; otherwise returns where it is committed and where not.
 */
async function commitEverywhere(
  manifest: Manifest,
  uploads: (unknown | undefined)[],
  deps: BackupDeps,
): Promise<Pick<BackupResult, 'committed' | 'failures'>> {
  const { destinations, signal } = deps;
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
  return { committed, failures };
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

/** The id for a new backup, with a sequence suffix if a backup of this target started in the same second. */
async function freeId(
  destinations: StorageBackend[],
  unreachable: Map<StorageBackend, unknown>,
  target: string,
  at: Date,
  extension: string,
  signal?: AbortSignal,
): Promise<string> {
  for (let seq = 0; ; seq++) {
    const id = backupId(target, at, seq);
    const taken = await Promise.all(
      destinations.map(async (storage) => {
        if (unreachable.has(storage)) return false;
        try {
          const [m, d] = await Promise.all([
            storage.stat(manifestKey(target, id), { signal }),
            storage.stat(dataKey(target, id, extension), { signal }),
          ]);
          return m !== undefined || d !== undefined;
        } catch (err) {
          // A destination that cannot be reached fails on its own; the others still get the backup.
          signal?.throwIfAborted();
          unreachable.set(storage, err);
          return false;
        }
      }),
    );
    if (destinations.every((d) => unreachable.has(d))) throw unreachable.get(destinations[0]!);
    if (!taken.some(Boolean)) return id;
  }
}

/** The pipeline's error as the user should see it: the dump's own failure wins over its side effects. */
function classifyPipelineError(err: unknown, target: string): unknown {
  if (err instanceof DatasaverError || isAbortError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code?.startsWith('ERR_ZSTD') || code?.startsWith('Z_')) {
    return new BackupError(`compressing the dump of ${target} failed: ${errorMessage(err)}`, { cause: err });
  }
  return new BackupError(`backup of ${target} failed: ${errorMessage(err)}`, { cause: err });
}
