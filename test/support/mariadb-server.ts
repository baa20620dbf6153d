/**
 * Throwaway MariaDB servers for the tests. Each lives in its own temp dir, listens on 127.0.0.1 on a free
 * port, has a `datasaver` user with a password (and every privilege), and is removed by `stop()`. The
 * server runs as the `mysql` system user when we are root. Tests talk to it as root over its Unix socket
 * (`query`, `exec`), so what they check does not go through the engine under test.
 */
import { type ChildProcess, execFile as execFileCb, execFileSync, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './postgres-server.ts';
import { selfSignedCert } from './tls.ts';

const execFile = promisify(execFileCb);

const SERVER = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
const CLIENT = '/usr/bin/mariadb';

export interface MariadbServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly version: string;
  readonly socket: string;
  /** Started with a certificate, so clients can use TLS. */
  readonly tls: boolean;
  /** With TLS: the server's self-signed certificate (for 127.0.0.1), the CA a client verifies it with. */
  readonly caFile: string | undefined;
  /** Runs SQL (`;`-separated, no DELIMITER) as root; the rows of every statement, fields as the client prints them. */
  query(sql: string, database?: string): Promise<string[][]>;
  /** Runs a SQL script (DELIMITER allowed) as root through the client's stdin. */
  exec(script: string, database?: string): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server without removing its data (an unreachable server). */
  pause(): Promise<void>;
}

/** A password with every character an option file or a shell could trip over. */
export function trickyPassword(): string {
  return `pw "q' #;\\ $x=${Math.random().toString(36).slice(2)}`;
}

const isRoot = () => process.getuid?.() === 0;

export async function startMariadb(
  options: { password?: string; tls?: boolean } = {},
): Promise<MariadbServer> {
  const password = options.password ?? trickyPassword();
  const tls = options.tls ?? false;
  const base = await mkdtemp(join(tmpdir(), 'datasaver-mariadb-'));
  const dataDir = join(base, 'data');
  const tmp = join(base, 'tmp');
  const socket = join(base, 'mysqld.sock');
  await mkdir(tmp);
  if (tls) await selfSignedCert(base, 'cert');
  if (isRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql']).toString().trim());
    for (const p of [base, tmp, ...(tls ? [join(base, 'cert.key'), join(base, 'cert.pem')] : [])])
      await chown(p, uid, gid);
  }
  await chmod(base, 0o700);
  await execFile(INSTALL_DB, [
    '--no-defaults',
    `--datadir=${dataDir}`,
    ...(isRoot() ? ['--user=mysql'] : []),
    '--auth-root-authentication-method=socket',
    '--skip-test-db',
  ]);

  let port = 0;
  let child: ChildProcess | undefined;
  const log = join(base, 'error.log');

  const client = async (args: string[], input?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const p = spawn(
        CLIENT,
        [
          '--no-defaults',
          `--socket=${socket}`,
          '--user=root',
          '--batch',
          '--skip-column-names',
          '--default-character-set=utf8mb4',
          ...args,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout.on('data', (c: Buffer) => out.push(c));
      p.stderr.on('data', (c: Buffer) => err.push(c));
      p.on('error', reject);
      p.on('close', (code) => {
        if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
        else reject(new Error(`mariadb exited with ${code}: ${Buffer.concat(err).toString('utf8')}`));
      });
      // A client that exits early (server not up yet) closes its stdin: the exit code reports that.
      p.stdin.on('error', () => {});
      p.stdin.end(input ?? '');
    });

  const ready = async (): Promise<boolean> => {
    try {
      await client(['--connect-timeout=2', '--execute=SELECT 1']);
      return true;
    } catch {
      return false;
    }
  };

  const start = async () => {
    for (let attempt = 0; ; attempt++) {
      port = port || (await freePort());
      const p = spawn(
        SERVER,
        [
          '--no-defaults',
          `--datadir=${dataDir}`,
          ...(isRoot() ? ['--user=mysql'] : []),
          `--socket=${socket}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--pid-file=${join(base, 'mysqld.pid')}`,
          `--log-error=${log}`,
          `--tmpdir=${tmp}`,
          '--skip-name-resolve',
          '--character-set-server=utf8mb4',
          '--collation-server=utf8mb4_general_ci',
          '--innodb-buffer-pool-size=32M',
          '--innodb-log-file-size=16M',
          '--innodb-flush-log-at-trx-commit=0',
          '--innodb-doublewrite=0',
          '--event-scheduler=OFF',
          '--max-connections=200',
          ...(tls ? [`--ssl-cert=${join(base, 'cert.pem')}`, `--ssl-key=${join(base, 'cert.key')}`] : []),
        ],
        { stdio: 'ignore' },
      );
      p.unref();
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      const deadline = Date.now() + 60_000;
      let up = false;
      while (Date.now() < deadline && p.exitCode === null && p.signalCode === null) {
        if (await ready()) {
          up = true;
          break;
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
      }
      if (up) {
        child = p;
        return;
      }
      p.kill('SIGKILL');
      const why = await readFile(log, 'utf8').catch(() => '');
      if (attempt >= 3) throw new Error(`mariadbd did not start:\n${why.slice(-3000)}`);
      port = 0; // the port may have been taken in between; pick another
    }
  };

  const pause = async () => {
    const p = child;
    child = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  const quotedPassword = password.replaceAll('\\', '\\\\').replaceAll("'", "\\'");
  await client([
    `--execute=CREATE USER 'datasaver'@'%' IDENTIFIED BY '${quotedPassword}'; GRANT ALL PRIVILEGES ON *.* TO 'datasaver'@'%' WITH GRANT OPTION;`,
  ]);
  const version = (await client(['--execute=SELECT VERSION()'])).trim();

  const server: MariadbServer = {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    user: 'datasaver',
    password,
    version,
    socket,
    tls,
    caFile: tls ? join(base, 'cert.pem') : undefined,
    async query(sql, database) {
      const out = await client([...(database ? [`--database=${database}`] : []), `--execute=${sql}`]);
      return out
        .split('\n')
        .filter((l, i, all) => l !== '' || i < all.length - 1)
        .map((l) => l.split('\t'));
    },
    async exec(script, database) {
      await client(database ? [`--database=${database}`] : [], script);
    },
    start,
    pause,
    async stop() {
      await pause();
      await rm(base, { recursive: true, force: true });
    },
  };
  return server;
}

/** A quoted identifier. */
export function ident(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}
