/**
 * `datasaver drill` of Redis backups through the real command line, against a real Redis server: a
 * backup of keys of every type in two logical databases (some with a time to live) restores on a
 * throwaway redis-server to its facts and leaves nothing behind; an RDB with a key removed (checksum and
 * manifest recomputed, so `verify` passes) fails naming the key space; a key whose time to live ends
 * between the backup and the drill is reported as expired, not as a difference; a killed drill's
 * throwaway server is stopped by the next command; and a Redis drill server URL is refused.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import {
  backUp,
  type DrillEnv,
  drillEnv,
  drillJson,
  drillLeftovers,
  drillParent,
  drillRecord,
  killedDrillIsSweptByNextCommand,
  recordedFacts,
  removeDrillParent,
  replaceStoredDump,
  type StoredBackup,
  storedDump,
} from '../support/drill.ts';
import { freePort } from '../support/postgres-server.ts';
import { type RedisServer, startRedis } from '../support/redis-server.ts';

let source: RedisServer;
let tmp: string;

/** A day and more: keys that certainly outlive the file. */
const FAR = 100_000;

beforeAll(async () => {
  source = await startRedis();
  tmp = await drillParent();
  const db0 = await source.client(0);
  const db3 = await source.client(3);
  try {
    await db0.set('greeting', 'hello');
    await db0.set('counter', '41');
    await db0.set('session:1', 'token', 'EX', FAR);
    await db0.hset('user:1', { name: 'ada', lang: 'en' });
    await db0.expire('user:1', FAR);
    await db0.rpush('queue', 'a', 'b', 'c');
    await db0.sadd('tags', 'x', 'y');
    await db0.zadd('scores', 1, 'one', 2, 'two');
    await db0.xadd('events', '*', 'kind', 'login');
    await db3.set('other:greeting', 'hi');
    await db3.hset('other:user', { name: 'bob' });
    await db3.lpush('other:list', '1');
  } finally {
    db0.disconnect();
    db3.disconnect();
  }
});

afterAll(async () => {
  await source?.stop();
  await removeDrillParent(tmp);
});

function envFor(extra: Record<string, string> = {}) {
  const target = {
    DATASAVER_ENGINE: 'redis',
    DATASAVER_DB_HOST: source.host,
    DATASAVER_DB_PORT: String(source.port),
    DATASAVER_DB_PASSWORD: source.password,
  };
  return drillEnv({ ...target, ...extra }, tmp);
}

/** Recorded keys in `table` (`db0`) and the count of `kind` (`string`, `expiring keys`). */
async function recorded(env: DrillEnv, b: StoredBackup) {
  const facts = await recordedFacts(env.DATASAVER_STORAGE_PATH, b);
  return {
    keys: (table: string) => facts.tables.find((t) => t.name === table)?.rows,
    count: (kind: string) => facts.objects?.find((o) => o.kind === kind)?.count,
  };
}

/**
 * The RDB `rdb` without key `key` of database `db`: loaded by a redis-server of its own, the key deleted,
 * saved again. An honest RDB (valid checksum, every other key as it was) that lacks one key.
 */
async function rdbWithout(rdb: Buffer, db: number, key: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'dsrdb-'));
  await writeFile(join(dir, 'dump.rdb'), rdb);
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--dbfilename', 'dump.rdb', '--save', ''],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let log = '';
      server.stdout.on('data', (c: Buffer) => {
        log += c.toString();
        if (log.includes('Ready to accept connections')) resolve();
      });
      server.once('exit', () => reject(new Error(`redis-server did not start: ${log}`)));
    });
    const client = new Redis({ host: '127.0.0.1', port, db, lazyConnect: true, protocol: 2 });
    await client.connect();
    try {
      expect(await client.del(key)).toBe(1);
      await client.save();
    } finally {
      client.disconnect();
    }
    return await readFile(join(dir, 'dump.rdb'));
  } finally {
    server.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

describe('drill on a throwaway redis-server', () => {
  it('keys of every type in db0 and db3, some with a time to live, drill clean', async () => {
    const env = await envFor();
    const b = await backUp(env);
    const facts = await recorded(env, b);
    expect(facts.keys('db0')).toBe(8);
    expect(facts.keys('db3')).toBe(3);
    expect(facts.count('expiring keys')).toBe(2);

    const { code, result, res } = await drillJson(b.id, env);
    expect(code, res.output).toBe(0);
    expect(result).toMatchObject({ id: b.id, ok: true, differences: [], expired: [] });
    expect(result.place).toMatch(/throwaway/i);
    // db0, db3, six types, the expiring keys.
    expect(result.compared).toBe(9);
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(await drillRecord(env.DATASAVER_STORAGE_PATH, b)).toMatchObject({ id: b.id, ok: true });
    expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
  });

  it('a key removed from the RDB (checksum recomputed: verify passes) fails the drill naming the key space', async () => {
    const env = await envFor();
    const b = await backUp(env);
    const facts = await recorded(env, b);
    const storage = env.DATASAVER_STORAGE_PATH;
    await replaceStoredDump(
      storage,
      b.target,
      b.id,
      await rdbWithout(await storedDump(storage, b.target, b.id), 0, 'counter'),
    );
    const verify = await runCli(['verify', b.id], env);
    expect(verify.code, verify.output).toBe(0);

    const res = await runCli(['drill', b.id], env);
    expect(res.code, res.output).toBe(5);
    expect(res.stdout).toContain(`FAILED  ${b.id} (drill)`);
    // The key had no time to live: however many others had one, it did not expire.
    expect(res.stdout).toContain(`table db0: expected ${facts.keys('db0')}, found ${facts.keys('db0')! - 1}`);
    expect(res.stdout).toContain(
      `objects string: expected ${facts.count('string')}, found ${facts.count('string')! - 1}`,
    );
    expect(await drillRecord(storage, b)).toMatchObject({ ok: false, reason: 'drill', differenceCount: 2 });
    expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
  });

  it('a key whose time to live ends between the backup and the drill is reported as expired', async () => {
    const env = await envFor();
    const db0 = await source.client(0);
    try {
      // The key must be in the backup and gone before the drill: a time to live that outlasts the
      // backup, doubled until one does on a slow machine.
      let b: StoredBackup | undefined;
      for (let ttl = 1000; b === undefined; ttl *= 2) {
        expect(ttl).toBeLessThan(64_000);
        await db0.set('fleeting', 'soon gone', 'PX', ttl);
        const taken = await backUp(env);
        if ((await recorded(env, taken)).keys('db0') === 9) b = taken;
      }
      // Gone on the source: its time to live has passed, so a server loading the backup drops it too.
      while ((await db0.exists('fleeting')) === 1) await new Promise((r) => setTimeout(r, 50));

      const { code, result, res } = await drillJson(b.id, env);
      expect(code, res.output).toBe(0);
      expect(result).toMatchObject({ ok: true, differences: [] });
      expect(result.expired).toEqual([
        { item: 'table db0', expected: '9', found: '8' },
        { item: 'objects expiring keys', expected: '3', found: '2' },
        { item: 'objects string', expected: '5', found: '4' },
      ]);
      const text = await runCli(['drill', b.id], env);
      expect(text.code, text.output).toBe(0);
      expect(text.stdout).toMatch(/3 item\(s\) lower by keys that expired since/);
    } finally {
      await db0.del('fleeting');
      db0.disconnect();
    }
  });

  it('a drill killed -9 holding its throwaway server: the next command stops the server and removes its dir', async () => {
    const env = await envFor();
    const b = await backUp(env);
    await killedDrillIsSweptByNextCommand(b.id, env, tmp);
  });

  it('a Redis drill server URL is a configuration error', async () => {
    const env = await envFor({
      DATASAVER_DRILL_URL: `redis://:${source.password}@${source.host}:${source.port}`,
    });
    const res = await runCli(['drill', 'latest'], env);
    expect(res.code, res.output).toBe(2);
    expect(res.stderr).toMatch(/DATASAVER_DRILL_URL/);
    expect(res.stderr).toMatch(/throwaway server/);
    expect(res.output).not.toContain(source.password);
    expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
  });
});
