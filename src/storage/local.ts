import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StorageError } from '../errors.ts';
import {
  assertValidKey,
  type Body,
  type ObjectInfo,
  type OpOptions,
  type PutResult,
  type StorageBackend,
  StorageNotFoundError,
} from './backend.ts';

/** Temporary files are `.<name>.<random>.tmp` beside their final name: hidden from list, easy to collect. */
const TEMP_FILE = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * Local filesystem storage. Files are 0600 and directories 0700: backups hold the whole database.
 * Writes are crash-atomic: temp file, fsync, rename, fsync of the directory, so that after a crash or power
 * loss a key holds either nothing or the complete object, never a prefix of it.
 */
export class LocalStorage implements StorageBackend {
  readonly description: string;
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    this.description = `local:${root}`;
  }

  async put(key: string, body: Body, options: OpOptions = {}): Promise<PutResult> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const temp = join(dir, `.${path.slice(dir.length + 1)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // flush: fsync before close, so the rename below never publishes data that is not on disk yet.
      const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
      await pipeline(body, out, { signal: options.signal });
      await rename(temp, path);
      await fsyncDir(dir);
      return { size: out.bytesWritten };
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw this.wrap(err, 'write', key);
    }
  }

  async get(key: string, options: OpOptions = {}): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>> {
    const path = this.pathOf(key);
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw this.wrap(err, 'read', key);
    });
    // The stream owns the handle from here and closes it at end, on error and on destroy.
    return handle.createReadStream({
      highWaterMark: 256 * 1024,
      signal: options.signal,
    }) as NodeJS.ReadableStream & AsyncIterable<Buffer>;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { key, size: s.size, modified: s.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.wrap(err, 'stat', key);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.wrap(err, 'list', prefix || '/');
      }
      for (const e of entries) {
        if (e.name.startsWith('.')) continue; // temporary files and anything hidden are not objects
        const full = join(dir, e.name);
        const key = relative(this.root, full).split(sep).join('/');
        if (e.isDirectory()) {
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) await walk(full);
        } else if (e.isFile() && key.startsWith(prefix)) {
          const s = await stat(full).catch(() => undefined);
          if (s) out.push({ key, size: s.size, modified: s.mtime });
        }
      }
    };
    await walk(this.root);
    return out;
  }

  async delete(key: string): Promise<void> {
    try {
      await rm(this.pathOf(key), { force: true });
    } catch (err) {
      throw this.wrap(err, 'delete', key);
    }
  }

  /** Temporary files left by crashed writes, for cleanup after a grace period. */
  async listTemporary(): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const entries = await readdir(this.root, { withFileTypes: true, recursive: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isFile() || !TEMP_FILE.test(e.name)) continue;
      const full = join(e.parentPath, e.name);
      const s = await stat(full).catch(() => undefined);
      if (s)
        out.push({ key: relative(this.root, full).split(sep).join('/'), size: s.size, modified: s.mtime });
    }
    return out;
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    return join(this.root, ...key.split('/'));
  }

  private wrap(err: unknown, op: string, key: string): Error {
    if (err instanceof StorageError) return err;
    const e = err as NodeJS.ErrnoException;
    if (e.name === 'AbortError') return e;
    if (e.code === 'ENOENT' && op !== 'write') return new StorageNotFoundError(this.description, key);
    const hint =
      e.code === 'ENOSPC'
        ? 'the disk is full: free space or point DATASAVER_STORAGE_PATH elsewhere'
        : e.code === 'EACCES' || e.code === 'EPERM'
          ? `check that datasaver may write to ${this.root}`
          : undefined;
    // Errors from upstream of the write (the dump, the compressor) pass through unchanged.
    if (op === 'write' && !e.code?.startsWith('E')) return e;
    return new StorageError(`${this.description}: cannot ${op} ${key}: ${e.message}`, { hint, cause: err });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // A rename is only durable once the directory entry is: fsync the directory itself.
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
