/**
 * Reading backups back from storage: manifests are the source of truth. Objects that datasaver did not
 * write, or manifests it cannot read, are skipped with a warning; they never break listing.
 */
import { text } from 'node:stream/consumers';
import { UsageError } from '../errors.ts';
import type { Manifest } from '../manifest.ts';
import { parseManifest } from '../manifest-read.ts';
import type { ObjectInfo, StorageBackend } from '../storage/backend.ts';
import { compareIds, isLeaseKey, parseBackupId, parseKey } from '../storage/layout.ts';
import { mapLimit } from '../util/concurrency.ts';

export interface Catalog {
  /** Committed backups, oldest first. */
  backups: Manifest[];
  /**
   * Data objects and verify records whose backup has no manifest file: in-flight or crashed backups, or
   * leftovers of an interrupted prune. A backup whose manifest exists but cannot be read is not here.
   */
  incomplete: (ObjectInfo & { target: string; id: string; kind: 'data' | 'verify' })[];
  /** Every datasaver object listed, by key (to check that a manifest's data object is there). */
  objects: Map<string, ObjectInfo>;
  /** Files that were skipped, and why. */
  warnings: string[];
}

export const READ_CONCURRENCY = 16;

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
      warnings.push(`${storage.description}: skipping ${obj.key}: not a datasaver backup file`);
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
    readManifest(storage, key, options.signal),
  );
  read.forEach((result, i) => {
    if ('error' in result)
      warnings.push(`${storage.description}: skipping ${manifestKeys[i]}: ${result.error}`);
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
  signal?: AbortSignal,
): Promise<{ manifest: Manifest } | { error: string }> {
  let body: string;
  try {
    body = await text(await storage.get(key, { signal }));
  } catch (err) {
    return { error: (err as Error).message };
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

/**
 * Finds one committed backup: an id, or `latest` for the newest backup of `target`, in the first of
 * `storages` that holds it. Throws UsageError naming what was looked for and where when none does.
 */
export async function findBackup(
  storages: StorageBackend[],
  ref: string,
  target: string | undefined,
  options: {
    signal?: AbortSignal | undefined;
    /** Told about a storage that could not be read while another may still answer. */
    onUnreadable?: ((storage: StorageBackend, err: unknown) => void) | undefined;
  } = {},
): Promise<{ manifest: Manifest; storage: StorageBackend }> {
  if (ref !== 'latest' && !parseBackupId(ref)) {
    throw new UsageError(`'${ref}' is not a backup id`, {
      hint: 'ids look like shop-20260111T020015Z; run `datasaver list` to see them, or use `latest`',
    });
  }
  const backupTarget = ref === 'latest' ? target : parseBackupId(ref)!.target;
  if (!backupTarget) {
    throw new UsageError('`latest` needs a target', { hint: 'pass --target NAME, or give a backup id' });
  }
  let best: { manifest: Manifest; storage: StorageBackend } | undefined;
  let unreadable: unknown;
  for (const storage of storages) {
    let backups: Manifest[];
    try {
      ({ backups } = await readCatalog(storage, { target: backupTarget, signal: options.signal }));
    } catch (err) {
      // One destination down (S3 unreachable) must not keep a restore from the others.
      options.signal?.throwIfAborted();
      options.onUnreadable?.(storage, err);
      unreadable ??= err;
      continue;
    }
    const found = ref === 'latest' ? backups.at(-1) : backups.find((b) => b.id === ref);
    // `latest` is the newest anywhere; an id is taken from the first storage that has it.
    if (found && (!best || compareIds(found.id, best.manifest.id) > 0)) best = { manifest: found, storage };
    if (best && ref !== 'latest') break;
  }
  if (!best) {
    if (unreadable !== undefined) throw unreadable;
    const where = storages.map((s) => s.description).join(', ');
    throw new UsageError(
      ref === 'latest'
        ? `no backups of target ${backupTarget} in ${where}`
        : `no committed backup ${ref} in ${where}`,
      { hint: 'run `datasaver list --all` to see what storage holds' },
    );
  }
  return best;
}
