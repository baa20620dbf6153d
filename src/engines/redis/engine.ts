/**
 * Redis engine. One format, `rdb`: the server's own snapshot, taken over the network with
 * `redis-cli --rdb -` (the replication SYNC a replica would do: the server forks and streams an RDB, no
 * Docker socket, no file on the server's disk, no stop). The password reaches redis-cli through
 * REDISCLI_AUTH, never argv; ioredis makes the small control calls (INFO, key counts).
 *
 * `verify` reads the RDB in-process (rdb.ts): header, every record to the EOF opcode, and the
 * CRC-64 in the last 8 bytes. The dump reads it the same way as it streams past: a damaged RDB fails the
 * dump, and a clean one's counts (keys per database and type, info.ts `rdbFacts`) are its exact facts.
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

import { rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { BackupError, DatasaverError, errorMessage, RestoreError, UsageError } from '../../util/errors.ts';
import { failpoint } from '../../util/failpoint.ts';
import { makePrivateTempDir } from '../../util/private-temp.ts';
import { redact } from '../../util/secret.ts';
import { type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type {
  DatabaseFacts,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreOptions,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import { noNamedDatabases } from '../scratch.ts';
import { BACKUP_RIGHTS, connect, DEFAULT_PORT, redisHost, redisWhere, withRedisClient } from './client.ts';
import { copyDatabase, probeRestore } from './copy.ts';
import { redisDescriptor } from './descriptor.ts';
import { infoField, parseKeyspace, rdbEntries, rdbFacts } from './info.ts';
import { serverFacts } from './keyspace-facts.ts';
import { spoolAndCheck, startLoader } from './loader.ts';
import { RdbError, type RdbSummary } from './rdb-format.ts';
import { checkAsItPasses, checkRdb, streamRdb } from './rdb-stream.ts';
import { redisCli, redisServer, redisToolVersion, sanitizesPayloads } from './tools.ts';

type Signal = { signal?: AbortSignal | undefined };
type Fail = typeof BackupError | typeof RestoreError;

export class RedisEngine implements Engine {
  readonly descriptor = redisDescriptor;
  readonly #target: EngineTarget;

  constructor(target: EngineTarget) {
    this.#target = target;
  }

  async preflight(options: Signal = {}): Promise<ServerInfo> {
    const [info, tool] = await Promise.all([
      this.#withClient(options, (c) => c.info('server')),
      redisToolVersion(redisCli(this.#target.toolDir)),
    ]);
    const serverVersion = infoField(info, 'redis_version');
    if (!serverVersion) throw new BackupError(`${this.#where()} did not report redis_version in INFO`);
    return { serverVersion, toolVersion: `redis-cli ${tool.version}` };
  }

  async facts(options: Signal = {}): Promise<DatabaseFacts> {
    const keyspace = await this.#withClient(options, (c) => c.info('keyspace'));
    // Read before the RDB snapshot, while writers go on: close to the backup's key counts, not exact.
    // The dump replaces them with the RDB's own counts where it can walk every record.
    return {
      exact: false,
      tables: parseKeyspace(keyspace).map((d) => ({ name: `db${d.db}`, rows: d.keys })),
    };
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.descriptor.extension(options.format);
    const cli = redisCli(this.#target.toolDir);
    const failure = (message: string, stderr: string) => this.#rdbFailure(message, stderr);
    const rdb = streamRdb(cli, this.#cliArgs(), this.#cliEnv(), options.signal, failure);
    // The RDB is read as it passes: a damaged one is not committed, and its counts are the backup's facts.
    const onChecked = (summary: RdbSummary) => {
      const facts = rdbFacts(summary);
      if (facts) options.onFacts?.(facts);
    };
    return checkAsItPasses(rdb, onChecked, (err) =>
      failure(`redis-cli --rdb wrote a damaged RDB: ${err.message}`, ''),
    );
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.descriptor.extension(format);
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

  async listDatabases(): Promise<string[]> {
    return noNamedDatabases(this.descriptor.label);
  }

  async dropDatabase(): Promise<void> {
    noNamedDatabases(this.descriptor.label);
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

  /**
   * The whole server's facts, counted from its live keys as the RDB reader counts a backup's
   * (keyspace-facts.ts). `targetDatabase` is refused as for a restore: a Redis backup holds every
   * logical database.
   */
  async restoredFacts(targetDatabase?: string, options: Signal = {}): Promise<DatabaseFacts> {
    this.#noTargetDatabase(targetDatabase);
    return this.#withClient(options, (c) => serverFacts(c, options.signal), RestoreError);
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<void> {
    this.descriptor.extension(options.format);
    this.#noTargetDatabase(options.targetDatabase);
    const { signal } = options;
    // Before anything is read or changed: the loader must exist.
    const serverTool = redisServer(this.#target.toolDir);
    const serverVersion = await redisToolVersion(serverTool);
    const dir = await makePrivateTempDir('redis', options.tempDir);
    try {
      // Spool the RDB for the loader, checking it on the way: a damaged file stops here, before the
      // target is touched.
      const file = join(dir, 'dump.rdb');
      const summary = await spoolAndCheck(source, file, signal);
      // The loader needs as many logical databases as the file uses (all it may use, if not all read).
      const maxDb = Math.max(summary.partial ? 1023 : 15, ...summary.databases.map((d) => d.db));
      const sanitize = sanitizesPayloads(serverVersion);
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

  #noTargetDatabase(targetDatabase: string | undefined): void {
    if (targetDatabase !== undefined) {
      throw new UsageError(
        `--target-db does not apply to Redis: a backup holds every logical database of the server`,
        { hint: 'restore into another server by choosing a target with its connection settings' },
      );
    }
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

  /** The target's password alone, in REDISCLI_AUTH; a REDISCLI_AUTH of the parent's never passes (ioredis would not use it). */
  #cliEnv(): ToolEnv {
    return toolEnv(process.env, { set: { REDISCLI_AUTH: this.#target.connection.password?.reveal() } });
  }

  #redact(text: string): string {
    return redact(text, [this.#target.connection.password]);
  }

  #host(): string {
    return redisHost(this.#target.connection);
  }

  #where(): string {
    return redisWhere(this.#target.connection);
  }

  /** See withRedisClient: error replies become `FailAs`, failing to connect a ConnectionError. */
  #withClient<T>(options: Signal, fn: (c: Redis) => Promise<T>, FailAs: Fail = BackupError): Promise<T> {
    return withRedisClient(this.#target.connection, options.signal, fn, FailAs);
  }

  /** The error for a failed `redis-cli --rdb`: its message, redis-cli's stderr (redacted) and a hint. */
  #rdbFailure(message: string, rawStderr: string): BackupError {
    const stderr = this.#redact(rawStderr);
    return new BackupError(`${message}${stderr ? `: ${stderr}` : ''}`, {
      hint: /NOPERM/.test(stderr)
        ? `the backup was not committed; the user needs the sync and replconf commands (ACL SETUSER ${this.#target.connection.user ?? 'default'} ${BACKUP_RIGHTS})`
        : 'the backup was not committed; see the message above',
    });
  }
}

export function createRedisEngine(target: EngineTarget): Engine {
  return new RedisEngine(target);
}
