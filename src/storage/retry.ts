/**
 * Retries with exponential backoff and jitter, as a wrapper around any storage backend. Only errors a
 * backend marks `transient` (5xx, 429, dropped connections, timeouts) are retried; permanent ones (access
 * denied, no such bucket, not found, conflicts) fail at once.
 *
 * What can be retried from outside a backend: `stat`, `list`, `delete`, `listTemporary`,
 * `deleteTemporary`, `put` of an in-memory body (manifests), and downloads: a `get` stream that breaks is
 * resumed from the byte it reached. A streamed `put` cannot be replayed from outside, so backends that
 * upload in parts (S3) take the same policy (`retryOperation`) for each part, which they hold in memory.
 */

import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from '../util/errors.ts';
import type {
  Body,
  GetOptions,
  ObjectInfo,
  OpOptions,
  PutOptions,
  PutResult,
  StorageBackend,
  StorageCapabilities,
  TemporaryInfo,
} from './backend.ts';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Delay before the first retry; doubles each time, with full jitter, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Told of every retry (for logs and the upload-retries metric). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

export interface RetryInfo {
  operation: string;
  attempt: number;
  delayMs: number;
  error: StorageError;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8000 };

export function isTransient(err: unknown): err is StorageError {
  return err instanceof StorageError && err.transient;
}

/** Runs `fn` until it succeeds, fails with a permanent error, or has used every attempt. */
export async function retryOperation<T>(
  operation: string,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  fn: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isTransient(err) || attempt >= policy.attempts || signal?.aborted) throw err;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.round(cap / 2 + (Math.random() * cap) / 2);
      policy.onRetry?.({ operation, attempt, delayMs, error: err });
      await sleep(delayMs, undefined, { signal });
    }
  }
}

/** Wraps `inner` so every operation it can safely repeat is retried under `policy`. */
export class RetryingStorage implements StorageBackend {
  readonly description: string;
  readonly #inner: StorageBackend;
  readonly #policy: RetryPolicy;
  readonly listTemporary?: (prefix: string, options?: OpOptions) => Promise<TemporaryInfo[]>;
  readonly deleteTemporary?: (key: string, options?: OpOptions) => Promise<void>;
  readonly capabilities?: (options?: OpOptions) => Promise<StorageCapabilities>;

  constructor(inner: StorageBackend, policy: RetryPolicy) {
    this.#inner = inner;
    this.#policy = policy;
    this.description = inner.description;
    const list = inner.listTemporary?.bind(inner);
    const del = inner.deleteTemporary?.bind(inner);
    if (list) this.listTemporary = (p, o) => this.#retry(`list uploads ${p}`, o, () => list(p, o));
    if (del) this.deleteTemporary = (k, o) => this.#retry(`abort ${k}`, o, () => del(k, o));
    const caps = inner.capabilities?.bind(inner);
    if (caps) this.capabilities = (o) => this.#retry('probe the service', o, () => caps(o));
  }

  #retry<T>(operation: string, options: OpOptions | undefined, fn: () => Promise<T>): Promise<T> {
    return retryOperation(operation, this.#policy, options?.signal, fn);
  }

  put(key: string, body: Body, options?: PutOptions): Promise<PutResult> {
    // Only a body held in memory can be sent again.
    if (!Array.isArray(body)) return this.#inner.put(key, body, options);
    return this.#retry(`put ${key}`, options, () => this.#inner.put(key, body, options));
  }

  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    return this.#retry(`stat ${key}`, options, () => this.#inner.stat(key, options));
  }

  list(prefix: string, options?: OpOptions): Promise<ObjectInfo[]> {
    return this.#retry(`list ${prefix}`, options, () => this.#inner.list(prefix, options));
  }

  delete(key: string, options?: OpOptions): Promise<void> {
    return this.#retry(`delete ${key}`, options, () => this.#inner.delete(key, options));
  }

  /**
   * Opens the object with retries, and if the stream then breaks with a transient error, opens it again
   * from the first byte not yet delivered. The caller sees one uninterrupted stream.
   */
  async get(key: string, options: GetOptions = {}): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>> {
    const start = options.offset ?? 0;
    const open = (offset: number) =>
      this.#retry(`get ${key}`, options, () => this.#inner.get(key, { ...options, offset }));
    let source = await open(start);
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    // A consumer that stops early (a failed restore, say) must not leave the download open.
    const destroySource = () => (source as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    out.once('close', destroySource);
    const pump = async () => {
      let delivered = start;
      let failures = 0;
      for (;;) {
        try {
          for await (const chunk of source) {
            if (out.destroyed) return;
            delivered += chunk.length;
            failures = 0;
            if (!out.write(chunk)) await drainedOrClosed(out);
          }
          if (!out.destroyed) out.end();
          return;
        } catch (err) {
          if (out.destroyed) return;
          if (!isTransient(err) || ++failures >= this.#policy.attempts || options.signal?.aborted) throw err;
          this.#policy.onRetry?.({
            operation: `get ${key} from byte ${delivered}`,
            attempt: failures,
            delayMs: 0,
            error: err,
          });
          source = await open(delivered);
          if (out.destroyed) destroySource();
        }
      }
    };
    pump().catch((err: unknown) => out.destroy(err as Error));
    return out;
  }
}

function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) {
      resolve();
      return;
    }
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
