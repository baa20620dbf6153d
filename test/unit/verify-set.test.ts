/**
 * Verify and `latest` over whole-server backup sets, with a fake whole-server engine and sets written
 * straight into memory storage: every part is checked, a failure names its part, the set is one result
 * and one record.
 */
import { describe, expect, it } from 'vitest';
import { trustedBackups } from '../../src/catalog/catalog.ts';
import { verifyKey } from '../../src/catalog/layout.ts';
import { pickIntact } from '../../src/jobs/intact.ts';
import { verifyBackup } from '../../src/jobs/verify.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { BackupError, UsageError } from '../../src/util/errors.ts';
import { fakeEngine, fakeServerEngine } from '../support/fake-engine.ts';
import { SET_TARGET, storeSet } from '../support/set-manifests.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const none = async function* (): AsyncIterable<Buffer> {};
const engine = () => fakeServerEngine({ globals: none, databases: {} });

async function stored() {
  const storage = new MemoryStorage();
  const manifest = await storeSet(storage, NOW, { app: {}, shop: {} });
  return { storage, manifest, shop: manifest.set!.databases[1]!.object };
}

describe('verifyBackup of a set', () => {
  it('checks every part and sums their entries; one record for the set', async () => {
    const { storage, manifest } = await stored();
    const inspected: string[] = [];
    const e = engine();
    const counting = {
      ...e,
      inspect: async (source: AsyncIterable<Buffer>, format: string) => {
        const chunks: Buffer[] = [];
        for await (const c of source) chunks.push(c);
        inspected.push(`${format}: ${Buffer.concat(chunks).toString()}`);
        return { entries: [{ type: 'TABLE', schema: 'public', name: 't' }] };
      },
    };
    const result = await verifyBackup(manifest, { storage, engine: counting, now: () => NOW });
    // One ROLE from the globals, one TABLE per database.
    expect(result).toMatchObject({ ok: true, entries: 3, reason: null });
    expect(inspected).toEqual(['custom: dump of app', 'custom: dump of shop']);
    const record = JSON.parse(storage.objects.get(verifyKey(SET_TARGET, manifest.id))!.data.toString());
    expect(record).toMatchObject({ id: manifest.id, ok: true });
  });

  it('finds a flipped byte in the second database, naming it', async () => {
    const { storage, manifest, shop } = await stored();
    const bytes = storage.objects.get(shop)!.data;
    bytes[2] = bytes[2]! ^ 1;
    const result = await verifyBackup(manifest, { storage, engine: engine() });
    expect(result.ok).toBe(false);
    expect(result.reason).toBe('checksum');
    expect(result.message).toMatch(/database shop: /);
    const record = JSON.parse(storage.objects.get(verifyKey(SET_TARGET, manifest.id))!.data.toString());
    expect(record).toMatchObject({ ok: false, reason: 'checksum' });
  });

  it('finds a missing part, naming it', async () => {
    const { storage, manifest, shop } = await stored();
    await storage.delete(shop);
    const result = await verifyBackup(manifest, { storage, engine: engine() });
    expect(result).toMatchObject({ ok: false, reason: 'missing' });
    expect(result.message).toContain(`database shop: data object ${shop} is missing`);
  });

  it('reads the globals through the engine: a script it refuses fails the structure pass as globals', async () => {
    const { storage, manifest } = await stored();
    const e = engine();
    const refusing = {
      ...e,
      serverSet: {
        ...e.serverSet,
        inspectGlobals: async (source: AsyncIterable<Buffer>) => {
          for await (const _ of source) {
            // read to the end, as the contract asks
          }
          throw new BackupError('the globals script holds DROP DATABASE shop, which no globals dump has');
        },
      },
    };
    const result = await verifyBackup(manifest, { storage, engine: refusing });
    expect(result).toMatchObject({ ok: false, reason: 'structure' });
    expect(result.message).toMatch(/\(structure\): globals: the globals script holds DROP DATABASE/);
  });

  it('refuses a set through an engine without whole-server support, recording nothing', async () => {
    const { storage, manifest } = await stored();
    await expect(verifyBackup(manifest, { storage, engine: fakeEngine(none) })).rejects.toThrow(UsageError);
    expect(storage.objects.has(verifyKey(SET_TARGET, manifest.id))).toBe(false);
  });
});

describe('latest over sets', () => {
  it('passes over a set whose second database is damaged, naming the part', async () => {
    const storage = new MemoryStorage();
    const older = await storeSet(storage, new Date(NOW.getTime() - 3_600_000), { app: {}, shop: {} });
    const newer = await storeSet(storage, NOW, { app: {}, shop: {} });
    const bytes = storage.objects.get(newer.set!.databases[1]!.object)!.data;
    bytes[0] = bytes[0]! ^ 1;
    const candidates = await trustedBackups([storage], SET_TARGET, { now: NOW });
    const { chosen, passedOver } = await pickIntact(candidates, {});
    expect(chosen?.manifest.id).toBe(older.id);
    expect(passedOver).toEqual([
      {
        id: newer.id,
        storage: storage.description,
        reason: expect.stringMatching(/^checksum: database shop: /),
      },
    ]);
  });
});
