/**
 * The drill job's judgement, with a fake engine as the scratch place: a copy equal to the recorded facts
 * passes; one that differs fails naming every item; a damaged object or a failed restore fails the
 * backup; a drill that cannot run records nothing; the scratch copy is always removed; and the record it
 * leaves makes the backup not good for `latest` and retention.
 */
import { describe, expect, it } from 'vitest';
import { trustedBackups } from '../../src/catalog/catalog.ts';
import { drillKey } from '../../src/catalog/layout.ts';
import type { DatabaseFacts, Engine } from '../../src/engines/engine.ts';
import { type DrillPlace, drillBackup } from '../../src/jobs/drill.ts';
import { pickIntact } from '../../src/jobs/intact.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { ConnectionError, DestinationError, RestoreError } from '../../src/util/errors.ts';
import { fakeEngine } from '../support/fake-engine.ts';
import { storeBackup } from '../support/manifests.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const RECORDED: DatabaseFacts = {
  exact: true,
  tables: [
    { name: 'public.orders', rows: 1000 },
    { name: 'public.users', rows: 10 },
  ],
  objects: [{ kind: 'tables', count: 2 }],
};

/** A scratch place whose engine restores by reading its input, then reads back `found`. */
function fakePlace(found: DatabaseFacts, restore?: () => Promise<void>) {
  const calls = { released: 0, restoredInto: [] as (string | undefined)[] };
  const engine: Engine = {
    ...fakeEngine(async function* () {}),
    restore: async (source, options) => {
      for await (const _ of source) {
        // the restore reads its whole input
      }
      calls.restoredInto.push(options.targetDatabase);
      await restore?.();
    },
    restoredFacts: async () => found,
  };
  const place: DrillPlace = {
    engine,
    database: 'shop',
    description: 'throwaway test server',
    release: async () => {
      calls.released++;
    },
  };
  return { place, calls };
}

async function setup(found: DatabaseFacts, restore?: () => Promise<void>) {
  const storage = new MemoryStorage();
  const manifest = await storeBackup(storage, NOW, { overrides: { facts: RECORDED } });
  const { place, calls } = fakePlace(found, restore);
  let ms = 0;
  const deps = {
    storage,
    openPlace: async () => place,
    now: () => NOW,
    clock: () => (ms += 250),
  };
  return { storage, manifest, calls, deps };
}

/** Redis facts of `keys` string keys in db0, `expiring` of them with a time to live. */
function stringKeys(keys: number, expiring: number): DatabaseFacts {
  const objects = [{ kind: 'string', count: keys }];
  if (expiring > 0) objects.push({ kind: 'expiring keys', count: expiring });
  return { exact: true, tables: [{ name: 'db0', rows: keys }], objects };
}

describe('drillBackup', () => {
  it('passes a copy equal to the recorded facts, times the restore and removes the copy', async () => {
    const { storage, manifest, calls, deps } = await setup(RECORDED);
    const result = await drillBackup(manifest, deps);
    expect(result).toMatchObject({ ok: true, reason: null, compared: 3, differences: [], restoreMs: 250 });
    expect(calls).toEqual({ released: 1, restoredInto: ['shop'] });
    const record = JSON.parse(storage.objects.get(drillKey('shop', manifest.id))!.data.toString());
    expect(record).toMatchObject({ id: manifest.id, ok: true, compared: 3, drilledAt: NOW.toISOString() });
  });

  it('fails a copy that differs, naming every item, and the backup stops being intact', async () => {
    const found = { ...RECORDED, tables: [{ name: 'public.orders', rows: 999 }] };
    const { storage, manifest, calls, deps } = await setup(found);
    const result = await drillBackup(manifest, deps);
    expect(result.ok).toBe(false);
    expect(result.reason).toBe('drill');
    expect(result.differences).toEqual([
      { item: 'table public.orders', expected: '1000', found: '999' },
      { item: 'table public.users', expected: '10', found: 'absent' },
    ]);
    expect(result.message).toContain('table public.orders: expected 1000, found 999');
    expect(calls.released).toBe(1);
    const { chosen, passedOver } = await pickIntact(
      await trustedBackups([storage], 'shop', { now: NOW }),
      {},
    );
    expect(chosen).toBeUndefined();
    expect(passedOver[0]?.reason).toBe(`its drill at ${NOW.toISOString()} failed (drill)`);
  });

  it('allows counts lower by no more than the keys that had a time to live', async () => {
    const recorded = stringKeys(10, 2);
    const found = stringKeys(8, 0);
    const { manifest, deps } = await setup(found);
    const tooMany = { ...found, tables: [{ name: 'db0', rows: 7 }] };
    const storage = deps.storage;
    const m = { ...manifest, facts: recorded };
    expect(await drillBackup(m, deps)).toMatchObject({ ok: true, differences: [] });
    const { place } = fakePlace(tooMany);
    const failed = await drillBackup(m, { ...deps, storage, openPlace: async () => place });
    expect(failed.differences).toEqual([{ item: 'table db0', expected: '10', found: '7' }]);
  });

  it('takes a key missing from the copy as expired only when a key with a time to live is missing', async () => {
    const recorded = stringKeys(10, 2);
    // Both keys with a time to live are still there: the one missing had none.
    const found = stringKeys(9, 2);
    const { manifest, deps } = await setup(found);
    const result = await drillBackup({ ...manifest, facts: recorded }, deps);
    expect(result).toMatchObject({ ok: false, reason: 'drill', expired: [] });
    expect(result.differences).toEqual([
      { item: 'table db0', expected: '10', found: '9' },
      { item: 'objects string', expected: '10', found: '9' },
    ]);
  });

  it('fails a backup whose stored object is damaged, before restoring anything', async () => {
    const { storage, manifest, calls, deps } = await setup(RECORDED);
    const bytes = storage.objects.get(manifest.object)!.data;
    bytes[0] = bytes[0]! ^ 1;
    const result = await drillBackup(manifest, deps);
    // It did not restore: no recovery time.
    expect(result).toMatchObject({ ok: false, reason: 'checksum', restoreMs: null });
    expect(calls).toEqual({ released: 1, restoredInto: [] });
  });

  it('fails a backup that does not restore', async () => {
    const { manifest, deps } = await setup(RECORDED, async () => {
      throw new RestoreError('pg_restore exited with code 1: syntax error');
    });
    expect(await drillBackup(manifest, deps)).toMatchObject({
      ok: false,
      reason: 'restore',
      restoreMs: null,
    });
  });

  it('records nothing when the drill cannot run, and still removes the copy', async () => {
    const { storage, manifest, calls, deps } = await setup(RECORDED, async () => {
      throw new ConnectionError('scratch server went away');
    });
    await expect(drillBackup(manifest, deps)).rejects.toThrow(ConnectionError);
    expect(calls.released).toBe(1);
    expect(storage.objects.has(drillKey('shop', manifest.id))).toBe(false);
  });

  it('a place that refuses the restore (no right to create the database, an extension missing) is no verdict', async () => {
    const { storage, manifest, deps } = await setup(RECORDED, async () => {
      throw new DestinationError('permission denied to create database');
    });
    await expect(drillBackup(manifest, deps)).rejects.toThrow(DestinationError);
    expect(storage.objects.has(drillKey('shop', manifest.id))).toBe(false);
  });

  it('fails a backup whose restored copy cannot be read back: the dump decides what the copy allows', async () => {
    const { manifest, deps } = await setup(RECORDED);
    const { place } = fakePlace(RECORDED);
    place.engine.restoredFacts = async () => {
      throw new ConnectionError('permission denied for database "shop"');
    };
    const result = await drillBackup(manifest, { ...deps, openPlace: async () => place });
    expect(result).toMatchObject({ ok: false, reason: 'restore' });
    expect(result.message).toContain('the restored copy cannot be read');
  });

  it('reports a copy it could not remove without changing the verdict', async () => {
    const { manifest, deps } = await setup(RECORDED);
    const { place } = fakePlace(RECORDED);
    place.release = async () => {
      throw new Error('server would not stop');
    };
    const result = await drillBackup(manifest, { ...deps, openPlace: async () => place });
    expect(result).toMatchObject({ ok: true, cleanupError: 'server would not stop' });
  });

  it('restores a backup with estimated facts, and says it compared nothing', async () => {
    const { manifest, deps } = await setup(RECORDED);
    const result = await drillBackup({ ...manifest, facts: { ...RECORDED, exact: false } }, deps);
    expect(result).toMatchObject({ ok: true, compared: 0 });
    expect(result.note).toContain('estimates');
  });
});
