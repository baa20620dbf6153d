/**
 * A throwaway MariaDB server for a restore drill (see ../scratch.ts): a data directory made by
 * `mariadb-install-db` in the private dir, and `mariadbd` on 127.0.0.1 on a free port (the MySQL
 * engine's tools reach a server by host and port), with its grant tables (a restore may create users
 * and grants) and a `root@127.0.0.1` account with a random password. The password reaches the server in
 * an init file (mode 0600, in the server's own directory), removed once the server is up. A backup from
 * storage may be forged: the server reads and writes no file outside an empty directory of its own
 * (`--secure-file-priv`), takes none from its client (`--local-infile=0`), and its plugin directory is
 * empty (no `INSTALL PLUGIN`). root keeps its other privileges: views with another user as DEFINER need them.
 *
 * As root, install-db and the server run as the `mysql` system user (or `nobody`) in their own 0700
 * directory; otherwise as us. The server's command line names its data directory (`--datadir=<dir>/...`)
 * for the start-up sweep of a killed run's temp dir. MySQL's own server (no install-db, `--initialize`)
 * is not supported: the image and Debian ship MariaDB.
 */
import { randomBytes } from 'node:crypto';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { runTool } from '../../util/process.ts';
import { Secret } from '../../util/secret.ts';
import { toolEnv } from '../../util/tool-env.ts';
import type { ScratchServer, ScratchServerOptions } from '../scratch.ts';
import {
  checkSocketPath,
  findExecutable,
  freeLoopbackPort,
  logSays,
  runStep,
  type ServerAccount,
  type ServerProcess,
  scratchServer,
  scratchServerMissing,
  serverAccount,
  serverHome,
  spawnServer,
  waitUntilReady,
} from '../scratch-process.ts';

const HOST = '127.0.0.1';
/** The server's socket, in its directory (mariadbd always opens one; the engine connects by TCP). */
const SOCKET = 'mysqld.sock';
const USER = 'root';
/**
 * Empty directories in the server's own: the only one its file statements may read or write
 * (`--secure-file-priv`: no `LOAD_FILE('/etc/...')`, no `SELECT ... INTO OUTFILE` elsewhere), and its
 * plugin directory (no `INSTALL PLUGIN`/`SONAME` can load a library from the system's).
 */
const FILES_DIR = 'files';
const PLUGIN_DIR = 'plugins';
/** Tries at starting on a free port: another process may take the port between the probe and the bind. */
const PORT_TRIES = 4;

/** Where the binaries are looked for, in order (tests: an empty directory). */
export interface MariadbServerSearch {
  dirs: readonly string[];
}

/** PATH, then the sbin directories a non-root user's PATH often lacks (Debian's mariadbd is in /usr/sbin). */
function defaultSearch(): MariadbServerSearch {
  return {
    dirs: [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'],
  };
}

interface Binaries {
  server: string;
  installDb: string;
  version: string;
}

/** The server and install-db binaries and the server's version; ToolMissingError (`mariadb-server`) without them. */
async function findBinaries(search: MariadbServerSearch): Promise<Binaries> {
  const server = await findExecutable(['mariadbd', 'mysqld'], search.dirs);
  const installDb = await findExecutable(['mariadb-install-db', 'mysql_install_db'], search.dirs);
  if (!server || !installDb) {
    throw scratchServerMissing(
      'MariaDB server (mariadbd, mariadb-install-db)',
      search.dirs,
      'mariadb-server',
    );
  }
  const res = await runTool(
    { command: server, packageName: 'mariadb-server' },
    ['--version'],
    toolEnv(process.env),
  );
  const version = /Ver\s+(\d+\.\d+\.\d+)/.exec(res.stdout)?.[1] ?? 'unknown version';
  return { server, installDb, version };
}

/** Starts a throwaway MariaDB server in `options.dir`; see StartScratchServer. */
export async function startMysqlScratchServer(
  options: ScratchServerOptions,
  search: MariadbServerSearch = defaultSearch(),
): Promise<ScratchServer> {
  const { signal } = options;
  signal?.throwIfAborted();
  const bin = await findBinaries(search);
  const what = `throwaway MariaDB ${bin.version} server`;
  const account = await serverAccount('mysql');
  checkSocketPath(join(options.dir, 'mysql', SOCKET));
  const home = await serverHome(options.dir, 'mysql', account);
  const data = join(home, 'data');
  for (const empty of [FILES_DIR, PLUGIN_DIR]) await emptyDir(join(home, empty), account);
  await runStep(`mariadb-install-db of the ${what}`, bin.installDb, installArgs(data), {
    cwd: home,
    log: join(home, 'install-db.log'),
    account,
    signal,
  });
  const password = new Secret(randomBytes(24).toString('hex'));
  const initFile = await writeInitFile(home, password, account);
  const { server, port } = await startOnFreePort(what, bin.server, home, initFile, account, signal);
  const stop = () => server.stop();
  try {
    await rm(initFile, { force: true });
  } catch (err) {
    // Nothing owns the server yet: it must not run on.
    await stop();
    throw err;
  }
  return scratchServer(what, { host: HOST, port, user: USER, password }, stop, signal);
}

function installArgs(data: string): string[] {
  return ['--no-defaults', `--datadir=${data}`, '--skip-test-db', '--auth-root-authentication-method=socket'];
}

/** The SQL the server runs as it starts: the account the engine connects as, with every privilege. */
async function writeInitFile(
  home: string,
  password: Secret,
  account: ServerAccount | undefined,
): Promise<string> {
  const file = join(home, 'init.sql');
  const grantee = `'${USER}'@'${HOST}'`;
  // The password is hex: nothing in it needs quoting.
  const sql = `CREATE USER ${grantee} IDENTIFIED BY '${password.reveal()}';\nGRANT ALL PRIVILEGES ON *.* TO ${grantee} WITH GRANT OPTION;\n`;
  await writeFile(file, sql, { mode: 0o600, flag: 'wx' });
  if (account) await chown(file, account.uid, account.gid);
  return file;
}

/** Makes the empty directory `dir` (mode 0700), owned by `account` when there is one. */
async function emptyDir(dir: string, account: ServerAccount | undefined): Promise<void> {
  await mkdir(dir, { mode: 0o700 });
  if (account) await chown(dir, account.uid, account.gid);
}

/**
 * Starts the server on a free port, again on another one when the port was taken meanwhile. Throws
 * RestoreError (its log's last lines) when it does not start; nothing is left running then.
 */
async function startOnFreePort(
  what: string,
  command: string,
  home: string,
  initFile: string,
  account: ServerAccount | undefined,
  signal: AbortSignal | undefined,
): Promise<{ server: ServerProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    const log = join(home, `server-${attempt}.log`);
    const server = await spawnServer(command, serverArgs(home, port, initFile), { cwd: home, log, account });
    try {
      await waitUntilReady(what, server, () => logSays(log, /ready for connections/), signal);
      return { server, port };
    } catch (err) {
      await server.stop();
      const portTaken = await logSays(log, /address already in use/i);
      if (!portTaken || attempt >= PORT_TRIES || signal?.aborted) throw err;
    }
  }
}

/** The server's arguments: its data directory first, so the sweep sees the dir in its command line. */
function serverArgs(home: string, port: number, initFile: string): string[] {
  return [
    '--no-defaults',
    `--datadir=${join(home, 'data')}`,
    `--socket=${join(home, SOCKET)}`,
    `--pid-file=${join(home, 'mysqld.pid')}`,
    `--tmpdir=${home}`,
    `--init-file=${initFile}`,
    `--port=${port}`,
    `--bind-address=${HOST}`,
    '--skip-name-resolve',
    '--skip-log-bin',
    '--character-set-server=utf8mb4',
    '--innodb-log-file-size=16M',
    '--innodb-flush-log-at-trx-commit=0',
    '--innodb-doublewrite=0',
    '--event-scheduler=OFF',
    // A backup from storage may be forged: its SQL reads no file of this host, writes none outside the
    // empty FILES_DIR, reads none from the client (LOAD DATA LOCAL), and loads no plugin.
    `--secure-file-priv=${join(home, FILES_DIR)}`,
    '--local-infile=0',
    `--plugin-dir=${join(home, PLUGIN_DIR)}`,
  ];
}
