import { Readable } from 'node:stream';
import {
  assertValidKey,
  type Body,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  StorageConflictError,
  StorageNotFoundError,
} from './backend.ts';

/**
 * In-memory storage for tests of pure orchestration logic. It keeps the same contract as the real
 * backends (atomic put, idempotent delete, not-found errors), which the conformance suite checks.
 */
export class MemoryStorage implements StorageBackend {
  readonly description = 'memory';
  readonly objects = new Map<string, { data: Buffer; modified: Date }>();

  async put(key: string, body: Body, options: PutOptions = {}): Promise<PutResult> {
    assertValidKey(key);
    const chunks: Buffer[] = [];
    for await (const chunk of body) {
      options.signal?.throwIfAborted();
      chunks.push(Buffer.from(chunk));
    }
    options.signal?.throwIfAborted();
    const data = Buffer.concat(chunks);
    if (options.ifAbsent && this.objects.has(key)) throw new StorageConflictError(this.description, key);
    this.objects.set(key, { data, modified: new Date() });
    return { size: data.length };
  }

  async get(key: string, options: GetOptions = {}): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>> {
    const obj = this.objects.get(key);
    if (!obj) throw new StorageNotFoundError(this.description, key);
    return Readable.from([obj.data.subarray(options.offset ?? 0)], { objectMode: false });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const obj = this.objects.get(key);
    return obj ? { key, size: obj.data.length, modified: obj.modified } : undefined;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    return [...this.objects]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, o]) => ({ key, size: o.data.length, modified: o.modified }));
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }
}
