import { describe, expect, it } from 'vitest';
import { isWholeServerTarget } from '../../src/config/server-set-settings.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { engineDescriptor } from '../../src/engines/registry.ts';
import { configError, configParser } from '../support/config.ts';

const parse = configParser({});
const STORAGE = { DATASAVER_STORAGE_PATH: '/b' };
const whole = (t: TargetConfig) =>
  isWholeServerTarget({ descriptor: engineDescriptor(t.engine), connection: t.connection });

describe('whole-server PostgreSQL targets', () => {
  it('a target naming no database backs up the whole server, named after the engine', () => {
    const t = parse({ ...STORAGE, DATASAVER_DATABASE_URL: 'postgres://u:p@db:5432' }).targets[0]!;
    expect(t).toMatchObject({ name: 'postgres', excludeDatabases: [], dumpJobs: 1 });
    expect(t.connection.database).toBeUndefined();
    expect(whole(t)).toBe(true);
  });

  it('`*` is the whole server too; a named database is not', () => {
    const star = parse({ ...STORAGE, DATASAVER_DB_HOST: 'db', DATASAVER_DB_NAME: '*' }).targets[0]!;
    expect(star.name).toBe('postgres');
    expect(whole(star)).toBe(true);
    const url = parse({
      ...STORAGE,
      DATASAVER_DATABASE_URL: 'postgres://db/*',
      DATASAVER_TARGET_NAME: 'main',
    });
    expect(whole(url.targets[0]!)).toBe(true);
    const named = parse({ ...STORAGE, DATASAVER_DATABASE_URL: 'postgres://db/shop' }).targets[0]!;
    expect(whole(named)).toBe(false);
    // MySQL's "all databases" stays one dump, never a set.
    const mysql = parse({ ...STORAGE, DATASAVER_DATABASE_URL: 'mysql://db' }).targets[0]!;
    expect(whole(mysql)).toBe(false);
  });

  it('reads the databases to leave out and how many to dump at once', () => {
    const t = parse({
      ...STORAGE,
      DATASAVER_DB_HOST: 'db',
      DATASAVER_DB_EXCLUDE: 'scratch, old_app  scratch',
      DATASAVER_DUMP_JOBS: '4',
    }).targets[0]!;
    expect(t).toMatchObject({ excludeDatabases: ['scratch', 'old_app'], dumpJobs: 4 });
  });

  it('takes a YAML list of databases to leave out', () => {
    const yaml = `
targets:
  main:
    host: db
    exclude_databases: [scratch, "odd name"]
    dump_jobs: 2
    storage:
      path: /b
`;
    expect(parse({}, yaml).targets[0]).toMatchObject({
      excludeDatabases: ['scratch', 'odd name'],
      dumpJobs: 2,
    });
  });

  it('refuses an exclude list on a target that is not a whole server, and dump jobs out of range', () => {
    const named = configError(() =>
      parse({ ...STORAGE, DATASAVER_DATABASE_URL: 'postgres://db/shop', DATASAVER_DB_EXCLUDE: 'a' }),
    );
    expect(named.message).toContain('DATASAVER_DB_EXCLUDE: only a whole-server PostgreSQL target');
    expect(named.message).toContain('this one names database shop');
    const mysql = configError(() =>
      parse({ ...STORAGE, DATASAVER_DATABASE_URL: 'mysql://db', DATASAVER_DB_EXCLUDE: 'a' }),
    );
    expect(mysql.message).toContain('MySQL/MariaDB backups are not sets of databases');
    expect(mysql.message).not.toContain('DATASAVER_DB_NAME=*');
    const jobs = configError(() => parse({ ...STORAGE, DATASAVER_DB_HOST: 'db', DATASAVER_DUMP_JOBS: '17' }));
    expect(jobs.message).toContain('DATASAVER_DUMP_JOBS');
    const empty = configError(() =>
      parse({ ...STORAGE, DATASAVER_DB_HOST: 'db', DATASAVER_DB_EXCLUDE: ' , ' }),
    );
    expect(empty.message).toContain('names no database');
  });

  it('takes the exclude list with the connection: a config file ignores it from the environment', () => {
    const yaml = `
targets:
  shop:
    url: postgres://db/shop
    storage:
      path: /b
`;
    const cfg = parse({ DATASAVER_DB_EXCLUDE: 'scratch' }, yaml);
    expect(cfg.targets[0]!.excludeDatabases).toEqual([]);
    expect(cfg.warnings.join('\n')).toContain('DATASAVER_DB_EXCLUDE is ignored');
  });
});
