/**
 * Reading whole-server backup sets back against real servers of their own: a set restores onto a second,
 * fresh server (roles with their passwords and memberships, every database with its owner and settings,
 * every row); `--database` with `--target-db` restores one database alone under another name; a set is
 * refused over databases that hold objects unless `--drop-existing`; verify checks every part; a drill of
 * a set passes, and fails naming the database whose recorded row count differs.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { runCli } from '../support/cli.ts';
import { tempDir } from '../support/pg.ts';
import { type PostgresServer, startPostgres } from '../support/postgres-server.ts';

const APP_PASSWORD = 'app-pw-7c1e';
let source: PostgresServer;
let fresh: PostgresServer;
let storage: string;
let set: Manifest;

beforeAll(async () => {
  [source, fresh] = await Promise.all([startPostgres(), startPostgres()]);
  for (const sql of [
    'CREATE ROLE grp NOLOGIN',
    `CREATE ROLE app LOGIN PASSWORD '${APP_PASSWORD}' IN ROLE grp`,
    'CREATE DATABASE shop OWNER app',
    'CREATE DATABASE crm OWNER grp',
    "ALTER DATABASE shop SET work_mem = '8MB'",
    "ALTER ROLE app IN DATABASE shop SET statement_timeout = '5s'",
    "ALTER DATABASE postgres SET work_mem = '7MB'",
  ])
    await source.query('postgres', sql);
  await source.query(
    'shop',
    `CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 5);
     ALTER TABLE orders OWNER TO app`,
  );
  await source.query(
    'crm',
    `CREATE TABLE contacts (id int); INSERT INTO contacts SELECT generate_series(1, 3);
     ALTER TABLE contacts OWNER TO grp; GRANT SELECT ON contacts TO app`,
  );
  storage = await tempDir();
  const res = await runCli(['backup', '--json'], env(source));
  expect(res.code, res.output).toBe(0);
  set = JSON.parse(res.stdout).backups[0];
}, 180_000);

afterAll(async () => {
  await Promise.all([source?.stop(), fresh?.stop()]);
});

/** The CLI's environment for a whole-server target `srv` on `server`, storing under the shared storage. */
function env(server: PostgresServer): Record<string, string> {
  return {
    DATASAVER_DATABASE_URL: server.url('*'),
    DATASAVER_TARGET_NAME: 'srv',
    DATASAVER_STORAGE_PATH: storage,
  };
}

/** Logs in to `server` as the restored application role, with its own password. */
async function asApp(server: PostgresServer, database: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: 'app',
    password: APP_PASSWORD,
    database,
  });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

const count = async (server: PostgresServer, database: string, table: string) =>
  Number((await server.query<{ n: string }>(database, `SELECT count(*) AS n FROM ${table}`))[0]!.n);

describe('a whole-server set, read back', () => {
  it('holds every database of the source server', () => {
    expect(set.set!.databases.map((d) => d.database)).toEqual(['crm', 'postgres', 'shop']);
  });

  it('verifies every part', async () => {
    const res = await runCli(['verify', set.id, '--json'], env(source));
    expect(res.code, res.output).toBe(0);
    const [result] = JSON.parse(res.stdout).results;
    // The globals' roles (at least postgres, grp, app) and every database's entries.
    expect(result).toMatchObject({ ok: true });
    expect(result.entries).toBeGreaterThan(5);
    const text = await runCli(['verify', set.id], env(source));
    expect(text.stdout).toMatch(/^ok +\S+ \(\d+ entries: its globals and 3 database\(s\)\)$/m);
  });

  it('dry run: lists the roles and what each database would get, changing nothing', async () => {
    const res = await runCli(['restore', set.id, '--dry-run'], env(fresh));
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toMatch(/^ {2}ROLE +app$/m);
    expect(res.stdout).toMatch(/^ {2}ROLE +grp$/m);
    expect(res.stdout).toContain('database shop: would create it and restore: database shop');
    expect(res.stdout).toContain('database postgres: would restore into it (it is empty)');
    expect(await fresh.query('postgres', `SELECT 1 FROM pg_roles WHERE rolname = 'app'`)).toEqual([]);
  });

  it('restores onto a fresh server: roles, owners, settings, memberships and rows', async () => {
    const res = await runCli(['restore', set.id], env(fresh));
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toMatch(/roles created: .*app/);
    expect(res.stdout).toMatch(/roles that existed, left as they are: .*postgres/);
    expect(res.stdout).toContain('restored database shop into database shop');
    const owners = await fresh.query<{ datname: string; owner: string }>(
      'postgres',
      `SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database
        WHERE datname IN ('shop', 'crm') ORDER BY datname`,
    );
    expect(owners).toEqual([
      { datname: 'crm', owner: 'grp' },
      { datname: 'shop', owner: 'app' },
    ]);
    const settings = await fresh.query<{ setconfig: string[] }>(
      'postgres',
      `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = 'shop' AND s.setrole = 0`,
    );
    expect(settings).toEqual([{ setconfig: ['work_mem=8MB'] }]);
    // The fresh server's own postgres database, restored into, gets the backup's settings too.
    const postgresSettings = await fresh.query(
      'postgres',
      `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = 'postgres' AND s.setrole = 0`,
    );
    expect(postgresSettings).toEqual([{ setconfig: ['work_mem=7MB'] }]);
    const roleSettings = await fresh.query(
      'postgres',
      `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = 'shop' AND s.setrole = 'app'::regrole`,
    );
    expect(roleSettings).toEqual([{ setconfig: ['statement_timeout=5s'] }]);
    // The application role logs in with its own password, and its membership gives it the group's table.
    expect(await asApp(fresh, 'shop', 'SELECT count(*)::int AS n FROM orders')).toEqual([{ n: 5 }]);
    expect(await asApp(fresh, 'crm', 'SELECT count(*)::int AS n FROM contacts')).toEqual([{ n: 3 }]);
    expect(await fresh.query('shop', `SELECT tableowner FROM pg_tables WHERE tablename = 'orders'`)).toEqual([
      { tableowner: 'app' },
    ]);
  });

  it('refuses to restore the set again over databases that hold objects, changing nothing', async () => {
    await fresh.query('shop', 'INSERT INTO orders VALUES (100)');
    const res = await runCli(['restore', set.id], env(fresh));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('refusing to restore backup');
    expect(res.stderr).toContain('database shop');
    expect(res.stderr).toContain('--drop-existing');
    expect(await count(fresh, 'shop', 'orders')).toBe(6);
    const again = await runCli(['restore', set.id, '--drop-existing'], env(fresh));
    expect(again.code, again.output).toBe(0);
    expect(await count(fresh, 'shop', 'orders')).toBe(5);
  });

  it('restores one database alone under another name with --database and --target-db', async () => {
    const res = await runCli(['restore', set.id, '--database', 'crm', '--target-db', 'crm_copy'], env(fresh));
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toContain(`restored database crm of ${set.id} into database crm_copy`);
    expect(await count(fresh, 'crm_copy', 'contacts')).toBe(3);
    const owner = await fresh.query(
      'postgres',
      `SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'crm_copy'`,
    );
    expect(owner).toEqual([{ owner: 'grp' }]);
    const refused = await runCli(['restore', set.id, '--target-db', 'x'], env(fresh));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--database NAME');
  });

  it('drills the set on a throwaway server: passes, comparing every database', async () => {
    const res = await runCli(['drill', set.id, '--json'], env(source));
    expect(res.code, res.output).toBe(0);
    const [result] = JSON.parse(res.stdout).drills;
    expect(result).toMatchObject({ ok: true, reason: null, differences: [] });
    // Per database: its table's rows, and its objects by kind.
    expect(result.compared).toBeGreaterThan(6);
  }, 120_000);

  it('drills the set in a scratch database on a drill server, and leaves none there', async () => {
    const res = await runCli(['drill', set.id, '--json'], {
      ...env(source),
      DATASAVER_DRILL_URL: `postgres://postgres:${encodeURIComponent(fresh.password)}@127.0.0.1:${fresh.port}`,
    });
    expect(res.code, res.output).toBe(0);
    const [result] = JSON.parse(res.stdout).drills;
    expect(result).toMatchObject({
      ok: true,
      place: expect.stringMatching(/^scratch database datasaver_drill_/),
    });
    expect(
      await fresh.query('postgres', `SELECT datname FROM pg_database WHERE datname LIKE 'datasaver_drill_%'`),
    ).toEqual([]);
  }, 120_000);

  it('writes one database of the set to a file with --database and --to-file', async () => {
    const path = join(await tempDir(), 'shop.dump');
    const refused = await runCli(['restore', set.id, '--to-file', path], env(fresh));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('needs --database NAME');
    const res = await runCli(['restore', set.id, '--database', 'shop', '--to-file', path], env(fresh));
    expect(res.code, res.output).toBe(0);
    const shop = set.set!.databases.find((d) => d.database === 'shop')!;
    const written = await readFile(path);
    expect(written.length).toBe(shop.sizeBytes);
    expect(written.subarray(0, 5).toString()).toBe('PGDMP');
  });

  it('fails the drill of a set whose recorded row count differs in one database, naming it', async () => {
    // The manifest is unsigned: a forged count stands for a copy that restores to other data.
    const file = join(storage, 'srv', `${set.id}.manifest.json`);
    const forged: Manifest = JSON.parse(await readFile(file, 'utf8'));
    const shop = forged.set!.databases.find((d) => d.database === 'shop')!;
    shop.facts.tables = shop.facts.tables.map((t) => (t.name === 'public.orders' ? { ...t, rows: 6 } : t));
    await writeFile(file, JSON.stringify(forged));
    const res = await runCli(['drill', set.id, '--json'], env(source));
    expect(res.code).toBe(5);
    const [result] = JSON.parse(res.stdout).drills;
    expect(result).toMatchObject({ ok: false, reason: 'drill' });
    expect(result.differences).toEqual([{ item: 'shop: table public.orders', expected: '6', found: '5' }]);
    expect((await readdir(join(storage, 'srv'))).filter((f) => f.endsWith('.drill.json'))).toHaveLength(1);
  }, 120_000);
});
