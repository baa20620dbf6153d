/**
 * The storage contract. Every backend (local filesystem, in-memory, S3) implements exactly this, and one
 * conformance suite (test/integration/storage-conformance.test.ts) holds each of them to it.
 *
 * Keys are `/`-separated relative paths such as `shop/shop-20260111T020015Z.dump.zst`; a backend maps
 * them below its own root (directory, bucket + prefix). Keys never start with `/`, never contain `..`
 * segments, and never have a segment starting with `.` (those names are reserved for a backend's own
 * temporary files). `put` rejects any other key with a permanent StorageError before it touches
 * storage; the local and S3 backends do so in every method that takes a key.
 *
 * Failure modes, common to every method:
 * - a missing object is StorageNotFoundError (only where a method says so: `stat` answers undefined and
 *   `delete` succeeds instead);
 * - anything else is a StorageError (exit 6) whose message names the backend and the key and never
 *   contains credentials, often with a hint; `transient` is set when trying again may help (5xx, 429,
 *   dropped connections, timeouts, a clock too far off) and unset when it cannot (access denied, no such
 *   bucket, a full disk, a conflict);
 * - an aborted `signal` rejects with the signal's reason (an AbortError unless the caller gave another)
 *   and leaves nothing new visible.
 *
 * Retries: backends do not retry whole operations; `retry.ts` wraps a backend and retries what can be
 * repeated from outside (openStorage wraps S3; local disk raises no transient errors and is not wrapped).
 * One exception, by necessity: a streamed `put` cannot be replayed from outside, because its body is
 * consumed as it is sent. The S3 backend therefore retries, under the same policy and reporting to the
 * same `onRetry`, each step of a streamed upload that it alone can repeat: each part (it holds the part's
 * bytes in memory), starting and completing the multipart upload, the single PUT of a streamed object
 * smaller than one part, the conditional-write probe, the check of the stored object, and the cleanup
 * after a failure.
 */
import { StorageError } from '../util/errors.ts';

/** What `put` accepts: a stream, an async generator, or an array of buffers for small objects. */
export type Body = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ObjectInfo {
  /** The object's key, as `put` was given it. */
  key: string;
  /** Bytes stored. */
  size: number;
  /** Last modification time (for grace periods on incomplete uploads). */
  modified: Date;
}

export interface PutResult {
  /** Bytes that reached storage, as the backend counted them. */
  size: number;
  /**
   * With `ifAbsent`: false when the service does not enforce it and the backend only checked just before
   * writing (see StorageCapabilities.conditionalWrites); absent or true, it was enforced.
   */
  ifAbsentEnforced?: boolean | undefined;
}

export interface OpOptions {
  /** Stops the operation: it rejects with the signal's reason and leaves nothing new visible. */
  signal?: AbortSignal | undefined;
}

export interface GetOptions extends OpOptions {
  /** Start reading at this byte (resuming an interrupted download). */
  offset?: number | undefined;
}

/** Hidden leftovers of a write that never finished. */
export interface TemporaryInfo extends ObjectInfo {
  /** The key the unfinished write was for. */
  finalKey: string;
}

export interface PutOptions extends OpOptions {
  /**
   * Never replace an existing object: if `key` exists when the object would be published, `put` fails
   * with StorageConflictError and the existing object is untouched. Backups use it so that two runs that
   * pick the same id can never overwrite (or later delete) each other's files.
   */
  ifAbsent?: boolean | undefined;
}

/**
 * Optional features of the service behind a backend. Local disk and memory have all of them; S3-compatible
 * services vary (an unmodified s3rver has neither).
 */
export interface StorageCapabilities {
  /**
   * The service itself refuses to replace an object on `put` with `ifAbsent` (S3 `If-None-Match: *`),
   * atomically. Without it the backend checks with a `stat` just before publishing: a second writer that
   * publishes between the check and the write is not stopped (best effort; one writer per target, held by
   * its lease, keeps that from happening in practice).
   */
  conditionalWrites: boolean;
  /**
   * `listTemporary` can find unfinished writes (S3 ListMultipartUploads). Without it prune cannot collect
   * what a crashed upload left behind; the service's own expiry (an S3 lifecycle rule
   * AbortIncompleteMultipartUpload) has to.
   */
  listTemporary: boolean;
}

export interface StorageBackend {
  /** Human description for messages and `list` output, e.g. `local:/backups`. Never holds secrets. */
  readonly description: string;

  /**
   * Stores `body` under `key`, replacing any object there. Resolves with the bytes stored once the object
   * is complete and durable under `key`.
   *
   * Atomic: the object becomes visible under `key` only once every byte is durable; if `body` errors, the
   * signal aborts or the write fails, nothing is left visible under `key` and the temporary data is
   * removed. Two exceptions, both removed again at once (best effort): local disk publishes before the
   * directory's fsync, and S3 before checking the stored object against what was sent; should that
   * removal fail as well, a backup's data stays without a manifest, which prune collects as an incomplete
   * upload. A crash mid-write may leave hidden temporary data, which `list` never returns and
   * `listTemporary` finds. Consumes `body` to its end or destroys it.
   *
   * With `ifAbsent`, an existing object makes it fail with StorageConflictError (permanent) and stay
   * untouched; atomically where the service enforces it, else checked just before publishing (see
   * StorageCapabilities.conditionalWrites and PutResult.ifAbsentEnforced).
   *
   * Not idempotent when retried from outside: a body held in memory (an array) is retried by `retry.ts`,
   * and a retry whose first try's answer was lost meets that try's object (with `ifAbsent`, as
   * StorageConflictError: callers read it back to tell their own object from another's). A streamed body
   * is never retried from outside (see the note on retries above).
   *
   * Fails with: StorageConflictError (above); StorageError for a failed write (on S3 it may still be
   * transient after the backend's own retries gave up), also when the object stored does not match what
   * was sent (S3's upload check); the error of `body` itself when the source fails, passed on as it is
   * since it is no storage failure (local disk wraps those that carry a system error code); the signal's
   * reason when aborted.
   */
  put(key: string, body: Body, options?: PutOptions): Promise<PutResult>;

  /**
   * Streams the object's bytes, from `offset` when given (an offset at or past the end gives an empty
   * stream). Rejects with StorageNotFoundError when there is no such object, StorageError when it cannot
   * be opened (on S3, also an object in an archive storage class). Errors after it opened surface as
   * errors of the returned stream: StorageError, transient when the connection broke (S3 also when it
   * ended before the announced length), so that `retry.ts` can resume from the byte reached; the
   * signal's reason when aborted. Destroying the stream ends the download.
   */
  get(key: string, options?: GetOptions): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>>;

  /**
   * Size and time of one object, or undefined when it does not exist (on local disk, also when something
   * other than a file is there). Rejects with StorageError when storage cannot say (transient or not),
   * never with StorageNotFoundError. Safe to repeat.
   */
  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;

  /**
   * Every committed object whose key starts with `prefix` (`''` for all; a plain string prefix, not only
   * a folder), in no particular order; `[]` when there is none. Complete: the backend follows the
   * service's pages (S3 continuation tokens) before it resolves, so one call may be many requests, and a
   * failure on any page rejects the whole call with StorageError (on S3, a missing bucket is a
   * permanent one). Not a snapshot: an object written or deleted during the listing may or may not be in
   * it. Hidden temporary data of in-flight or crashed writes, and keys a backend reserves (a segment
   * starting with `.`), are never listed. Safe to repeat.
   */
  list(prefix: string, options?: OpOptions): Promise<ObjectInfo[]>;

  /**
   * Removes the object. Deleting a missing object succeeds (idempotent, safe to repeat). Rejects with
   * StorageError when storage refuses or cannot be reached. Says nothing of writers: an object that is
   * being written under `key` at the same time may appear after the delete.
   */
  delete(key: string, options?: OpOptions): Promise<void>;

  /**
   * Hidden temporary data left by writes that never finished (a crash mid-`put`) under `prefix`, so that
   * prune can remove it after a grace period: `finalKey` is the key the write was for, `modified` the
   * time it was last written (on S3, when the multipart upload started) and `size` what it holds where
   * the service says (0 on S3). Local disk looks only in the folder `prefix` names (prune asks per target,
   * `shop/`); S3 follows every page of ListMultipartUploads. Optional: a backend whose failed writes leave
   * nothing behind has neither this nor `deleteTemporary`. The keys returned are only meaningful to
   * `deleteTemporary`; `get` and `delete` reject them.
   *
   * Fails with StorageUnsupportedError when the service cannot list them (S3 without
   * ListMultipartUploads), from then on for the process and destination, reported once as a warning like
   * `capabilities`; callers do without it. StorageError otherwise. Safe to repeat.
   */
  listTemporary?(prefix: string, options?: OpOptions): Promise<TemporaryInfo[]>;

  /**
   * Removes temporary data that `listTemporary` returned; on S3 it aborts the multipart upload, which
   * makes a write still in flight under it fail. Idempotent: data already gone succeeds. Rejects with a
   * permanent StorageError for a key `listTemporary` cannot have returned, StorageError when storage
   * refuses or cannot be reached.
   */
  deleteTemporary?(key: string, options?: OpOptions): Promise<void>;

  /**
   * Which optional features the service has, for `config check`. Optional: a backend without it has all
   * of them. The first call may probe the service (S3 writes a probe object under a reserved
   * name twice and deletes it, and asks for unfinished uploads); the answer is kept for the process, per
   * destination, and a missing feature is reported once through the backend's warning callback. A
   * conditional-write probe refused for good (access denied to the probe's key) is not an error: the
   * feature counts as missing, with a warning. Fails like any other operation when the service cannot be reached (and is asked again next time).
   */
  capabilities?(options?: OpOptions): Promise<StorageCapabilities>;
}

export class StorageNotFoundError extends StorageError {
  readonly key: string;
  constructor(backend: string, key: string) {
    super(`${backend}: no object ${key}`);
    this.key = key;
  }
}

/** `put` with `ifAbsent` found an object under the key; nothing was written. */
export class StorageConflictError extends StorageError {
  readonly key: string;
  constructor(backend: string, key: string) {
    super(`${backend}: ${key} already exists`, {
      hint: 'another datasaver run wrote the same backup at the same time; run one writer per target',
    });
    this.key = key;
  }
}

/**
 * The service lacks an optional feature this operation needs (`listTemporary` on an S3-compatible service
 * without ListMultipartUploads). Callers that can do without it skip that work; see `capabilities`.
 */
export class StorageUnsupportedError extends StorageError {}

/** False for keys that could escape the backend's root or collide with its temporary files. */
export function isValidKey(key: string): boolean {
  return key !== '' && !key.startsWith('/') && !key.split('/').some((s) => s === '' || s.startsWith('.'));
}

/** Rejects keys that could escape the backend's root or collide with its temporary files. */
export function assertValidKey(key: string): void {
  if (!isValidKey(key)) throw new StorageError(`invalid storage key '${key}'`);
}
