/** Reading what Redis reports (INFO fields, the keyspace) and what an RDB holds, for facts and listings. */
import type { DumpInspection } from '../engine.ts';
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
