/**
 * Redis engine. One format, `rdb`: the server's own snapshot, taken over the network with
 * `redis-cli --rdb -` (the replication SYNC a replica would do: the server forks and streams an RDB, no
 * Docker socket, no file on the server's disk, no stop). The password reaches redis-cli through
 * REDISCLI_AUTH, never argv; ioredis makes the small control calls (INFO, key counts).
 *
 * `verify` reads the RDB in-process (redis-rdb.ts): header, every record to the EOF opcode, and the
 * CRC-64 in the last 8 bytes.
 *
 * Restoring, two ways:
 *   1. `datasaver restore ID --to-file PATH` writes the RDB itself, for the data directory of a stopped
 *      server (`dbfilename` in `dir`, AOF off or rewritten after): the fastest, exact restore.
 *   2. Into a running server, which this engine does: the RDB is spooled to a private temp dir, a
 *      throwaway `redis-server` (no TCP port, a unix socket only, no persistence) loads it, and every key
 *      of every logical database is copied with DUMP + PTTL from it and RESTORE key ttl payload [REPLACE]
 *      into the target. Redis's own loader reads the file, so every encoding and version the local
 *      redis-server knows restores, and DUMP/RESTORE carry values byte-exact with their TTLs through the
 *      protocol alone: it works on servers whose disk we cannot reach (managed Redis, another pod). Keys
 *      that expire before they are copied are skipped. It needs `redis-server` locally, memory for a
 *      second copy of the data set while it runs, and is not atomic: a failure leaves the keys copied so
 *      far. Without overwrite, RESTORE refuses keys that exist (nothing is silently replaced).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Redis, RedisOptions } from 'ioredis';
import {
  BackupError,
  ConnectionError,
  DatasaverError,
  errorMessage,
  RestoreError,
  ToolMissingError,
  UsageError,
} from '../../util/errors.ts';
import { failpoint } from '../../util/failpoint.ts';
import { makePrivateTempDir } from '../../util/private-temp.ts';
import {
  describeExit,
  killIfRunning,
  runTool,
  spawnTool,
  Tail,
  type Tool,
  toolMissing,
} from '../../util/process.ts';
import { redact } from '../../util/secret.ts';
import { type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type {
  DatabaseFacts,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreCapabilities,
  RestoreOptions,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import { redisDescriptor } from './descriptor.ts';
import { checkRdb, RdbChecker, RdbError, type RdbSummary } from './rdb.ts';

const DEFAULT_PORT = 6379;
/** redis-cli writes the 40-byte EOF mark of a diskless transfer to stdout after the RDB (7.0 and older). */
const EOF_MARK = 40;
/** Keys per DUMP/RESTORE round trip, at most; fewer when values are large (BATCH_BYTES). */
const BATCH = 1000;
const BATCH_BYTES = 16 * 1024 * 1024;
/**
 * The ACL rights each job uses, exactly (README.md, "Redis"): every command datasaver sends. Connections
 * send no CLIENT SETINFO, so no right beyond these is ever tried.
 */
export const BACKUP_RIGHTS = '+info +sync +replconf';
export const RESTORE_RIGHTS = '~* +info +select +restore +flushall +function';

type Signal = { signal?: AbortSignal | undefined };
type Fail = typeof BackupError | typeof RestoreError;

export class RedisEngine implements Engine {
  readonly name = 'redis';
  readonly formats = redisDescriptor.formatNames;
  readonly #target: EngineTarget;

  constructor(target: EngineTarget) {
    this.#target = target;
  }

  extension(format: string): string {
    return redisDescriptor.extension(format);
  }

  restoreCapabilities(format: string): RestoreCapabilities {
    return redisDescriptor.restoreCapabilities(format, null);
  }

  async preflight(options: Signal = {}): Promise<ServerInfo> {
    const [info, tool] = await Promise.all([
      this.#withClient(options, (c) => c.info('server')),
      this.#toolVersion(this.#tool('redis-cli', 'redis-tools')),
    ]);
    const serverVersion = infoField(info, 'redis_version');
    if (!serverVersion) throw new BackupError(`${this.#where()} did not report redis_version in INFO`);
    return { serverVersion, toolVersion: `redis-cli ${tool}` };
  }

  async facts(options: Signal = {}): Promise<DatabaseFacts> {
    const keyspace = await this.#withClient(options, (c) => c.info('keyspace'));
    // Read before the RDB snapshot, while writers go on: close to the backup's key counts, not exact.
    return {
      exact: false,
      tables: parseKeyspace(keyspace).map((d) => ({ name: `db${d.db}`, rows: d.keys })),
    };
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.extension(options.format);
    return this.#streamRdb(options.signal);
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.extension(format);
    let summary: RdbSummary;
    try {
      summary = await checkRdb(source, options.signal);
    } catch (err) {
      if (err instanceof RdbError)
        throw new BackupError(`the RDB file is damaged: ${err.message}`, { cause: err });
      throw err;
    }
    return { entries: rdbEntries(summary) };
  }

  async restoreTargetState(targetDatabase?: string, options: Signal = {}): Promise<RestoreTargetState> {
    this.#noTargetDatabase(targetDatabase);
    const keyspace = await this.#withClient(options, (c) => c.info('keyspace'), RestoreError);
    return {
      description: `Redis server at ${this.#where()}`,
      exists: true,
      empty: parseKeyspace(keyspace).every((d) => d.keys === 0),
    };
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<void> {
    this.extension(options.format);
    this.#noTargetDatabase(options.targetDatabase);
    const { signal } = options;
    // Before anything is read or changed: the loader must exist.
    const serverTool = this.#tool('redis-server', 'redis-server');
    const [major = 0, minor = 0] = (await this.#toolVersion(serverTool)).split('.').map(Number);
    const dir = await makePrivateTempDir('redis', options.tempDir);
    try {
      // Spool the RDB for the loader, checking it on the way: a damaged file stops here, before the
      // target is touched.
      const file = join(dir, 'dump.rdb');
      const summary = await spoolAndCheck(source, file, signal);
      // The loader needs as many logical databases as the file uses (all it may use, if not all read).
      const maxDb = Math.max(summary.partial ? 1023 : 15, ...summary.databases.map((d) => d.db));
      const sanitize = major > 6 || (major === 6 && minor >= 2);
      const loader = await startLoader(serverTool, dir, { databases: maxDb + 1, sanitize }, summary, signal);
      try {
        await failpoint('restore.loader-started');
        await this.#copyAll(loader.socket, options);
      } finally {
        await loader.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Copies every key (and function library) from the loader at `socket` into the target. */
  async #copyAll(socket: string, options: RestoreOptions): Promise<void> {
    const { signal } = options;
    const replace = options.overwrite || options.dropExisting;
    const where = this.#where();
    const hint = options.dropExisting
      ? `${where} was flushed before the restore failed and holds the keys copied so far; fix the cause and restore again`
      : `the restore is not atomic: the keys copied before the failure remain on ${where}; fix the cause and restore again with --force or --drop-existing`;
    const source = await connect({ path: socket }, () => `the temporary redis-server`);
    try {
      await this.#withClient(
        options,
        async (target) => {
          // Before anything changes on the target: one real payload must restore there (a target older
          // than the local redis-server rejects its DUMP format; ACLs may forbid RESTORE).
          // Redis 7 function libraries travel as one FUNCTION DUMP payload (none before Redis 7).
          const libraries = (await source.function('LIST').catch(() => [])) as unknown[];
          await probeRestore(source, target, {
            where,
            user: this.#target.connection.user ?? 'default',
            flush: options.dropExisting,
            functions: libraries.length > 0,
          });
          if (options.dropExisting) await target.flushall();
          try {
            if (libraries.length) {
              const payload = await source.functionBuffer('DUMP');
              if (replace) await target.function('RESTORE', payload, 'REPLACE');
              else await target.function('RESTORE', payload);
            }
            const loaded = parseKeyspace(await source.info('keyspace'));
            for (const { db } of loaded) await copyDatabase(source, target, db, replace, signal);
          } catch (err) {
            if (signal?.aborted) throw signal.reason;
            if (err instanceof DatasaverError) throw new RestoreError(err.message, { hint, cause: err });
            throw new RestoreError(`restoring into ${where} failed: ${this.#redact(errorMessage(err))}`, {
              hint,
              cause: err,
            });
          }
        },
        RestoreError,
      );
    } finally {
      source.disconnect();
    }
  }

  /** `redis-cli --rdb -` as a stream that fails, before it ends, if redis-cli fails. */
  async *#streamRdb(signal?: AbortSignal): AsyncGenerator<Buffer> {
    signal?.throwIfAborted();
    const tool = this.#tool('redis-cli', 'redis-tools');
    const p = spawnTool(tool, [...this.#cliArgs(), '--rdb', '-'], { env: this.#cliEnv() });
    const onAbort = () => killIfRunning(p.child);
    signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (message: string) => {
      const stderr = this.#redact(p.stderr.text());
      return new BackupError(`${message}${stderr ? `: ${stderr}` : ''}`, {
        hint: /NOPERM/.test(stderr)
          ? `the backup was not committed; the user needs the sync and replconf commands (ACL SETUSER ${this.#target.connection.user ?? 'default'} ${BACKUP_RIGHTS})`
          : 'the backup was not committed; see the message above',
      });
    };
    // The last EOF_MARK bytes are held back until redis-cli says how long the RDB was: a diskless
    // transfer ends with the server's 40-byte EOF mark, which redis-cli writes to stdout too.
    let held: Buffer = Buffer.alloc(0);
    let sent = 0;
    try {
      for await (const chunk of p.child.stdout! as AsyncIterable<Buffer>) {
        let out: Buffer | undefined;
        if (chunk.length >= EOF_MARK) {
          if (held.length) yield held;
          sent += held.length;
          out = chunk.subarray(0, chunk.length - EOF_MARK);
          held = chunk.subarray(chunk.length - EOF_MARK);
        } else {
          const all = Buffer.concat([held, chunk]);
          out = all.subarray(0, Math.max(0, all.length - EOF_MARK));
          held = all.subarray(out.length);
        }
        if (out.length) {
          sent += out.length;
          yield out;
        }
      }
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) throw fail(`redis-cli --rdb ${describeExit(exit)}`);
      const length = rdbLength(p.stderr.text());
      if (length === undefined) throw fail('redis-cli --rdb did not say how long the RDB was');
      const rest = length - sent;
      const trailer = held.subarray(Math.max(0, rest));
      if (
        rest < 0 ||
        rest > held.length ||
        !(trailer.length === 0 || /^[0-9a-f]{40}$/.test(trailer.toString('latin1')))
      ) {
        throw fail(`redis-cli --rdb wrote ${sent + held.length} bytes for an RDB of ${length} bytes`);
      }
      if (rest > 0) yield held.subarray(0, rest);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      killIfRunning(p.child); // the consumer stopped early or failed: do not leave redis-cli running
      await p.exited.catch(() => {});
    }
  }

  async #toolVersion(tool: Tool): Promise<string> {
    const res = await runTool(tool, ['--version'], toolEnv(process.env)); // no connection, no secret
    const m = /(?:redis-cli|v=)\s*(\d+\.\d+(?:\.\d+)?)/.exec(res.stdout);
    if (res.code !== 0 || !m) {
      throw new BackupError(
        `cannot tell the version of ${tool.command}: ${res.stderr || res.stdout || describeExit(res)}`,
      );
    }
    return m[1]!;
  }

  #tool(name: string, packageName: string): Tool {
    const dir = this.#target.toolDir;
    return { command: dir ? join(dir, name) : name, packageName };
  }

  #noTargetDatabase(targetDatabase: string | undefined): void {
    if (targetDatabase !== undefined) {
      throw new UsageError(
        `--target-db does not apply to Redis: a backup holds every logical database of the server`,
        { hint: 'restore into another server by choosing a target with its connection settings' },
      );
    }
  }

  #host(): string {
    return this.#target.connection.host ?? 'localhost';
  }

  #where(): string {
    const host = this.#host();
    return host.startsWith('/') ? host : `${host}:${this.#target.connection.port ?? DEFAULT_PORT}`;
  }

  /** redis-cli connection arguments: no secrets (the password travels in REDISCLI_AUTH). */
  #cliArgs(): string[] {
    const c = this.#target.connection;
    const host = this.#host();
    const args = host.startsWith('/') ? ['-s', host] : ['-h', host, '-p', String(c.port ?? DEFAULT_PORT)];
    if (c.user) args.push('--user', c.user);
    if (c.tls) args.push('--tls', ...(isIP(host) || host.startsWith('/') ? [] : ['--sni', host]));
    if (c.tlsCa !== undefined) args.push('--cacert', c.tlsCa);
    return args;
  }

  /** The CA certificates of DATASAVER_DB_TLS_CA, if set (else ioredis trusts the system's CAs). */
  async #tlsCa(): Promise<Buffer | undefined> {
    const file = this.#target.connection.tlsCa;
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      throw new ConnectionError(`cannot read the CA file ${file}: ${errorMessage(err)}`, {
        hint: 'set DATASAVER_DB_TLS_CA to a readable PEM file with the CA certificate(s) of the server',
        transient: false,
      });
    }
  }

  /** The target's password alone, in REDISCLI_AUTH; a REDISCLI_AUTH of the parent's never passes (ioredis would not use it). */
  #cliEnv(): ToolEnv {
    return toolEnv(process.env, { set: { REDISCLI_AUTH: this.#target.connection.password?.reveal() } });
  }

  #redact(text: string): string {
    return redact(text, [this.#target.connection.password]);
  }

  /**
   * Runs `fn` on a fresh connection to the target. Connection and authentication failures are
   * ConnectionErrors; error replies become `FailAs`.
   */
  async #withClient<T>(
    options: Signal,
    fn: (c: Redis) => Promise<T>,
    FailAs: Fail = BackupError,
  ): Promise<T> {
    options.signal?.throwIfAborted();
    const c = this.#target.connection;
    const host = this.#host();
    const client = await connect(
      {
        ...(host.startsWith('/') ? { path: host } : { host, port: c.port ?? DEFAULT_PORT }),
        username: c.user,
        password: c.password?.reveal(),
        tls: c.tls ? { servername: isIP(host) ? undefined : host, ca: await this.#tlsCa() } : undefined,
      },
      () => this.#where(),
      (err) => this.#connectionError(err),
    );
    const onAbort = () => client.disconnect();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await fn(client);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (err instanceof DatasaverError) throw err;
      if (isReplyError(err)) {
        if (/^(NOPERM|NOAUTH|WRONGPASS)/.test(errorMessage(err))) throw this.#connectionError(err);
        throw new FailAs(`${this.#where()}: ${this.#redact(errorMessage(err))}`, { cause: err });
      }
      throw new ConnectionError(
        `lost the connection to ${this.#where()}: ${this.#redact(errorMessage(err))}`,
        {
          cause: err,
        },
      );
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      client.disconnect();
    }
  }

  #connectionError(err: unknown): ConnectionError {
    const message = this.#redact(errorMessage(err));
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const where = this.#where();
    const user = this.#target.connection.user ?? 'default';
    if (
      /^(WRONGPASS|NOAUTH)/.test(message) ||
      /invalid password|without any password configured/i.test(message)
    ) {
      return new ConnectionError(`authentication failed for user ${user} on ${where}: ${message}`, {
        hint: 'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD (or the password in the URL)',
        cause: err,
        transient: false,
      });
    }
    if (/^NOPERM/.test(message)) {
      return new ConnectionError(`user ${user} on ${where} lacks a permission: ${message}`, {
        hint: `grant it: ACL SETUSER ${user} ${BACKUP_RIGHTS} (backups) or ${RESTORE_RIGHTS} (restores)`,
        cause: err,
        transient: false,
      });
    }
    if (code === 'ENOTFOUND') {
      return new ConnectionError(`cannot resolve host ${this.#host()}`, {
        hint: 'check DATASAVER_DB_HOST',
        cause: err,
        transient: false,
      });
    }
    return new ConnectionError(`cannot connect to Redis at ${where}: ${message}`, {
      hint: 'check that the server runs and DATASAVER_DB_HOST/PORT (and DATASAVER_DB_TLS)',
      cause: err,
    });
  }
}

export function createRedisEngine(target: EngineTarget): Engine {
  return new RedisEngine(target);
}

// ---------------------------------------------------------------------------------------------------

function isReplyError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'ReplyError' || err.constructor.name === 'ReplyError');
}

/**
 * Connects an ioredis client that never retries or queues: a failure is reported once, as the error the
 * connection actually hit (ioredis itself only says "Connection is closed").
 */
async function connect(
  options: RedisOptions,
  where: () => string,
  asError: (err: unknown) => Error = (err) =>
    new RestoreError(`cannot connect to ${where()}: ${errorMessage(err)}`, { cause: err }),
): Promise<Redis> {
  // Loaded here, not at start: ioredis adds ~20 MB to every process, and most targets are not Redis.
  const { Redis } = await import('ioredis');
  let lastError: unknown;
  const client = new Redis({
    ...options,
    protocol: 2,
    lazyConnect: true,
    connectTimeout: 10_000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    disableClientInfo: true,
  });
  client.on('error', (err: unknown) => {
    lastError ??= err;
  });
  try {
    await client.connect();
    return client;
  } catch (err) {
    client.disconnect();
    throw asError(lastError ?? err);
  }
}

/**
 * Checks, before anything changes on the target, that it takes this backup with the rights the restore
 * will use: SELECT of every logical database the backup uses; a RESTORE of one real payload (a target
 * older than the local redis-server rejects its DUMP format), with an absolute expiry in the past, so the
 * server loads and checks the payload and then creates no key (nothing to delete afterwards; an old
 * server that stores it anyway stores it expired, seen by no command and reclaimed by expiry); and, when
 * the restore will run them, FLUSHALL and FUNCTION RESTORE with an argument they refuse: the ACL check
 * comes first, so a missing right answers NOPERM and a granted one a syntax or payload error, and
 * neither changes anything. Throws RestoreError saying nothing was changed when refused.
 */
async function probeRestore(
  source: Redis,
  target: Redis,
  probe: { where: string; user: string; flush: boolean; functions: boolean },
): Promise<void> {
  const { where, user } = probe;
  const dbs = parseKeyspace(await source.info('keyspace'));
  let payload: Buffer | null = null;
  if (dbs[0]) {
    await source.select(dbs[0].db);
    const [, keys] = await source.scanBuffer('0', 'COUNT', 100);
    payload = keys[0] ? await source.dumpBuffer(keys[0]) : null;
    await source.select(0);
  }
  const unchanged = `nothing was changed on ${where}`;
  const check = async (command: string, run: () => Promise<unknown>, allowed = /^$/) => {
    try {
      await run();
    } catch (err) {
      const message = errorMessage(err);
      if (/^NOPERM/.test(message)) {
        throw new RestoreError(`user ${user} on ${where} may not run ${command}: ${message}`, {
          hint: `${unchanged}; grant it (ACL SETUSER ${user} ${RESTORE_RIGHTS}) and restore again`,
          cause: err,
        });
      }
      if (allowed.test(message)) return;
      throw new RestoreError(`${where} cannot take this backup's keys: ${message}`, {
        hint: `${unchanged}; a DUMP payload only restores into a Redis at least as new as the local redis-server that loads the backup`,
        cause: err,
      });
    }
  };
  await check('SELECT', async () => {
    for (const { db } of dbs) await target.select(db);
    await target.select(0);
  });
  if (payload) {
    const key = `datasaver:restore-probe:${process.pid}:${Date.now()}`;
    await check('RESTORE', () => target.restore(key, 1, payload, 'ABSTTL'));
  }
  const refusedArgument = /^ERR/;
  if (probe.functions) {
    await check('FUNCTION RESTORE', () => target.call('FUNCTION', 'RESTORE', ''), refusedArgument);
  }
  // Last: a Redis-compatible server that ignored the refused argument would flush, which --drop-existing
  // (the only restore that probes it) does next anyway; no probe after it may then say nothing changed.
  if (probe.flush) {
    await check('FLUSHALL', () => target.call('FLUSHALL', 'datasaver-probe'), refusedArgument);
  }
}

/** Copies every key of logical database `db`, with its TTL; keys that expired meanwhile are skipped. */
async function copyDatabase(
  source: Redis,
  target: Redis,
  db: number,
  replace: boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  await source.select(db);
  await target.select(db);
  let cursor = '0';
  // Small first: values of unknown size (a batch of large ones could hold gigabytes); the next batches
  // are sized from what came before.
  let size = 16;
  do {
    signal?.throwIfAborted();
    const [next, keys] = await source.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    for (let i = 0; i < keys.length; ) {
      const batch = keys.slice(i, i + size);
      i += batch.length;
      const read = source.pipeline();
      for (const key of batch) read.dumpBuffer(key).pttl(key);
      const got = await read.exec();
      const write = target.pipeline();
      const written: { key: Buffer; payload: Buffer }[] = [];
      batch.forEach((key, j) => {
        const [dumpErr, payload] = got![2 * j]! as [Error | null, Buffer | null];
        const [ttlErr, pttl] = got![2 * j + 1]! as [Error | null, number];
        if (dumpErr || ttlErr) throw dumpErr ?? ttlErr;
        if (!payload || pttl === -2) return; // expired since the snapshot, or while copying
        const ttl = pttl < 0 ? 0 : pttl;
        if (replace) write.restore(key, ttl, payload, 'REPLACE');
        else write.restore(key, ttl, payload);
        written.push({ key, payload });
      });
      // Memory stays near BATCH_BYTES of payloads whatever the value sizes: the next batch is sized
      // from this one's average.
      const bytes = written.reduce((n, w) => n + w.payload.length, 0);
      size = Math.max(1, Math.min(BATCH, Math.floor((BATCH_BYTES * batch.length) / Math.max(1, bytes))));
      if (!written.length) continue;
      const results = await write.exec();
      for (const [j, [err]] of results!.entries()) {
        if (!err) continue;
        const { key, payload } = written[j]!;
        if (/^BUSYKEY/.test(err.message)) {
          // SCAN may return a key twice; the same value restored earlier is no conflict.
          // Comparing needs +dump, which a restore does not otherwise need: without it, say so.
          const existing = await target.dumpBuffer(key).catch((e: unknown) => e);
          if (Buffer.isBuffer(existing) && existing.equals(payload)) continue;
          const other = Buffer.isBuffer(existing)
            ? 'with other data'
            : `(it could not be compared: ${errorMessage(existing)})`;
          throw new RestoreError(
            `key ${printable(key)} already exists in db${db} ${other}; nothing was replaced`,
          );
        }
        throw new RestoreError(`RESTORE of key ${printable(key)} in db${db} failed: ${err.message}`, {
          cause: err,
        });
      }
    }
  } while (cursor !== '0');
}

/** Writes the RDB to `file` while checking it; throws RestoreError (nothing touched yet) if damaged. */
async function spoolAndCheck(
  source: AsyncIterable<Buffer>,
  file: string,
  signal: AbortSignal | undefined,
): Promise<RdbSummary> {
  const checker = new RdbChecker();
  const out: WriteStream = createWriteStream(file, { mode: 0o600 });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => {});
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      checker.push(chunk);
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
  } finally {
    out.destroy();
  }
  try {
    return checker.finish();
  } catch (err) {
    if (err instanceof RdbError) {
      throw new RestoreError(`the backup is not a complete RDB file: ${err.message}`, {
        hint: 'nothing was changed on the target; run datasaver verify on the backup',
        cause: err,
      });
    }
    throw err;
  }
}

interface Loader {
  socket: string;
  stop(): Promise<void>;
}

/**
 * Starts a private redis-server on `dir/dump.rdb` (unix socket only, no persistence) and waits until loaded.
 * The file comes from storage, which is untrusted: with `sanitize` (Redis 6.2 and later) the loader checks
 * every encoded value in full before it uses it, so a crafted ziplist or listpack fails the load instead of
 * corrupting the loader's memory. It runs with no secret in its environment (see tool-env.ts).
 */
async function startLoader(
  tool: Tool,
  dir: string,
  { databases, sanitize }: { databases: number; sanitize: boolean },
  summary: RdbSummary,
  signal: AbortSignal | undefined,
): Promise<Loader> {
  signal?.throwIfAborted();
  const socket = join(dir, 'redis.sock');
  if (Buffer.byteLength(socket) > 100) {
    throw new RestoreError(`the temporary directory ${dir} is too deep for a unix socket`, {
      hint: 'pass a shorter --temp-dir (or TMPDIR); nothing was changed on the target',
    });
  }
  const args = [
    '--port',
    '0',
    '--unixsocket',
    socket,
    '--unixsocketperm',
    '700',
    '--dir',
    dir,
    '--dbfilename',
    'dump.rdb',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--databases',
    String(databases),
    '--logfile',
    '',
    ...(sanitize ? ['--sanitize-dump-payload', 'yes'] : []),
  ];
  const child: ChildProcess = spawn(tool.command, args, {
    env: toolEnv(process.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = new Tail();
  let text = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    killIfRunning(child);
    await exited;
  };
  const onAbort = () => killIfRunning(child);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const ready = await new Promise<boolean>((resolve, reject) => {
      const onData = (c: Buffer) => {
        log.push(c);
        text = (text + c.toString('utf8')).slice(-8192);
        if (/ready to accept connections/i.test(text)) resolve(true);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? toolMissing(tool, err) : err),
      );
      child.once('close', () => resolve(false));
    });
    signal?.throwIfAborted();
    if (!ready) {
      const message = log.text();
      const version = /Can't handle RDB format version (\d+)/.exec(message)?.[1];
      if (version) {
        throw new ToolMissingError(
          `${tool.command} cannot load this backup: it is RDB version ${version}${summary.aux['redis-ver'] ? `, written by Redis ${summary.aux['redis-ver']}` : ''}`,
          {
            hint: 'install a redis-server at least as new as the server that was backed up, or set DATASAVER_TOOL_DIR',
          },
        );
      }
      throw new RestoreError(`the temporary redis-server could not load the backup: ${lastLines(message)}`, {
        hint: /module/i.test(message)
          ? 'the backup holds Redis module data: restore it with --to-file into a server that loads the module'
          : 'nothing was changed on the target',
      });
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { socket, stop };
}

function lastLines(text: string, n = 5): string {
  return text.split('\n').filter(Boolean).slice(-n).join(' | ');
}

/** The RDB length redis-cli reports on stderr, in either transfer mode. */
export function rdbLength(stderr: string): number | undefined {
  const m =
    /Transfer finished with success after (\d+) bytes/.exec(stderr) ?? /writing (\d+) bytes to/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** `field:value` from INFO output. */
function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** The `db0:keys=1,expires=0,avg_ttl=0` lines of INFO keyspace. */
export function parseKeyspace(info: string): { db: number; keys: number; expires: number }[] {
  const dbs: { db: number; keys: number; expires: number }[] = [];
  for (const m of info.matchAll(/^db(\d+):keys=(\d+),expires=(\d+)/gm)) {
    dbs.push({ db: Number(m[1]), keys: Number(m[2]), expires: Number(m[3]) });
  }
  return dbs;
}

function rdbEntries(summary: RdbSummary): DumpInspection['entries'] {
  const writer = summary.aux['redis-ver'] ? `, written by Redis ${summary.aux['redis-ver']}` : '';
  const checksum = {
    verified: 'CRC-64 checked',
    disabled: 'no checksum to check (saved with rdbchecksum no)',
    absent: 'no checksum (RDB before version 5)',
  }[summary.checksum];
  const entries: DumpInspection['entries'] = [
    { type: 'RDB', schema: '', name: `version ${summary.version}${writer}; ${checksum}` },
  ];
  for (const d of summary.databases) {
    entries.push({
      type: 'DATABASE',
      schema: '',
      name: `db${d.db}: ${d.keys} key${d.keys === 1 ? '' : 's'}, ${d.expires} with a TTL`,
    });
  }
  for (const f of summary.functions) entries.push({ type: 'FUNCTION LIBRARY', schema: '', name: f });
  if (summary.partial)
    entries.push({ type: 'NOTE', schema: '', name: `records not all read: ${summary.partial}` });
  return entries;
}

/** A key name for messages: text as is, binary as hex. */
function printable(key: Buffer): string {
  const text = key.toString('utf8');
  return /^[\x20-\x7e]*$/.test(text) && text.length <= 200
    ? JSON.stringify(text)
    : `0x${key.toString('hex').slice(0, 64)}`;
}
