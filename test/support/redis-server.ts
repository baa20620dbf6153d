/**
 * Throwaway Redis servers for the tests: each lives in its own temp dir, listens on 127.0.0.1 on a free
 * port with `requirepass` (the default user) and an ACL user, keeps no persistence unless paused, and is
 * removed by `stop()`. `pause()` saves and stops it (the port then refuses connections); `start()` brings
 * it back with its data.
 */
import { type ChildProcess, execFile as execFileCb, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { Secret } from '../../src/util/secret.ts';
import { freePort } from './postgres-server.ts';
import { selfSignedCert } from './tls.ts';

const execFile = promisify(execFileCb);

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** Password of the default user (`requirepass`). */
  readonly password: string;
  /** An ACL user with every permission, and its password. */
  readonly aclUser: string;
  readonly aclPassword: string;
  readonly version: string;
  /** With TLS: the server's self-signed certificate (for 127.0.0.1), the CA a client verifies it with. */
  readonly caFile: string | undefined;
  /** A connected client as the default user, on logical database `db`; the caller disconnects it. */
  client(db?: number): Promise<Redis>;
  /** A redis target for this server (the default user, or the ACL user). */
  target(name: string, options?: { acl?: boolean; password?: string }): TargetConfig;
  flushAll(): Promise<void>;
  /** Saves the data and stops the server (the port refuses connections until `start()`). */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A server on loopback; with `tls`, its port speaks only TLS, with a self-signed certificate. */
export async function startRedis(options: { tls?: boolean } = {}): Promise<RedisServer> {
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const aclUser = 'backup';
  const aclPassword = `acl-${Math.random().toString(36).slice(2)}`;
  const base = await mkdtemp(join(tmpdir(), 'datasaver-redis-'));
  const { stdout } = await execFile('redis-server', ['--version']);
  const version = /v=(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
  const tlsFiles = options.tls ? await selfSignedCert(base, 'cert') : undefined;
  const caFile = tlsFiles?.cert;
  const tlsLines = (port: number) =>
    tlsFiles
      ? [
          'port 0',
          `tls-port ${port}`,
          `tls-cert-file ${tlsFiles.cert}`,
          `tls-key-file ${tlsFiles.key}`,
          'tls-auth-clients no',
        ]
      : [`port ${port}`];
  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    for (let attempt = 0; ; attempt++) {
      port = port || (await freePort());
      const conf = join(base, 'redis.conf');
      await writeFile(
        conf,
        [
          'bind 127.0.0.1',
          ...tlsLines(port),
          `dir ${base}`,
          'dbfilename dump.rdb',
          'save ""',
          'appendonly no',
          // A backup is a diskless SYNC; by default the server waits 5 s for more replicas first.
          'repl-diskless-sync-delay 0',
          'daemonize no',
          'logfile ""',
          `requirepass ${password}`,
          `user ${aclUser} on >${aclPassword} ~* &* +@all`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      const proc = spawn('redis-server', [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      const ready = new Promise<boolean>((resolve) => {
        proc.stdout.on('data', (c: Buffer) => {
          log += c.toString();
          if (/Ready to accept connections/.test(log)) resolve(true);
        });
        proc.stderr.on('data', (c: Buffer) => {
          log += c.toString();
        });
        proc.once('exit', () => resolve(false));
        proc.once('error', () => resolve(false));
      });
      if (await ready) {
        child = proc;
        exited = new Promise((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) resolve();
          else proc.once('exit', () => resolve());
        });
        return;
      }
      if (attempt >= 3) throw new Error(`redis-server did not start:\n${log}`);
      port = 0; // the port may have been taken in between; pick another
    }
  };

  const client = async (db = 0): Promise<Redis> => {
    const c = new Redis({
      host: '127.0.0.1',
      port,
      password,
      db,
      protocol: 2,
      lazyConnect: true,
      tls: caFile ? { ca: await readFile(caFile) } : undefined,
    });
    await c.connect();
    return c;
  };

  const halt = async () => {
    child?.kill('SIGKILL');
    await exited;
    child = undefined;
  };

  await start();
  return {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    password,
    aclUser,
    aclPassword,
    version,
    caFile,
    client,
    target(name, options = {}) {
      const t = offlineTarget(name, undefined, 'redis');
      return {
        ...t,
        connection: {
          ...t.connection,
          host: '127.0.0.1',
          port,
          user: options.acl ? aclUser : undefined,
          password: new Secret(options.password ?? (options.acl ? aclPassword : password)),
        },
      };
    },
    async flushAll() {
      const c = await client();
      try {
        await c.flushall();
        await c.function('FLUSH');
      } finally {
        c.disconnect();
      }
    },
    async pause() {
      const c = await client();
      try {
        await c.save();
      } finally {
        c.disconnect();
      }
      await halt();
    },
    start,
    async stop() {
      await halt();
      await rm(base, { recursive: true, force: true });
    },
  };
}
