/**
 * The jobs that handle stored backups whole, on backup sets: prune removes a set with every part and
 * judges it by every part; resume copies every part, then the manifest, or nothing.
 */
import { describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog.ts';
import { manifestKey } from '../../src/catalog/layout.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { storedObjects } from '../../src/catalog/parts.ts';
import { offlineTarget } from '../../src/config/target.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { type PruneTarget, planPrune, prune } from '../../src/jobs/prune.ts';
import { resumeUploads } from '../../src/jobs/resume.ts';
import { DEFAULT_RULES } from '../../src/retention/policy.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { fakeServerEngine } from '../support/fake-engine.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-06-15T12:00:00Z');
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

const target: PruneTarget = {
  name: 'srv',
  timeZone: 'UTC',
  retention: {
    ...DEFAULT_RULES,
    keepDaily: 1,
    keepWeekly: 0,
    keepMonthly: 0,
    minKeep: 1,
    incompleteGraceHours: 24,
  },
};

async function* text(s: string): AsyncGenerator<Buffer> {
  yield Buffer.from(s);
}

/** A set of two databases taken `daysAgo`, stored in `storage`. */
async function storeSet(storage: MemoryStorage, daysAgo: number): Promise<Manifest> {
  const engine = fakeServerEngine({
    globals: () => text('CREATE ROLE app;\n'),
    databases: { app: () => text(`PGDMP app ${daysAgo}`), shop: () => text(`PGDMP shop ${daysAgo}`) },
  });
  const { manifest } = await runBackup(
    { target: offlineTarget('srv', undefined), labels: [], verify: false },
    { engine, destinations: [storage], now: () => ago(daysAgo) },
  );
  return manifest;
}

describe('prune of backup sets', () => {
  it('removes a set with every part, manifest first, and counts the bytes of every part', async () => {
    const storage = new MemoryStorage();
    const old = await storeSet(storage, 5);
    const kept = await storeSet(storage, 1);
    const parts = storedObjects(old).map((o) => o.object);
    const result = await prune(target, { storage, now: NOW });
    const item = result.items.find((i) => i.id === old.id)!;
    expect(item).toMatchObject({ action: 'remove', keys: [manifestKey('srv', old.id), ...parts] });
    expect(parts).toHaveLength(3);
    expect(item.bytes).toBe(old.storedBytes);
    expect([...storage.objects.keys()].filter((k) => k.includes(old.id))).toEqual([]);
    expect((await readCatalog(storage)).backups.map((m) => m.id)).toEqual([kept.id]);
  });

  it('a set missing one part is not good: it never fills a retention rule', async () => {
    const storage = new MemoryStorage();
    const older = await storeSet(storage, 2);
    const newer = await storeSet(storage, 1);
    const lost = storedObjects(newer)[2]!.object;
    await storage.delete(lost);
    const plan = await planPrune(target, { storage, now: NOW });
    const byId = new Map(plan.items.map((i) => [i.id, i]));
    expect(byId.get(newer.id)).toMatchObject({ good: false });
    expect(byId.get(newer.id)!.reasons.join(' ')).toContain(`data object ${lost} missing`);
    expect(byId.get(older.id)).toMatchObject({ good: true, action: 'keep' });
  });
});

describe('resume of backup sets', () => {
  it('copies every part byte for byte, then the manifest', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    const set = await storeSet(local, 1);
    const copies = await resumeUploads(target, { destinations: [local, remote], now: NOW });
    expect(copies).toEqual([{ id: set.id, from: 'memory', to: 'memory', bytes: set.storedBytes }]);
    for (const { object } of storedObjects(set)) {
      expect(remote.objects.get(object)!.data.equals(local.objects.get(object)!.data)).toBe(true);
    }
    expect((await readCatalog(remote)).backups.map((m) => m.id)).toEqual([set.id]);
  });

  it('a damaged part copies nothing: the parts copied before it are removed again', async () => {
    const [local, remote] = [new MemoryStorage(), new MemoryStorage()];
    const set = await storeSet(local, 1);
    const last = storedObjects(set)[2]!.object;
    const stored = local.objects.get(last)!;
    local.objects.set(last, { ...stored, data: Buffer.from(stored.data).fill(0x41, 0, 1) });
    const copies = await resumeUploads(target, { destinations: [local, remote], now: NOW });
    expect(copies[0]!.error).toMatch(/does not match its manifest/);
    expect(remote.objects.size).toBe(0);
  });
});
