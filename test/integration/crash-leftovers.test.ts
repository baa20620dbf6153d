/**
 * What a killed run leaves in the temp dir goes at the next start: a MySQL
 * option file holding the password (real MariaDB), the copy of a SQLite database being dumped, and a
 * Redis restore's spooled RDB with the loader redis-server it left running (real Redis). Each
 * run holds at a failpoint while another command starts and must leave the live run's directory alone;
 * then it is SIGKILLed, and the next command (or the daemon, as it starts) removes what it left and the
 * next backup works.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startPausedAt } from '../support/cli.ts';
import { startDaemon } from '../support/daemon.ts';
import { ident, type MariadbServer, startMariadb } from '../support/mariadb-server.ts';
import { tempDir, uniqueName } from '../support/pg.ts';
import { processesUsing } from '../support/processes.ts';
import { type RedisServer, startRedis } from '../support/redis-server.ts';

/**
 * Holds a backup at `failpoint` and checks the temp dirs it made (`inspect` gets their paths). Another
 * command started meanwhile keeps them; after SIGKILL the next command removes them all, and the next
 * backup succeeds and leaves nothing.
 */
async function leftoverGoesAtNextStart(
  failpoint: string,
  kind: string,
  env: Record<string, string>,
  inspect: (dirs: string[]) => Promise<void>,
) {
  const tmp = await tempDir('crash-tmp-');
  const withTmp = { ...env, TMPDIR: tmp };
  const run = await startPausedAt(failpoint, ['backup'], withTmp);
  let held: string[];
  try {
    // Tools that start in parallel (the MySQL server check and facts) may each hold a directory.
    held = await readdir(tmp);
    expect(held.length).toBeGreaterThan(0);
    for (const d of held) {
      expect(d).toMatch(new RegExp(`^datasaver-${kind}-`));
      expect((await stat(join(tmp, d))).mode & 0o777).toBe(0o700);
    }
    await inspect(held.map((d) => join(tmp, d)));
    const other = await runCli(['list'], withTmp);
    expect(other.code, other.output).toBe(0);
    expect(other.stderr).not.toMatch(/note: removed/);
    expect(await readdir(tmp)).toEqual(expect.arrayContaining(held));
  } finally {
    run.child.kill('SIGKILL');
  }
  expect((await run.done).signal).toBe('SIGKILL');
  const left = await readdir(tmp);
  expect(left).toEqual(expect.arrayContaining(held));

  const next = await runCli(['list', '--all', '--json'], withTmp);
  expect(next.code, next.output).toBe(0);
  for (const d of left) {
    expect(next.stderr).toContain(`note: removed ${join(tmp, d)}, a temporary directory (${kind})`);
  }
  expect(JSON.parse(next.stdout)).toMatchObject({ backups: [], incomplete: [] });
  expect(await readdir(tmp)).toEqual([]);
  const backup = await runCli(['backup', '--verify'], withTmp);
  expect(backup.code, backup.output).toBe(0);
  expect(await readdir(tmp)).toEqual([]);
}

describe('MySQL option files', () => {
  let server: MariadbServer;
  const db = uniqueName('crmy');

  beforeAll(async () => {
    server = await startMariadb();
    await server.query(
      `CREATE DATABASE ${ident(db)}; CREATE TABLE ${ident(db)}.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO ${ident(db)}.t VALUES (1, 'one')`,
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('the password file of a killed run is removed at the next start, a running one is kept', async () => {
    const env = {
      DATASAVER_ENGINE: 'mysql',
      DATASAVER_DB_HOST: server.host,
      DATASAVER_DB_PORT: String(server.port),
      DATASAVER_DB_NAME: db,
      DATASAVER_DB_USER: server.user,
      DATASAVER_DB_PASSWORD: server.password,
      DATASAVER_STORAGE_PATH: await tempDir(),
    };
    await leftoverGoesAtNextStart('mysql.option-file', 'mysql', env, async (dirs) => {
      // The run that reached the failpoint has written its file; one started alongside may be earlier.
      const files = dirs.map((d) => join(d, 'client.cnf'));
      const written = [];
      for (const f of files) if ((await stat(f).catch(() => undefined))?.size) written.push(f);
      expect(written.length).toBeGreaterThan(0);
      for (const f of written) {
        expect((await stat(f)).mode & 0o777).toBe(0o600);
        expect(await readFile(f, 'utf8')).toMatch(/^\[client\]\npassword=/);
      }
    });
  });
});

/** A SQLite database of several MB (several 1 MB dump batches) in a new directory. */
async function sqliteDatabase(): Promise<{ dir: string; path: string }> {
  const dir = await tempDir('crash-sqlite-');
  await mkdir(join(dir, 'db'));
  const path = join(dir, 'db', 'notes.db');
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
    INSERT INTO notes SELECT i, hex(randomblob(64)) FROM n;`);
  db.close();
  return { dir, path };
}

describe('SQLite dump copies', () => {
  it('the database copy of a run killed mid-dump is removed at the next start, a running one is kept', async () => {
    const { dir, path } = await sqliteDatabase();
    const env = { DATASAVER_DATABASE_URL: `sqlite://${path}`, DATASAVER_STORAGE_PATH: join(dir, 'store') };
    await leftoverGoesAtNextStart('backup.dumping', 'sqlite', env, async (dirs) => {
      expect(dirs).toHaveLength(1);
      expect((await readdir(dirs[0]!)).sort()).toEqual(['.datasaver-owner', 'copy.sqlite']);
      expect((await stat(join(dirs[0]!, 'copy.sqlite'))).size).toBeGreaterThan(2 * 1024 * 1024);
    });
  });
});

describe('the daemon', () => {
  it('removes what a killed run left as it starts', async () => {
    const { dir, path } = await sqliteDatabase();
    const tmp = await tempDir('crash-tmp-');
    const env = {
      DATASAVER_DATABASE_URL: `sqlite://${path}`,
      DATASAVER_STORAGE_PATH: join(dir, 'store'),
      TMPDIR: tmp,
    };
    const killed = await runCli(['backup'], { ...env, DATASAVER_FAILPOINT: 'backup.dumping=kill' });
    expect(killed.signal).toBe('SIGKILL');
    const left = await readdir(tmp);
    expect(left).toEqual([expect.stringMatching(/^datasaver-sqlite-/)]);
    const daemon = await startDaemon(env);
    try {
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      daemon.child.kill('SIGTERM');
    }
    const result = await daemon.exited;
    expect(result.stderr).toContain(`note: removed ${join(tmp, left[0]!)}`);
  });
});

describe('a Redis restore', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('killed with its loader running: the next start stops the loader and removes the spooled RDB', async () => {
    const c = await server.client(0);
    try {
      await c.flushall();
      await c.mset({ a: '1', b: '2', c: '3' });
    } finally {
      c.disconnect();
    }
    const tmp = await tempDir('crash-tmp-');
    const env = {
      DATASAVER_ENGINE: 'redis',
      DATASAVER_DB_HOST: server.host,
      DATASAVER_DB_PORT: String(server.port),
      DATASAVER_DB_PASSWORD: server.password,
      DATASAVER_STORAGE_PATH: await tempDir(),
      TMPDIR: tmp,
    };
    const backup = await runCli(['backup'], env);
    expect(backup.code, backup.output).toBe(0);

    const killed = await runCli(['restore', 'latest', '--force'], {
      ...env,
      DATASAVER_FAILPOINT: 'restore.loader-started=kill',
    });
    expect(killed.signal, killed.output).toBe('SIGKILL');
    const left = await readdir(tmp);
    expect(left).toEqual([expect.stringMatching(/^datasaver-redis-/)]);
    const spool = join(tmp, left[0]!);
    expect(await readdir(spool)).toContain('dump.rdb');
    const loaders = await processesUsing(spool);
    expect(loaders).toHaveLength(1);
    try {
      const next = await runCli(['list'], env);
      expect(next.code, next.output).toBe(0);
      expect(next.stderr).toContain(`note: removed ${spool}, a temporary directory (redis)`);
      expect(next.stderr).toContain(`stopped the tool process(es) it left running: ${loaders[0]}`);
      expect(await readdir(tmp)).toEqual([]);
      expect(await processesUsing(spool)).toEqual([]);
    } finally {
      for (const pid of await processesUsing(spool)) process.kill(pid, 'SIGKILL');
    }

    const restored = await runCli(['restore', 'latest', '--drop-existing'], env);
    expect(restored.code, restored.output).toBe(0);
    const check = await server.client(0);
    try {
      expect(await check.mget('a', 'b', 'c')).toEqual(['1', '2', '3']);
      expect(await check.dbsize()).toBe(3);
    } finally {
      check.disconnect();
    }
  });
});
