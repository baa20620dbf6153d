import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { writeFileDurably } from '../util/durable-file.ts';
import { StorageError } from '../util/errors.ts';
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
  type TemporaryInfo,
} from './backend.ts';

/** Temporary files are `.<name>.<random>.tmp` beside their final name: hidden from list, easy to collect. */
const TEMP_FILE = /^\.(.+)\.[0-9a-f]{12}\.tmp$/;

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

  async put(key: string, body: Body, options: PutOptions = {}): Promise<PutResult> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const temp = join(dir, `.${path.slice(dir.length + 1)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const size = await writeFileDurably(path, body, {
        temp,
        signal: options.signal,
        ifAbsent: options.ifAbsent,
        // A failure after publishing (the directory fsync) must not leave the object visible either.
        retractOnFailure: true,
      });
      return { size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && options.ifAbsent) {
        throw new StorageConflictError(this.description, key);
      }
      throw this.wrap(err, 'write', key);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>> {
    const path = this.pathOf(key);
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw this.wrap(err, 'read', key);
    });
    // The stream owns the handle from here and closes it at end, on error and on destroy.
    return handle.createReadStream({
      highWaterMark: 256 * 1024,
      start: options.offset ?? 0,
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
        // A target directory may be a symlink to another volume: follow it, as writes do.
        const linked = e.isSymbolicLink() ? await stat(full).catch(() => undefined) : undefined;
        if (e.isDirectory() || linked?.isDirectory()) {
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) await walk(full);
        } else if ((e.isFile() || linked?.isFile()) && key.startsWith(prefix)) {
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

  /** Temp files in the directory `prefix` names (`shop/`), not below it: prune asks per target. */
  async listTemporary(prefix: string): Promise<TemporaryInfo[]> {
    const dirKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const dir = dirKey ? this.pathOf(dirKey.slice(0, -1)) : this.root;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.wrap(err, 'list', prefix || '/');
    }
    const out: TemporaryInfo[] = [];
    for (const name of names) {
      const m = TEMP_FILE.exec(name);
      const key = `${dirKey}${name}`;
      if (!m || !key.startsWith(prefix)) continue;
      const s = await stat(join(dir, name)).catch(() => undefined);
      // `.<name>.<random>.tmp` was going to be `<name>` in the same directory.
      if (s?.isFile()) out.push({ key, size: s.size, modified: s.mtime, finalKey: `${dirKey}${m[1]}` });
    }
    return out;
  }

  async deleteTemporary(key: string): Promise<void> {
    const slash = key.lastIndexOf('/');
    const name = key.slice(slash + 1);
    if (!TEMP_FILE.test(name)) throw new StorageError(`${this.description}: ${key} is not a temporary file`);
    const path = slash === -1 ? join(this.root, name) : join(this.pathOf(key.slice(0, slash)), name);
    try {
      await rm(path, { force: true });
    } catch (err) {
      throw this.wrap(err, 'delete', key);
    }
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
