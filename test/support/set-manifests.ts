/** Committed whole-server backup sets written straight into storage, for tests of jobs that read them. */
import { createHash } from 'node:crypto';
import { backupId, databasePart, GLOBALS_PART, partKey } from '../../src/catalog/layout.ts';
import {
  type Manifest,
  SET_MANIFEST_VERSION,
  type SetDatabase,
  type SetObject,
} from '../../src/catalog/manifest.ts';
import type { DatabaseFacts, DatabaseSettings } from '../../src/engines/engine.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { storeBackup } from './manifests.ts';

/** Target of the stored sets (storeBackup's). */
export const SET_TARGET = 'shop';

/** One database of a set to store: its dump's bytes (default `dump of <name>`) and recorded facts. */
export interface SetDatabaseSpec {
  data?: Buffer;
  facts?: DatabaseFacts;
  databaseSettings?: DatabaseSettings;
}

function digest(object: string, data: Buffer): SetObject {
  const sha256 = createHash('sha256').update(data).digest('hex');
  return { object, sizeBytes: data.length, storedBytes: data.length, sha256 };
}

/**
 * Stores a committed set of target `shop` taken at `time`, as the backup job would: the globals (default
 * `globals script`) and each database of `databases` in name order, uncompressed, then the manifest.
 */
export async function storeSet(
  storage: StorageBackend,
  time: Date,
  databases: Record<string, SetDatabaseSpec>,
  options: { globals?: Buffer; rolePasswords?: boolean; format?: string } = {},
): Promise<Manifest> {
  const id = backupId(SET_TARGET, time);
  const object = async (part: string, extension: string, data: Buffer): Promise<SetObject> => {
    const key = partKey(SET_TARGET, id, part, extension);
    await storage.put(key, [data]);
    return digest(key, data);
  };
  const globalsData = options.globals ?? Buffer.from('globals script');
  const globals = digest(partKey(SET_TARGET, id, GLOBALS_PART, 'sql'), globalsData);
  const names = Object.keys(databases).sort();
  const parts: SetDatabase[] = [];
  for (const [i, name] of names.entries()) {
    const spec = databases[name]!;
    parts.push({
      ...(await object(databasePart(i), 'dump', spec.data ?? Buffer.from(`dump of ${name}`))),
      database: name,
      ...(spec.databaseSettings ? { databaseSettings: spec.databaseSettings } : {}),
      facts: spec.facts ?? { exact: true, tables: [] },
    });
  }
  const sum = (field: 'sizeBytes' | 'storedBytes') => [globals, ...parts].reduce((n, o) => n + o[field], 0);
  // Stored as a one-dump backup whose object is the globals', with the set over it.
  return storeBackup(storage, time, {
    data: globalsData,
    overrides: {
      version: SET_MANIFEST_VERSION,
      id,
      format: options.format ?? 'custom',
      ...globals,
      sizeBytes: sum('sizeBytes'),
      storedBytes: sum('storedBytes'),
      database: null,
      facts: { exact: parts.every((p) => p.facts.exact), tables: [] },
      set: {
        globals: { ...globals, format: 'globals', rolePasswords: options.rolePasswords ?? true },
        databases: parts,
        excluded: [],
        unreadable: [],
      },
    },
  });
}
