import { describe, expect, it } from 'vitest';
import {
  backupId,
  compareIds,
  databasePart,
  dataExtension,
  dataKey,
  isLeaseKey,
  leaseKey,
  manifestKey,
  parseBackupId,
  parseKey,
  partKey,
} from '../../src/catalog/layout.ts';
import { isValidKey } from '../../src/storage/backend.ts';

describe('storage layout', () => {
  it('forms ids and keys as the README shows them', () => {
    const id = backupId('shop', new Date('2026-01-11T02:00:15.678Z'));
    expect(id).toBe('shop-20260111T020015Z');
    expect(dataKey('shop', id, dataExtension('dump', 'zst'))).toBe('shop/shop-20260111T020015Z.dump.zst');
    expect(manifestKey('shop', id)).toBe('shop/shop-20260111T020015Z.manifest.json');
    expect(dataExtension('sql', '')).toBe('sql');
    expect(dataExtension('dump', 'zst', true)).toBe('dump.zst.age');
    expect(dataExtension('rdb', '', true)).toBe('rdb.age');
  });

  it('reads keys back, and refuses what datasaver did not write', () => {
    expect(parseKey('shop/shop-20260111T020015Z.dump.zst')).toEqual({
      kind: 'data',
      target: 'shop',
      id: 'shop-20260111T020015Z',
      extension: 'dump.zst',
    });
    expect(parseKey('my-db/my-db-20260111T020015Z-2.manifest.json')).toMatchObject({
      kind: 'manifest',
      target: 'my-db',
      id: 'my-db-20260111T020015Z-2',
    });
    expect(parseKey('shop/shop-20260111T020015Z.verify.json')?.kind).toBe('verify');
    expect(parseKey('shop/shop-20260111T020015Z.mysql.sql.gz.age')).toMatchObject({
      kind: 'data',
      extension: 'mysql.sql.gz.age',
    });
    // The parts of a whole-server set: its globals and numbered databases.
    expect(parseKey(partKey('srv', 'srv-20260111T020015Z', databasePart(1), 'dump.zst'))).toEqual({
      kind: 'data',
      target: 'srv',
      id: 'srv-20260111T020015Z',
      extension: 'dump.zst',
      part: 'db2',
    });
    expect(parseKey('srv/srv-20260111T020015Z.globals.sql.zst.age')).toMatchObject({
      part: 'globals',
      extension: 'sql.zst.age',
    });
    for (const notAPart of ['db0', 'db01', 'dbx', 'globals2', 'shop', 'db1.db2']) {
      expect(parseKey(`srv/srv-20260111T020015Z.${notAPart}.dump.zst`), notAPart).toBeUndefined();
    }
    for (const foreign of [
      'README',
      'shop/notes.txt',
      'shop/other-20260111T020015Z.dump',
      'a/b/shop-20260111T020015Z.dump',
      'shop/shop-2026.dump',
      'shop/shop-20260111T020015Z.dump.age.zst',
    ]) {
      expect(parseKey(foreign), foreign).toBeUndefined();
    }
  });

  it("a target's lease key is its own, valid, and never a backup file", () => {
    expect(leaseKey('shop')).toBe('shop/shop.lease.json');
    expect(isValidKey(leaseKey('shop'))).toBe(true);
    expect(parseKey(leaseKey('shop'))).toBeUndefined();
    expect(isLeaseKey('shop/shop.lease.json')).toBe(true);
    for (const other of [
      'shop/other.lease.json',
      'shop.lease.json',
      'a/shop/shop.lease.json',
      'shop/shop.lease',
    ]) {
      expect(isLeaseKey(other), other).toBe(false);
    }
  });

  it('ids of a target sort by time, sequence numbers included', () => {
    const t0 = new Date('2026-01-11T02:00:15Z');
    const ids = [
      backupId('a', new Date('2027-01-01T00:00:00Z')),
      backupId('a', t0, 10),
      backupId('a', t0),
      backupId('a', t0, 2),
    ];
    expect([...ids].sort(compareIds)).toEqual([
      'a-20260111T020015Z',
      'a-20260111T020015Z-2',
      'a-20260111T020015Z-10',
      'a-20270101T000000Z',
    ]);
    expect(parseBackupId('a-b-20260111T020015Z-3')).toEqual({ target: 'a-b', time: t0, sequence: 3 });
    expect(parseBackupId('a-20261311T020015Z')).toBeUndefined();
  });
});
