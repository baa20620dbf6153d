/**
 * The parts of a backup. A one-dump backup has one: its data object. A whole-server backup set
 * (Manifest.set) has its globals and one object per database, all committed by the one manifest.
 *
 * The jobs that handle one dump (checksum pass, structure check, restore, drill, copy to another
 * destination) take each part as a one-dump manifest (`backupParts`), so a set is checked, copied and
 * restored object by object with the same code, and counts as one backup everywhere else (list,
 * retention, records, health).
 */
import { databasePart, GLOBALS_PART } from './layout.ts';
import type { Manifest, SetObject } from './manifest.ts';

/**
 * The most databases a set may hold: far past any real server, and small enough that a forged manifest
 * cannot make a reader walk millions of parts (a manifest is at most a megabyte anyway).
 */
export const MAX_SET_DATABASES = 5000;

/** One part of a backup, as a one-dump manifest. */
export interface BackupPart {
  /**
   * `dump` (a database's dump, in the manifest's `format`) or `globals` (a set's roles and tablespaces,
   * in its globals format: restored and checked through Engine.serverSet).
   */
  kind: 'dump' | 'globals';
  /** The part's name in its key (`globals`, `db1`...); undefined for a one-dump backup. */
  part: string | undefined;
  /**
   * The backup's manifest narrowed to this part: the set's id, target, engine, times, compression and
   * encryption, with the part's object, sizes, sha256, format, database, settings and facts, and no `set`.
   */
  manifest: Manifest;
}

/** A manifest of a backup set: `set` present. */
export function isBackupSet(
  manifest: Manifest,
): manifest is Manifest & { set: NonNullable<Manifest['set']> } {
  return manifest.set !== undefined;
}

/**
 * Every part of a backup: a one-dump backup as it is; a set's globals first, then its databases in
 * order. A sealed set read without the key has its databases' names and facts as placeholders.
 */
export function backupParts(manifest: Manifest): BackupPart[] {
  if (!isBackupSet(manifest)) return [{ kind: 'dump', part: undefined, manifest }];
  const { set, databaseSettings: _none, ...common } = manifest;
  const { globals } = set;
  const parts: BackupPart[] = [
    {
      kind: 'globals',
      part: GLOBALS_PART,
      manifest: {
        ...common,
        ...objectFields(globals),
        format: globals.format,
        database: null,
        facts: { exact: false, tables: [] },
      },
    },
  ];
  set.databases.forEach((db, i) => {
    parts.push({
      kind: 'dump',
      part: databasePart(i),
      manifest: {
        ...common,
        ...objectFields(db),
        database: db.database,
        ...(db.databaseSettings ? { databaseSettings: db.databaseSettings } : {}),
        facts: db.facts,
      },
    });
  });
  return parts;
}

/** Every stored object of a backup, with what proves it: one for a one-dump backup. */
export function storedObjects(manifest: Manifest): SetObject[] {
  return backupParts(manifest).map((p) => objectFields(p.manifest));
}

/**
 * Why a manifest's set does not add up, or undefined: the top-level `object` and `sha256` must be the
 * globals', the sizes the sums of the parts', every object and database named once. Only what the
 * manifest says of itself: whether its objects are its own backup's keys is the catalog's check.
 */
export function setProblem(manifest: Manifest): string | undefined {
  if (!isBackupSet(manifest)) return undefined;
  const { set } = manifest;
  if (manifest.object !== set.globals.object || manifest.sha256 !== set.globals.sha256)
    return 'set: object and sha256 are not its globals object';
  const objects = storedObjects(manifest);
  const sum = (field: 'sizeBytes' | 'storedBytes') => objects.reduce((n, o) => n + o[field], 0);
  if (sum('sizeBytes') !== manifest.sizeBytes || sum('storedBytes') !== manifest.storedBytes)
    return 'set: sizeBytes and storedBytes are not the sums of its parts';
  if (new Set(objects.map((o) => o.object)).size !== objects.length) return 'set: an object is named twice';
  const names = set.databases.map((d) => d.database).filter((d) => d !== null);
  if (new Set(names).size !== names.length) return 'set: a database is named twice';
  if (manifest.database !== null) return 'set: database must be null';
  return undefined;
}

function objectFields(o: SetObject): SetObject {
  return { object: o.object, sizeBytes: o.sizeBytes, storedBytes: o.storedBytes, sha256: o.sha256 };
}
