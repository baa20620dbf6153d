/**
 * Throwaway drill servers (src/engines/scratch.ts), real ones from the machine's binaries: each engine's
 * server takes a backup of a database it holds and restores it to the same facts, and is gone after
 * `stop()`; binaries that are missing and a server that does not start fail with the errors users see;
 * and a server whose datasaver was killed -9 is stopped, and its dir removed, by the next start's sweep
 * (as root, the PostgreSQL and MariaDB servers run as their own system users: the sweep stops those too).
 */
import { type ChildProcess, execFile as execFileCb, spawn } from 'node:child_process';
import { once } from 'node:events';
import { watch } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ConnectionConfig, DatabaseFacts } from '../../src/engines/engine.ts';
import { createEngine, startScratchServer } from '../../src/engines/index.ts';
import { startMysqlScratchServer } from '../../src/engines/mysql/scratch-server.ts';
import { startPostgresScratchServer } from '../../src/engines/postgres/scratch-server.ts';
import { startRedisScratchServer } from '../../src/engines/redis/scratch-server.ts';
import { TEMP_DIR_TOOLS } from '../../src/engines/registry.ts';
import type { ScratchServer } from '../../src/engines/scratch.ts';
import { parsePasswd, type ServerAccount } from '../../src/engines/scratch-process.ts';
import { RestoreError, ToolMissingError } from '../../src/util/errors.ts';
import { makePrivateTempDir, type SweepResult, sweepStaleTempDirs } from '../../src/util/private-temp.ts';
import { processesUsing, processRunning, serverProcesses } from '../support/processes.ts';

const execFile = promisify(execFileCb);

/**
 * Drill dirs live under a parent in the system temp dir that other users may pass through (0711), as
 * /tmp is: as root, the servers run as their own accounts and must reach their directory.
 */
let parent: string;
beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'datasaver-scratch-test-'));
  await chmod(parent, 0o711);
});
afterAll(async () => {
  // A test that failed half-way may have left a server running: none outlives the file.
  for (const pid of await processesUsing(parent)) process.kill(pid, 'SIGKILL');
  await rm(parent, { recursive: true, force: true });
});

async function* chunksOf(chunks: Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks;
}

interface EngineCase {
  /** Fills the scratch server with a source database (or file) and returns its connection. */
  seed(server: ScratchServer): Promise<ConnectionConfig>;
  /** Where the backup of that source is restored on the same server. */
  target(server: ScratchServer): string | undefined;
  /** Whether the restore replaces what the destination holds (Redis: the whole server). */
  overwrite: boolean;
}

const CASES: Record<'postgres' | 'mysql' | 'redis' | 'sqlite', EngineCase> = {
  postgres: {
    async seed(server) {
      await pgQuery(server.connection, 'postgres', 'CREATE DATABASE drill_src');
      await pgQuery(
        server.connection,
        'drill_src',
        `CREATE TABLE items (id serial PRIMARY KEY, name text);
         INSERT INTO items (name) VALUES ('a'), ('b'), ('c');
         CREATE VIEW named AS SELECT name FROM items;`,
      );
      return { ...server.connection, database: 'drill_src' };
    },
    target: () => 'drill_copy',
    overwrite: false,
  },
  mysql: {
    async seed(server) {
      const c = server.connection;
      await execFile(
        'mariadb',
        [
          '--no-defaults',
          `--host=${c.host}`,
          `--port=${c.port}`,
          `--user=${c.user}`,
          '--execute=CREATE DATABASE drill_src; CREATE TABLE drill_src.items (id INT PRIMARY KEY, name TEXT); INSERT INTO drill_src.items VALUES (1, "a"), (2, "b");',
        ],
        { env: { ...process.env, MYSQL_PWD: c.password!.reveal() } },
      );
      return { ...c, database: 'drill_src' };
    },
    target: () => 'drill_copy',
    overwrite: false,
  },
  redis: {
    async seed(server) {
      await withRedis(server.connection, async (r) => {
        await r.set('greeting', 'hello');
        await r.hset('user:1', 'name', 'ada');
        await r.select(3);
        await r.rpush('queue', 'x', 'y');
      });
      return server.connection;
    },
    target: () => undefined,
    overwrite: true,
  },
  sqlite: {
    async seed(server) {
      const source = join(server.connection.database!, '..', 'source.sqlite');
      const db = new DatabaseSync(source);
      db.exec(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items VALUES (1, 'a'), (2, 'b');",
      );
      db.close();
      return { ...server.connection, database: source };
    },
    target: (server) => server.connection.database,
    overwrite: false,
  },
};

async function pgQuery(c: ConnectionConfig, database: string, sql: string): Promise<void> {
  const client = new pg.Client({ host: c.host, port: c.port, user: c.user, database });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function withRedis(c: ConnectionConfig, fn: (r: Redis) => Promise<unknown>): Promise<void> {
  const r = new Redis({ path: c.host!, password: c.password!.reveal(), lazyConnect: true, protocol: 2 });
  await r.connect();
  try {
    await fn(r);
  } finally {
    r.disconnect();
  }
}

/**
 * Backs up the seeded source with the engine bound to the scratch server and restores it there (Redis:
 * over the emptied server), returning the backup's exact facts and the restored copy's.
 */
async function backupAndRestore(
  name: keyof typeof CASES,
  format: string,
  server: ScratchServer,
): Promise<{ expected: DatabaseFacts | undefined; restored: DatabaseFacts }> {
  const c = CASES[name];
  const source = createEngine({
    name: 'drill',
    engine: name,
    connection: await c.seed(server),
    toolDir: undefined,
  });
  await source.preflight();
  let expected: DatabaseFacts | undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of source.dump({ format, schemaOnly: false, onFacts: (f) => (expected = f) })) {
    chunks.push(chunk);
  }
  if (name === 'redis') await withRedis(server.connection, (r) => r.flushall());
  const target = c.target(server);
  const copy = createEngine({
    name: 'drill',
    engine: name,
    connection: server.connection,
    toolDir: undefined,
  });
  const state = await copy.restoreTargetState(target);
  await copy.restore(chunksOf(chunks), {
    format,
    targetDatabase: target,
    create: !state.exists,
    dropExisting: false,
    overwrite: c.overwrite,
    jobs: 1,
  });
  return { expected, restored: await copy.restoredFacts(target) };
}

describe.each([
  ['postgres', 'custom'],
  ['postgres', 'plain'],
  ['mysql', 'sql'],
  ['redis', 'rdb'],
  ['sqlite', 'sqlite'],
] as const)('a throwaway %s server', (name, format) => {
  it(`restores a ${format} backup to the same facts and is gone after stop()`, async () => {
    const dir = await makePrivateTempDir('drill', parent);
    const server = await startScratchServer(name, { dir });
    let pids: number[] = [];
    try {
      expect(server.description).toMatch(
        name === 'sqlite' ? /^temporary SQLite file$/ : /^throwaway \S+ [\d.]+ server$/,
      );
      pids = await serverProcesses(dir);
      if (name !== 'sqlite') expect(pids.length).toBeGreaterThan(0);
      const { expected, restored } = await backupAndRestore(name, format, server);
      expect(expected?.exact).toBe(true);
      expect(expected!.tables.reduce((n, t) => n + t.rows, 0)).toBeGreaterThan(0);
      // A MySQL restore under another name counts its tables under that name.
      const renamed = expected!.tables.map((t) => ({
        ...t,
        name: t.name.replace(/^drill_src\./, 'drill_copy.'),
      }));
      expect(restored).toEqual({ ...expected, tables: renamed });
    } finally {
      await server.stop();
      await server.stop(); // safe twice
    }
    for (const pid of pids) expect(processRunning(pid), `process ${pid}`).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });
});

/** Runs `sql` with the mariadb client on a throwaway MariaDB server; rejects when it fails. */
async function mariadb(c: ConnectionConfig, sql: string): Promise<string> {
  const { stdout } = await execFile(
    'mariadb',
    [
      '--no-defaults',
      '--batch',
      '--skip-column-names',
      `--host=${c.host}`,
      `--port=${c.port}`,
      `--user=${c.user}`,
      `--execute=${sql}`,
    ],
    { env: { ...process.env, MYSQL_PWD: c.password!.reveal() } },
  );
  return stdout.trim();
}

// A backup from storage may be forged: what it runs on a throwaway server must not reach the host.
describe('what a restored backup runs on a throwaway server', () => {
  it('runs on PostgreSQL as a role that is no superuser, cannot become one, and cannot run programs', async () => {
    const dir = await makePrivateTempDir('drill', parent);
    const server = await startScratchServer('postgres', { dir });
    const c = server.connection;
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, database: 'postgres' });
    try {
      expect(c.user).not.toBe('postgres');
      await client.connect();
      const role = await client.query(
        'SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user',
      );
      expect(role.rows).toEqual([{ rolsuper: false, rolcreatedb: true }]);
      // 42501: insufficient_privilege ("permission denied", "must be superuser...").
      const denied = { code: '42501' };
      await expect(client.query("COPY (SELECT 1) TO PROGRAM 'true'")).rejects.toMatchObject(denied);
      await expect(client.query('SET ROLE postgres')).rejects.toMatchObject(denied);
      // An untrusted extension (file_fdw reads the host's files) needs a superuser.
      await expect(client.query('CREATE EXTENSION file_fdw')).rejects.toMatchObject(denied);
      // It creates the databases it restores into, and owns them.
      await client.query('CREATE DATABASE owned');
    } finally {
      await client.end().catch(() => {});
      await server.stop();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("runs on MariaDB without reading or writing the host's files, or loading plugins", async () => {
    const dir = await makePrivateTempDir('drill', parent);
    const server = await startScratchServer('mysql', { dir });
    const c = server.connection;
    try {
      expect(await mariadb(c, "SELECT LOAD_FILE('/etc/hostname') IS NULL")).toBe('1');
      const outfile = join(parent, `outfile-${process.pid}`);
      await expect(mariadb(c, `SELECT 1 INTO OUTFILE '${outfile}'`)).rejects.toThrow(/secure-file-priv/);
      await expect(stat(outfile)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await mariadb(c, 'SELECT @@local_infile')).toBe('0');
      await expect(mariadb(c, "INSTALL SONAME 'ha_blackhole'")).rejects.toThrow(/ha_blackhole/);
    } finally {
      await server.stop();
    }
    await rm(dir, { recursive: true, force: true });
  });
});

describe('a throwaway server that cannot start', () => {
  it('names the package to install when the server binaries are missing, and starts nothing', async () => {
    const empty = await mkdtemp(join(parent, 'empty-'));
    const dir = await makePrivateTempDir('drill', parent);
    const attempts: [string, () => Promise<ScratchServer>][] = [
      ['postgresql', () => startPostgresScratchServer({ dir }, { root: empty, path: empty })],
      ['mariadb-server', () => startMysqlScratchServer({ dir }, { dirs: [empty] })],
      ['redis-server', () => startRedisScratchServer({ dir }, { path: empty })],
    ];
    for (const [packageName, attempt] of attempts) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ToolMissingError);
      expect((err as ToolMissingError).hint).toContain(`apt-get install ${packageName}`);
      expect((err as ToolMissingError).hint).toContain('DATASAVER_DRILL_URL');
    }
    expect(await readdir(dir)).toEqual(['.datasaver-owner']);
    await rm(dir, { recursive: true });
  });

  it('fails with the last lines of the log of a server that exits while starting', async () => {
    // A PostgreSQL whose initdb works and whose postmaster dies at once, as one does on a full disk.
    const bin = await mkdtemp(join(parent, 'bin-'));
    await chmod(bin, 0o755);
    const scripts = {
      initdb: 'exit 0',
      postgres:
        '[ "$1" = --version ] && { echo "postgres (PostgreSQL) 15.18"; exit 0; }\necho "FATAL:  could not write lock file: No space left on device" >&2\nexit 1',
    };
    for (const [name, body] of Object.entries(scripts)) {
      await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    const dir = await makePrivateTempDir('drill', parent);
    const err = await startPostgresScratchServer({ dir }, { root: join(parent, 'none'), path: bin }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).message).toMatch(/^throwaway PostgreSQL 15\.18 server did not start/);
    expect((err as RestoreError).message).toContain('No space left on device');
    expect(await serverProcesses(dir)).toEqual([]);
    await rm(dir, { recursive: true });
  });

  it('says so, before starting anything, when the temp dir is too deep for its socket', async () => {
    const deep = join(parent, 'd'.repeat(60));
    await mkdir(deep);
    const dir = await makePrivateTempDir('drill', deep);
    const err = await startScratchServer('postgres', { dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).message).toContain('too long for a Unix socket');
    expect((err as RestoreError).hint).toContain('TMPDIR');
    expect(await readdir(dir)).toEqual(['.datasaver-owner']);
  });

  it('stops what it started when its signal aborts while it starts', async () => {
    const dir = await makePrivateTempDir('drill', parent);
    const abort = new AbortController();
    // Abort as soon as the server's own directory appears: initdb is about to run, or runs.
    const watcher = watch(dir, (_event, file) => file === 'pg' && abort.abort());
    try {
      const err = await startScratchServer('postgres', { dir, signal: abort.signal }).catch(
        (e: unknown) => e,
      );
      expect((err as Error).name).toBe('AbortError');
    } finally {
      watcher.close();
    }
    expect(await serverProcesses(dir)).toEqual([]);
    await rm(dir, { recursive: true });
  });

  it('is stopped when the signal it was started with aborts', async () => {
    const dir = await makePrivateTempDir('drill', parent);
    const abort = new AbortController();
    const server = await startScratchServer('redis', { dir, signal: abort.signal });
    const pids = await serverProcesses(dir);
    expect(pids.length).toBeGreaterThan(0);
    abort.abort();
    await server.stop();
    for (const pid of pids) expect(processRunning(pid)).toBe(false);
    await rm(dir, { recursive: true });
  });
});

/** Another user the child runs as, and the node binary it runs (a copy it may execute); none: as us. */
interface ChildUser {
  account: ServerAccount;
  node: string;
}

/** Runs scratch-child.ts in `mode` and returns the child and the first line it prints, parsed. */
async function child<T>(args: string[], as?: ChildUser): Promise<{ child: ChildProcess; reply: T }> {
  const script = join(import.meta.dirname, '../support/scratch-child.ts');
  const p = spawn(as?.node ?? process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '' },
    ...(as ? { uid: as.account.uid, gid: as.account.gid } : {}),
  });
  let stderr = '';
  p.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: p.stdout! }).once('line', resolve);
    p.once('exit', (code) => reject(new Error(`scratch-child.ts ${args[0]} exited with ${code}: ${stderr}`)));
  });
  return { child: p, reply: JSON.parse(line) as T };
}

/**
 * Starts a scratch server in a child process under `parent`, kills the child -9 once the server runs,
 * and checks that the server outlived it; returns the server's dir and processes (and the processes
 * whose command line names the dir, which the sweep must stop).
 */
async function killedDrill(
  engine: string,
  under: string,
  as?: ChildUser,
): Promise<{ dir: string; named: number[]; all: number[] }> {
  const { child: p, reply } = await child<{ dir: string }>(['start', engine, under], as);
  const exited = once(p, 'exit');
  p.kill('SIGKILL');
  await exited;
  // The server outlives its datasaver: that is what the sweep is for.
  const named = await processesUsing(reply.dir);
  const all = await serverProcesses(reply.dir);
  expect(named.length).toBeGreaterThan(0);
  for (const pid of all) expect(processRunning(pid), `process ${pid}`).toBe(true);
  return { dir: reply.dir, named, all };
}

/** What the sweep says about `dir`, and that the server and its dir are gone after it. */
async function sweptAway(result: SweepResult, drill: { dir: string; named: number[]; all: number[] }) {
  expect(result.failed).toEqual([]);
  const removed = result.removed.find((r) => r.path === drill.dir);
  expect(removed?.kind).toBe('drill');
  expect(removed?.stopped).toEqual(expect.arrayContaining(drill.named));
  await expect(stat(drill.dir)).rejects.toMatchObject({ code: 'ENOENT' });
  // The sweep waited for what it stopped to end before it removed the dir.
  for (const pid of drill.named) expect(processRunning(pid), `process ${pid}`).toBe(false);
  // The postmaster's backends end on their own once it is gone.
  await vi.waitFor(() => expect(drill.all.filter(processRunning)).toEqual([]), {
    timeout: 30_000,
    interval: 50,
  });
}

describe.each(['postgres', 'mysql', 'redis'] as const)('a %s drill killed -9', (name) => {
  it('leaves a server that the next start stops, and a dir it removes', async () => {
    const drill = await killedDrill(name, parent);
    await sweptAway(await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent), drill);
  });
});

describe('a drill of a datasaver that is not root', () => {
  // As root, the drill runs as nobody (with a copy of node it may execute); otherwise as us.
  let as: ChildUser | undefined;
  // Short: a socket path in it must fit 107 bytes.
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'ds-user-'));
    if (process.getuid?.() === 0) {
      const account = parsePasswd(await readFile('/etc/passwd', 'utf8')).get('nobody')!;
      const node = join(home, 'node');
      await copyFile(process.execPath, node);
      await chmod(node, 0o755);
      await chmod(home, 0o755);
      as = { account, node };
    }
  });
  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it.each(['postgres', 'mysql', 'redis'] as const)(
    'runs %s as that user, and its next start sweeps the server a kill -9 left',
    async (name) => {
      const under = await mkdtemp(join(home, 't'));
      if (as) await chown(under, as.account.uid, as.account.gid);
      const drill = await killedDrill(name, under, as);
      const uid = as?.account.uid ?? process.getuid?.();
      expect((await stat(drill.dir)).uid).toBe(uid);
      for (const pid of drill.all) expect((await stat(`/proc/${pid}`)).uid).toBe(uid);
      const { reply } = await child<SweepResult>(['sweep', under], as);
      await sweptAway(reply, drill);
    },
  );
});
