/**
 * The backup job's commit rules with an in-memory storage and a fake engine: what is stored when a dump
 * succeeds, and that nothing is when any step fails.
 */
import { createHash, randomBytes } from 'node:crypto';
import { zstdDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { findBackup, readCatalog } from '../../src/catalog/catalog.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { verifyBackup } from '../../src/jobs/verify.ts';
import { LeaseLostError } from '../../src/lease/held.ts';
import {
  type Body,
  type OpOptions,
  type PutOptions,
  type StorageBackend,
  StorageConflictError,
} from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { BackupError, StorageError } from '../../src/util/errors.ts';
import { fakeEngine } from '../support/fake-engine.ts';

const target: TargetConfig = {
  ...offlineTarget('shop', undefined),
  connection: {
    host: 'db',
    port: 5432,
    database: 'shop',
    user: 'app',
    password: undefined,
    tlsCa: undefined,
    sslmode: undefined,
    tls: false,
  },
};

async function* data(parts: (string | Error)[]): AsyncGenerator<Buffer> {
  for (const p of parts) {
    if (p instanceof Error) throw p;
    yield Buffer.from(p);
  }
}

const clock = (...isos: string[]) => {
  const times = isos.map((t) => new Date(t));
  return () => times.shift() ?? new Date('2026-01-11T02:05:00Z');
};

describe('backup job', () => {
  it('stores data and a manifest that describes it exactly', async () => {
    const storage = new MemoryStorage();
    const dump = 'PGDMP'.padEnd(100_000, 'row data ');
    const { manifest } = await runBackup(
      { target, labels: ['daily'], verify: true },
      {
        engine: fakeEngine(() => data([dump.slice(0, 50_000), dump.slice(50_000)])),
        destinations: [storage],
        now: clock('2026-01-11T02:00:15Z', '2026-01-11T02:00:20Z'),
      },
    );
    const stored = storage.objects.get('shop/shop-20260111T020015Z.dump.zst')!.data;
    expect(zstdDecompressSync(stored).toString()).toBe(dump);
    expect(manifest).toMatchObject({
      id: 'shop-20260111T020015Z',
      createdAt: '2026-01-11T02:00:15.000Z',
      finishedAt: '2026-01-11T02:00:20.000Z',
      durationMs: 5000,
      labels: ['daily'],
      sizeBytes: 100_000,
      storedBytes: stored.length,
      sha256: createHash('sha256').update(stored).digest('hex'),
      compressionLevel: 2,
      object: 'shop/shop-20260111T020015Z.dump.zst',
      facts: { tables: [{ name: 'public.t', rows: 3 }] },
    });
    expect(
      JSON.parse(storage.objects.get('shop/shop-20260111T020015Z.manifest.json')!.data.toString()),
    ).toEqual(manifest);
    expect(storage.objects.has('shop/shop-20260111T020015Z.verify.json')).toBe(true);
    expect((await findBackup([storage], 'latest', 'shop')).manifest.id).toBe(manifest.id);
  });

  it('a manifest that would not read back is never committed: the backup fails loudly', async () => {
    const storage = new MemoryStorage();
    const engine = fakeEngine(() => data(['x'.repeat(1000)]));
    // What the server could hand over and a manifest cannot carry: a role name with a terminal escape.
    const settings = { owner: 'app\u001b[2J', settings: [], grants: null, comment: null };
    engine.preflight = async () => ({
      serverVersion: '15.18',
      toolVersion: 'pg_dump 15.18',
      databaseSettings: settings,
    });
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine, destinations: [storage], now: clock('2026-01-11T02:00:15Z', '2026-01-11T02:00:20Z') },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toMatch(
      /manifest of shop-20260111T020015Z would not read back \(field databaseSettings\.owner/,
    );
    // Nor is its data left for prune: nothing could ever commit it.
    expect([...storage.objects.keys()]).toEqual([]);
  });

  it('a second backup in the same second gets the next id', async () => {
    const storage = new MemoryStorage();
    const engine = fakeEngine(() => data(['x'.repeat(1000)]));
    const at = '2026-01-11T02:00:15Z';
    const a = await runBackup(
      { target, labels: [], verify: false },
      { engine, destinations: [storage], now: clock(at, at) },
    );
    const b = await runBackup(
      { target, labels: [], verify: false },
      { engine, destinations: [storage], now: clock(at, at) },
    );
    expect([a.manifest.id, b.manifest.id]).toEqual(['shop-20260111T020015Z', 'shop-20260111T020015Z-1']);
    expect((await readCatalog(storage)).backups.map((m) => m.id)).toEqual([a.manifest.id, b.manifest.id]);
  });

  it('two runs that pick the same id: the second fails and the first stays intact', async () => {
    const storage = new MemoryStorage();
    const at = '2026-01-11T02:00:15Z';
    const first = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['first run'])), destinations: [storage], now: clock(at, at) },
    );
    const before = new Map(storage.objects);
    // The race: the second run's existence check happens before the first run published anything.
    const racing = Object.assign(Object.create(storage) as MemoryStorage, { stat: async () => undefined });
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['second run'])), destinations: [racing], now: clock(at, at) },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(StorageConflictError);
    expect(storage.objects).toEqual(before);
    expect((await findBackup([storage], 'latest', 'shop')).manifest.sha256).toBe(first.manifest.sha256);
  });

  it('a dump that fails after some data leaves nothing in storage', async () => {
    const storage = new MemoryStorage();
    const failure = new BackupError('pg_dump exited with code 1: boom');
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['some data', failure])), destinations: [storage] },
    ).catch((e) => e);
    expect(err).toBe(failure);
    expect(storage.objects.size).toBe(0);
  });

  it('an empty dump is a BackupError and leaves nothing', async () => {
    const storage = new MemoryStorage();
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data([])), destinations: [storage] },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.exitCode).toBe(4);
    expect(err.message).toMatch(/produced no data/);
    expect(storage.objects.size).toBe(0);
  });

  it('when the manifest cannot be written, the data object is removed and the error is a storage error', async () => {
    const storage = new MemoryStorage();
    const put = storage.put.bind(storage);
    storage.put = async (key: string, body: Body, options?: OpOptions) => {
      if (key.endsWith('.manifest.json')) throw new Error('disk went away');
      return put(key, body, options);
    };
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['x'.repeat(100)])), destinations: [storage] },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(/manifest .* not committed/);
    expect(storage.objects.size).toBe(0);
  });

  it("a destination whose lease is no longer the run's when it would commit gets no manifest; the run fails", async () => {
    const [one, two] = [new MemoryStorage(), new MemoryStorage()];
    const asked: StorageBackend[] = [];
    const err = await runBackup(
      { target, labels: [], verify: false },
      {
        engine: fakeEngine(() => data(['x'.repeat(100)])),
        destinations: [one, two],
        confirmLease: async (storage) => {
          asked.push(storage);
          if (storage === two) throw new LeaseLostError('memory: the lease of shop was taken over');
        },
      },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(asked).toHaveLength(2);
    expect(asked).toContain(two);
    expect([...two.objects.keys()].some((k) => k.endsWith('.manifest.json'))).toBe(false);
  });

  it('verify still answers when its result cannot be recorded (read-only storage)', async () => {
    const storage = new MemoryStorage();
    const engine = fakeEngine(() => data(['x'.repeat(1000)]));
    const { manifest } = await runBackup(
      { target, labels: [], verify: false },
      { engine, destinations: [storage] },
    );
    storage.put = async () => {
      throw new StorageError('memory: read-only');
    };
    const result = await verifyBackup(manifest, { storage, engine });
    expect(result).toMatchObject({ id: manifest.id, ok: true, recordError: 'memory: read-only' });
  });
});

describe('backup job with several destinations', () => {
  /** A storage whose data uploads fail after `after` bytes (a remote going away mid-upload). */
  function failingAfter(after: number): MemoryStorage {
    const storage = new MemoryStorage();
    const put = storage.put.bind(storage);
    storage.put = async (key: string, body: Body, options?: PutOptions) => {
      if (key.endsWith('.manifest.json')) return put(key, body, options);
      let seen = 0;
      async function* cut() {
        for await (const chunk of body) {
          seen += chunk.length;
          if (seen > after) throw new StorageError('memory: connection reset by peer');
          yield chunk;
        }
      }
      return put(key, cut(), options);
    };
    return storage;
  }

  // Poorly compressible, so the stored stream is several chunks long.
  const big = () => data(Array.from({ length: 8 }, () => randomBytes(512 * 1024).toString('base64')));

  it('writes the one dump to every destination, byte for byte, each with its manifest', async () => {
    const [a, b] = [new MemoryStorage(), new MemoryStorage()];
    let dumps = 0;
    const result = await runBackup(
      { target, labels: [], verify: false },
      {
        engine: fakeEngine(() => {
          dumps++;
          return big();
        }),
        destinations: [a, b],
      },
    );
    expect(dumps).toBe(1);
    expect(result.committed).toEqual([a, b]);
    expect(result.failures).toEqual([]);
    expect([...a.objects.keys()].sort()).toEqual([...b.objects.keys()].sort());
    for (const [key, obj] of a.objects) expect(obj.data.equals(b.objects.get(key)!.data)).toBe(true);
    expect(createHash('sha256').update(a.objects.get(result.manifest.object)!.data).digest('hex')).toBe(
      result.manifest.sha256,
    );
  });

  it('a destination failing mid-upload leaves the others committed and is reported', async () => {
    const local = new MemoryStorage();
    const remote = failingAfter(1024 * 1024);
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(big), destinations: [local, remote] },
    );
    expect(result.committed).toEqual([local]);
    expect(result.failures).toEqual([{ destination: remote, error: expect.any(StorageError) }]);
    expect(String((result.failures[0]!.error as Error).message)).toMatch(/connection reset/);
    expect((await readCatalog(local)).backups.map((m) => m.id)).toEqual([result.manifest.id]);
    expect(remote.objects.size).toBe(0);
  });

  it('a dump that fails reaches no destination; every destination failing fails the backup', async () => {
    const [a, b] = [new MemoryStorage(), new MemoryStorage()];
    await expect(
      runBackup(
        { target, labels: [], verify: false },
        { engine: fakeEngine(() => data(['some data', new Error('pg_dump died')])), destinations: [a, b] },
      ),
    ).rejects.toThrow(/pg_dump died/);
    expect(a.objects.size + b.objects.size).toBe(0);

    const [c, d] = [failingAfter(1000), failingAfter(2000)];
    await expect(
      runBackup({ target, labels: [], verify: false }, { engine: fakeEngine(big), destinations: [c, d] }),
    ).rejects.toBeInstanceOf(StorageError);
    expect(c.objects.size + d.objects.size).toBe(0);
  });
});

describe('backup job: destinations that misbehave', () => {
  it('a manifest write whose answer was lost is a commit, and data is never deleted under a manifest', async () => {
    const storage = new MemoryStorage();
    const put = storage.put.bind(storage);
    storage.put = async (key: string, body: Body, options?: PutOptions) => {
      const res = await put(key, body, options);
      if (key.endsWith('.manifest.json')) throw new StorageError('memory: connection reset after the write');
      return res;
    };
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['x'.repeat(1000)])), destinations: [storage] },
    );
    expect(result.failures).toEqual([]);
    expect((await readCatalog(storage)).backups.map((m) => m.id)).toEqual([result.manifest.id]);

    // Someone else's manifest under the key: the write fails, and their data is left alone.
    const other = new MemoryStorage();
    const otherPut = other.put.bind(other);
    other.put = async (key: string, body: Body, options?: PutOptions) => {
      if (key.endsWith('.manifest.json')) {
        await otherPut(key, [Buffer.from('{"not": "ours"}')]);
        throw new StorageConflictError('memory', key);
      }
      return otherPut(key, body, options);
    };
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['y'.repeat(1000)])), destinations: [other] },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect([...other.objects.keys()].some((k) => k.endsWith('.dump.zst'))).toBe(true);
  });

  it('a destination that cannot be reached at the start fails alone; the others get the backup', async () => {
    const local = new MemoryStorage();
    const down = new MemoryStorage();
    down.stat = async () => {
      throw new StorageError('memory: S3 is down', { transient: true });
    };
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeEngine(() => data(['z'.repeat(1000)])), destinations: [local, down] },
    );
    expect(result.committed).toEqual([local]);
    expect(result.failures).toEqual([
      { destination: down, error: expect.objectContaining({ message: 'memory: S3 is down' }) },
    ]);
    expect(down.objects.size).toBe(0);
  });

  it('when every destination has failed, a stalled dump is stopped at once', async () => {
    const [a, b] = [new MemoryStorage(), new MemoryStorage()];
    for (const s of [a, b]) {
      // Both fail before any data arrives (the connection is refused), while pg_dump sits on a lock.
      s.put = async () => {
        throw new StorageError('memory: disk full');
      };
    }
    const engine = fakeEngine(() => data([]));
    engine.dump = ({ signal }) =>
      (async function* () {
        yield Buffer.from('first rows');
        // pg_dump waiting on a lock: nothing more until it is killed.
        await new Promise((_, reject) => {
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason));
        });
      })();
    const started = Date.now();
    await expect(
      runBackup({ target, labels: [], verify: false }, { engine, destinations: [a, b] }),
    ).rejects.toThrow(/disk full/);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
