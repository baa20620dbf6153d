/**
 * Throwaway PostgreSQL servers for the test suite, the demo and the benchmarks.
 *
 * Each server lives in its own temp dir, listens on 127.0.0.1 on a free port with password (scram)
 * authentication, runs with fsync off, and is removed by `stop()`. initdb and postgres refuse to run as
 * root, so when we are root they run as the `postgres` system user (created by Debian's package).
 */
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freeLoopbackPort } from '../../src/engines/scratch-process.ts';

const execFile = promisify(execFileCb);

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly version: string;
  /** Directory with the server's binaries (initdb, pg_ctl, postgres, pg_dump of the same major). */
  readonly binDir: string;
  url(database: string): string;
  /** Runs SQL (several statements allowed) in `database` and returns the rows of the last one. */
  query<T extends Record<string, unknown> = Record<string, unknown>>(
    database: string,
    sql: string,
  ): Promise<T[]>;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server fast without removing its data (to test an unreachable server). */
  pause(): Promise<void>;
}

export async function findPostgresBinDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const majors = (await readdir(root).catch(() => [] as string[]))
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const dir = join(root, major, 'bin');
    try {
      await execFile(join(dir, 'postgres'), ['--version']);
      return dir;
    } catch {
      // not a full server install; try the next major
    }
  }
  throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql; run scripts/setup.sh');
}

/** A free TCP port on 127.0.0.1 (datasaver's own probe, which its throwaway drill servers use). */
export const freePort = freeLoopbackPort;

function asServerUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

async function runAsServerUser(cmd: string, args: string[]): Promise<void> {
  const [c, a] = asServerUser(cmd, args);
  await execFile(c, a, { maxBuffer: 16 * 1024 * 1024 });
}

export async function startPostgres(options: { password?: string } = {}): Promise<PostgresServer> {
  const binDir = await findPostgresBinDir();
  const password = options.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const base = await mkdtemp(join(tmpdir(), 'datasaver-pg-'));
  const dataDir = join(base, 'data');
  const sockDir = join(base, 'sock');
  const pwFile = join(base, 'pwfile');
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  await execFile('mkdir', ['-p', sockDir]);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    for (const p of [base, sockDir, pwFile]) await chown(p, uid, gid);
  }
  await chmod(base, 0o700);
  await runAsServerUser(join(binDir, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    `--pwfile=${pwFile}`,
    '--no-sync',
  ]);
  let port = 0;
  const start = async () => {
    for (let attempt = 0; ; attempt++) {
      port = port || (await freePort());
      try {
        await runAsServerUser(join(binDir, 'pg_ctl'), [
          '-D',
          dataDir,
          '-l',
          join(base, 'server.log'),
          '-w',
          '-t',
          '60',
          '-o',
          `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
          'start',
        ]);
        return;
      } catch (err) {
        if (attempt >= 3) throw err;
        port = 0; // the port may have been taken in between; pick another
      }
    }
  };
  const stopServer = async () => {
    await runAsServerUser(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop']).catch(() => {});
  };
  await start();
  const { stdout } = await execFile(join(binDir, 'postgres'), ['--version']);
  const version = stdout.trim().replace(/^postgres \(PostgreSQL\) /, '');

  const server: PostgresServer = {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    user: 'postgres',
    password,
    version,
    binDir,
    url: (database) =>
      `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async query<T extends Record<string, unknown>>(database: string, sql: string): Promise<T[]> {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
      await client.connect();
      try {
        const res = (await client.query(sql)) as unknown as pg.QueryResult<T> | pg.QueryResult<T>[];
        const last = Array.isArray(res) ? res[res.length - 1] : res;
        return last?.rows ?? [];
      } finally {
        await client.end();
      }
    },
    async createDatabase(name) {
      await server.query('postgres', `CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    },
    start,
    pause: stopServer,
    async stop() {
      await stopServer();
      await rm(base, { recursive: true, force: true });
    },
  };
  return server;
}
