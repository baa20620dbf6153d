/**
 * The prune job against storage: what it reads as good, the order it deletes in, what a crash part-way
 * leaves, and that it never touches what it cannot read or what may still be in flight.
 */
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupId, drillKey, manifestKey, verifyKey } from '../../src/catalog/layout.ts';
import { serializeManifest } from '../../src/catalog/manifest.ts';
import {
  executePrune,
  type PruneTarget,
  planPrune,
  prune,
  throwIfPruneFailed,
} from '../../src/jobs/prune.ts';
import { LeaseLostError } from '../../src/lease/held.ts';
import { DEFAULT_RULES } from '../../src/retention/policy.ts';
import type { OpOptions, StorageBackend } from '../../src/storage/backend.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { CleanupError, StorageError } from '../../src/util/errors.ts';
import { storeBackup as store } from '../support/manifests.ts';
import { tempDir } from '../support/pg.ts';

const storeBackup = (
  storage: StorageBackend,
  daysAgo: number,
  options?: { schemaOnly?: boolean; verified?: boolean; drilled?: boolean },
) => store(storage, new Date(NOW.getTime() - daysAgo * DAY), options);

const DAY = 86_400_000;
const NOW = new Date();

const target: PruneTarget = {
  name: 'shop',
  timeZone: 'UTC',
  retention: {
    ...DEFAULT_RULES,
    keepDaily: 2,
    keepWeekly: 0,
    keepMonthly: 0,
    minKeep: 1,
    incompleteGraceHours: 24,
  },
};

/** Records deletes, and fails the ones `fail` picks. */
class RecordingStorage extends MemoryStorage {
  readonly deleted: string[] = [];
  fail: (key: string) => boolean = () => false;
  override async delete(key: string, _options?: OpOptions): Promise<void> {
    if (this.fail(key)) throw new StorageError(`memory: cannot delete ${key}: injected`);
    this.deleted.push(key);
    return super.delete(key);
  }
}

describe('prune job', () => {
  it('removes what retention drops: manifest first, then data, then the verify record', async () => {
    const storage = new RecordingStorage();
    const old = await storeBackup(storage, 5, { verified: true });
    const kept = [await storeBackup(storage, 1), await storeBackup(storage, 0)];
    const result = await prune(target, { storage, now: NOW });
    expect(result.failures).toEqual([]);
    expect(result.removed).toBe(1);
    expect(storage.deleted).toEqual([manifestKey('shop', old.id), old.object, verifyKey('shop', old.id)]);
    expect([...storage.objects.keys()].sort()).toEqual(
      kept.flatMap((m) => [manifestKey('shop', m.id), m.object]).sort(),
    );
    // Pruning again removes nothing.
    expect((await prune(target, { storage, now: NOW })).removed).toBe(0);
  });

  it('a run that finds its lease gone before a deletion stops there: nothing more is deleted', async () => {
    const storage = new RecordingStorage();
    await storeBackup(storage, 6);
    const old = await storeBackup(storage, 5);
    await storeBackup(storage, 1);
    await storeBackup(storage, 0);
    let confirmed = 0;
    const confirmLease = async (s: StorageBackend) => {
      expect(s).toBe(storage);
      // Taken over after the first removal (the newer old backup).
      if (++confirmed > 1) throw new LeaseLostError('memory: the lease of shop was taken over');
    };
    const err = await prune(target, { storage, now: NOW, confirmLease }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(storage.deleted).toEqual([manifestKey('shop', old.id), old.object]);
  });

  it('a dry run decides the same and deletes nothing', async () => {
    const storage = new RecordingStorage();
    for (const d of [9, 5, 1, 0]) await storeBackup(storage, d);
    const result = await prune(target, { storage, now: NOW }, { dryRun: true });
    expect(result.items.filter((i) => i.action === 'remove')).toHaveLength(2);
    expect(result.removed).toBe(0);
    expect(storage.deleted).toEqual([]);
  });

  it('a crash between manifest and data leaves an orphan that a later prune collects after the grace period', async () => {
    const storage = new RecordingStorage();
    const old = await storeBackup(storage, 5);
    await storeBackup(storage, 1);
    await storeBackup(storage, 0);
    storage.fail = (key) => key === old.object;
    const result = await prune(target, { storage, now: NOW });
    expect(result.failures).toEqual([
      expect.stringContaining(`${manifestKey('shop', old.id)}: memory: cannot delete ${old.object}`),
    ]);
    expect(() => throwIfPruneFailed(result)).toThrow(CleanupError);
    try {
      throwIfPruneFailed(result);
    } catch (err) {
      expect((err as CleanupError).exitCode).toBe(7);
    }
    // The manifest went first: no manifest points at missing data; the data is now an orphan.
    expect(storage.objects.has(manifestKey('shop', old.id))).toBe(false);
    expect(storage.objects.has(old.object)).toBe(true);

    storage.fail = () => false;
    const soon = await planPrune(target, { storage, now: NOW });
    const orphan = soon.items.find((i) => i.kind === 'incomplete')!;
    expect(orphan).toMatchObject({ id: old.id, action: 'keep', keys: [old.object] });
    expect(orphan.reasons[0]).toMatch(/younger than 24h: may be in flight/);

    const later = await prune(target, { storage, now: new Date(NOW.getTime() + 25 * 3_600_000) });
    expect(later.items.find((i) => i.kind === 'incomplete')).toMatchObject({ action: 'remove' });
    expect(storage.objects.has(old.object)).toBe(false);
  });

  it('backups whose verification failed or whose data is gone count for nothing and never displace good ones', async () => {
    const storage = new RecordingStorage();
    const good = [await storeBackup(storage, 4), await storeBackup(storage, 3)];
    const failed = await storeBackup(storage, 2, { verified: false });
    const missing = await storeBackup(storage, 1);
    await storage.delete(missing.object);
    const truncated = await storeBackup(storage, 0);
    storage.objects.get(truncated.object)!.data = Buffer.from('short');
    const plan = await planPrune(target, { storage, now: NOW });
    const byId = new Map(plan.items.map((i) => [i.id, i]));
    expect(byId.get(failed.id)).toMatchObject({
      action: 'keep',
      good: false,
      reasons: ['its verify failed (checksum)', 'inside the retention window'],
    });
    expect(byId.get(missing.id)?.reasons[0]).toBe('data object missing');
    expect(byId.get(truncated.id)?.reasons[0]).toMatch(/^data object is 5 bytes, manifest says \d+$/);
    // The two good ones fill keep-daily 2 even though three newer backups exist.
    expect(byId.get(good[1]!.id)).toMatchObject({ action: 'keep', good: true });
    expect(byId.get(good[0]!.id)).toMatchObject({ action: 'keep', good: true });
  });

  it('a backup that failed its restore drill is not good; its drill record goes with it, or alone once orphaned', async () => {
    const storage = new RecordingStorage();
    const old = await storeBackup(storage, 5, { verified: true, drilled: true });
    const failed = await storeBackup(storage, 2, { drilled: false });
    const good = [await storeBackup(storage, 1), await storeBackup(storage, 0)];
    const plan = await planPrune(target, { storage, now: NOW });
    const byId = new Map(plan.items.map((i) => [i.id, i]));
    expect(byId.get(failed.id)).toMatchObject({ good: false });
    expect(byId.get(failed.id)?.reasons[0]).toMatch(/^its drill at .* failed \(drill\)$/);
    expect(byId.get(good[0]!.id)).toMatchObject({ action: 'keep', good: true });
    await prune(target, { storage, now: NOW });
    expect(storage.deleted.filter((k) => k.includes(old.id))).toEqual([
      manifestKey('shop', old.id),
      old.object,
      verifyKey('shop', old.id),
      drillKey('shop', old.id),
    ]);
    // A drill record whose backup is gone is a leftover like an orphaned verify record.
    await storage.put(drillKey('shop', old.id), [Buffer.from('{}')]);
    const orphan = (await planPrune(target, { storage, now: NOW })).items.find(
      (i) => i.kind === 'drill-record',
    );
    expect(orphan).toMatchObject({ id: old.id, keys: [drillKey('shop', old.id)] });
  });

  it('never deletes what it cannot read: foreign files and data whose manifest is unreadable', async () => {
    const storage = new RecordingStorage();
    await storeBackup(storage, 0);
    const unreadable = await storeBackup(storage, 30);
    await storage.put(manifestKey('shop', unreadable.id), [
      Buffer.from('{"version": 99, "from": "the future"}'),
    ]);
    await storage.put('shop/notes.txt', [Buffer.from('not ours')]);
    const result = await prune(target, { storage, now: new Date(NOW.getTime() + 365 * DAY) });
    expect(storage.deleted).toEqual([]);
    expect(result.items.map((i) => i.kind)).toEqual(['backup']);
    expect(result.warnings.join('\n')).toMatch(/skipping shop\/notes.txt/);
    expect(result.warnings.join('\n')).toMatch(new RegExp(`skipping ${manifestKey('shop', unreadable.id)}`));
  });

  it('never deletes through a manifest whose data object is not its own, nor files with foreign extensions', async () => {
    const storage = new RecordingStorage();
    const kept = await storeBackup(storage, 0);
    const rogue = await storeBackup(storage, 30);
    const lying = { ...rogue, object: kept.object };
    await storage.put(manifestKey('shop', rogue.id), [serializeManifest(lying)]);
    const sidecar = `${rogue.object}.sha256`;
    await storage.put(sidecar, [Buffer.from('checksum file an operator wrote')]);
    const result = await prune(target, { storage, now: new Date(NOW.getTime() + 365 * DAY) });
    expect(storage.deleted).toEqual([]);
    expect(result.warnings.join('\n')).toContain(`its data object ${kept.object} is not ${rogue.id}'s`);
    expect(result.warnings.join('\n')).toContain(`skipping ${sidecar}: not a datasaver backup file`);
  });

  it('full and schema-only backups are thinned apart and never displace each other', async () => {
    const storage = new RecordingStorage();
    const full = await storeBackup(storage, 3);
    const schema = [0, 1, 2].map((d) => storeBackup(storage, d, { schemaOnly: true }));
    const schemas = await Promise.all(schema);
    const plan = await planPrune(
      { ...target, retention: { ...target.retention, keepDaily: 0, keepLast: 1, minKeep: 1 } },
      { storage, now: NOW },
    );
    const byId = new Map(plan.items.map((i) => [i.id, i]));
    expect(byId.get(full.id)).toMatchObject({ action: 'keep', series: 'full' });
    expect(byId.get(schemas[0]!.id)).toMatchObject({ action: 'keep', series: 'schema-only' });
    expect(byId.get(schemas[2]!.id)).toMatchObject({ action: 'remove', series: 'schema-only' });
  });

  it('only touches its own target', async () => {
    const storage = new RecordingStorage();
    await storeBackup(storage, 0);
    await storage.put('shopping/shopping-20200101T000000Z.dump', [Buffer.from('other target')]);
    await prune(target, { storage, now: new Date(NOW.getTime() + 365 * DAY) });
    expect(storage.objects.has('shopping/shopping-20200101T000000Z.dump')).toBe(true);
  });

  it('the plan refuses to run if it would remove every good backup', async () => {
    const storage = new RecordingStorage();
    const m = await storeBackup(storage, 0);
    const plan = await planPrune(target, { storage, now: NOW });
    const broken = { ...plan, items: plan.items.map((i) => ({ ...i, action: 'remove' as const })) };
    await expect(executePrune(broken, { storage })).rejects.toThrow(/would remove every good full backup/);
    expect(storage.objects.has(m.object)).toBe(true);
  });

  it('removes temporary files of crashed writes after the grace period, not before', async () => {
    const root = join(await tempDir(), 'root');
    const storage = new LocalStorage(root);
    await storeBackup(storage, 0);
    await mkdir(join(root, 'shop'), { recursive: true });
    const oldTemp = join(
      root,
      'shop',
      `.${backupId('shop', new Date(NOW.getTime() - 3 * DAY))}.dump.0123456789ab.tmp`,
    );
    const newTemp = join(root, 'shop', `.${backupId('shop', NOW)}-1.dump.ba9876543210.tmp`);
    const foreignTemp = join(root, 'shop', '.editor-save.0123456789ab.tmp');
    await writeFile(oldTemp, 'crashed');
    await writeFile(newTemp, 'in flight');
    await writeFile(foreignTemp, 'not datasaver');
    const threeDaysAgo = new Date(NOW.getTime() - 3 * DAY);
    await utimes(oldTemp, threeDaysAgo, threeDaysAgo);
    await utimes(foreignTemp, threeDaysAgo, threeDaysAgo);
    const result = await prune(target, { storage, now: NOW });
    const temps = result.items.filter((i) => i.kind === 'temporary');
    expect(temps.map((i) => i.action).sort()).toEqual(['keep', 'remove']);
    expect(temps.find((i) => i.action === 'remove')?.id).toBe(backupId('shop', threeDaysAgo));
    const left = (await storage.listTemporary('shop/')).map((t) => t.key).sort();
    expect(left).toEqual(['shop/.editor-save.0123456789ab.tmp', `shop/${newTemp.split('/').at(-1)}`].sort());
  });
});
