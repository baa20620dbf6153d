/**
 * One data object of a backup, streamed: source -> 1 MB batches -> raw meter -> compressor -> age
 * encryption (when the target encrypts) -> stored meter (sha256) -> every reachable destination's `put`
 * (`ifAbsent`). A one-dump backup streams one object; a whole-server set streams its globals and each
 * database this way, each object with its own pipeline (so the memory bound holds per pipeline).
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { backupId, manifestKey } from '../catalog/layout.ts';
import type { TargetConfig } from '../config/types.ts';
import { coalesce } from '../pipeline/coalesce.ts';
import { createCompressor } from '../pipeline/compression.ts';
import { encryptStream } from '../pipeline/encryption.ts';
import { fanOut } from '../pipeline/fanout.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { Meter } from '../pipeline/meter.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { BackupError, DatasaverError, errorMessage, isAbortError, StorageError } from '../util/errors.ts';
import { failpointAfterFirst } from '../util/failpoint.ts';

export interface StreamObjectRequest {
  target: Pick<TargetConfig, 'name' | 'compression' | 'encryption'>;
  /** Every destination of the backup, in order (`uploads` follows it). */
  destinations: StorageBackend[];
  /** Destinations that get no upload (unreachable, or failed an earlier part), and why. */
  unreachable: ReadonlyMap<StorageBackend, unknown>;
  objectKey: string;
  /** The engine's name, for messages (`postgres dump of shop produced no data`). */
  engineName: string;
  /** What the object is, for messages: the target (`shop`), or a part of a set (`srv, database shop`). */
  label: string;
  /** Starts the source (the dump); `signal` stops it, and aborts when any later stage fails. */
  source: (signal: AbortSignal) => AsyncIterable<Buffer>;
  /** Whether the crash tests' `backup.dumping` failpoint applies to this object. */
  failpoint: boolean;
  signal?: AbortSignal | undefined;
  /** Raw bytes and stored bytes of this object so far. */
  onProgress?: ((raw: number, stored: number) => void) | undefined;
}

export interface StreamedObject {
  rawBytes: number;
  storedBytes: number;
  sha256: string;
  /** Per destination (in order): undefined when it holds the whole object, else why not. */
  uploads: (unknown | undefined)[];
}

/**
 * Streams one object to every reachable destination. Throws when the source fails, is empty, or no
 * destination took the object, after deleting what this call wrote; a destination failing alone is
 * recorded in `uploads` (and what it holds of the object is left to the caller: it is not committed).
 */
export async function streamObject(request: StreamObjectRequest): Promise<StreamedObject> {
  const { destinations, signal, target, objectKey, unreachable } = request;
  const live = destinations.filter((d) => !unreachable.has(d));
  if (live.length === 0) throw unreachable.get(destinations[0]!);
  const raw = new Meter({
    memory: new MemoryGovernor(),
    onBytes: (n) => request.onProgress?.(n, stored.bytes),
    onEmpty: () =>
      new BackupError(`${request.engineName} dump of ${request.label} produced no data`, {
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
    const batches = coalesce(request.source(dumpSignal));
    await pipeline(
      // Two batches queued at most: when compression is the slow stage, memory stays at a few MB.
      Readable.from(request.failpoint ? failpointAfterFirst('backup.dumping', batches) : batches, {
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
    throw classifyPipelineError(storageFailure ? writerErrors[0] : err, request.label);
  }
  const notWritten = uploads.map((u, i) =>
    written[i]
      ? undefined
      : (u ?? new StorageError(`${destinations[i]!.description}: upload did not finish`)),
  );
  return { rawBytes: raw.bytes, storedBytes: stored.bytes, sha256: stored.digest(), uploads: notWritten };
}

/**
 * The id for a new backup, with a sequence suffix if a backup of this target started in the same second:
 * one whose manifest and first object (`firstKey(id)`) are in no destination. A destination that cannot
 * be reached is added to `unreachable` and fails on its own; throws when none can be reached.
 */
export async function freeId(
  destinations: StorageBackend[],
  unreachable: Map<StorageBackend, unknown>,
  target: string,
  at: Date,
  firstKey: (id: string) => string,
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
            storage.stat(firstKey(id), { signal }),
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

/**
 * The pipeline's error as the user should see it: the dump's own failure wins over its side effects.
 * `label` names the object (`shop`, or `srv, database shop`).
 */
function classifyPipelineError(err: unknown, label: string): unknown {
  if (err instanceof DatasaverError || isAbortError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code?.startsWith('ERR_ZSTD') || code?.startsWith('Z_')) {
    return new BackupError(`compressing the dump of ${label} failed: ${errorMessage(err)}`, { cause: err });
  }
  return new BackupError(`backup of ${label} failed: ${errorMessage(err)}`, { cause: err });
}
