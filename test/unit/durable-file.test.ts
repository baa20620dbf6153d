/**
 * Crash-atomic file writes: the new file replaces the old one whole, keeps its mode (and owner, as root),
 * and a failure at any step leaves the path as it was and no temp file behind.
 */
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileDurably, writeTemp } from '../../src/util/durable-file.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durable-file-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

async function* failingAfter(part: string, error: Error): AsyncGenerator<Buffer> {
  yield Buffer.from(part);
  throw error;
}

describe('writeFileDurably', () => {
  it('writes a new file with mode 0600 and returns its size', async () => {
    const path = join(dir, 'new');
    const size = await writeFileDurably(path, chunks('hello ', 'world'), { temp: join(dir, '.new.tmp') });
    expect(size).toBe(11);
    expect(await readFile(path, 'utf8')).toBe('hello world');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['new']);
  });

  it('keeps the mode of the file it replaces', async () => {
    const path = join(dir, 'db');
    await writeFile(path, 'old');
    await chmod(path, 0o640);
    await writeFileDurably(path, chunks('new'), { temp: join(dir, '.db.tmp'), replacing: await stat(path) });
    expect(await readFile(path, 'utf8')).toBe('new');
    expect((await stat(path)).mode & 0o7777).toBe(0o640);
  });

  it.runIf(process.getuid?.() === 0)('keeps the owner of the file it replaces (as root)', async () => {
    const path = join(dir, 'db');
    await writeFile(path, 'old');
    await chown(path, 4321, 4322);
    await writeFileDurably(path, chunks('new'), { temp: join(dir, '.db.tmp'), replacing: await stat(path) });
    const info = await stat(path);
    expect([info.uid, info.gid]).toEqual([4321, 4322]);
  });

  it('leaves the old file and no temp file when the body fails', async () => {
    const path = join(dir, 'db');
    await writeFile(path, 'old');
    const boom = new Error('source failed');
    const err = await writeFileDurably(path, failingAfter('partial', boom), {
      temp: join(dir, '.db.tmp'),
    }).catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(await readFile(path, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['db']);
  });

  it('stops at an abort, leaving nothing behind', async () => {
    const path = join(dir, 'db');
    const controller = new AbortController();
    async function* abortMidway(): AsyncGenerator<Buffer> {
      yield Buffer.from('one');
      controller.abort();
      yield Buffer.from('two');
    }
    const err = await writeFileDurably(path, abortMidway(), {
      temp: join(dir, '.db.tmp'),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(await readdir(dir)).toEqual([]);
  });

  it('with ifAbsent, never replaces an existing file (EEXIST) and leaves no temp file', async () => {
    const path = join(dir, 'obj');
    await writeFile(path, 'first');
    const err = await writeFileDurably(path, chunks('second'), {
      temp: join(dir, '.obj.tmp'),
      ifAbsent: true,
    }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(await readFile(path, 'utf8')).toBe('first');
    expect(await readdir(dir)).toEqual(['obj']);
  });

  it('with ifAbsent, publishes a new file', async () => {
    const path = join(dir, 'obj');
    await writeFileDurably(path, chunks('only'), { temp: join(dir, '.obj.tmp'), ifAbsent: true });
    expect(await readFile(path, 'utf8')).toBe('only');
    expect(await readdir(dir)).toEqual(['obj']);
  });

  it('never writes into a temp file that exists (EEXIST), and publishes nothing', async () => {
    const temp = join(dir, '.db.tmp');
    await writeFile(temp, 'someone else');
    const err = await writeFileDurably(join(dir, 'db'), chunks('x'), { temp }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(await readdir(dir)).not.toContain('db');
  });
});

describe('writeTemp', () => {
  it('runs the check on the complete file; a failing check fails the write', async () => {
    const temp = join(dir, '.db.tmp');
    let seen = '';
    const err = await writeTemp(temp, chunks('ab', 'cd'), {
      check: async (file) => {
        seen = await readFile(file, 'utf8');
        throw new Error('not a database');
      },
    }).catch((e: unknown) => e);
    expect(seen).toBe('abcd');
    expect((err as Error).message).toBe('not a database');
  });
});
