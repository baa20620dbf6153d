/**
 * The disaster case of a whole PostgreSQL server: a sidecar pointed at a server with several databases
 * owned by several roles backs up all of it as one set, and `datasaver restore` of that set onto a fresh,
 * empty server gives back the same server: roles with their attributes, passwords, memberships and
 * settings, every database with its owner, settings and grants, objects with their owners, grants and
 * default privileges, and the rows. `pg_dumpall` of both servers is the proof.
 */
import { execFile as execFileCb } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageKeygen, filesContaining } from '../support/age.ts';
import { runCli } from '../support/cli.ts';
import { tempDir } from '../support/pg.ts';
import { type PostgresServer, startPostgres } from '../support/postgres-server.ts';

const execFile = promisify(execFileCb);

let source: PostgresServer;
let fresh: PostgresServer;
let storage: string;

const SETUP = [
  `CREATE ROLE grp NOLOGIN;
   CREATE ROLE app LOGIN PASSWORD 'app-pw' IN ROLE grp;
   CREATE ROLE "report ing" LOGIN PASSWORD 'rep-pw' CONNECTION LIMIT 5;
   COMMENT ON ROLE app IS 'the application''s role';
   ALTER ROLE "report ing" SET statement_timeout = '30s';
   CREATE ROLE bk LOGIN PASSWORD 'bk-pw' IN ROLE pg_read_all_data`,
  'CREATE DATABASE shop OWNER app',
  'CREATE DATABASE crm OWNER "report ing"',
  'CREATE DATABASE analytics',
  `ALTER DATABASE shop SET search_path = public, extra;
   ALTER ROLE "report ing" IN DATABASE shop SET work_mem = '8MB';
   REVOKE CONNECT ON DATABASE crm FROM PUBLIC;
   GRANT CONNECT ON DATABASE crm TO "report ing", bk;
   COMMENT ON DATABASE analytics IS 'numbers'`,
];

/** Runs `sql` on `server` in `database` as `user` (the superuser unless given). */
async function run(
  server: PostgresServer,
  database: string,
  sql: string,
  user?: { name: string; password: string },
): Promise<void> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: user?.name ?? server.user,
    password: user?.password ?? server.password,
    database,
  });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** `pg_dumpall` of a whole server, minus what differs between any two servers by construction. */
async function dumpAll(server: PostgresServer): Promise<string> {
  const { stdout } = await execFile(join(server.binDir, 'pg_dumpall'), ['--no-password'], {
    env: {
      ...process.env,
      PGHOST: server.host,
      PGPORT: String(server.port),
      PGUSER: server.user,
      PGPASSWORD: server.password,
    },
    maxBuffer: 256 * 1024 * 1024,
  });
  const lines = stdout
    .split('\n')
    // The per-run keys of psql's restricted mode.
    .filter((l) => !l.startsWith('\\restrict ') && !l.startsWith('\\unrestrict '))
    // The superuser each test server was made with has its own password: left as it is by a restore.
    .map((l) => (l.startsWith('ALTER ROLE postgres WITH ') ? l.replace(/ PASSWORD '[^']*'/, '') : l));
  return sortGrantRuns(lines).join('\n');
}

/**
 * The order of the items of an access list carries no meaning, but pg_dumpall writes them in the order
 * they were granted: each run of consecutive GRANT lines is sorted.
 */
function sortGrantRuns(lines: string[]): string[] {
  const out: string[] = [];
  let run: string[] = [];
  for (const line of [...lines, '']) {
    if (line.startsWith('GRANT ')) {
      run.push(line);
      continue;
    }
    out.push(...run.sort(), line);
    run = [];
  }
  return out.slice(0, -1);
}

function serverEnv(server: PostgresServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATASAVER_DB_HOST: server.host,
    DATASAVER_DB_PORT: String(server.port),
    DATASAVER_DB_USER: server.user,
    DATASAVER_DB_PASSWORD: server.password,
    DATASAVER_TARGET_NAME: 'srv',
    DATASAVER_STORAGE_PATH: storage,
    ...extra,
  };
}

beforeAll(async () => {
  [source, fresh] = await Promise.all([startPostgres(), startPostgres()]);
  storage = await tempDir();
  for (const sql of SETUP) await run(source, 'postgres', sql);
  const app = { name: 'app', password: 'app-pw' };
  await run(
    source,
    'shop',
    `CREATE SCHEMA extra AUTHORIZATION app;
     CREATE TABLE orders (id int PRIMARY KEY, total numeric);
     INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g;
     ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grp;
     CREATE TABLE refunds (id int, order_id int REFERENCES orders);
     GRANT SELECT, INSERT ON orders TO "report ing"`,
    app,
  );
  await run(
    source,
    'crm',
    `CREATE TABLE contacts (id serial PRIMARY KEY, email text);
     INSERT INTO contacts (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 300) g`,
    { name: 'report ing', password: 'rep-pw' },
  );
  await run(
    source,
    'analytics',
    `CREATE EXTENSION citext;
     CREATE TABLE events (id bigint, kind citext);
     INSERT INTO events SELECT g, 'k' || (g % 7) FROM generate_series(1, 1000) g;
     CREATE TABLE owned_by_group (id int);
     ALTER TABLE owned_by_group OWNER TO grp`,
  );
}, 240_000);

afterAll(async () => {
  await Promise.all([source?.stop(), fresh?.stop()]);
});

describe('a whole PostgreSQL server', () => {
  it('backs up every database and the roles as one set, and restores onto an empty server as it was', async () => {
    const backup = await runCli(['backup', '--json'], serverEnv(source));
    expect(backup.code, backup.output).toBe(0);
    const { set } = setOf(backup.stdout);
    expect(set.databases.map((d) => d.database)).toEqual(['analytics', 'crm', 'postgres', 'shop']);
    expect(set.globals.rolePasswords).toBe(true);

    const restore = await runCli(['restore', 'latest'], serverEnv(fresh));
    expect(restore.code, restore.output).toBe(0);
    // The superuser that restores exists on every server: left as it is, and said so.
    expect(restore.output).toMatch(/existed, left as they are: postgres/);

    const [before, after] = await Promise.all([dumpAll(source), dumpAll(fresh)]);
    expect(after).toBe(before);
    // The roles log in with the passwords they had.
    await run(fresh, 'shop', 'SELECT count(*) FROM orders', { name: 'app', password: 'app-pw' });
  });

  it('refuses to restore over databases that hold objects, and changes nothing', async () => {
    await run(fresh, 'postgres', 'REVOKE CONNECT ON DATABASE crm FROM bk; DROP ROLE bk');
    const before = await dumpAll(fresh);
    const again = await runCli(['restore', 'latest'], serverEnv(fresh));
    expect(again.code, again.output).toBe(1);
    expect(again.output).toMatch(/shop/);
    expect(again.output).toMatch(/--drop-existing/);
    // Not even the role missing here was made: every database is checked before anything is changed.
    expect(await dumpAll(fresh)).toBe(before);
  });

  it('--drop-existing restores the whole server over one that holds objects, its postgres database too', async () => {
    await run(fresh, 'postgres', 'CREATE TABLE leftover (id int)');
    await run(fresh, 'shop', 'DELETE FROM refunds; DELETE FROM orders');
    const res = await runCli(['restore', 'latest', '--drop-existing'], serverEnv(fresh));
    expect(res.code, res.output).toBe(0);
    const [before, after] = await Promise.all([dumpAll(source), dumpAll(fresh)]);
    expect(after).toBe(before);
  });

  it('restores onto a server left without its postgres database (a restore cut short while recreating it)', async () => {
    await run(fresh, 'template1', 'DROP DATABASE postgres');
    const res = await runCli(['restore', 'latest', '--drop-existing'], serverEnv(fresh));
    expect(res.code, res.output).toBe(0);
    const [before, after] = await Promise.all([dumpAll(source), dumpAll(fresh)]);
    expect(after).toBe(before);
  });

  it('an encrypted set keeps its databases and roles from storage, and restores one database by name', async () => {
    const key = await ageKeygen();
    const encrypted = await tempDir();
    const env = (server: PostgresServer) =>
      serverEnv(server, {
        DATASAVER_STORAGE_PATH: encrypted,
        DATASAVER_TARGET_NAME: 'srvenc',
        DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient,
        DATASAVER_ENCRYPTION_IDENTITY_FILE: key.identityFile,
      });
    const backup = await runCli(['backup', '--verify'], env(source));
    expect(backup.code, backup.output).toBe(0);
    // Neither a database's name nor a role's reaches storage in clear.
    for (const marker of ['analytics', 'report ing', 'contacts']) {
      const scan = await filesContaining(encrypted, marker);
      expect(scan.files).toBeGreaterThan(5);
      expect(scan.found, marker).toEqual([]);
    }
    const restore = await runCli(
      ['restore', 'latest', '--database', 'shop', '--target-db', 'shop_copy'],
      env(fresh),
    );
    expect(restore.code, restore.output).toBe(0);
    const client = new pg.Client({
      host: fresh.host,
      port: fresh.port,
      user: fresh.user,
      password: fresh.password,
      database: 'shop_copy',
    });
    await client.connect();
    try {
      const rows = await client.query<{ n: string; owner: string }>(
        "SELECT count(*) AS n, (SELECT tableowner FROM pg_tables WHERE tablename = 'orders') AS owner FROM orders",
      );
      expect(rows.rows[0]).toEqual({ n: '500', owner: 'app' });
    } finally {
      await client.end();
    }
  });

  it('a backup user granted pg_read_all_data backs up every database it may connect to, and says which it may not', async () => {
    await run(source, 'postgres', 'CREATE DATABASE secret_db');
    await run(source, 'postgres', 'REVOKE CONNECT ON DATABASE secret_db FROM PUBLIC');
    const res = await runCli(
      ['backup', '--json'],
      serverEnv(source, {
        DATASAVER_DB_USER: 'bk',
        DATASAVER_DB_PASSWORD: 'bk-pw',
        DATASAVER_TARGET_NAME: 'srvbk',
      }),
    );
    expect(res.code, res.output).toBe(0);
    const { set } = setOf(res.stdout);
    expect(set.databases.map((d) => d.database)).toEqual(['analytics', 'crm', 'postgres', 'shop']);
    expect(set.unreadable.map((d) => d.database)).toEqual(['secret_db']);
    expect(set.globals.rolePasswords).toBe(true);
    expect(res.stderr).toMatch(/secret_db/);
  });

  it('an application role backs up its own database, without the role passwords it may not read', async () => {
    const res = await runCli(
      ['backup', '--json'],
      serverEnv(source, {
        DATASAVER_DB_USER: 'app',
        DATASAVER_DB_PASSWORD: 'app-pw',
        DATASAVER_TARGET_NAME: 'srvapp',
        DATASAVER_DB_EXCLUDE: 'analytics, postgres, secret_db',
      }),
    );
    expect(res.code, res.output).toBe(0);
    const { set } = setOf(res.stdout);
    expect(set.databases.map((d) => d.database)).toEqual(['shop']);
    expect(set.excluded).toEqual(['analytics', 'postgres', 'secret_db']);
    expect(set.unreadable.map((d) => d.database)).toEqual(['crm']);
    expect(set.globals.rolePasswords).toBe(false);
    expect(res.stderr).toMatch(/crm/);
    expect(res.stderr).toMatch(/password/);
  });
});

interface SetJson {
  databases: { database: string }[];
  excluded: string[];
  unreadable: { database: string }[];
  globals: { rolePasswords: boolean };
}

/** The set of the backup `backup --json` printed. */
function setOf(stdout: string): { set: SetJson } {
  return (JSON.parse(stdout) as { backups: { set: SetJson }[] }).backups[0]!;
}
