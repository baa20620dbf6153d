/**
 * Copying a loaded data set into the target server: a probe of the rights and payload format first, then
 * every key of a logical database with DUMP + PTTL and RESTORE, in batches sized by their payloads.
 */
import type { Redis } from 'ioredis';
import { errorMessage, RestoreError } from '../../util/errors.ts';
import { RESTORE_RIGHTS } from './client.ts';
import { parseKeyspace } from './info.ts';

/** Keys per DUMP/RESTORE round trip, at most; fewer when values are large (BATCH_BYTES). */
const BATCH = 1000;
const BATCH_BYTES = 16 * 1024 * 1024;

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
export async function probeRestore(
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
export async function copyDatabase(
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

/** A key name for messages: text as is, binary as hex. */
function printable(key: Buffer): string {
  const text = key.toString('utf8');
  return /^[\x20-\x7e]*$/.test(text) && text.length <= 200
    ? JSON.stringify(text)
    : `0x${key.toString('hex').slice(0, 64)}`;
}
