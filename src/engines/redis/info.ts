/** Reading what Redis reports (INFO fields, the keyspace) and what an RDB holds, for facts and listings. */
import type { DatabaseFacts, DumpInspection } from '../engine.ts';
import type { RdbSummary } from './rdb-format.ts';

/** `field:value` from INFO output. */
export function infoField(info: string, field: string): string | undefined {
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

/**
 * Exact facts of an RDB: keys per logical database (`db0`, `db1`..., as `facts()` names them) and keys by
 * type, plus `expiring keys` (with a TTL) and `function libraries` where there are any. They count what a
 * restore of the file produces: keys already expired when it was written are in the file, but a server
 * loading it drops them, so they are left out, as is a database that holds only such keys. Keys that
 * expire between the backup and a restore are in the counts and missing from the restore. Undefined when
 * the reader could not walk every record (`partial`: a newer RDB, a module value of the first format).
 */
export function rdbFacts(summary: RdbSummary): DatabaseFacts | undefined {
  if (summary.partial !== undefined) return undefined;
  const loaded = summary.databases.map((d) => ({ name: `db${d.db}`, rows: d.keys - d.expired }));
  const expiring = summary.databases.reduce((n, d) => n + d.expires - d.expired, 0);
  return keyFacts(loaded, summary.types, expiring, summary.functions.length);
}

/**
 * Facts from key counts, in the one shape and order a backup and a restored server both report: the
 * databases that hold keys, keys by type (by name), then `expiring keys` and `function libraries` when
 * there are any.
 */
export function keyFacts(
  databases: { name: string; rows: number }[],
  types: Record<string, number>,
  expiring: number,
  functionLibraries: number,
): DatabaseFacts {
  const objects = Object.entries(types)
    .filter(([, count]) => count > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, count]) => ({ kind, count }));
  if (expiring > 0) objects.push({ kind: 'expiring keys', count: expiring });
  if (functionLibraries > 0) objects.push({ kind: 'function libraries', count: functionLibraries });
  return { exact: true, tables: databases.filter((t) => t.rows > 0), objects };
}

export function rdbEntries(summary: RdbSummary): DumpInspection['entries'] {
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
    const expired = d.expired > 0 ? `, ${d.expired} expired when saved` : '';
    const keys = `${d.keys} key${d.keys === 1 ? '' : 's'}, ${d.expires} with a TTL${expired}`;
    entries.push({ type: 'DATABASE', schema: '', name: `db${d.db}: ${keys}` });
  }
  for (const f of summary.functions) entries.push({ type: 'FUNCTION LIBRARY', schema: '', name: f });
  if (summary.partial)
    entries.push({ type: 'NOTE', schema: '', name: `records not all read: ${summary.partial}` });
  return entries;
}
