/**
 * The Redis engine against real servers: the conformance suite (backup, verify, restore into a second
 * server with data and TTLs equal, failure paths), plus Redis specifics: overwrite rules, the CRC-64
 * check, secrets kept out of argv, expired keys, aborts and a failing redis-cli.
 */

import { execFile as execFileCb } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { createEngine } from '../../src/engines/index.ts';
import { BACKUP_RIGHTS, RESTORE_RIGHTS } from '../../src/engines/redis/client.ts';
import { crc64 } from '../../src/engines/redis/crc64.ts';
import { RedisEngine } from '../../src/engines/redis/engine.ts';
import { rdbFacts } from '../../src/engines/redis/info.ts';
import { factType } from '../../src/engines/redis/keyspace-facts.ts';
import { checkRdb } from '../../src/engines/redis/rdb-stream.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { compareFacts } from '../../src/jobs/facts-compare.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { verifyBackup } from '../../src/jobs/verify.ts';
import { rawDumpStream } from '../../src/pipeline/read.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import {
  BackupError,
  ConnectionError,
  DatasaverError,
  RestoreError,
  ToolMissingError,
  UsageError,
} from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { engineConformance, storeRaw } from '../support/engine-conformance.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import { tempDir } from '../support/pg.ts';
import { type RedisServer, startRedis } from '../support/redis-server.ts';
import { selfSignedCert } from '../support/tls.ts';

const execFile = promisify(execFileCb);

let source: RedisServer;
let dest: RedisServer;

beforeAll(async () => {
  [source, dest] = await Promise.all([startRedis(), startRedis()]);
});

afterAll(async () => {
  await Promise.all([source?.stop(), dest?.stop()]);
});

const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const BINARY_KEY = Buffer.from([0xff, 0x00, 0x0a, 0x6b]);
/** A value stored raw in the RDB (short strings are not compressed), to flip a byte in. */
const FLIP_ME = 'flip-me-0123';
const LIBRARY = "#!lua name=dslib\nredis.register_function('ds_hello', function() return 'hi' end)";

/** Keys seeded per database, for the facts. */
const DB0_KEYS = 18;
const DB3_KEYS = 3;

async function seed(server: RedisServer): Promise<void> {
  const c = await server.client(0);
  try {
    await c.set('str:plain', 'hello');
    await c.set('str:binary', BINARY);
    await c.set(BINARY_KEY, 'binary key name');
    await c.set('str:int', '12345');
    await c.set('str:big', 'abcdefgh'.repeat(20_000)); // LZF-compressed in the RDB
    await c.set('str:flip', FLIP_ME);
    await c.hset('hash:small', { a: '1', b: '2' });
    await c.hset('hash:big', Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`f${i}`, `v${i}`])));
    await c.rpush('list:small', 'a', 'b', 'c');
    await c.rpush('list:big', ...Array.from({ length: 5000 }, (_, i) => `item-${i}`));
    await c.sadd('set:ints', 1, 2, 3);
    await c.sadd('set:strs', 'x', 'y', 'z');
    await c.sadd('set:big', ...Array.from({ length: 1000 }, (_, i) => `m${i}`));
    await c.zadd('zset:small', 1, 'one', 2.5, 'two-and-a-half');
    await c.zadd('zset:big', ...Array.from({ length: 300 }, (_, i) => [i / 3, `z${i}`]).flat());
    await c.xadd('stream', '1-1', 'field', 'v1');
    await c.xadd('stream', '2-1', 'field', 'v2', 'other', BINARY);
    await c.xadd('stream', '3-1', 'field', 'v3');
    await c.xgroup('CREATE', 'stream', 'workers', '0');
    await c.xreadgroup('GROUP', 'workers', 'alice', 'COUNT', 2, 'STREAMS', 'stream', '>');
    await c.set('ttl:str', 'expires', 'EX', 3600);
    await c.hset('ttl:hash', { k: 'v' });
    await c.expire('ttl:hash', 7200);
    await c.function('LOAD', LIBRARY);
    await c.select(3);
    await c.set('db3:str', 'in db 3');
    await c.rpush('db3:list', '1', '2');
    await c.set('db3:ttl', 'x', 'EX', 3600);
  } finally {
    c.disconnect();
  }
}

function clientFor(target: TargetConfig): Promise<Redis> {
  const server = target.connection.port === dest.port ? dest : source;
  return server.client(0);
}

/** Every key of every database: type, value and TTL (in minutes, so seconds of drift do not matter). */
async function snapshot(target: TargetConfig): Promise<unknown> {
  const c = await clientFor(target);
  try {
    const dbs: Record<string, unknown[]> = {};
    for (let db = 0; db < 16; db++) {
      await c.select(db);
      const keys: Buffer[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await c.scanBuffer(cursor, 'COUNT', 500);
        cursor = next.toString();
        keys.push(...batch);
      } while (cursor !== '0');
      if (!keys.length) continue;
      const rows = [];
      for (const key of [...new Set(keys.map((k) => k.toString('hex')))].sort()) {
        const k = Buffer.from(key, 'hex');
        const type = await c.type(k);
        const pttl = await c.pttl(k);
        rows.push({
          key,
          type,
          value: await readValue(c, k, type),
          ttlMinutes: pttl < 0 ? pttl : Math.round(pttl / 60_000),
        });
      }
      dbs[`db${db}`] = rows;
    }
    const functions = (await c.function('LIST')) as unknown[];
    return { dbs, functions };
  } finally {
    c.disconnect();
  }
}

async function readValue(c: Redis, k: Buffer, type: string): Promise<unknown> {
  const b64 = (bs: Buffer[]) => bs.map((b) => b.toString('base64'));
  switch (type) {
    case 'string':
      return (await c.getBuffer(k))?.toString('base64');
    case 'hash':
      return Object.entries(await c.hgetall(k)).sort();
    case 'list':
      return b64(await c.lrangeBuffer(k, 0, -1));
    case 'set':
      return b64(await c.smembersBuffer(k)).sort();
    case 'zset':
      return await c.call('ZRANGE', k, '0', '-1', 'WITHSCORES');
    case 'stream':
      return {
        entries: JSON.stringify(await c.xrangeBuffer(k, '-', '+')),
        groups: await c.xinfo('GROUPS', k),
        // Pending entries without their idle time, which grows while the test runs.
        pending: ((await c.xpending(k, 'workers', '-', '+', 10)) as unknown[][]).map(
          ([id, consumer, , n]) => [id, consumer, n],
        ),
      };
    default:
      throw new Error(`unexpected type ${type}`);
  }
}

engineConformance('redis', {
  seed: async () => {
    await source.flushAll();
    await seed(source);
    return source.target('redis_src');
  },
  snapshot: (t) => snapshot(t),
  restoreDestination: async () => {
    await dest.flushAll();
    return { targetDatabase: undefined, target: dest.target('redis_dst') };
  },
  extension: 'rdb',
  facts: [
    { name: 'db0', rows: DB0_KEYS },
    { name: 'db3', rows: DB3_KEYS },
  ],
  wrongPassword: (t) => ({ ...t, connection: { ...t.connection, password: new Secret('not-the-password') } }),
  serverDown: (t) => ({ ...t, connection: { ...t.connection, port: 1 } }),
  tool: { name: 'redis-cli', package: /redis-tools/ },
});

describe('redis engine', () => {
  async function backUp(target: TargetConfig) {
    const storage = new LocalStorage(await tempDir('redis-store-'));
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine: createEngine(target), destinations: [storage] },
    );
    return { storage, manifest: result.manifest };
  }

  async function freshSource(): Promise<TargetConfig> {
    await source.flushAll();
    await seed(source);
    return source.target('redis_src');
  }

  /** A restore of the whole backup onto the target (no --target-db), plain or with one of the flags. */
  function restoreRequest(manifest: Manifest, flags: { force?: boolean; dropExisting?: boolean } = {}) {
    const { force = false, dropExisting = false } = flags;
    return { manifest, targetDatabase: undefined, dryRun: false, force, dropExisting, jobs: 1 };
  }

  async function rawOf(storage: LocalStorage, manifest: Manifest): Promise<Buffer> {
    return buffer(rawDumpStream(await storage.get(manifest.object), manifest.compression));
  }

  it('lists the RDB version, each database with its key count and the function libraries', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    const engine = createEngine(dest.target('x'));
    const { entries } = await engine.inspect(chunks(await rawOf(storage, manifest)), 'rdb');
    expect(entries).toEqual([
      {
        type: 'RDB',
        schema: '',
        name: expect.stringMatching(/^version \d+, written by Redis 7\.\d+\.\d+; CRC-64 checked$/),
      },
      { type: 'DATABASE', schema: '', name: `db0: ${DB0_KEYS} keys, 2 with a TTL` },
      { type: 'DATABASE', schema: '', name: `db3: ${DB3_KEYS} keys, 1 with a TTL` },
      { type: 'FUNCTION LIBRARY', schema: '', name: 'dslib' },
    ]);
    expect(manifest.toolVersion).toMatch(/^redis-cli \d+\.\d+\.\d+$/);
    expect(manifest.serverVersion).toBe(source.version);
  });

  it("records the RDB's own facts, exact: keys per database and per type, as seeded", async () => {
    const { manifest } = await backUp(await freshSource());
    expect(manifest.facts).toEqual({
      exact: true,
      tables: [
        { name: 'db0', rows: DB0_KEYS },
        { name: 'db3', rows: DB3_KEYS },
      ],
      objects: [
        { kind: 'hash', count: 3 },
        { kind: 'list', count: 3 },
        { kind: 'set', count: 3 },
        { kind: 'stream', count: 1 },
        { kind: 'string', count: 9 },
        { kind: 'zset', count: 2 },
        { kind: 'expiring keys', count: 3 },
        { kind: 'function libraries', count: 1 },
      ],
    });
  });

  it("a restored server's facts, read from its live keys, equal the backup's", async () => {
    const { storage, manifest } = await backUp(await freshSource());
    await dest.flushAll();
    const to = dest.target('redis_dst');
    const engine = createEngine(to);
    await runRestore(restoreRequest(manifest), { engine, storage });
    const restored = await engine.restoredFacts();
    expect(restored).toEqual(manifest.facts);
    expect(compareFacts(manifest.facts, restored).differences).toEqual([]);
    await expect(engine.restoredFacts('db0')).rejects.toThrow(UsageError);
    const down = createEngine({ ...to, connection: { ...to.connection, port: 1 } });
    await expect(down.restoredFacts()).rejects.toThrow(ConnectionError);

    // A key gone from the restored server is a difference by database, type and TTL.
    const d = await dest.client(0);
    try {
      await d.del('ttl:str');
    } finally {
      d.disconnect();
    }
    expect(compareFacts(manifest.facts, await engine.restoredFacts()).differences).toEqual([
      { item: 'table db0', expected: String(DB0_KEYS), found: String(DB0_KEYS - 1) },
      { item: 'objects expiring keys', expected: '3', found: '2' },
      { item: 'objects string', expected: '9', found: '8' },
    ]);
  });

  it('a key whose TTL has passed counts nowhere, though DBSIZE and INFO still count it until reclaimed', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    await dest.flushAll();
    const engine = createEngine(dest.target('redis_dst'));
    await runRestore(restoreRequest(manifest), { engine, storage });
    const d = await dest.client(0);
    try {
      await d.set('soon:gone', 'x', 'PX', 300);
      // Paused writes pause the server's active expiry: the key stays in the keyspace once expired.
      await d.call('CLIENT', 'PAUSE', '10000', 'WRITE');
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await d.dbsize()).toBe(DB0_KEYS + 1);
      expect(await engine.restoredFacts()).toEqual(manifest.facts);
    } finally {
      await d.call('CLIENT', 'UNPAUSE');
      d.disconnect();
    }
  });

  it("a module's own type name counts as module, as the RDB reader counts module values", () => {
    expect(factType('ReJSON-RL')).toBe('module');
    expect(factType('vectorset')).toBe('module');
    for (const type of ['string', 'list', 'set', 'zset', 'hash', 'stream']) expect(factType(type)).toBe(type);
  });

  it('a key already expired when Redis wrote the RDB is in the file but not in the facts', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    const raw = Buffer.from(await rawOf(storage, manifest));
    const savedAt = Number((await checkRdb(chunks(raw))).aux.ctime) * 1000;
    // ttl:str's absolute expiry (opcode 0xFC, 8 bytes of ms, its type byte and 1-byte name length) moved
    // to before the RDB was written: the state of a key Redis had not yet reclaimed when it forked.
    const at = raw.indexOf('ttl:str') - 2 - 8;
    expect(raw[at - 1]).toBe(0xfc);
    raw.writeBigUInt64LE(BigInt(savedAt - 1000), at);
    raw.writeBigUInt64LE(crc64(raw.subarray(0, raw.length - 8)), raw.length - 8);
    const summary = await checkRdb(chunks(raw));
    expect(summary.databases[0]).toEqual({ db: 0, keys: DB0_KEYS, expires: 2, expired: 1 });
    expect(rdbFacts(summary)).toEqual({
      ...manifest.facts,
      tables: [
        { name: 'db0', rows: DB0_KEYS - 1 },
        { name: 'db3', rows: DB3_KEYS },
      ],
      objects: manifest.facts.objects!.map((o) =>
        o.kind === 'string' || o.kind === 'expiring keys' ? { ...o, count: o.count - 1 } : o,
      ),
    });
  });

  it('a flipped byte inside a value, under a matching sha256, fails verify on the CRC-64', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    const raw = await rawOf(storage, manifest);
    const at = raw.indexOf(FLIP_ME);
    expect(at).toBeGreaterThan(0);
    const flipped = Buffer.from(raw);
    flipped[at + 3]! ^= 0x01;
    const engine = createEngine(source.target('redis_src'));
    expect((await verifyBackup(await storeRaw(storage, manifest, raw), { storage, engine })).ok).toBe(true);
    const result = await verifyBackup(await storeRaw(storage, manifest, flipped, 2), { storage, engine });
    expect(result).toMatchObject({ ok: false, reason: 'structure' });
    expect(result.message).toMatch(/CRC-64 does not match/);
  });

  it('the redis-cli EOF mark of a diskless transfer is not part of the backup', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    const raw = await rawOf(storage, manifest);
    expect(raw.subarray(0, 5).toString()).toBe('REDIS');
    expect(raw[raw.length - 9]).toBe(0xff); // EOF opcode, then the 8-byte checksum, then nothing
  });

  it('backs up a server that replicates through a file on disk (no EOF mark)', async () => {
    const target = await freshSource();
    const s = await source.client(0);
    try {
      await s.config('SET', 'repl-diskless-sync', 'no');
      const { storage, manifest } = await backUp(target);
      const verified = await verifyBackup(manifest, { storage, engine: createEngine(target) });
      expect(verified).toMatchObject({ ok: true });
      expect(manifest.facts.tables).toContainEqual({ name: 'db0', rows: DB0_KEYS });
    } finally {
      await s.config('SET', 'repl-diskless-sync', 'yes');
      s.disconnect();
    }
  });

  it('refuses a non-empty server without --force; --force replaces keys, --drop-existing flushes first', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    await dest.flushAll();
    const d = await dest.client(0);
    try {
      await d.set('str:plain', 'changed on the target');
      await d.set('dest:only', 'keep me');
      const to = dest.target('redis_dst');
      const request = {
        manifest,
        targetDatabase: undefined,
        dryRun: false,
        force: false,
        dropExisting: false,
        jobs: 1,
      };
      const deps = { engine: createEngine(to), storage };

      await expect(runRestore(request, deps)).rejects.toThrow(UsageError);
      expect(await d.get('str:plain')).toBe('changed on the target');
      expect(await d.dbsize()).toBe(2);

      await expect(runRestore({ ...request, force: true }, deps)).resolves.toMatchObject({
        action: 'overwrite',
      });
      expect(await d.get('str:plain')).toBe('hello');
      expect(await d.get('dest:only')).toBe('keep me');

      await runRestore({ ...request, dropExisting: true }, deps);
      expect(await d.exists('dest:only')).toBe(0);
      expect(await snapshot(to)).toEqual(await snapshot(source.target('redis_src')));
    } finally {
      d.disconnect();
    }
  });

  it('--drop-existing flushes nothing when the target cannot take the keys (a user without RESTORE)', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    await dest.flushAll();
    const d = await dest.client(0);
    try {
      await d.set('dest:only', 'keep me');
      await d.call('ACL', 'SETUSER', 'norestore', 'on', '>norestore-pw', '~*', '&*', '+@all', '-restore');
      const to = dest.target('redis_dst', { acl: true });
      to.connection.user = 'norestore';
      to.connection.password = new Secret('norestore-pw');
      const request = restoreRequest(manifest, { dropExisting: true });
      const err = await runRestore(request, { engine: createEngine(to), storage }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RestoreError);
      expect((err as Error).message).toMatch(/user norestore on .* may not run RESTORE: NOPERM/);
      expect((err as RestoreError).hint).toMatch(/nothing was changed/);
      expect(await d.get('dest:only')).toBe('keep me');
    } finally {
      await d.call('ACL', 'DELUSER', 'norestore').catch(() => {});
      d.disconnect();
    }
  });

  describe('ACL users with exactly the rights README.md documents', () => {
    const readme = readFile(join(import.meta.dirname, '../../README.md'), 'utf8');

    /** (Re)creates `name` on `server` with exactly `rights`, returns a target for it, and clears the ACL log. */
    async function aclUser(server: RedisServer, name: string, rights: string[]): Promise<TargetConfig> {
      const c = await server.client(0);
      try {
        await c.call('ACL', 'SETUSER', name, 'reset', 'on', `>${name}-pw`, ...rights);
        await c.call('ACL', 'LOG', 'RESET');
      } finally {
        c.disconnect();
      }
      const t = server.target(`${name}_target`, { acl: true });
      return { ...t, connection: { ...t.connection, user: name, password: new Secret(`${name}-pw`) } };
    }

    /** Commands the server refused since the last aclUser(), as `user:command`. */
    async function refused(server: RedisServer): Promise<string[]> {
      const c = await server.client(0);
      try {
        const log = (await c.call('ACL', 'LOG')) as unknown[][];
        return log.map((entry) => {
          const fields = Object.fromEntries(
            Array.from({ length: entry.length / 2 }, (_, i) => [entry[2 * i], entry[2 * i + 1]]),
          );
          return `${fields.username}:${fields.object}`;
        });
      } finally {
        c.disconnect();
      }
    }

    /** INFO keyspace of the destination and its function libraries: "nothing changed" is checked on these. */
    async function destState(): Promise<unknown> {
      const c = await dest.client(0);
      try {
        return { keyspace: await c.info('keyspace'), functions: await c.function('LIST') };
      } finally {
        c.disconnect();
      }
    }

    it('the README names both lists verbatim', async () => {
      expect(await readme).toContain(`\`${BACKUP_RIGHTS}\``);
      expect(await readme).toContain(`\`${RESTORE_RIGHTS}\``);
    });

    it('restore rights: enough for --drop-existing and --force, every database, functions and TTLs equal; no command refused', async () => {
      const { storage, manifest } = await backUp(await freshSource());
      await dest.flushAll();
      const d = await dest.client(0);
      try {
        await d.set('dest:only', 'flushed by --drop-existing');
        const to = await aclUser(dest, 'ds-restore', RESTORE_RIGHTS.split(' '));
        const deps = { engine: createEngine(to), storage };
        await runRestore(restoreRequest(manifest, { dropExisting: true }), deps);
        expect(await snapshot(dest.target('redis_dst'))).toEqual(await snapshot(source.target('redis_src')));
        await d.set('str:plain', 'replaced by --force');
        await runRestore(restoreRequest(manifest, { force: true }), deps);
        expect(await d.get('str:plain')).toBe('hello');
        expect(await snapshot(dest.target('redis_dst'))).toEqual(await snapshot(source.target('redis_src')));
        expect(await refused(dest)).toEqual([]);
      } finally {
        d.disconnect();
      }
    });

    const commandOf: Record<string, RegExp> = {
      '+info': /'info'/,
      '+select': /may not run SELECT: NOPERM .*'select'/,
      '+restore': /may not run RESTORE: NOPERM .*'restore'/,
      '+flushall': /may not run FLUSHALL: NOPERM .*'flushall'/,
      '+function': /may not run FUNCTION RESTORE: NOPERM .*'function\|restore'/,
    };
    for (const missing of RESTORE_RIGHTS.split(' ').filter((r) => r.startsWith('+'))) {
      it(`restore without ${missing}: fails naming it, changes nothing, leaves no probe key in any database`, async () => {
        const { storage, manifest } = await backUp(await freshSource());
        await dest.flushAll();
        const d = await dest.client(0);
        try {
          await d.set('dest:only', 'keep me');
          const before = await destState();
          const rights = RESTORE_RIGHTS.split(' ').filter((r) => r !== missing);
          const to = await aclUser(dest, 'ds-partial', rights);
          const err = await runRestore(restoreRequest(manifest, { dropExisting: true }), {
            engine: createEngine(to),
            storage,
          }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(DatasaverError);
          expect((err as Error).message).toMatch(commandOf[missing]!);
          expect((err as DatasaverError).hint).toContain(RESTORE_RIGHTS);
          if (err instanceof RestoreError) expect(err.hint).toMatch(/^nothing was changed/);
          expect(await destState()).toEqual(before);
          expect(await d.get('dest:only')).toBe('keep me');
        } finally {
          d.disconnect();
        }
      });
    }

    it('backup rights: enough to back up (the backup restores equal); no command refused', async () => {
      await freshSource();
      const from = await aclUser(source, 'ds-backup', BACKUP_RIGHTS.split(' '));
      const { storage, manifest } = await backUp(from);
      expect(await refused(source)).toEqual([]);
      await dest.flushAll();
      await runRestore(restoreRequest(manifest), { engine: createEngine(dest.target('redis_dst')), storage });
      expect(await snapshot(dest.target('redis_dst'))).toEqual(await snapshot(source.target('redis_src')));
    });

    // Without +replconf redis-cli still backs up (it only warns that it cannot ask for the snapshot alone).
    for (const missing of ['+info', '+sync']) {
      it(`backup without ${missing}: fails naming the right to grant`, async () => {
        await freshSource();
        const from = await aclUser(
          source,
          'ds-partial-backup',
          BACKUP_RIGHTS.split(' ').filter((r) => r !== missing),
        );
        const err = await backUp(from).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DatasaverError);
        expect(`${(err as Error).message} ${(err as DatasaverError).hint}`).toContain(BACKUP_RIGHTS);
      });
    }
  });

  it('the engine itself never replaces an existing key without overwrite', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    await dest.flushAll();
    const d = await dest.client(0);
    try {
      await d.set('str:plain', 'changed on the target');
      const engine = createEngine(dest.target('redis_dst'));
      const restore = engine.restore(
        rawDumpStream(await storage.get(manifest.object), manifest.compression),
        {
          format: 'rdb',
          create: false,
          dropExisting: false,
          overwrite: false,
          jobs: 1,
        },
      );
      await expect(restore).rejects.toThrow(RestoreError);
      await expect(restore).rejects.toThrow(/"str:plain" already exists in db0/);
      expect(await d.get('str:plain')).toBe('changed on the target');
    } finally {
      d.disconnect();
    }
  });

  it('restoring without redis-server names the package and leaves the target alone', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    await dest.flushAll();
    const d = await dest.client(0);
    try {
      await d.set('dest:only', 'keep me');
      const toolDir = await fakeToolDir({ 'redis-cli': 'exec /usr/bin/redis-cli "$@"' });
      const err = await runRestore(
        { manifest, targetDatabase: undefined, dryRun: false, force: false, dropExisting: true, jobs: 1 },
        { engine: createEngine({ ...dest.target('redis_dst'), toolDir }), storage },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ToolMissingError);
      expect((err as Error).message).toMatch(/redis-server not found/);
      expect((err as ToolMissingError).hint).toMatch(/apt-get install redis-server/);
      expect(await d.get('dest:only')).toBe('keep me');
    } finally {
      d.disconnect();
    }
  });

  it('an RDB newer than the local redis-server fails as a missing tool, before the target is touched', async () => {
    const { storage, manifest } = await backUp(await freshSource());
    const raw = Buffer.from(await rawOf(storage, manifest));
    raw.write('0099', 5, 'latin1'); // RDB version 99, with a checksum that matches it
    raw.writeBigUInt64LE(crc64(raw.subarray(0, raw.length - 8)), raw.length - 8);
    const newer = await storeRaw(storage, manifest, raw, 3);
    expect(
      await verifyBackup(newer, { storage, engine: createEngine(source.target('redis_src')) }),
    ).toMatchObject({
      ok: true,
    });
    await dest.flushAll();
    const d = await dest.client(0);
    try {
      await d.set('dest:only', 'keep me');
      const err = await runRestore(
        {
          manifest: newer,
          targetDatabase: undefined,
          dryRun: false,
          force: false,
          dropExisting: true,
          jobs: 1,
        },
        { engine: createEngine(dest.target('redis_dst')), storage },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ToolMissingError);
      expect((err as Error).message).toMatch(/cannot load this backup: it is RDB version 99/);
      expect(await d.get('dest:only')).toBe('keep me');
    } finally {
      d.disconnect();
    }
  });

  it('keys that expired between backup and restore are not restored', async () => {
    const target = await freshSource();
    const s = await source.client(0);
    try {
      // An hour: alive when the snapshot is taken, however long a loaded machine takes to get there.
      await s.set('short-lived', 'x', 'PX', 3_600_000);
    } finally {
      s.disconnect();
    }
    const { storage, manifest } = await backUp(target);
    const raw = Buffer.from(await rawOf(storage, manifest));
    const { entries } = await createEngine(target).inspect(chunks(raw), 'rdb');
    expect(entries).toContainEqual({
      type: 'DATABASE',
      schema: '',
      name: `db0: ${DB0_KEYS + 1} keys, 3 with a TTL`,
    });
    // Time passes until the restore: the key's absolute expiry as the backup holds it (opcode 0xFC and
    // 8 bytes of milliseconds, before its type byte and 1-byte name length) is moved into the past, so it
    // has expired when the restore reads it, by construction rather than by a wait.
    const at = raw.indexOf('short-lived') - 2 - 8;
    expect(raw[at - 1]).toBe(0xfc);
    expect(Number(raw.readBigUInt64LE(at))).toBeGreaterThan(Date.now());
    raw.writeBigUInt64LE(BigInt(Date.now() - 1000), at);
    raw.writeBigUInt64LE(crc64(raw.subarray(0, raw.length - 8)), raw.length - 8);
    const later = await storeRaw(storage, manifest, raw, 4);
    await dest.flushAll();
    const to = dest.target('redis_dst');
    await runRestore(
      {
        manifest: later,
        targetDatabase: undefined,
        dryRun: false,
        force: false,
        dropExisting: false,
        jobs: 1,
      },
      { engine: createEngine(to), storage },
    );
    const d = await dest.client(0);
    try {
      expect(await d.exists('short-lived')).toBe(0);
      expect(await d.get('str:plain')).toBe('hello');
      expect(await d.ttl('ttl:str')).toBeGreaterThan(3500);
    } finally {
      d.disconnect();
    }
  });

  it('passes the password in REDISCLI_AUTH, never in argv (ACL user)', async () => {
    await freshSource();
    const log = join(await tempDir('redis-argv-'), 'argv.log');
    const toolDir = await fakeToolDir({
      'redis-cli': `printf 'argv: %s\\n' "$*" >> '${log}'\n[ -n "$REDISCLI_AUTH" ] && echo 'env: REDISCLI_AUTH set' >> '${log}'\nexec /usr/bin/redis-cli "$@"`,
    });
    const target = { ...source.target('redis_src', { acl: true }), toolDir };
    const { manifest } = await backUp(target);
    expect(manifest.facts.tables).toContainEqual({ name: 'db0', rows: DB0_KEYS });
    const text = await readFile(log, 'utf8');
    expect(text).toMatch(/argv: .*--user backup.*--rdb -/);
    expect(text).toContain('env: REDISCLI_AUTH set');
    expect(text).not.toContain(source.aclPassword);
    expect(text).not.toContain(source.password);
  });

  it("redis-cli gets the target's password alone, the loading redis-server no secret; the parent's never pass", async () => {
    const logDir = await tempDir('redis-env-');
    const wrap = (tool: string) =>
      `d="${logDir}/${tool}.$$"\ntr '\\0' '\\n' < /proc/$$/environ > "$d.env"\nprintf '%s\\n' "$@" > "$d.argv"\nexec /usr/bin/${tool} "$@"`;
    const toolDir = await fakeToolDir({
      'redis-cli': wrap('redis-cli'),
      'redis-server': wrap('redis-server'),
    });
    const secrets = {
      AWS_SECRET_ACCESS_KEY: 'aws-secret-0003',
      DATASAVER_WEBHOOK_URL: 'http://127.0.0.1:9/hooks/token-0003',
      SECRET_X: 'unrelated-0003',
      REDISCLI_AUTH: 'parent-redis-password-0003',
    };
    const from = { ...(await freshSource()), toolDir };
    const to = { ...dest.target('redis_dst'), toolDir };
    await dest.flushAll();
    Object.assign(process.env, secrets);
    try {
      const { storage, manifest } = await backUp(from);
      const request = {
        manifest,
        targetDatabase: undefined,
        dryRun: false,
        force: false,
        dropExisting: false,
        jobs: 1,
      };
      await runRestore(request, { engine: createEngine(to), storage });
    } finally {
      for (const name of Object.keys(secrets)) delete process.env[name];
    }
    expect(await snapshot(to)).toEqual(await snapshot(from));

    const files = await readdir(logDir);
    const envs = files.filter((f) => f.endsWith('.env'));
    expect(envs.some((f) => f.startsWith('redis-cli.'))).toBe(true);
    expect(envs.some((f) => f.startsWith('redis-server.'))).toBe(true);
    for (const file of envs) {
      const env = await readFile(join(logDir, file), 'utf8');
      for (const value of Object.values(secrets)) expect(env, file).not.toContain(value);
      expect(env, file).not.toMatch(/^(AWS_|DATASAVER_|SECRET_)/m);
      // Only the run that connects (the dump) gets a password; `--version` and the loader get none.
      const argv = await readFile(join(logDir, file.replace(/\.env$/, '.argv')), 'utf8');
      if (argv.includes('--rdb\n')) expect(env, file).toContain(`REDISCLI_AUTH=${source.password}\n`);
      else expect(env, file).not.toContain('REDISCLI_AUTH');
    }
    // The loader reads bytes from storage with every encoded value checked in full.
    const loads = files.filter((f) => f.startsWith('redis-server.') && f.endsWith('.argv'));
    const argv = await Promise.all(loads.map((f) => readFile(join(logDir, f), 'utf8')));
    expect(argv.some((a) => a.includes('--sanitize-dump-payload\nyes\n'))).toBe(true);
  });

  it('a wrong password is a permanent connection error', async () => {
    const target = source.target('redis_src', { password: 'not-the-password' });
    const err = await createEngine(target)
      .preflight()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).transient).toBe(false);
    expect((err as Error).message).toMatch(/authentication failed for user default/);
  });

  it('a stopped server is a transient connection error, and works again once started', async () => {
    const engine = createEngine(dest.target('redis_dst'));
    await dest.pause();
    try {
      const err = await engine.preflight().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).transient).toBe(true);
    } finally {
      await dest.start();
    }
    await expect(engine.preflight()).resolves.toMatchObject({ serverVersion: dest.version });
  });

  it('restore-target state: empty means no key in any database; --target-db is refused', async () => {
    await dest.flushAll();
    const engine = createEngine(dest.target('redis_dst'));
    expect(await engine.restoreTargetState()).toEqual({
      description: `Redis server at 127.0.0.1:${dest.port}`,
      exists: true,
      empty: true,
    });
    const d = await dest.client(5);
    try {
      await d.set('somewhere', 'in db 5');
    } finally {
      d.disconnect();
    }
    expect(await engine.restoreTargetState()).toMatchObject({ empty: false });
    await expect(engine.restoreTargetState('db1')).rejects.toThrow(UsageError);
  });

  it('TLS with a CA: redis-cli backs up and the protocol restores, both verifying; another CA is refused', async () => {
    const secure = await startRedis({ tls: true });
    try {
      const c = await secure.client(0);
      try {
        await c.set('tls:key', 'over TLS', 'EX', 3600);
        await c.hset('tls:hash', 'a', '1');
        const t = secure.target('redis_tls');
        const verified = { ...t, connection: { ...t.connection, tls: true, tlsCa: secure.caFile } };
        const { storage, manifest } = await backUp(verified);
        expect(manifest.facts.tables).toEqual([{ name: 'db0', rows: 2 }]);
        await c.flushall();
        await runRestore(
          { manifest, targetDatabase: undefined, dryRun: false, force: false, dropExisting: false, jobs: 1 },
          { engine: createEngine(verified), storage },
        );
        expect(await c.get('tls:key')).toBe('over TLS');
        expect(await c.ttl('tls:key')).toBeGreaterThan(3500);
        expect(await c.hgetall('tls:hash')).toEqual({ a: '1' });

        // Another CA is refused; so is no CA (the system's CAs do not know a self-signed certificate).
        const otherCa = (await selfSignedCert(await tempDir('redis-ca-'), 'other-ca')).cert;
        for (const tlsCa of [otherCa, undefined]) {
          const other = { ...t, connection: { ...t.connection, tls: true, tlsCa } };
          await expect(createEngine(other).preflight()).rejects.toBeInstanceOf(ConnectionError);
        }
      } finally {
        c.disconnect();
      }
    } finally {
      await secure.stop();
    }
  });

  it('aborting a dump kills redis-cli', async () => {
    await source.flushAll();
    const s = await source.client(0);
    try {
      for (let i = 0; i < 200; i++) await s.set(`big:${i}`, randomBytes(100_000));
    } finally {
      s.disconnect();
    }
    const pidFile = join(await tempDir('redis-pid-'), 'pid');
    const toolDir = await fakeToolDir({
      'redis-cli': `case "$*" in *--rdb*) echo $$ > '${pidFile}';; esac\nexec /usr/bin/redis-cli "$@"`,
    });
    const engine = new RedisEngine({ ...source.target('redis_src'), toolDir });
    const abort = new AbortController();
    let bytes = 0;
    const err = await (async () => {
      for await (const chunk of engine.dump({ format: 'rdb', schemaOnly: false, signal: abort.signal })) {
        bytes += chunk.length;
        abort.abort();
      }
    })().catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(bytes).toBeLessThan(20_000_000);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  it('aborting a restore stops the temporary redis-server and removes its files', async () => {
    await source.flushAll();
    const s = await source.client(0);
    try {
      for (let i = 0; i < 300; i++) await s.set(`big:${i}`, randomBytes(100_000));
    } finally {
      s.disconnect();
    }
    const { storage, manifest } = await backUp(source.target('redis_src'));
    await dest.flushAll();
    const spool = await tempDir('redis-spool-');
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 150);
    const err = await createEngine(dest.target('redis_dst'))
      .restore(rawDumpStream(await storage.get(manifest.object), manifest.compression), {
        format: 'rdb',
        create: false,
        dropExisting: false,
        overwrite: false,
        jobs: 1,
        tempDir: spool,
        signal: abort.signal,
      })
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(await readdir(spool)).toEqual([]);
    const { stdout } = await execFile('ps', ['-eo', 'args']);
    expect(stdout).not.toContain(spool);
  });

  it('a redis-cli that fails half-way makes the dump stream fail before it ends', async () => {
    const toolDir = await fakeToolDir({
      'redis-cli': `case "$*" in *--rdb*) printf 'REDIS0010partial'; echo 'Error reading RDB payload' >&2; exit 1;; esac\nexec /usr/bin/redis-cli "$@"`,
    });
    const engine = new RedisEngine({ ...source.target('redis_src'), toolDir });
    const chunks: Buffer[] = [];
    const err = await (async () => {
      for await (const chunk of engine.dump({ format: 'rdb', schemaOnly: false })) chunks.push(chunk);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toMatch(/redis-cli --rdb exited with code 1: Error reading RDB payload/);
  });

  it('a redis-cli whose output is shorter than the RDB it announced fails the dump', async () => {
    const toolDir = await fakeToolDir({
      'redis-cli': `case "$*" in *--rdb*) t=$(mktemp); /usr/bin/redis-cli "$@" > "$t"; head -c 100 "$t"; rm -f "$t"; exit 0;; esac\nexec /usr/bin/redis-cli "$@"`,
    });
    await freshSource();
    const engine = new RedisEngine({ ...source.target('redis_src'), toolDir });
    const err = await (async () => {
      for await (const _ of engine.dump({ format: 'rdb', schemaOnly: false })) {
        // drain
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toMatch(/wrote \d+ bytes for an RDB of \d+ bytes/);
  });

  it('an RDB altered on its way fails the dump before it ends, and reports no facts', async () => {
    // Byte 20 is in the first aux field's name: the records still read, the CRC-64 no longer matches.
    const toolDir = await fakeToolDir({
      'redis-cli': `case "$*" in *--rdb*) t=$(mktemp); /usr/bin/redis-cli "$@" > "$t" || exit 1; printf X | dd of="$t" bs=1 seek=20 conv=notrunc 2>/dev/null; cat "$t"; rm -f "$t"; exit 0;; esac\nexec /usr/bin/redis-cli "$@"`,
    });
    await freshSource();
    const engine = new RedisEngine({ ...source.target('redis_src'), toolDir });
    const facts: unknown[] = [];
    const err = await (async () => {
      for await (const _ of engine.dump({
        format: 'rdb',
        schemaOnly: false,
        onFacts: (f) => facts.push(f),
      })) {
        // drain
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toMatch(/redis-cli --rdb wrote a damaged RDB: .*CRC-64 does not match/);
    expect(facts).toEqual([]);
  });
});

async function* chunks(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}
