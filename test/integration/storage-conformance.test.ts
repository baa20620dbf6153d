/**
 * The storage contract (src/storage/backend.ts), held against every backend: in-memory, local, S3 (the
 * suite's S3-compatible server), S3 behind the retry wrapper as datasaver uses it, and S3 on an unmodified
 * s3rver, which ignores `If-None-Match` (the backend checks before publishing instead).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { StorageConflictError, StorageNotFoundError } from '../../src/storage/backend.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { DEFAULT_RETRY, RetryingStorage } from '../../src/storage/retry.ts';
import { S3Storage } from '../../src/storage/s3/s3.ts';
import { mapLimit } from '../../src/util/concurrency.ts';
import { StorageError } from '../../src/util/errors.ts';
import { tempDir } from '../support/pg.ts';
import { s3Config, s3EndpointOf, s3Prefix } from '../support/s3.ts';

async function* chunks(parts: (string | Error)[]): AsyncGenerator<Buffer> {
  for (const p of parts) {
    if (p instanceof Error) throw p;
    yield Buffer.from(p);
    await new Promise((r) => setImmediate(r));
  }
}

const backends: [string, () => Promise<StorageBackend>][] = [
  ['memory', async () => new MemoryStorage()],
  ['local', async () => new LocalStorage(join(await tempDir(), 'root'))],
  ['s3', async () => new S3Storage(s3Config(s3Prefix()))],
  ['s3 with retries', async () => new RetryingStorage(new S3Storage(s3Config(s3Prefix())), DEFAULT_RETRY)],
  [
    's3 on plain s3rver',
    async () => new S3Storage(s3Config(s3Prefix(), { endpoint: s3EndpointOf('plain') })),
  ],
];

describe.each(backends)('%s storage', (_name, make) => {
  it('put then get returns the same bytes; stat reports the size', async () => {
    const s = await make();
    const res = await s.put('t/a.bin', chunks(['hello ', 'world']));
    expect(res.size).toBe(11);
    expect(await text(await s.get('t/a.bin'))).toBe('hello world');
    expect(await s.stat('t/a.bin')).toMatchObject({ key: 't/a.bin', size: 11 });
    expect((await s.stat('t/a.bin'))?.modified).toBeInstanceOf(Date);
  });

  it('put replaces an existing object', async () => {
    const s = await make();
    await s.put('t/a', [Buffer.from('one')]);
    await s.put('t/a', [Buffer.from('two!')]);
    expect(await text(await s.get('t/a'))).toBe('two!');
  });

  it('a body that fails half-way leaves nothing under the key', async () => {
    const s = await make();
    await expect(s.put('t/b', chunks(['partial data', new Error('dump died')]))).rejects.toThrow('dump died');
    expect(await s.stat('t/b')).toBeUndefined();
    expect(await s.list('')).toEqual([]);
  });

  it('an aborted put leaves nothing under the key', async () => {
    const s = await make();
    const controller = new AbortController();
    async function* slow() {
      yield Buffer.from('x');
      controller.abort();
      yield Buffer.from('y');
    }
    await expect(s.put('t/c', slow(), { signal: controller.signal })).rejects.toThrow();
    expect(await s.stat('t/c')).toBeUndefined();
  });

  it('get from an offset returns the rest of the object', async () => {
    const s = await make();
    await s.put('t/o', [Buffer.from('0123456789')]);
    expect(await text(await s.get('t/o', { offset: 4 }))).toBe('456789');
    expect(await text(await s.get('t/o', { offset: 10 }))).toBe('');
  });

  it('get and stat of a missing object', async () => {
    const s = await make();
    await expect(s.get('t/missing')).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(s.get('t/missing')).rejects.toMatchObject({ exitCode: 6 });
    expect(await s.stat('t/missing')).toBeUndefined();
  });

  it('list filters by prefix and returns every object', async () => {
    const s = await make();
    for (const k of ['a/1', 'a/2', 'ab/1', 'b/1']) await s.put(k, [Buffer.from(k)]);
    const keys = async (p: string) => (await s.list(p)).map((o) => o.key).sort();
    expect(await keys('')).toEqual(['a/1', 'a/2', 'ab/1', 'b/1']);
    expect(await keys('a/')).toEqual(['a/1', 'a/2']);
    expect(await keys('a')).toEqual(['a/1', 'a/2', 'ab/1']);
    expect(await keys('zzz/')).toEqual([]);
  });

  it('list returns every object past a page of 1,000 keys', async () => {
    const s = await make();
    const keys = Array.from({ length: 1234 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    await mapLimit(keys, 16, (k) => s.put(k, [Buffer.from(k)]));
    const listed = (await s.list('many/')).map((o) => o.key).sort();
    expect(listed).toEqual(keys);
  });

  it('put with ifAbsent never replaces an object, and leaves no trace when refused', async () => {
    const s = await make();
    await s.put('t/once', [Buffer.from('first')], { ifAbsent: true });
    await expect(s.put('t/once', chunks(['second']), { ifAbsent: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    expect(await text(await s.get('t/once'))).toBe('first');
    expect((await s.list('')).map((o) => o.key)).toEqual(['t/once']);
  });

  it('delete is idempotent', async () => {
    const s = await make();
    await s.put('t/d', [Buffer.from('x')]);
    await s.delete('t/d');
    await s.delete('t/d');
    expect(await s.stat('t/d')).toBeUndefined();
  });

  it('rejects keys that could escape the root or hit temporary names', async () => {
    const s = await make();
    for (const key of ['', '/abs', 'a/../b', 'a//b', '.hidden', 't/.x.tmp']) {
      await expect(s.put(key, [Buffer.from('x')]), key).rejects.toBeInstanceOf(StorageError);
    }
  });
});

describe('local storage specifics', () => {
  it('files are 0600, directories 0700, and no temporary file survives a write', async () => {
    const root = join(await tempDir(), 'root');
    const s = new LocalStorage(root);
    await s.put('t/x', [Buffer.from('secret dump')]);
    expect((await stat(join(root, 't', 'x'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, 't'))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(root, 't'))).toEqual(['x']);
  });

  it('list never returns temporary files of in-flight writes; listTemporary does', async () => {
    const root = join(await tempDir(), 'root');
    const s = new LocalStorage(root);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* held() {
      yield Buffer.from('first part');
      await gate;
      yield Buffer.from(', rest');
    }
    const writing = s.put('t/inflight', held());
    for (let i = 0; i < 100 && (await readdir(join(root, 't')).catch(() => [])).length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await s.list('')).toEqual([]);
    const temps = await s.listTemporary('t/');
    expect(temps.map((o) => o.key)).toEqual([expect.stringMatching(/^t\/\.inflight\.[0-9a-f]{12}\.tmp$/)]);
    expect(await s.listTemporary('other/')).toEqual([]);
    await expect(s.get(temps[0]!.key)).rejects.toThrow(/invalid storage key/);
    release();
    await writing;
    expect((await s.list('')).map((o) => o.key)).toEqual(['t/inflight']);
    expect(await s.listTemporary('t/')).toEqual([]);
  });

  it("deleteTemporary removes a crashed write's temporary file and nothing else", async () => {
    const root = join(await tempDir(), 'root');
    const s = new LocalStorage(root);
    await s.put('t/kept', [Buffer.from('committed')]);
    await writeFile(join(root, 't', '.crashed.0123456789ab.tmp'), 'partial');
    await mkdir(join(root, 't', '.snapshots'));
    await writeFile(join(root, 't', '.snapshots', '.deep.0123456789ab.tmp'), 'not at this level');
    const [temp, ...others] = await s.listTemporary('t/');
    expect(others).toEqual([]);
    expect(temp).toMatchObject({ key: 't/.crashed.0123456789ab.tmp', finalKey: 't/crashed', size: 7 });
    await s.deleteTemporary(temp!.key);
    await s.deleteTemporary(temp!.key); // idempotent
    expect(await s.listTemporary('t/')).toEqual([]);
    await expect(s.deleteTemporary('t/kept')).rejects.toThrow(/not a temporary file/);
    expect((await s.list('')).map((o) => o.key)).toEqual(['t/kept']);
  });

  describe('a full disk', () => {
    const mounts: string[] = [];
    afterAll(async () => {
      for (const m of mounts) {
        execFileSync('umount', [m]);
        await rm(m, { recursive: true, force: true });
      }
    });

    // Mounting a small tmpfs needs root, which the suite runs as (scripts/setup.sh installs as root too):
    // without it this test fails rather than skips, so CI never passes without the full-disk check.
    it('fails with a storage error naming the disk, leaves nothing, keeps other objects', async () => {
      const mnt = join(await tempDir(), 'small');
      await mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
      mounts.push(mnt);
      const s = new LocalStorage(mnt);
      await s.put('t/existing', [Buffer.from('keep me')]);
      const big = Buffer.alloc(64 * 1024, 7);
      async function* tooMuch() {
        for (let i = 0; i < 16; i++) yield big;
      }
      const err = await s.put('t/big', tooMuch()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).exitCode).toBe(6);
      expect((err as StorageError).hint).toMatch(/disk is full/);
      expect(await s.stat('t/big')).toBeUndefined();
      expect(await readdir(join(mnt, 't'))).toEqual(['existing']);
      expect(await text(await s.get('t/existing'))).toBe('keep me');
    });
  });
});

describe('retry wrapper downloads', () => {
  it('a consumer that stops early closes the download underneath', async () => {
    const inner = new MemoryStorage();
    await inner.put('t/big', [Buffer.alloc(4 * 1024 * 1024, 7)]);
    let source: NodeJS.ReadableStream & { destroyed?: boolean } = Readable.from([]);
    const get = inner.get.bind(inner);
    inner.get = async (key, options) => {
      source = Readable.from(
        (async function* () {
          const all = await buffer(await get(key, options));
          for (let off = 0; off < all.length; off += 64 * 1024) yield all.subarray(off, off + 64 * 1024);
        })(),
      );
      return source as NodeJS.ReadableStream & AsyncIterable<Buffer>;
    };
    const s = new RetryingStorage(inner, DEFAULT_RETRY);
    const stream = (await s.get('t/big')) as NodeJS.ReadableStream & { destroy(): void };
    for await (const _ of stream) break; // the consumer gives up after one chunk
    await new Promise((r) => setTimeout(r, 50));
    expect(source.destroyed).toBe(true);
  });
});
