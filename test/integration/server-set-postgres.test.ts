/**
 * A PostgreSQL server as a backup set, at the engine: which databases a set holds and for whom, the
 * globals dumped by pg_dumpall and restored onto other servers (fresh, or holding some of the roles),
 * and a forged globals script refused before anything is made. Own throwaway servers: roles are global.
 */
import { execFile as execFileCb } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionConfig, EngineTarget } from '../../src/engines/engine.ts';
import { PostgresEngine } from '../../src/engines/postgres/engine.ts';
import { BackupError, RestoreError, UsageError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { runCli } from '../support/cli.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import { type PostgresServer, startPostgres } from '../support/postgres-server.ts';

const execFile = promisify(execFileCb);

let source: PostgresServer;
let fresh: PostgresServer;
let lived: PostgresServer;

function target(s: PostgresServer, database?: string, user = s.user, password = s.password): EngineTarget {
  const connection: ConnectionConfig = {
    host: s.host,
    port: s.port,
    database,
    user,
    password: new Secret(password),
    sslmode: 'disable',
    tls: false,
    tlsCa: undefined,
  };
  return { name: 'server', connection, toolDir: s.binDir };
}

const engine = (t: EngineTarget) => new PostgresEngine(t);

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

async function* bytes(data: Buffer | string): AsyncIterable<Buffer> {
  yield Buffer.from(data);
}

/**
 * `pg_dumpall --globals-only` of a server, for comparing two: without the per-run `\restrict` keys and
 * without the lines about the superuser each server was made with.
 */
async function comparableGlobals(s: PostgresServer): Promise<string> {
  const { stdout } = await execFile(join(s.binDir, 'pg_dumpall'), ['--globals-only', '--no-password'], {
    env: { ...process.env, PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password },
  });
  return stdout
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l) && !/^(CREATE|ALTER) ROLE postgres[; ]/.test(l))
    .join('\n');
}

const roles = async (s: PostgresServer) =>
  (await s.query<{ rolname: string }>('postgres', 'SELECT rolname FROM pg_roles ORDER BY 1')).map(
    (r) => r.rolname,
  );

beforeAll(async () => {
  [source, fresh, lived] = await Promise.all([startPostgres(), startPostgres(), startPostgres()]);
  for (const db of ['alpha', 'beta', 'excluded_one', 'locked', '*']) await source.createDatabase(db);
  await source.query(
    'postgres',
    `CREATE ROLE staff NOLOGIN;
     CREATE ROLE app LOGIN PASSWORD 'app-secret' CONNECTION LIMIT 7 VALID UNTIL '2031-02-03';
     CREATE ROLE "odd ""name""" LOGIN CREATEDB;
     CREATE ROLE backup_user LOGIN PASSWORD 'backup-secret';
     CREATE ROLE reader LOGIN PASSWORD 'reader-secret';
     GRANT pg_read_all_data TO reader;
     GRANT staff TO app WITH ADMIN OPTION;
     GRANT staff TO "odd ""name""";
     COMMENT ON ROLE app IS 'the application''s role
     over two lines';
     ALTER ROLE app SET search_path = app, public;
     ALTER ROLE "odd ""name""" SET work_mem = '8MB';
     ALTER DATABASE beta SET TimeZone = 'Europe/Berlin';
     REVOKE CONNECT ON DATABASE locked FROM PUBLIC;`,
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.stop(), fresh?.stop(), lived?.stop()]);
});

describe('a PostgreSQL server as a backup set', () => {
  it('is a whole server when its target names no database, or *', () => {
    expect(engine(target(source)).serverSet.wholeServer).toBe(true);
    expect(engine(target(source, '*')).serverSet.wholeServer).toBe(true);
    expect(engine(target(source, 'alpha')).serverSet.wholeServer).toBe(false);
  });

  it('holds every database that takes connections, less the excluded ones, in name order', async () => {
    const members = await engine(target(source)).serverSet.members(['excluded_one', 'not_on_this_server']);
    expect(members).toEqual({
      databases: ['alpha', 'beta', 'locked', 'postgres'],
      excluded: ['excluded_one'],
      unreadable: [{ database: '*', reason: 'its name * stands for the whole server' }],
      rolePasswords: true,
    });
  });

  it('tells a user without CONNECT or pg_authid what it cannot read, and still dumps the globals', async () => {
    const set = engine(target(source, undefined, 'backup_user', 'backup-secret')).serverSet;
    const members = await set.members([]);
    expect(members.databases).toEqual(['alpha', 'beta', 'excluded_one', 'postgres']);
    expect(members.unreadable).toEqual([
      { database: '*', reason: 'its name * stands for the whole server' },
      { database: 'locked', reason: 'no CONNECT privilege' },
    ]);
    expect(members.rolePasswords).toBe(false);
    const globals = (await collect(set.dumpGlobals({ rolePasswords: false }))).toString();
    expect(globals).toContain('CREATE ROLE app;');
    expect(globals).not.toContain('PASSWORD');
    // pg_read_all_data reads pg_authid, password hashes included.
    const reader = await engine(target(source, undefined, 'reader', 'reader-secret')).serverSet.members([]);
    expect(reader.rolePasswords).toBe(true);
  });

  it('fails the globals dump when pg_dumpall is older than the server, or fails half-way', async () => {
    const old = await fakeToolDir({ pg_dumpall: 'echo "pg_dumpall (PostgreSQL) 9.6.24"' });
    const tooOld = { ...target(source), toolDir: old };
    await expect(collect(engine(tooOld).serverSet.dumpGlobals({ rolePasswords: true }))).rejects.toThrow(
      /pg_dumpall 9\.6 cannot dump .*pg_dumpall must be the same major version or newer/,
    );
    const real = join(source.binDir, 'pg_dumpall');
    const failing = await fakeToolDir({
      pg_dumpall: `if [ "$1" = "--version" ]; then exec "${real}" --version; fi\necho 'CREATE ROLE app;'\necho 'connection lost' >&2\nexit 1`,
    });
    const err = await collect(
      engine({ ...target(source), toolDir: failing }).serverSet.dumpGlobals({ rolePasswords: true }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).message).toMatch(/pg_dumpall exited with code 1: connection lost/);
    // Globals larger than a restore reads would make a set no one can restore: the backup fails.
    const huge = await fakeToolDir({
      pg_dumpall: `if [ "$1" = "--version" ]; then exec "${real}" --version; fi\nhead -c 17000000 /dev/zero | tr '\\0' 'x'`,
    });
    const tooBig = await collect(
      engine({ ...target(source), toolDir: huge }).serverSet.dumpGlobals({ rolePasswords: true }),
    ).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(BackupError);
    expect((tooBig as BackupError).message).toMatch(/larger than the 16 MiB a restore reads/);
  });

  it('binds an engine to each database of the set', async () => {
    const info = await engine(target(source)).serverSet.database('beta').preflight();
    expect(info.databaseSettings?.settings).toEqual([
      { role: null, name: 'TimeZone', value: 'Europe/Berlin' },
    ]);
    expect(() => engine(target(source)).serverSet.database('*')).toThrow(UsageError);
  });

  it('restores its globals onto a fresh server: the same roles, attributes, memberships, settings and comments', async () => {
    const set = engine(target(source)).serverSet;
    const globals = await collect(set.dumpGlobals({ rolePasswords: true }));
    expect((await set.inspectGlobals(bytes(globals))).entries.map((e) => e.name)).toEqual([
      'app',
      'backup_user',
      'odd "name"',
      'postgres',
      'reader',
      'staff',
    ]);
    const report = await engine(target(fresh)).serverSet.restoreGlobals(bytes(globals));
    expect(report).toEqual({
      created: ['app', 'backup_user', 'odd "name"', 'reader', 'staff'],
      existing: ['postgres'],
      tablespacesCreated: [],
      tablespacesExisting: [],
      skipped: [],
    });
    const expected = await comparableGlobals(source);
    expect(expected).toContain('GRANT staff TO app WITH ADMIN OPTION GRANTED BY postgres;');
    expect(expected).toContain("ALTER ROLE app SET search_path TO 'app', 'public';");
    expect(await comparableGlobals(fresh)).toBe(expected);
    // The password came along: the restored role logs in with it.
    const info = await engine(target(fresh, 'postgres', 'app', 'app-secret')).preflight();
    expect(info.serverVersion).toMatch(/^\d+/);
  });

  it('leaves a role the server has exactly as it is, and says so', async () => {
    await lived.query('postgres', "CREATE ROLE app LOGIN PASSWORD 'other' CONNECTION LIMIT 1");
    const before = await lived.query(
      'postgres',
      "SELECT rolpassword, rolconnlimit FROM pg_authid WHERE rolname = 'app'",
    );
    const globals = await collect(engine(target(source)).serverSet.dumpGlobals({ rolePasswords: true }));
    const report = await engine(target(lived)).serverSet.restoreGlobals(bytes(globals));
    expect(report.existing).toEqual(['app', 'postgres']);
    expect(report.created).toEqual(['backup_user', 'odd "name"', 'reader', 'staff']);
    expect(report.skipped).toEqual(['grant staff to app: app existed']);
    expect(
      await lived.query('postgres', "SELECT rolpassword, rolconnlimit FROM pg_authid WHERE rolname = 'app'"),
    ).toEqual(before);
    const members = await lived.query(
      'postgres',
      "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'app'",
    );
    expect(members).toEqual([]);
  });

  it('refuses a forged globals script before anything is made', async () => {
    const before = await roles(lived);
    const forged = `CREATE ROLE sneaky;\nALTER ROLE sneaky WITH SUPERUSER;\nCREATE ROLE other; DROP ROLE app;\n\n-- PostgreSQL database cluster dump complete\n`;
    const set = engine(target(lived)).serverSet;
    await expect(set.restoreGlobals(bytes(forged))).rejects.toThrow(/DROP ROLE app/);
    await expect(set.restoreGlobals(bytes('\\! touch /tmp/owned\n'))).rejects.toBeInstanceOf(RestoreError);
    expect(await roles(lived)).toEqual(before);
  });

  it('creates no role when one statement of the roles fails: they are one transaction', async () => {
    const before = await roles(lived);
    const failing = `CREATE ROLE made_then_undone;\nALTER ROLE made_then_undone WITH CONNECTION LIMIT 'x';\n-- PostgreSQL database cluster dump complete\n`;
    const err = await engine(target(lived))
      .serverSet.restoreGlobals(bytes(failing))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).message).toMatch(/line 2 .*ALTER ROLE made_then_undone/);
    expect(await roles(lived)).toEqual(before);
  });
});

describe('config check of a whole-server target', () => {
  it('says it backs up the whole server, what it leaves out and how many databases it dumps at once', async () => {
    const res = await runCli(['config', 'check', '--json'], {
      DATASAVER_DATABASE_URL: `postgres://postgres@127.0.0.1:${source.port}`,
      DATASAVER_DB_EXCLUDE: 'excluded_one',
      DATASAVER_DUMP_JOBS: '3',
      DATASAVER_STORAGE_PATH: '/var/backups/x',
    });
    expect(res.code, res.output).toBe(0);
    expect(JSON.parse(res.stdout).targets[0]).toMatchObject({
      name: 'postgres',
      wholeServer: true,
      excludeDatabases: ['excluded_one'],
      dumpJobs: 3,
    });
  });
});

describe('a database that is there but cannot be dumped', () => {
  it('an invalid one (an interrupted DROP DATABASE) is unreadable, not a failure of every set', async () => {
    await source.query('postgres', 'CREATE DATABASE broken');
    await source.query('postgres', "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'broken'");
    try {
      const set = engine(target(source)).serverSet;
      const members = await set.members([]);
      expect(members.databases).not.toContain('broken');
      expect(members.unreadable).toContainEqual({
        database: 'broken',
        reason: 'invalid: a DROP DATABASE of it was interrupted; drop it again',
      });
    } finally {
      await source.query('postgres', 'DROP DATABASE broken');
    }
  });

  it('is still there by its name while it refuses connections, so a set fails rather than leave it out', async () => {
    const set = engine(target(source)).serverSet;
    await source.query('postgres', 'ALTER DATABASE beta ALLOW_CONNECTIONS false');
    try {
      expect((await set.members([])).databases).not.toContain('beta');
      expect(await set.databaseExists('beta')).toBe(true);
      expect(await set.databaseExists('no_such_database')).toBe(false);
    } finally {
      await source.query('postgres', 'ALTER DATABASE beta ALLOW_CONNECTIONS true');
    }
  });
});
