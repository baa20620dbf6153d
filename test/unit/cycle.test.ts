/**
 * One run (jobs/cycle.ts) with a fake engine and in-memory storage: the size-change finding it carries,
 * and a full disk, made by a storage that fails with ENOSPC above a quota, where retention would prune.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { runCycle } from '../../src/jobs/cycle.ts';
import { isDiskFull } from '../../src/jobs/full-disk.ts';
import type { Body, PutOptions, PutResult } from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { StorageError } from '../../src/util/errors.ts';
import { fakeEngine } from '../support/fake-engine.ts';

/** In-memory storage on a disk of `quota` bytes: a write that would go past it fails as a full disk does. */
class SmallDisk extends MemoryStorage {
  quota = Number.POSITIVE_INFINITY;

  used(): number {
    return [...this.objects.values()].reduce((n, o) => n + o.data.length, 0);
  }

  override async put(key: string, body: Body, options: PutOptions = {}): Promise<PutResult> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (this.used() + size > this.quota) {
        const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        throw new StorageError(`${this.description}: cannot write ${key}: ${cause.message}`, { cause });
      }
      chunks.push(Buffer.from(chunk));
    }
    return super.put(key, chunks, options);
  }
}

/** A clock one minute further on each time it is read. */
function minutes(startIso = '2026-11-22T02:00:00Z'): () => Date {
  let t = Date.parse(startIso);
  return () => {
    t += 60_000;
    return new Date(t);
  };
}

function targetWith(retention: Partial<TargetConfig['retention']>, sizeChangeAlert = 0.5): TargetConfig {
  const base = offlineTarget('shop', undefined);
  const rules = { keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0, maxAgeDays: 0 };
  return { ...base, sizeChangeAlert, retention: { ...base.retention, ...rules, ...retention } };
}

/** Random bytes: compression cannot shrink them, so stored size follows raw size. */
const dumpOf = (bytes: number) =>
  fakeEngine(async function* () {
    yield Buffer.concat([Buffer.from('PGDMP'), randomBytes(bytes)]);
  });

async function ids(storage: MemoryStorage): Promise<string[]> {
  return (await readCatalog(storage)).backups.map((m) => m.id);
}

async function fill(
  storage: SmallDisk,
  target: TargetConfig,
  now: () => Date,
  count: number,
  bytes = 10_000,
) {
  for (let i = 0; i < count; i++) {
    await runCycle(
      { target, labels: [], verify: false, prune: false },
      { engine: dumpOf(bytes), destinations: [storage], now },
    );
  }
  return ids(storage);
}

/** A disk holding `count` 10 KB backups of a target with `retention`, with room for 5 KB more. */
async function fullDisk(retention: Partial<TargetConfig['retention']>, count: number) {
  const disk = new SmallDisk();
  const now = minutes();
  const target = targetWith(retention);
  const before = await fill(disk, target, now, count);
  disk.quota = disk.used() + 5_000;
  /** One more run of 10 KB (or what `engine` dumps); its error, if it throws. */
  const run = (prune = true, engine = dumpOf(10_000)) =>
    runCycle({ target, labels: [], verify: false, prune }, { engine, destinations: [disk], now });
  return { disk, before, run };
}

describe('a full disk where retention would prune anyway', () => {
  it('prunes what retention removes (judged without the new backup), then the retry succeeds', async () => {
    const { disk, before, run } = await fullDisk({ keepLast: 2, minKeep: 2 }, 4);
    const cycle = await run();
    // Before the retry: the two oldest, which keep_last 2 removes; the two newest stay.
    expect(cycle.prunedFirst?.[0]?.items.filter((i) => i.action === 'remove').map((i) => i.id)).toEqual([
      before[1],
      before[0],
    ]);
    expect(cycle.prunedFirst?.[0]?.removed).toBe(2);
    // After it, the ordinary prune counts the new backup: keep_last 2 keeps it and the newest old one.
    expect(await ids(disk)).toEqual([before[3], cycle.backup.manifest.id]);
    expect(cycle.problems).toEqual([]);
  });

  it('never below min-keep: nothing to remove means the full-disk error, with why, and nothing deleted', async () => {
    const { disk, before, run } = await fullDisk({ keepLast: 1, minKeep: 4 }, 4);
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(isDiskFull(err)).toBe(true);
    expect((err as StorageError).message).toMatch(
      /no space left on device.*; retention keeps every backup there, so nothing was removed to make room$/,
    );
    expect((err as StorageError).hint).toMatch(/free space on memory, keep fewer backups/);
    expect(await ids(disk)).toEqual(before);
  });

  it('with --no-prune nothing is removed, and the error says why', async () => {
    const { disk, before, run } = await fullDisk({ keepLast: 1, minKeep: 1 }, 3);
    const err = await run(false).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/pruning is off for this run \(--no-prune\)/);
    expect(await ids(disk)).toEqual(before);
  });

  it('retries once: a backup that still does not fit fails, saying what was pruned', async () => {
    const { disk, before, run } = await fullDisk({ keepLast: 2, minKeep: 2 }, 3);
    let dumps = 0;
    const engine = fakeEngine(async function* () {
      dumps++;
      yield randomBytes(50_000);
    });
    const err = await run(true, engine).catch((e: unknown) => e);
    expect(dumps).toBe(2);
    expect((err as Error).message).toMatch(/it did not fit even after pruning 1 item\(s\) \(10\.\d+ KB\)/);
    expect(await ids(disk)).toEqual(before.slice(1));
  });

  it('other storage errors are not retried and prune nothing', async () => {
    const { disk, before, run } = await fullDisk({ keepLast: 1, minKeep: 1 }, 3);
    const put = disk.put.bind(disk);
    disk.put = async (key, body, options) => {
      if (key.endsWith('.zst')) throw new StorageError('memory: access denied');
      return put(key, body, options);
    };
    await expect(run(true, dumpOf(100))).rejects.toThrow(/^memory: access denied$/);
    expect(await ids(disk)).toEqual(before);
  });
});

describe('a full disk beside another destination', () => {
  /** A small disk and a roomy store, both holding `count` 10 KB backups; the disk has 5 KB left. */
  async function twoDestinations(retention: Partial<TargetConfig['retention']>, count: number) {
    const disk = new SmallDisk();
    const remote = new MemoryStorage();
    const now = minutes();
    const target = targetWith(retention);
    for (let i = 0; i < count; i++) {
      await runCycle(
        { target, labels: [], verify: false, prune: false },
        { engine: dumpOf(10_000), destinations: [disk, remote], now },
      );
    }
    disk.quota = disk.used() + 5_000;
    const run = () =>
      runCycle(
        { target, labels: [], verify: false, prune: true },
        { engine: dumpOf(10_000), destinations: [disk, remote], now },
      );
    return { disk, remote, before: await ids(disk), run };
  }

  it('the others take the backup; the full one is pruned as retention says and gets a checked copy', async () => {
    const { disk, remote, before, run } = await twoDestinations({ keepLast: 2, minKeep: 2 }, 3);
    const cycle = await run();
    expect(cycle.problems).toEqual([]);
    expect(cycle.backup.committed).toEqual([disk, remote]);
    expect(cycle.prunedFirst?.map((p) => p.removed)).toEqual([1]);
    const id = cycle.backup.manifest.id;
    expect(await ids(disk)).toEqual([before[2], id]);
    expect(await ids(remote)).toEqual([before[2], id]);
    const stored = (await readCatalog(disk)).objects.get(cycle.backup.manifest.object);
    expect(stored?.size).toBe(cycle.backup.manifest.storedBytes);
  });

  it('retention keeps everything on the full one: an upload problem saying so, the backup kept on the other', async () => {
    const { disk, remote, before, run } = await twoDestinations({ keepLast: 10, minKeep: 1 }, 3);
    const cycle = await run();
    expect(cycle.backup.committed).toEqual([remote]);
    expect(cycle.problems).toEqual([
      expect.objectContaining({
        stage: 'upload',
        exitCode: 6,
        message: expect.stringMatching(/no space left on device.*retention keeps every backup there/),
      }),
    ]);
    expect(await ids(disk)).toEqual(before);
    expect(await ids(remote)).toEqual([...before, cycle.backup.manifest.id]);
  });
});

describe('the size of a new backup against the recent ones', () => {
  it('a much smaller dump (a dropped table) comes back as an alert in the cycle result', async () => {
    const storage = new SmallDisk();
    const now = minutes();
    const target = targetWith({ keepLast: 10, minKeep: 1 });
    await fill(storage, target, now, 4, 20_000);
    const cycle = await runCycle(
      { target, labels: [], verify: false, prune: true },
      { engine: dumpOf(5_000), destinations: [storage], now },
    );
    expect(cycle.size).toMatchObject({ alert: true, basis: 4, medianBytes: 20_005, sizeBytes: 5005 });
    expect(cycle.size!.change).toBeCloseTo(-0.75, 2);
    const steady = await runCycle(
      { target, labels: [], verify: false, prune: true },
      { engine: dumpOf(20_000), destinations: [storage], now },
    );
    expect(steady.size).toMatchObject({ alert: false, basis: 5 });
    const off = await runCycle(
      { target: { ...target, sizeChangeAlert: 0 }, labels: [], verify: false, prune: true },
      { engine: dumpOf(10), destinations: [storage], now },
    );
    expect(off.size).toBeUndefined();
  });
});
