/** The size-change rule (jobs/size-change.ts): pure, with backups described by id, time, series and size. */
import { describe, expect, it } from 'vitest';
import { backupId } from '../../src/catalog/layout.ts';
import {
  assessSize,
  checkBackupSize,
  describeSizeChange,
  type SizedBackup,
} from '../../src/jobs/size-change.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { storeBackup } from '../support/manifests.ts';

const at = (day: number, sizeBytes: number, schemaOnly = false): SizedBackup => ({
  id: `shop-202611${String(day).padStart(2, '0')}T020000Z`,
  createdAt: `2026-11-${String(day).padStart(2, '0')}T02:00:00.000Z`,
  schemaOnly,
  sizeBytes,
});
const history = [at(1, 1000), at(2, 1100), at(3, 900), at(4, 1000)];

describe('size change of a new backup', () => {
  it('a dump half the usual size is flagged against the median of the earlier ones', () => {
    const a = assessSize(at(5, 400), history, 0.5)!;
    expect(a).toMatchObject({ medianBytes: 1000, basis: 4, change: -0.6, alert: true, series: 'full' });
    expect(describeSizeChange(a)).toMatch(
      /^backup shop-20261105T020000Z is 60% smaller than the median of the last 4 full backups \(400 B against 1\.00 KB\)/,
    );
  });

  it('within the threshold it is assessed but not flagged; above it on the upside too', () => {
    expect(assessSize(at(5, 1400), history, 0.5)).toMatchObject({ change: 0.4, alert: false });
    expect(assessSize(at(5, 2600), history, 0.5)).toMatchObject({ change: 1.6, alert: true });
    expect(describeSizeChange(assessSize(at(5, 2600), history, 0.5)!)).toContain('160% larger');
  });

  it('exactly at the threshold is not an alert; a lower threshold catches smaller changes', () => {
    expect(assessSize(at(5, 500), history, 0.5)?.alert).toBe(false);
    expect(assessSize(at(5, 850), history, 0.1)?.alert).toBe(true);
  });

  it('off (0) or too little history: no judgement', () => {
    expect(assessSize(at(5, 1), history, 0)).toBeUndefined();
    expect(assessSize(at(5, 1), history.slice(0, 2), 0.5)).toBeUndefined();
    expect(assessSize(at(5, 1), history.slice(0, 3), 0.5)).toMatchObject({ basis: 3, alert: true });
  });

  it('only earlier backups of the same series count: schema-only dumps never set the yardstick for full ones', () => {
    const mixed = [...history, at(5, 10, true), at(6, 12, true), at(7, 11, true)];
    expect(assessSize(at(8, 1000), mixed, 0.5)).toMatchObject({ medianBytes: 1000, alert: false });
    const schema = assessSize(at(8, 30, true), mixed, 0.5)!;
    expect(schema).toMatchObject({ series: 'schema-only', medianBytes: 11, alert: true });
    // The backup itself and later ones (a clock that went back) are ignored.
    expect(assessSize(at(3, 900), [...history, at(9, 1)], 0.5)).toBeUndefined();
  });

  it('the median of at most the last seven: one odd backup or an old era does not move it', () => {
    const old = [10, 11, 12, 13].map((d) => at(d, 50_000));
    const recent = [14, 15, 16, 17, 18, 19, 20].map((d, i) => at(d, i === 3 ? 9000 : 1000));
    const a = assessSize(at(21, 1000), [...recent, ...old], 0.5)!;
    expect(a).toMatchObject({ basis: 7, medianBytes: 1000, change: 0, alert: false });
  });

  it('backups planted with forged dates never set the yardstick read from storage', async () => {
    const storage = new MemoryStorage();
    const day = (d: number) => new Date(Date.UTC(2026, 10, d, 2));
    for (const d of [1, 2, 3]) await storeBackup(storage, day(d), { data: Buffer.alloc(1000) });
    // Small "backups" whose createdAt disagrees with their ids: counted, they would hide the drop below.
    for (const d of [4, 5, 6, 7, 8]) {
      await storeBackup(storage, day(d), {
        data: Buffer.alloc(100),
        overrides: { createdAt: new Date(day(d).getTime() + 3_600_000).toISOString() },
      });
    }
    const dropped = {
      id: backupId('shop', day(9)),
      createdAt: day(9).toISOString(),
      schemaOnly: false,
      sizeBytes: 100,
    };
    const warnings: string[] = [];
    const target = { name: 'shop', sizeChangeAlert: 0.5 };
    const a = await checkBackupSize(target, dropped, storage, day(9), undefined, warnings);
    expect(a).toMatchObject({ basis: 3, medianBytes: 1000, alert: true });
    expect(warnings).toEqual([]);
  });
});
