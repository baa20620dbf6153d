/**
 * The storage contract. Every backend (local filesystem, in-memory, and later S3) implements exactly this,
 * and one conformance suite (test/unit/storage-conformance.test.ts) holds each of them to it.
 *
 * Keys are `/`-separated relative paths such as `shop/shop-20260111T020015Z.dump.zst`; a backend maps
 * them below its own root (directory, bucket + prefix). Keys never start with `/`, never contain `..`
 * segments, and never have a segment starting with `.` (those names are reserved for a backend's own
 * temporary files).
 *
 * Failure modes, common to every method: a missing object is `StorageNotFoundError`; anything else is a
 * `StorageError` (exit 6) whose message names the backend and the key and never contains credentials,
 * with `transient` set when trying again may help (5xx, 429, dropped connections, timeouts). Backends do
 * not retry whole operations themselves: `retry.ts` wraps any backend with that policy. An aborted
 * `signal` rejects with an AbortError and leaves nothing new visible.
 */
import { StorageError } from '../util/errors.ts';

/** What `put` accepts: a stream, an async generator, or an array of buffers for small objects. */
export type Body = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ObjectInfo {
  key: string;
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
   * Stores `body` under `key`, replacing any object there. Atomic: the object becomes visible under `key`
   * only once every byte is durable; if `body` errors, the signal aborts or the write fails, nothing is
   * visible under `key` and the temporary data is removed (a crash may leave hidden temporary data, which
   * `list` never returns). Consumes `body` to its end or destroys it. With `ifAbsent`, an existing object
   * makes it fail with StorageConflictError instead of being replaced.
   */
  put(key: string, body: Body, options?: PutOptions): Promise<PutResult>;

  /**
   * Streams the object's bytes. Rejects with StorageNotFoundError when there is no such object; later read
   * errors surface as errors of the returned stream.
   */
  get(key: string, options?: GetOptions): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>>;

  /** Size and time of one object, or undefined when it does not exist. */
  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;

  /**
   * Every committed object whose key starts with `prefix` (`''` for all), in no particular order. Hidden
   * temporary data of in-flight or crashed writes is not listed.
   */
  list(prefix: string, options?: OpOptions): Promise<ObjectInfo[]>;

  /** Removes the object. Deleting a missing object succeeds (idempotent). */
  delete(key: string, options?: OpOptions): Promise<void>;

  /**
   * Hidden temporary data left by writes that never finished (a crash mid-`put`) under `prefix`, with the
   * time it was last written, so that prune can remove it after a grace period. Optional: a backend whose
   * failed writes leave nothing behind has neither this nor `deleteTemporary`. The keys returned are only
   * meaningful to `deleteTemporary`; `get` and `delete` reject them. A service that cannot list them
   * fails with StorageUnsupportedError (reported once as a warning, like `capabilities`).
   */
  listTemporary?(prefix: string, options?: OpOptions): Promise<TemporaryInfo[]>;

  /** Removes temporary data that `listTemporary` returned. Idempotent. */
  deleteTemporary?(key: string, options?: OpOptions): Promise<void>;

  /**
   * Which optional features the service has, for `config check`. Optional: a backend without it has all
   * of them. The first call may probe the service (S3 writes a probe object under a reserved
   * name twice and deletes it, and asks for unfinished uploads); the answer is kept for the process, per
   * destination, and a missing feature is reported once through the backend's warning callback. Fails like
   * any other operation when the service cannot be reached (and is asked again next time).
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
