/**
 * Resuming uploads between destinations: what a destination missed is copied from one that has it,
 * checked against the manifest, and only where that destination's retention would keep it.
 */
import { describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog.ts';
import type { PruneTarget } from '../../src/jobs/prune.ts';
import { resumeUploads } from '../../src/jobs/resume.ts';
import { LeaseLostError } from '../../src/lease/held.ts';
import { DEFAULT_RULES } from '../../src/retention/policy.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { storeBackup } from '../support/manifests.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-06-15T12:00:00Z');
const target: PruneTarget = {
  name: 'shop',
  timeZone: 'UTC',
  retention: { ...DEFAULT_RULES, incompleteGraceHours: 24 },
};
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

async function ids(storage: MemoryStorage): Promise<string[]> {
  return (await readCatalog(storage)).backups.map((m) => m.id);
}

describe('resume uploads', () => {
  it('copies what a destination missed, in both directions, and nothing twice', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    const shared = await storeBackup(local, ago(3));
    await storeBackup(remote, ago(3));
    const onlyLocal = await storeBackup(local, ago(1));
    const onlyRemote = await storeBackup(remote, ago(2));
    const copies = await resumeUploads(target, { destinations: [local, remote], now: NOW });
    expect(copies.map((c) => [c.id, c.to, c.error])).toEqual([
      [onlyRemote.id, 'memory', undefined],
      [onlyLocal.id, 'memory', undefined],
    ]);
    for (const s of [local, remote]) expect(await ids(s)).toEqual([shared.id, onlyRemote.id, onlyLocal.id]);
    expect(remote.objects.get(onlyLocal.object)!.data.equals(local.objects.get(onlyLocal.object)!.data)).toBe(
      true,
    );
    expect(await resumeUploads(target, { destinations: [local, remote], now: NOW })).toEqual([]);
  });

  it('a copy whose destination lease is lost before its manifest is written stops the resume uncommitted', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    await storeBackup(local, ago(2));
    await storeBackup(local, ago(1));
    const asked: StorageBackend[] = [];
    const confirmLease = async (storage: StorageBackend) => {
      asked.push(storage);
      throw new LeaseLostError('memory: the lease of shop was taken over');
    };
    const err = await resumeUploads(target, { destinations: [local, remote], now: NOW, confirmLease }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(asked).toEqual([remote]); // the first copy, and no further
    expect(await ids(remote)).toEqual([]);
  });

  it('does not bring back what the destination would prune anyway', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    // Local still has an old backup that remote already pruned: with keep-last 1 it is not worth copying.
    const old = await storeBackup(local, ago(40));
    const recent = await storeBackup(local, ago(1));
    await storeBackup(remote, ago(1));
    const lean = {
      ...target,
      retention: {
        ...target.retention,
        keepDaily: 0,
        keepWeekly: 0,
        keepMonthly: 0,
        keepLast: 1,
        minKeep: 1,
      },
    };
    expect(await resumeUploads(lean, { destinations: [local, remote], now: NOW })).toEqual([]);
    expect(await ids(remote)).toEqual([recent.id]);
    expect(old.id).not.toBe(recent.id);
  });

  it('a source whose bytes do not match the manifest is not copied, and the error says so', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    const m = await storeBackup(local, ago(1));
    const obj = local.objects.get(m.object)!;
    obj.data = Buffer.from(obj.data.toString().toUpperCase());
    const [copy] = await resumeUploads(target, { destinations: [local, remote], now: NOW });
    expect(copy!.error).toMatch(/does not match its manifest/);
    expect(remote.objects.size).toBe(0);
  });

  it('finishes a copy whose manifest write failed last time, if the data there is intact', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    const m = await storeBackup(local, ago(1));
    await remote.put(m.object, [local.objects.get(m.object)!.data]);
    const [copy] = await resumeUploads(target, { destinations: [local, remote], now: NOW });
    expect(copy!.error).toBeUndefined();
    expect(await ids(remote)).toEqual([m.id]);
  });
});
