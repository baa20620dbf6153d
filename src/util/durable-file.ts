/**
 * Writing a file so that a crash or power loss at any moment leaves either the old file or the complete
 * new one at its path, never a prefix: the bytes go to a temp file in the same directory, which is
 * fsynced, then renamed (or linked) over the path, and the directory itself is fsynced, because a rename
 * is only durable once the directory entry is.
 *
 * `writeFileDurably` does all of it. Callers that need a step of their own between writing and
 * publishing (SQLite moves a database's stale WAL files aside) compose the steps: `writeTemp`,
 * `keepOwnership`, `publish`.
 */
import type { Stats } from 'node:fs';
import { link, open, rename, rm, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Bytes written between background syncs. */
const SYNC_EVERY = 16 * 1024 * 1024;

export interface WriteTempOptions {
  signal?: AbortSignal | undefined;
  /**
   * Looks at the complete temp file before it is fsynced (an integrity check); what it throws fails the
   * write.
   */
  check?: ((temp: string) => unknown) | undefined;
}

/**
 * Writes `body` to `temp`, a new file (mode 0600; fails with EEXIST if it exists), and fsyncs it, so that
 * the rename that publishes it never points at data that is not on disk yet. While streaming, one
 * fdatasync at a time runs in the background every 16 MB: the disk writes back during the stream instead
 * of all at the end, and the final fsync has little left. Returns the bytes written. Throws what `body`,
 * `check` or the file system throws, or the signal's reason; the temp file is then left for the caller
 * to remove.
 */
export async function writeTemp(
  temp: string,
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: WriteTempOptions = {},
): Promise<number> {
  const { signal } = options;
  const file = await open(temp, 'wx', 0o600);
  let size = 0;
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  try {
    for await (const chunk of body) {
      signal?.throwIfAborted();
      for (let off = 0; off < chunk.length; ) {
        off += (await file.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      size += chunk.length;
      unsynced += chunk.length;
      if (unsynced >= SYNC_EVERY) {
        await syncing;
        syncing = file.datasync();
        syncing.catch(() => {}); // handled: its error is rethrown by the next `await syncing`
        unsynced = 0;
      }
    }
    signal?.throwIfAborted();
    await syncing;
    await options.check?.(temp);
    await file.sync();
    return size;
  } finally {
    await syncing?.catch(() => {});
    await file.close();
  }
}

/**
 * Gives `temp` the permission bits of `previous` (the file it is about to replace), and its owner when
 * this process runs as root: whoever could open the old file can open the new one.
 */
export async function keepOwnership(temp: string, previous: Stats): Promise<void> {
  const handle = await open(temp, 'r');
  try {
    await handle.chmod(previous.mode & 0o7777);
    if (process.getuid?.() === 0) await handle.chown(previous.uid, previous.gid);
  } finally {
    await handle.close();
  }
}

/**
 * Moves `temp` to `path` and fsyncs the directory. With `ifAbsent`, publishes with link() and removes
 * `temp`: that fails with EEXIST where rename() would replace, so an existing `path` is never clobbered.
 * Returns once published; `onPublished` runs right after the link or rename, before the directory fsync
 * (which can still fail), so a caller can tell a failure before publishing from one after.
 */
export async function publish(
  temp: string,
  path: string,
  options: { ifAbsent?: boolean | undefined; onPublished?: (() => void) | undefined } = {},
): Promise<void> {
  if (options.ifAbsent) {
    await link(temp, path);
    options.onPublished?.();
    await unlink(temp);
  } else {
    await rename(temp, path);
    options.onPublished?.();
  }
  await fsyncDir(dirname(path));
}

export interface DurableWriteOptions {
  /**
   * The temp file, a new name in `path`'s directory (a rename is only atomic within one file system).
   * The caller chooses it, so that whoever collects leftovers of killed runs can recognise it.
   */
  temp: string;
  signal?: AbortSignal | undefined;
  /** Never replace an existing `path`: fails with EEXIST instead (see `publish`). */
  ifAbsent?: boolean | undefined;
  /** The file being replaced, read before the write: the new file gets its mode and owner. */
  replacing?: Stats | undefined;
  /**
   * A failure after publishing (the directory fsync) removes `path` again, so nothing incomplete stays
   * visible: for a new object. Not for a file that replaced another, whose old content is gone already.
   */
  retractOnFailure?: boolean | undefined;
}

/**
 * Writes `body` to `path` crash-atomically: `writeTemp`, `keepOwnership` when `replacing`, `publish`.
 * Returns the bytes written. On any failure the temp file is removed (and `path` too, with
 * `retractOnFailure`, if it had already been published) and the error is rethrown as it is: what `body`
 * threw, the signal's reason, or the file system's error (EEXIST with `ifAbsent` when `path` exists).
 */
export async function writeFileDurably(
  path: string,
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DurableWriteOptions,
): Promise<number> {
  const { temp } = options;
  let published = false;
  try {
    const size = await writeTemp(temp, body, { signal: options.signal });
    if (options.replacing) await keepOwnership(temp, options.replacing);
    await publish(temp, path, {
      ifAbsent: options.ifAbsent,
      onPublished: () => {
        published = true;
      },
    });
    return size;
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    if (published && options.retractOnFailure) await unlink(path).catch(() => {});
    throw err;
  }
}

/** Fsyncs a directory, making the renames and links in it durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
