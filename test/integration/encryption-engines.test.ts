/**
 * Client-side encryption for MySQL/MariaDB, Redis and SQLite through the real command line: each
 * engine's backup encrypted to an age recipient restores to the same data, the stock `age` and `zstd`
 * tools give back a dump the engine's own tools read, and a marker the database holds is in no stored
 * byte. Each engine also makes the round trip with a passphrase, and SQLite shows the daemon's scheduled
 * drill of an encrypted backup (refused without the identity).
 */
import { execFile as execFileCb } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { type AgeKey, ageKeygen, filesContaining, stockDecrypt } from '../support/age.ts';
import { runCli } from '../support/cli.ts';
import { startDaemon, terminate, waitFor } from '../support/daemon.ts';
import { ident, type MariadbServer, startMariadb } from '../support/mariadb-server.ts';
import { tempDir } from '../support/pg.ts';
import { type RedisServer, startRedis } from '../support/redis-server.ts';

const execFile = promisify(execFileCb);

const MARKER = 'zq7marker';
/** Each passphrase run costs a few seconds of scrypt (age's work factor, 2^18). */
const PASSPHRASE = { DATASAVER_ENCRYPTION_PASSPHRASE: 'correct horse battery staple' };

let key: AgeKey;
let mariadb: MariadbServer | undefined;
let redis: RedisServer | undefined;

beforeAll(async () => {
  key = await ageKeygen();
});

afterAll(async () => {
  await mariadb?.stop();
  await redis?.stop();
});

/** Backs up with `env` into a new storage dir, encrypted to the test key unless `encryption` says otherwise. */
async function encryptedBackup(
  env: Record<string, string>,
  encryption: Record<string, string> = {
    DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient,
    DATASAVER_ENCRYPTION_IDENTITY_FILE: key.identityFile,
  },
) {
  const storage = await tempDir('enc-store-');
  const all = { ...env, ...encryption, DATASAVER_STORAGE_PATH: storage, TMPDIR: await tempDir('enc-tmp-') };
  const res = await runCli(['backup', '--json', '--verify'], all);
  expect(res.code, res.output).toBe(0);
  const manifest = JSON.parse(res.stdout).backups[0] as Manifest;
  expect(manifest.object).toMatch(/\.zst\.age$/);
  expect(manifest.database).toBeNull();
  expect((await filesContaining(storage, MARKER)).found).toEqual([]);
  return { env: all, manifest, objectPath: join(storage, manifest.object) };
}

/** The target settings of database `shop` on the MariaDB server. */
function mysqlEnv(s: MariadbServer): Record<string, string> {
  return {
    DATASAVER_ENGINE: 'mysql',
    DATASAVER_DB_HOST: s.host,
    DATASAVER_DB_PORT: String(s.port),
    DATASAVER_DB_NAME: 'shop',
    DATASAVER_DB_USER: s.user,
    DATASAVER_DB_PASSWORD: s.password,
  };
}

/** The target settings of the Redis server. */
function redisEnv(r: RedisServer): Record<string, string> {
  return {
    DATASAVER_ENGINE: 'redis',
    DATASAVER_DB_HOST: r.host,
    DATASAVER_DB_PORT: String(r.port),
    DATASAVER_DB_PASSWORD: r.password,
  };
}

describe('encrypted MySQL/MariaDB backups', () => {
  it('round trip; age -d | zstd -d gives the SQL script', async () => {
    mariadb = await startMariadb();
    const s = mariadb;
    await s.exec(`CREATE DATABASE shop;
USE shop;
CREATE TABLE ${MARKER}_orders (id INT PRIMARY KEY, note TEXT) COMMENT '${MARKER} comment';
INSERT INTO ${MARKER}_orders VALUES (1, 'row ${MARKER} 1'), (2, 'row ${MARKER} 2'), (3, 'three');`);
    const { env, manifest, objectPath } = await encryptedBackup(mysqlEnv(s));
    const res = await runCli(['restore', manifest.id, '--target-db', 'shop_copy'], env);
    expect(res.code, res.output).toBe(0);
    expect(await s.query(`SELECT count(*) FROM ${ident(`${MARKER}_orders`)}`, 'shop_copy')).toEqual([['3']]);

    const script = await readFile(await stockDecrypt(objectPath, key.identityFile), 'utf8');
    expect(script).toContain(`CREATE TABLE \`${MARKER}_orders\``);
  });

  it('round trip with a passphrase', async () => {
    const s = mariadb!;
    const { env, manifest } = await encryptedBackup(mysqlEnv(s), PASSPHRASE);
    expect(manifest.encryption).toMatchObject({ recipients: [], passphrase: true });
    const res = await runCli(['restore', manifest.id, '--target-db', 'shop_passphrase'], env);
    expect(res.code, res.output).toBe(0);
    expect(await s.query(`SELECT count(*) FROM ${ident(`${MARKER}_orders`)}`, 'shop_passphrase')).toEqual([
      ['3'],
    ]);
  });
});

describe('encrypted Redis backups', () => {
  it('round trip; age -d | zstd -d gives an RDB that redis-check-rdb accepts', async () => {
    redis = await startRedis();
    const client = await redis.client(0);
    try {
      await client.set(`${MARKER}:key`, `value ${MARKER}`);
      await client.hset('user:1', { name: MARKER });
    } finally {
      client.disconnect();
    }
    const { env, manifest, objectPath } = await encryptedBackup(redisEnv(redis));
    await redis.flushAll();
    const res = await runCli(['restore', manifest.id, '--drop-existing'], env);
    expect(res.code, res.output).toBe(0);
    const check = await redis.client(0);
    try {
      expect(await check.get(`${MARKER}:key`)).toBe(`value ${MARKER}`);
      expect(await check.hget('user:1', 'name')).toBe(MARKER);
    } finally {
      check.disconnect();
    }

    const rdb = await stockDecrypt(objectPath, key.identityFile);
    expect((await readFile(rdb)).subarray(0, 5).toString()).toBe('REDIS');
    const { stdout } = await execFile('redis-check-rdb', [rdb]);
    expect(stdout).toMatch(/RDB looks OK/);
  });

  it('round trip with a passphrase', async () => {
    const r = redis!;
    const { env, manifest } = await encryptedBackup(redisEnv(r), PASSPHRASE);
    expect(manifest.encryption).toMatchObject({ recipients: [], passphrase: true });
    await r.flushAll();
    const res = await runCli(['restore', manifest.id, '--drop-existing'], env);
    expect(res.code, res.output).toBe(0);
    const check = await r.client(0);
    try {
      expect(await check.get(`${MARKER}:key`)).toBe(`value ${MARKER}`);
    } finally {
      check.disconnect();
    }
  });
});

describe('encrypted SQLite backups', () => {
  async function database(): Promise<string> {
    const path = join(await tempDir('enc-sqlite-'), 'app.db');
    const db = new DatabaseSync(path);
    db.exec(`CREATE TABLE ${MARKER}_orders (id INTEGER PRIMARY KEY, note TEXT);
      INSERT INTO ${MARKER}_orders (note) VALUES ('row ${MARKER} 1'), ('row ${MARKER} 2');`);
    db.close();
    return path;
  }

  function count(path: string): number {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return Number((db.prepare(`SELECT count(*) AS n FROM ${MARKER}_orders`).get() as { n: number }).n);
    } finally {
      db.close();
    }
  }

  it('round trip with a recipient; age -d | zstd -d gives a database sqlite3 reads', async () => {
    const path = await database();
    const { env, manifest, objectPath } = await encryptedBackup({
      DATASAVER_DATABASE_URL: `sqlite://${path}`,
    });
    const out = join(await tempDir(), 'restored.db');
    const res = await runCli(['restore', manifest.id, '--to-file', out], env);
    expect(res.code, res.output).toBe(0);
    expect(count(out)).toBe(2);

    const raw = await stockDecrypt(objectPath, key.identityFile);
    const { stdout } = await execFile('sqlite3', [raw, `SELECT count(*) FROM ${MARKER}_orders`]);
    expect(stdout.trim()).toBe('2');
  });

  it('the daemon drills encrypted backups with the identity, and refuses a drill schedule without it', async () => {
    const path = await database();
    const env = {
      DATASAVER_DATABASE_URL: `sqlite://${path}`,
      DATASAVER_STORAGE_PATH: await tempDir('enc-store-'),
      DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient,
      DATASAVER_SCHEDULE: '0 0 1 1 *', // after --run-now's backup, none: the drilled backup stays the newest
      DATASAVER_DRILL_SCHEDULE: '*/2 * * * * *',
    };
    const refused = await runCli(['daemon'], env);
    expect(refused.code, refused.output).toBe(2);
    expect(refused.stderr).toMatch(
      /DATASAVER_DRILL_SCHEDULE: scheduled drills of encrypted backups need the key/,
    );

    const daemon = await startDaemon({ ...env, DATASAVER_ENCRYPTION_IDENTITY_FILE: key.identityFile }, [
      '--run-now',
    ]);
    try {
      const { target } = await waitFor(
        'a drill that passed',
        async () => {
          const t = (await daemon.health()).body.targets[0]!;
          return t.lastDrill?.result === 'passed' ? { target: t } : undefined;
        },
        60_000,
      );
      expect(target.lastDrill).toMatchObject({ result: 'passed', compared: 1, mismatches: 0 });
      expect((await filesContaining(env.DATASAVER_STORAGE_PATH, MARKER)).found).toEqual([]);
    } finally {
      const { result } = await terminate(daemon);
      expect(result.code, result.output).toBe(0);
    }
  });

  it('round trip with a passphrase', async () => {
    const path = await database();
    const { env, manifest } = await encryptedBackup(
      { DATASAVER_DATABASE_URL: `sqlite://${path}` },
      PASSPHRASE,
    );
    expect(manifest.encryption).toMatchObject({ recipients: [], passphrase: true });
    const out = join(await tempDir(), 'restored.db');
    const res = await runCli(['restore', manifest.id, '--to-file', out], env);
    expect(res.code, res.output).toBe(0);
    expect(count(out)).toBe(2);
  });
});
