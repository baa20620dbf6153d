/**
 * Storage layout, pure: how backup ids and keys are formed and read back.
 *
 *   <target>/<backup-id>.<ext>             data object, e.g. shop/shop-20260111T020015Z.dump.zst
 *                                          (encrypted: shop/shop-20260111T020015Z.dump.zst.age)
 *   <target>/<backup-id>.<part>.<ext>      the parts of a whole-server backup set: `globals` (roles and
 *                                          tablespaces) and `db1`, `db2`... (one database each, named in
 *                                          the manifest), e.g. srv/srv-20260111T020015Z.db1.dump.zst
 *   <target>/<backup-id>.manifest.json     written last: the commit marker
 *   <target>/<backup-id>.verify.json       result of the last `verify` of that backup
 *   <target>/<backup-id>.drill.json        result of the last restore drill of that backup
 *   <target>/<target>.lease.json           the target's lease while a run writes it (lease/lease.ts)
 *
 * A backup id is `<target>-<UTC timestamp>` with an optional `-<n>` when two backups of a target start in
 * the same second, so ids of one target sort by time. Target names hold no `.`, so everything after the
 * first `.` of a file name is its extension.
 */

import { DUMP_EXTENSIONS } from '../engines/registry.ts';
import { COMPRESSION_ALGORITHMS, compressionExtension } from '../pipeline/compression.ts';

const ID = /^([A-Za-z0-9][A-Za-z0-9_-]*)-(\d{8}T\d{6}Z)(?:-(\d+))?$/;

/** The extension an encrypted data object ends with: it is an age file (`shop-….dump.zst.age`). */
export const ENCRYPTED_EXTENSION = 'age';

export const MANIFEST_SUFFIX = '.manifest.json';
export const VERIFY_SUFFIX = '.verify.json';
export const DRILL_SUFFIX = '.drill.json';

/** `2026-01-11T02:00:15.123Z` -> `20260111T020015Z`. */
function compactTimestamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** The id for a backup of `target` started at `at`; `sequence` > 0 disambiguates ids within one second. */
export function backupId(target: string, at: Date, sequence = 0): string {
  const base = `${target}-${compactTimestamp(at)}`;
  return sequence > 0 ? `${base}-${sequence}` : base;
}

export interface ParsedId {
  target: string;
  /** Start time, to the second. */
  time: Date;
  sequence: number;
}

export function parseBackupId(id: string): ParsedId | undefined {
  const m = ID.exec(id);
  if (!m) return undefined;
  const t = m[2]!;
  const iso = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`;
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return undefined;
  return { target: m[1]!, time, sequence: m[3] ? Number(m[3]) : 0 };
}

/** Orders ids of one target by time (and sequence within a second); ids it cannot read sort by text. */
export function compareIds(a: string, b: string): number {
  const pa = parseBackupId(a);
  const pb = parseBackupId(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  return pa.time.getTime() - pb.time.getTime() || pa.sequence - pb.sequence || (a < b ? -1 : a > b ? 1 : 0);
}

export function dataKey(target: string, id: string, extension: string): string {
  return `${target}/${id}.${extension}`;
}

/** The part of a backup set holding the server's globals. */
export const GLOBALS_PART = 'globals';

/** The part of a backup set holding its `index`th database (0-based): `db1`, `db2`... */
export function databasePart(index: number): string {
  return `db${index + 1}`;
}

/** A part's name in a key: `globals`, or `db` and a number without leading zeros. */
const PART = /^(?:globals|db[1-9]\d{0,5})$/;

/** Storage key of one part of a backup set (`srv/srv-20260111T020015Z.db1.dump.zst`). */
export function partKey(target: string, id: string, part: string, extension: string): string {
  return `${target}/${id}.${part}.${extension}`;
}

export function manifestKey(target: string, id: string): string {
  return `${target}/${id}${MANIFEST_SUFFIX}`;
}

/** Where the result of the last `verify` of a backup is recorded. */
export function verifyKey(target: string, id: string): string {
  return `${target}/${id}${VERIFY_SUFFIX}`;
}

/** Where the result of the last restore drill of a backup is recorded (jobs/drill.ts). */
export function drillKey(target: string, id: string): string {
  return `${target}/${id}${DRILL_SUFFIX}`;
}

/** Where the lease of a target lives: one writer per target (lease/lease.ts). Never a backup file. */
export function leaseKey(target: string): string {
  return `${target}/${target}.lease.json`;
}

export function isLeaseKey(key: string): boolean {
  const slash = key.indexOf('/');
  return slash > 0 && key === leaseKey(key.slice(0, slash));
}

export type KeyKind = 'manifest' | 'verify' | 'drill' | 'data';

/**
 * Extensions datasaver gives data objects: an engine's (its descriptor's, e.g. `dump`, `mysql.sql`) plus
 * an optional compression's, plus `age` when encrypted. Anything else beside a backup (`.sha256` files, notes) is not datasaver's
 * and is never touched.
 */
const DATA_EXTENSIONS: ReadonlySet<string> = new Set(
  DUMP_EXTENSIONS.flatMap((engine) =>
    COMPRESSION_ALGORITHMS.flatMap((algorithm) =>
      [false, true].map((encrypted) => dataExtension(engine, compressionExtension(algorithm), encrypted)),
    ),
  ),
);

/** The suffixes of the files datasaver writes beside a data object, by kind. */
const RECORD_KINDS: ReadonlyMap<string, KeyKind> = new Map([
  [MANIFEST_SUFFIX, 'manifest'],
  [VERIFY_SUFFIX, 'verify'],
  [DRILL_SUFFIX, 'drill'],
]);

export interface ParsedKey {
  kind: KeyKind;
  target: string;
  id: string;
  /** Extension after the id (`dump.zst`, `manifest.json`; of a set's part, after the part's name). */
  extension: string;
  /** The part of a backup set a data object is (`globals`, `db1`); absent for a one-dump backup's. */
  part?: string | undefined;
}

/** Reads a key back into target, id and kind; undefined for anything datasaver did not write. */
export function parseKey(key: string): ParsedKey | undefined {
  const slash = key.indexOf('/');
  if (slash <= 0 || key.indexOf('/', slash + 1) !== -1) return undefined;
  const target = key.slice(0, slash);
  const file = key.slice(slash + 1);
  const dot = file.indexOf('.');
  if (dot <= 0) return undefined;
  const id = file.slice(0, dot);
  const parsed = parseBackupId(id);
  if (!parsed || parsed.target !== target) return undefined;
  const extension = file.slice(dot + 1);
  const suffix = `.${extension}`;
  const kind = RECORD_KINDS.get(suffix) ?? 'data';
  if (kind !== 'data' || DATA_EXTENSIONS.has(extension)) return { kind, target, id, extension };
  const partDot = extension.indexOf('.');
  const part = extension.slice(0, partDot);
  const rest = extension.slice(partDot + 1);
  if (partDot <= 0 || !PART.test(part) || !DATA_EXTENSIONS.has(rest)) return undefined;
  return { kind, target, id, extension: rest, part };
}

/**
 * File extension of a data object: the engine's own (`dump`, `sql`), the compression's, and `age` when
 * encrypted, in the order the stock tools undo them (`age -d`, then `zstd -d`).
 */
export function dataExtension(
  engineExtension: string,
  compressionExtension: string,
  encrypted = false,
): string {
  const base = compressionExtension ? `${engineExtension}.${compressionExtension}` : engineExtension;
  return encrypted ? `${base}.${ENCRYPTED_EXTENSION}` : base;
}
