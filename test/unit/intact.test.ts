/** Which backup `restore latest` takes: the newest intact one, never a suspect one, never on a read error. */
import { describe, expect, it } from 'vitest';
import { trustedBackups } from '../../src/catalog/catalog.ts';
import { pickIntact } from '../../src/jobs/intact.ts';
import type { GetOptions } from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { StorageError } from '../../src/util/errors.ts';
import { storeBackup } from '../support/manifests.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const at = (hours: number) => new Date(NOW.getTime() - hours * 3_600_000);

/** Storage whose reads of one key fail as a network error would. */
class FailingReads extends MemoryStorage {
  readonly failing: string;
  constructor(failing: string) {
    super();
    this.failing = failing;
  }
  override async get(key: string, options: GetOptions = {}) {
    if (key === this.failing) throw new StorageError(`connection reset reading ${key}`);
    return super.get(key, options);
  }
}

describe('pickIntact over trustedBackups', () => {
  it('takes the newest intact backup, passing over damaged, failed-verify and suspect ones', async () => {
    const storage = new MemoryStorage();
    const good = await storeBackup(storage, at(4));
    const failedVerify = await storeBackup(storage, at(3), { verified: false });
    const damaged = await storeBackup(storage, at(2));
    const missing = await storeBackup(storage, at(1));
    // Dated next week: never a candidate at all.
    const future = await storeBackup(storage, new Date(NOW.getTime() + 7 * 86_400_000));
    const bytes = storage.objects.get(damaged.object)!.data;
    bytes[0] = bytes[0]! ^ 1;
    await storage.delete(missing.object);

    const candidates = await trustedBackups([storage], 'shop', { now: NOW });
    expect(candidates.map((c) => c.manifest.id)).not.toContain(future.id);
    const { chosen, passedOver } = await pickIntact(candidates, {});
    expect(chosen?.manifest.id).toBe(good.id);
    expect(passedOver.map((p) => [p.id, p.reason.split(':')[0]])).toEqual([
      [missing.id, 'missing'],
      [damaged.id, 'checksum'],
      [failedVerify.id, 'its verify failed (checksum)'],
    ]);
  });

  it('a copy damaged in one destination is passed over for the same backup intact in the next', async () => {
    const first = new MemoryStorage();
    const second = new MemoryStorage();
    await storeBackup(first, at(2));
    const backup = await storeBackup(first, at(1));
    await storeBackup(second, at(1));
    first.objects.get(backup.object)!.data[0]! ^= 1;
    const { chosen, passedOver } = await pickIntact(
      await trustedBackups([first, second], 'shop', { now: NOW }),
      {},
    );
    expect(chosen?.manifest.id).toBe(backup.id);
    expect(chosen?.storage).toBe(second);
    expect(passedOver).toEqual([
      { id: backup.id, storage: 'memory', reason: expect.stringMatching(/^checksum: /) },
    ]);
  });

  it('storage that cannot be read is an error, never a reason to take an older backup', async () => {
    const older = new MemoryStorage();
    await storeBackup(older, at(2));
    const newest = await storeBackup(older, at(1));
    const storage = new FailingReads(newest.object);
    for (const [key, value] of older.objects) storage.objects.set(key, value);
    const candidates = await trustedBackups([storage], 'shop', { now: NOW });
    await expect(pickIntact(candidates, {})).rejects.toThrow(/connection reset/);
  });
});
