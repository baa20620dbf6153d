/**
 * The facts of a running server, counted the way the RDB reader counts a backup's (info.ts `rdbFacts`):
 * every key of every logical database walked with SCAN, its TYPE and PTTL read in pipelined batches, so a
 * restore drill can compare a restored server with the backup item by item.
 *
 * Keys are counted from SCAN, not from INFO keyspace or DBSIZE: those count keys whose TTL has passed but
 * that the server has not reclaimed yet, which a backup's facts leave out; SCAN, TYPE and PTTL see a key
 * only while it lives. Memory stays at one batch of key names whatever the size of the data set.
 */
import type { Redis } from 'ioredis';
import { errorMessage, RestoreError } from '../../util/errors.ts';
import type { DatabaseFacts } from '../engine.ts';
import { infoField, keyFacts, parseKeyspace } from './info.ts';

/** Keys asked for per SCAN call, and so per TYPE/PTTL pipeline. */
const BATCH = 1000;

/** The key types Redis has itself; any other name TYPE answers is a module's type. */
const STANDARD_TYPES = new Set(['string', 'list', 'set', 'zset', 'hash', 'stream']);

/** A key's type as facts name it: a module's own type name (`ReJSON-RL`, `vectorset`...) is `module`. */
export function factType(typeReply: string): string {
  return STANDARD_TYPES.has(typeReply) ? typeReply : 'module';
}

/** What the keys of one logical database add up to. */
interface Tally {
  keys: number;
  expiring: number;
  types: Record<string, number>;
}

/**
 * Reads the facts of the whole server through `client` (left on database 0). Throws RestoreError when a
 * database changed while it was counted (SCAN returned more keys than the database holds: a key seen
 * twice), and lets the client's own errors pass (withRedisClient turns them into datasaver's).
 */
export async function serverFacts(client: Redis, signal?: AbortSignal): Promise<DatabaseFacts> {
  const tables: { name: string; rows: number }[] = [];
  const types: Record<string, number> = {};
  let expiring = 0;
  for (const { db } of parseKeyspace(await client.info('keyspace'))) {
    await client.select(db);
    const tally = await countDatabase(client, db, signal);
    if (tally.keys > 0) tables.push({ name: `db${db}`, rows: tally.keys });
    for (const [type, n] of Object.entries(tally.types)) types[type] = (types[type] ?? 0) + n;
    expiring += tally.expiring;
  }
  await client.select(0);
  return keyFacts(tables, types, expiring, await functionLibraries(client));
}

/**
 * Counts the live keys of the selected database `db`. SCAN may return a key twice when the keyspace is
 * resized during the walk. On a server nobody writes to, the keys a walk counts number at most those
 * DBSIZE holds after it plus those that expired meanwhile (INFO stats `expired_keys`, which also counts
 * the expired keys SCAN reclaims as it meets them); more means a key was counted twice: the walk is done
 * once more, and a second such count fails.
 */
async function countDatabase(client: Redis, db: number, signal: AbortSignal | undefined): Promise<Tally> {
  for (let attempt = 1; ; attempt++) {
    const expiredBefore = await expiredKeys(client);
    const tally = await walk(client, signal);
    const size = await client.dbsize();
    const expired = (await expiredKeys(client)) - expiredBefore;
    if (tally.keys <= size + expired) return tally;
    if (attempt === 2) {
      throw new RestoreError(
        `db${db} changed while its keys were counted (${tally.keys} counted, ${size} held)`,
        { hint: 'nothing may write to a server whose facts are read; read them again once it is idle' },
      );
    }
  }
}

/** Keys the server has expired since it started, in any database. */
async function expiredKeys(client: Redis): Promise<number> {
  return Number(infoField(await client.info('stats'), 'expired_keys') ?? 0);
}

/** One SCAN walk of the selected database, TYPE and PTTL of each batch in one pipeline. */
async function walk(client: Redis, signal: AbortSignal | undefined): Promise<Tally> {
  const tally: Tally = { keys: 0, expiring: 0, types: {} };
  let cursor = '0';
  do {
    signal?.throwIfAborted();
    const [next, keys] = await client.scanBuffer(cursor, 'COUNT', BATCH);
    cursor = next.toString();
    if (keys.length === 0) continue;
    const read = client.pipeline();
    for (const key of keys) read.type(key).pttl(key);
    const replies = (await read.exec()) ?? [];
    for (let i = 0; i < replies.length; i += 2) {
      const [typeErr, type] = replies[i] as [Error | null, string];
      const [ttlErr, pttl] = replies[i + 1] as [Error | null, number];
      if (typeErr || ttlErr) throw typeErr ?? ttlErr;
      // Gone since SCAN returned it: it expired meanwhile, as it would have before a restore.
      if (type === 'none' || pttl === -2) continue;
      tally.keys++;
      if (pttl >= 0) tally.expiring++;
      const kind = factType(type);
      tally.types[kind] = (tally.types[kind] ?? 0) + 1;
    }
  } while (cursor !== '0');
  return tally;
}

/** The number of function libraries; 0 on a server before Redis 7, which has no FUNCTION command. */
async function functionLibraries(client: Redis): Promise<number> {
  try {
    return ((await client.function('LIST')) as unknown[]).length;
  } catch (err) {
    if (/^ERR unknown command/i.test(errorMessage(err))) return 0;
    throw err;
  }
}
