/**
 * Reading backups back from storage: manifests are the source of truth. Objects that datasaver did not
 * write, or manifests it cannot read, are skipped with a warning; they never break listing.
 */

import { readCapped } from '../pipeline/read.ts';
import type { ObjectInfo, StorageBackend } from '../storage/backend.ts';
import { mapLimit } from '../util/concurrency.ts';
import { errorMessage, StorageError, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { compareIds, isLeaseKey, type KeyKind, parseBackupId, parseKey } from './layout.ts';
import type { Manifest } from './manifest.ts';
import { parseManifest } from './manifest-read.ts';
import { manifestDistrust } from './manifest-trust.ts';

export interface Catalog {
  /** Committed backups, oldest first. */
  backups: Manifest[];
  /**
   * Data objects and verify records whose backup has no manifest file: in-flight or crashed backups, or
   * leftovers of an interrupted prune. A backup whose manifest exists but cannot be read is not here.
   */
  incomplete: (ObjectInfo & { target: string; id: string; kind: Exclude<KeyKind, 'manifest'> })[];
  /** Every datasaver object listed, by key (to check that a manifest's data object is there). */
  objects: Map<string, ObjectInfo>;
  /** Files that were skipped, and why (storage's own text made printable). */
  warnings: string[];
}

export const READ_CONCURRENCY = 16;

/**
 * The largest manifest or verify record datasaver reads. Real ones are a few KB (a manifest lists its
 * tables' row counts); a bigger object in storage is refused without being read whole, so a planted
 * gigabyte cannot exhaust memory.
 */
export const MAX_RECORD_BYTES = 1_000_000;

/**
 * Reads a manifest or verify record whole, refusing it without reading when its listed `size` is over
 * MAX_RECORD_BYTES, and stopping the read there in any case (a listing can be stale, an object replaced).
 * Throws StorageError naming the key; storage's errors pass through.
 */
export async function readRecord(
  storage: StorageBackend,
  key: string,
  options: { size?: number | undefined; signal?: AbortSignal | undefined } = {},
): Promise<string> {
  const tooLarge = (size?: number) =>
    new StorageError(
      size === undefined
        ? `${storage.description}: ${printable(key)} holds more than the ${MAX_RECORD_BYTES} bytes a datasaver record can be; reading stopped there`
        : `${storage.description}: ${printable(key)} is ${size} bytes, more than the ${MAX_RECORD_BYTES} bytes a datasaver record can be; it was not read`,
      { hint: 'datasaver never writes one this large: inspect it, and remove it if it is not yours' },
    );
  if (options.size !== undefined && options.size > MAX_RECORD_BYTES) throw tooLarge(options.size);
  const body = await readCapped(await storage.get(key, { signal: options.signal }), MAX_RECORD_BYTES, () =>
    tooLarge(),
  );
  return body.toString('utf8');
}

export async function readCatalog(
  storage: StorageBackend,
  options: { target?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<Catalog> {
  const objects = await storage.list(options.target ? `${options.target}/` : '', options);
  const warnings: string[] = [];
  const manifestKeys: string[] = [];
  const committed = new Set<string>();
  const byKey = new Map<string, ObjectInfo>();
  const others: Catalog['incomplete'] = [];
  for (const obj of objects) {
    if (isLeaseKey(obj.key)) continue; // a run's lease, not a backup: never listed, never pruned
    const parsed = parseKey(obj.key);
    if (!parsed) {
      warnings.push(`${storage.description}: skipping ${printable(obj.key)}: not a datasaver backup file`);
      continue;
    }
    byKey.set(obj.key, obj);
    if (parsed.kind === 'manifest') {
      manifestKeys.push(obj.key);
      committed.add(`${parsed.target}/${parsed.id}`);
    } else {
      others.push({ ...obj, target: parsed.target, id: parsed.id, kind: parsed.kind });
    }
  }

  const backups: Manifest[] = [];
  const read = await mapLimit(manifestKeys, READ_CONCURRENCY, (key) =>
    readManifest(storage, key, byKey.get(key)?.size, options.signal),
  );
  read.forEach((result, i) => {
    if ('error' in result)
      warnings.push(
        `${storage.description}: skipping ${printable(manifestKeys[i]!)}: ${printable(result.error)}`,
      );
    else backups.push(result.manifest);
  });

  backups.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : compareIds(a.id, b.id)));
  // Orphans are judged by the manifest file's presence, not its content: data whose manifest a newer
  // datasaver wrote (or that is damaged) must never look like garbage to prune.
  const incomplete = others.filter((o) => !committed.has(`${o.target}/${o.id}`));
  return { backups, incomplete, objects: byKey, warnings };
}

async function readManifest(
  storage: StorageBackend,
  key: string,
  size: number | undefined,
  signal?: AbortSignal,
): Promise<{ manifest: Manifest } | { error: string }> {
  let body: string;
  try {
    body = await readRecord(storage, key, { size, signal });
  } catch (err) {
    signal?.throwIfAborted();
    return { error: errorMessage(err) };
  }
  const result = parseManifest(body);
  if ('error' in result) return { error: `unreadable manifest: ${result.error}` };
  const parsedKey = parseKey(key);
  if (result.manifest.id !== parsedKey?.id || result.manifest.target !== parsedKey.target) {
    return { error: `manifest describes ${result.manifest.id}, not the backup its name says` };
  }
  // Its data object must be this backup's own: prune deletes it, restore reads it.
  const data = parseKey(result.manifest.object);
  if (data?.kind !== 'data' || data.id !== parsedKey.id || data.target !== parsedKey.target) {
    return { error: `its data object ${result.manifest.object} is not ${parsedKey.id}'s` };
  }
  return result;
}

/** A committed backup and the storage it was found in. */
export interface StoredBackup {
  manifest: Manifest;
  storage: StorageBackend;
  /** Why its dates cannot be believed (manifest-trust.ts); only ever set for a backup named by its id. */
  suspect?: string;
}

interface FindOptions {
  signal?: AbortSignal | undefined;
  /** Told about a storage that could not be read while another may still answer. */
  onUnreadable?: ((storage: StorageBackend, err: unknown) => void) | undefined;
  /** The time suspect dates are judged against. */
  now?: Date | undefined;
}

/**
 * Every trusted committed backup of `target` in `storages`, newest first; a backup held by several
 * storages comes once per storage, in the order of `storages` (a damaged copy in one may be intact in
 * another). Suspect backups are never among them (manifest-trust.ts). Throws UsageError naming what was
 * looked for and where when there is none.
 */
export async function trustedBackups(
  storages: StorageBackend[],
  target: string,
  options: FindOptions = {},
): Promise<StoredBackup[]> {
  const now = options.now ?? new Date();
  const found: StoredBackup[] = [];
  const suspect = new Set<string>();
  const unreadable = await eachCatalog(storages, target, options, (storage, backups) => {
    for (const b of backups) {
      if (manifestDistrust(b, now) === undefined) found.push({ manifest: b, storage });
      else suspect.add(b.id);
    }
    return false;
  });
  if (found.length === 0) {
    if (unreadable !== undefined) throw unreadable.err;
    throw new UsageError(
      `no ${suspect.size > 0 ? 'trusted ' : ''}backups of target ${target} in ${where(storages)}${suspect.size > 0 ? ` (${suspect.size} suspect backup(s) are never \`latest\`)` : ''}`,
      {
        hint:
          suspect.size > 0
            ? 'run `datasaver list` to see why they are suspect; restore one by its id if you trust it'
            : 'run `datasaver list --all` to see what storage holds',
      },
    );
  }
  // Stable: within one id, the order of `storages` stays.
  return found.sort((a, b) => compareIds(b.manifest.id, a.manifest.id));
}

/**
 * Finds one committed backup: an id, or `latest` for the newest trusted backup of `target` (see
 * trustedBackups), in the first of `storages` that holds it. An id names its backup whatever its dates,
 * and the answer carries `suspect` with the reason, for the caller to warn. Throws UsageError naming what
 * was looked for and where when none is found.
 */
export async function findBackup(
  storages: StorageBackend[],
  ref: string,
  target: string | undefined,
  options: FindOptions = {},
): Promise<StoredBackup> {
  if (ref !== 'latest' && !parseBackupId(ref)) {
    throw new UsageError(`'${printable(ref)}' is not a backup id`, {
      hint: 'ids look like shop-20260111T020015Z; run `datasaver list` to see them, or use `latest`',
    });
  }
  const backupTarget = ref === 'latest' ? target : parseBackupId(ref)!.target;
  if (!backupTarget) {
    throw new UsageError('`latest` needs a target', { hint: 'pass --target NAME, or give a backup id' });
  }
  if (ref === 'latest') return (await trustedBackups(storages, backupTarget, options))[0]!;
  let best: StoredBackup | undefined;
  const unreadable = await eachCatalog(storages, backupTarget, options, (storage, backups) => {
    const found = backups.find((b) => b.id === ref);
    if (found) best = { manifest: found, storage };
    return found !== undefined;
  });
  if (!best) {
    if (unreadable !== undefined) throw unreadable.err;
    throw new UsageError(`no committed backup ${ref} in ${where(storages)}`, {
      hint: 'run `datasaver list --all` to see what storage holds',
    });
  }
  const suspect = manifestDistrust(best.manifest, options.now ?? new Date());
  return suspect === undefined ? best : { ...best, suspect };
}

/**
 * Reads the committed backups of `target` in each storage in turn, until `visit` returns true. One
 * destination down (S3 unreachable) must not keep a restore from the others: its error is passed to
 * onUnreadable, and the first such error returned.
 */
async function eachCatalog(
  storages: StorageBackend[],
  target: string,
  options: FindOptions,
  visit: (storage: StorageBackend, backups: Manifest[]) => boolean,
): Promise<{ err: unknown } | undefined> {
  let unreadable: { err: unknown } | undefined;
  for (const storage of storages) {
    let backups: Manifest[];
    try {
      ({ backups } = await readCatalog(storage, { target, signal: options.signal }));
    } catch (err) {
      options.signal?.throwIfAborted();
      options.onUnreadable?.(storage, err);
      unreadable ??= { err };
      continue;
    }
    if (visit(storage, backups)) break;
  }
  return unreadable;
}

function where(storages: StorageBackend[]): string {
  return storages.map((s) => s.description).join(', ');
}

/** What the daemon reads from one destination at start: committed backups of `target`, and the newest. */
export interface TargetUsage {
  backups: number;
  bytes: number;
  /** The newest trusted backup: a suspect one (dated after `now`) never counts as a success. */
  newest: Manifest | undefined;
}

/** Counts the committed backups of `target` in one storage and finds its newest trusted one at `now`. */
export async function readTargetUsage(
  storage: StorageBackend,
  target: string,
  options: { now: Date; signal?: AbortSignal | undefined },
): Promise<TargetUsage> {
  const catalog = await readCatalog(storage, { target, signal: options.signal });
  const own = catalog.backups.filter((m) => m.target === target);
  return {
    backups: own.length,
    bytes: own.reduce((n, m) => n + m.storedBytes, 0),
    newest: own.filter((m) => manifestDistrust(m, options.now) === undefined).at(-1),
  };
}
