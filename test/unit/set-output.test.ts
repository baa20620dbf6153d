/** What `backup` and `list` print of a whole-server set: its databases, what was left out, and why. */
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { setSummary } from '../../src/cli/backup-output.ts';
import { databaseColumn } from '../../src/cli/list.ts';
import { setWarnings } from '../../src/jobs/backup-set.ts';

const members = {
  databases: ['app', 'shop'],
  excluded: ['tmp'],
  unreadable: [{ database: 'hr', reason: 'no CONNECT privilege' }],
  rolePasswords: false,
};

describe('set output', () => {
  it('names the databases of a set and those excluded', () => {
    expect(setSummary(members)).toBe('whole server: 2 databases (app, shop); excluded: tmp');
    expect(setSummary({ ...members, databases: ['x\u001b[2J'], excluded: [] })).toBe(
      'whole server: 1 database (x\\x1b[2J)',
    );
  });

  it('warns of every database the user could not read, and of role passwords not read', () => {
    expect(setWarnings(members)).toEqual([
      'database hr is not in the backup (no CONNECT privilege)',
      'role passwords are not in the backup: the backup user cannot read them; restored roles get no password',
    ]);
    expect(setWarnings({ ...members, unreadable: [], rolePasswords: true })).toEqual([]);
    expect(setWarnings(undefined)).toEqual([]);
  });

  it("list's database column: the database, or the server and how many databases", () => {
    const one = { database: 'shop' } as Manifest;
    expect(databaseColumn(one)).toBe('shop');
    expect(databaseColumn({ database: null } as Manifest)).toBe('-');
    const set = { database: null, set: { databases: [{}, {}, {}] } } as unknown as Manifest;
    expect(databaseColumn(set)).toBe('server (3 databases)');
  });
});
