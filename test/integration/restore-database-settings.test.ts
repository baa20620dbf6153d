/**
 * What is set on a PostgreSQL database itself (owner, ALTER DATABASE / ALTER ROLE IN DATABASE settings,
 * grants, comment) reaches the database a restore creates under another name, in both formats, so the
 * application's role sees the restored database as it saw the original.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { databaseExists, query, server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

const PASSWORD = 'app-secret-pw';
let app: string;
let reporting: string;

beforeAll(async () => {
  app = uniqueName('app');
  reporting = uniqueName('reporting');
  await query('postgres', `CREATE ROLE "${app}" LOGIN PASSWORD '${PASSWORD}'; CREATE ROLE "${reporting}"`);
});

/** Runs `sql` as the application's role, in `database`. */
async function asApp(database: string, sql: string): Promise<unknown[]> {
  const s = server();
  const client = new pg.Client({ host: s.host, port: s.port, user: app, password: PASSWORD, database });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** The source database of the scenario: owned by the app, search_path set on the database. */
async function shop(): Promise<string> {
  const name = uniqueName('shop');
  await query('postgres', `CREATE DATABASE "${name}" OWNER "${app}"`);
  await query(
    'postgres',
    `ALTER DATABASE "${name}" SET search_path = billing, public;
     ALTER DATABASE "${name}" SET "TimeZone" = 'Pacific/Auckland';
     ALTER ROLE "${reporting}" IN DATABASE "${name}" SET work_mem = '8MB';
     REVOKE CONNECT ON DATABASE "${name}" FROM PUBLIC;
     GRANT CONNECT ON DATABASE "${name}" TO "${app}";
     GRANT TEMPORARY ON DATABASE "${name}" TO "${reporting}" WITH GRANT OPTION;
     COMMENT ON DATABASE "${name}" IS 'the shop''s data; \\ and "quotes"'`,
  );
  await asApp(
    name,
    'CREATE SCHEMA billing; CREATE TABLE billing.t (id int); INSERT INTO billing.t VALUES (1)',
  );
  return name;
}

/** Everything set on a database, with its name replaced, to compare two databases. */
async function databaseProperties(name: string) {
  const rows = await query(
    'postgres',
    `SELECT pg_get_userbyid(d.datdba) AS owner,
            (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(d.datacl) a) AS acl,
            shobj_description(d.oid, 'pg_database') AS comment,
            (SELECT json_agg(json_build_object('role', s.setrole::regrole::text, 'config', s.setconfig)
                             ORDER BY s.setrole)
               FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
       FROM pg_database d WHERE d.datname = '${name}'`,
  );
  return rows[0];
}

describe.each(['custom', 'plain'])('restore into a new database (%s format)', (format) => {
  it('carries owner, settings, grants and comment, so the app sees its tables', async () => {
    const source = await shop();
    const env = targetEnv(source, await tempDir(), { DATASAVER_FORMAT: format });
    expect((await runCli(['backup'], env)).code).toBe(0);
    const copy = uniqueName('shop_copy');
    const res = await runCli(['restore', 'latest', '--target-db', copy], env);
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toContain(`database settings applied: owner ${app}`);

    expect(await asApp(copy, 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 1 }]);
    expect(await asApp(copy, 'SHOW "TimeZone"')).toEqual([{ TimeZone: 'Pacific/Auckland' }]);
    const original = await databaseProperties(source);
    // PUBLIC keeps TEMPORARY alone: CONNECT was revoked.
    expect(original?.acl).toContain(`=T/${app}`);
    expect(await databaseProperties(copy)).toEqual(original);
  });
});

describe('restoring into a database that exists', () => {
  it('--drop-existing gives the recreated database the recorded settings; --force leaves its own', async () => {
    const source = await shop();
    const env = targetEnv(source, await tempDir());
    expect((await runCli(['backup'], env)).code).toBe(0);
    const copy = uniqueName('shop_copy');
    expect((await runCli(['restore', 'latest', '--target-db', copy], env)).code).toBe(0);
    const changes = `ALTER DATABASE "${copy}" SET "TimeZone" = 'UTC'; COMMENT ON DATABASE "${copy}" IS 'changed'`;
    await query('postgres', changes);
    const changed = await databaseProperties(copy);

    const forced = await runCli(['restore', 'latest', '--target-db', copy, '--force'], env);
    expect(forced.code, forced.output).toBe(0);
    expect(forced.stdout).not.toContain('database settings applied');
    expect(await databaseProperties(copy)).toEqual(changed);

    const dropped = await runCli(['restore', 'latest', '--target-db', copy, '--drop-existing'], env);
    expect(dropped.code, dropped.output).toBe(0);
    expect(await databaseProperties(copy)).toEqual(await databaseProperties(source));
    expect(await asApp(copy, 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 1 }]);
  });
});

describe('roles the backed-up database names are missing on the restore server', () => {
  let env: Record<string, string>;
  let ghost: string;

  beforeAll(async () => {
    ghost = uniqueName('ghost');
    const source = uniqueName('ghostly');
    await query('postgres', `CREATE ROLE "${ghost}"`);
    await query('postgres', `CREATE DATABASE "${source}" OWNER "${ghost}"`);
    await query(
      'postgres',
      `ALTER DATABASE "${source}" SET "TimeZone" = 'Asia/Tokyo';
       ALTER ROLE "${ghost}" IN DATABASE "${source}" SET work_mem = '4MB';
       GRANT CONNECT ON DATABASE "${source}" TO "${ghost}"`,
    );
    env = targetEnv(source, await tempDir());
    expect((await runCli(['backup'], env)).code).toBe(0);
    // The restore server lacks the role: the database is dropped first, so the role can go.
    await query('postgres', `DROP DATABASE "${source}"`);
    await query('postgres', `DROP ROLE "${ghost}"`);
  });

  it('refuses before creating anything, naming the role and the option', async () => {
    const copy = uniqueName('ghost_copy');
    const res = await runCli(['restore', 'latest', '--target-db', copy], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(ghost);
    expect(res.stderr).toContain('--skip-missing-roles');
    expect(await databaseExists(copy)).toBe(false);
  });

  it('with --skip-missing-roles restores, applies the rest and says what it skipped', async () => {
    const copy = uniqueName('ghost_copy');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--skip-missing-roles'], env);
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toContain(
      `database settings skipped (role missing on this server): owner ${ghost}; setting role ${ghost}: work_mem = 4MB; grant CONNECT to ${ghost}`,
    );
    expect(res.stdout).toContain('database settings applied: setting TimeZone = Asia/Tokyo');
    const props = await databaseProperties(copy);
    expect(props?.owner).toBe(server().user);
    expect(props?.settings).toEqual([{ role: '-', config: ['TimeZone=Asia/Tokyo'] }]);
  });
});

describe('a forged manifest', () => {
  it('with a setting name that is SQL is refused before anything is restored', async () => {
    // Storage is untrusted: the manifest fails validation (manifest-read.ts), so the backup is not restorable.
    const source = await shop();
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    expect((await runCli(['backup'], env)).code).toBe(0);
    const file = join(
      storage,
      (await readdir(storage, { recursive: true })).find((f) => f.endsWith('.manifest.json'))!,
    );
    const manifest = JSON.parse(await readFile(file, 'utf8'));
    manifest.databaseSettings.settings.push({
      role: null,
      name: 'x = 1; DROP ROLE postgres; --',
      value: 'v',
    });
    await writeFile(file, JSON.stringify(manifest));
    const copy = uniqueName('forged_copy');
    const id = file.split('/').at(-1)!.replace('.manifest.json', '');
    const res = await runCli(['restore', id, '--target-db', copy], env);
    expect(res.code, res.output).not.toBe(0);
    // The same manifest with the setting's name restored is a backup again.
    manifest.databaseSettings.settings.pop();
    await writeFile(file, JSON.stringify(manifest));
    expect(await databaseExists(copy)).toBe(false);
    const again = await runCli(['restore', id, '--target-db', copy], env);
    expect(again.code, again.output).toBe(0);
  });
});
