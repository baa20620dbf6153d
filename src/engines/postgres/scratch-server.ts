/**
 * A throwaway PostgreSQL server for a restore drill (see ../scratch.ts): `initdb` in the private dir, a
 * postmaster listening on a Unix socket in that dir only (no TCP), trust authentication on that socket
 * (the directory is private, so only this user, or root, can reach it), fsync off (the data is thrown
 * away).
 *
 * PostgreSQL refuses to run as root: then initdb and the server run as the `postgres` system user (or
 * `nobody`) in their own 0700 directory inside the private dir; otherwise they run as us. The
 * postmaster's command line names its data directory (`-D <dir>/pg/data`), so the start-up sweep of a
 * killed run's temp dir finds it; its backends exit on their own once it is gone.
 *
 * The drill restores a backup from storage, which may be forged: it restores, and reads back, as a role
 * that is no superuser (DRILL_ROLE, CREATEDB only), never as `postgres`. A superuser could run `COPY ...
 * FROM PROGRAM`, load C functions or untrusted languages: code running on this host as the server's
 * account. Trusted extensions (pgcrypto, hstore, citext...) still restore, created by the database's
 * owner; a backup that needs an untrusted one fails its drill on a throwaway server.
 */
import { readdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { errorMessage, RestoreError } from '../../util/errors.ts';
import type { ScratchServer, ScratchServerOptions } from '../scratch.ts';
import {
  checkSocketPath,
  findExecutable,
  runStep,
  scratchServer,
  scratchServerMissing,
  serverAccount,
  serverHome,
  spawnServer,
  waitUntilReady,
} from '../scratch-process.ts';
import { postgresToolVersion } from './tools.ts';

/** The superuser initdb creates; only used to create DRILL_ROLE. */
const SUPERUSER = 'postgres';
/**
 * The role the drill restores and reads back as: it may create databases (and then owns them and what
 * it restores into them), nothing else; not a member of any role, so `SET ROLE postgres` is refused.
 */
const DRILL_ROLE = 'datasaver_drill';
/** Only names the socket file (`.s.PGSQL.5432`): there is no TCP listener. */
const PORT = 5432;

/** Where the server binaries are looked for; tests point these at empty directories. */
export interface PostgresServerSearch {
  /** Debian's versioned directories, `<root>/<major>/bin`, searched newest major first. */
  root: string;
  /** Then each directory of this PATH (other layouts put initdb and postgres there). */
  path: string | undefined;
}

function defaultSearch(): PostgresServerSearch {
  return { root: '/usr/lib/postgresql', path: process.env.PATH };
}

/**
 * The directory holding both `initdb` and `postgres`: Debian's newest major first, since a newer server
 * restores what older pg_dumps wrote, and the client tools datasaver restores with are normally that
 * newest major too; then PATH. Throws ToolMissingError (package `postgresql`) when there is none.
 */
export async function findPostgresServer(search: PostgresServerSearch = defaultSearch()): Promise<string> {
  const majors = (await readdir(search.root).catch(() => [] as string[]))
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a));
  const dirs = [
    ...majors.map((m) => join(search.root, m, 'bin')),
    ...(search.path ?? '').split(delimiter).filter(Boolean),
  ];
  for (const dir of dirs) {
    if ((await findExecutable(['initdb'], [dir])) && (await findExecutable(['postgres'], [dir]))) return dir;
  }
  throw scratchServerMissing(
    'PostgreSQL server (initdb, postgres)',
    [`${search.root}/<major>/bin`, 'PATH'],
    'postgresql',
  );
}

/** Starts a throwaway PostgreSQL server in `options.dir`; see StartScratchServer. */
export async function startPostgresScratchServer(
  options: ScratchServerOptions,
  search: PostgresServerSearch = defaultSearch(),
): Promise<ScratchServer> {
  const { signal } = options;
  signal?.throwIfAborted();
  const binDir = await findPostgresServer(search);
  const { version } = await postgresToolVersion({
    command: join(binDir, 'postgres'),
    packageName: 'postgresql',
  });
  const what = `throwaway PostgreSQL ${version} server`;
  const account = await serverAccount('postgres');
  checkSocketPath(join(options.dir, 'pg', `.s.PGSQL.${PORT}`));
  const home = await serverHome(options.dir, 'pg', account);
  const data = join(home, 'data');
  await runStep(`initdb of the ${what}`, join(binDir, 'initdb'), initdbArgs(data), {
    cwd: home,
    log: join(home, 'initdb.log'),
    account,
    signal,
  });
  const server = await spawnServer(join(binDir, 'postgres'), serverArgs(data, home), {
    cwd: home,
    log: join(home, 'server.log'),
    account,
  });
  // SIGQUIT is an immediate shutdown: the postmaster stops its backends and exits, writing nothing.
  const stop = () => server.stop('SIGQUIT');
  try {
    await waitUntilReady(what, server, () => postmasterReady(data), signal);
    await createDrillRole(what, home, signal);
  } catch (err) {
    await stop();
    throw err;
  }
  return scratchServer(what, { host: home, port: PORT, user: DRILL_ROLE, sslmode: 'disable' }, stop, signal);
}

/**
 * Creates DRILL_ROLE, connected as the superuser over the private socket (trust authentication).
 * Throws RestoreError when that fails, the signal's reason when it aborts.
 */
async function createDrillRole(
  what: string,
  socketDir: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  signal?.throwIfAborted();
  const client = new pg.Client({ host: socketDir, port: PORT, user: SUPERUSER, database: 'postgres' });
  const onAbort = () => void client.end().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
    await client.query(
      `CREATE ROLE ${DRILL_ROLE} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
    );
  } catch (err) {
    signal?.throwIfAborted();
    throw new RestoreError(`cannot create the drill's role on the ${what}: ${errorMessage(err)}`, {
      hint: 'nothing was restored, and the server is stopped; or set DATASAVER_DRILL_URL to a server to drill on',
      cause: err,
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await client.end().catch(() => {});
  }
}

function initdbArgs(data: string): string[] {
  return [
    `--pgdata=${data}`,
    `--username=${SUPERUSER}`,
    '--encoding=UTF8',
    '--no-locale',
    '--auth-local=trust',
    '--auth-host=reject',
    '--no-sync',
  ];
}

/** The postmaster's arguments: its data directory first, so the sweep sees the dir in its command line. */
function serverArgs(data: string, socketDir: string): string[] {
  const settings = {
    listen_addresses: '',
    // Quoted: a list setting, which a comma in the path would split.
    unix_socket_directories: `"${socketDir}"`,
    port: String(PORT),
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    lc_messages: 'C',
    logging_collector: 'off',
  };
  return ['-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
}

/** Whether the postmaster says it accepts connections (line 8 of postmaster.pid, PostgreSQL 10 and later). */
async function postmasterReady(data: string): Promise<boolean> {
  const pid = await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => '');
  return pid.split('\n')[7]?.trim() === 'ready';
}
