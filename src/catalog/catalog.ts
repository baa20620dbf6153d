/**
 * Reading backups back from storage: manifests are the source of truth. Objects that datasaver did not
 * write, or manifests it cannot read, are skipped with a warning; they never break listing. With verify
 * keys (ManifestTrust), so are manifests that are unsigned or whose signature does not check
 * (catalog/signature.ts): whoever can write storage cannot plant a backup that readers believe.
 */

import { readCapped } from '../pipeline/read.ts';
import type { ObjectInfo, StorageBackend } from '../storage/backend.ts';
import { mapLimit } from '../util/concurrency.ts';
import { errorMessage, StorageError, UsageError, VerifyError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { compareIds, isLeaseKey, type KeyKind, parseBackupId, parseKey } from './layout.ts';
import type { Manifest } from './manifest.ts';
import { parseManifest } from './manifest-read.ts';
import { manifestDistrust } from './manifest-trust.ts';
import { backupParts } from './parts.ts';
import { type SignatureCheck, type VerifyKey, verifyManifestSignature } from './signature.ts';

/** Which manifests a reader believes, by their signatures. */
export interface ManifestTrust {
  /**
   * Public keys a manifest must be signed by to be believed (the target's DATASAVER_VERIFY_KEYS). Empty:
   * every readable manifest is believed, signed or not, and signatures are not checked.
   */
  verifyKeys: readonly VerifyKey[];
  /**
   * Keep unsigned manifests and those signed by a key no longer listed (with a warning and `untrusted`
   * set) instead of ignoring them: `restore <id> --allow-unsigned` only. A bad signature (an altered
   * manifest) is never kept.
   */
  allowUnsigned?: boolean | undefined;
}

/** A manifest whose signature is not believed. */
export interface UntrustedBackup {
  target: string;
  id: string;
  /** `unsigned`, `signed by unknown key <id>`, `bad signature (key <id>)`, `malformed signature (...)`. */
  reason: string;
  /** Kept among the backups because the trust allows unsigned manifests; else ignored. */
  kept: boolean;
  /** Its signature does not match it: the manifest was altered, and no flag makes it believed. */
  altered: boolean;
}

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
  /**
   * Manifests whose signature is not believed (only with verify keys): ignored, or kept in `backups` under
   * `allowUnsigned`. Their data is committed all the same (never `incomplete`): prune never deletes it.
   */
  untrusted: UntrustedBackup[];
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

/**
 * Reads what `storage` holds (of `target`, or of every target). `trust` decides which manifests are
 * believed; a function gives each target's own (`list` reads every target at once).
 */
export async function readCatalog(
  storage: StorageBackend,
  options: {
    target?: string | undefined;
    signal?: AbortSignal | undefined;
    trust?: ManifestTrust | ((target: string) => ManifestTrust) | undefined;
  } = {},
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
  const untrusted: UntrustedBackup[] = [];
  const read = await mapLimit(manifestKeys, READ_CONCURRENCY, (key) =>
    readManifest(storage, key, byKey.get(key)?.size, options.signal),
  );
  read.forEach((result, i) => {
    if ('error' in result) {
      warnings.push(
        `${storage.description}: skipping ${printable(manifestKeys[i]!)}: ${printable(result.error)}`,
      );
      return;
    }
    const { manifest } = result;
    const trust = typeof options.trust === 'function' ? options.trust(manifest.target) : options.trust;
    const problem = signatureProblem(result.json, trust);
    if (problem === undefined) {
      backups.push(manifest);
      return;
    }
    const { reason } = problem;
    // A signature that does not match means the manifest was altered: no flag makes it believed.
    const altered = problem.status === 'bad-signature';
    const kept = trust?.allowUnsigned === true && !altered;
    untrusted.push({ target: manifest.target, id: manifest.id, reason, kept, altered });
    if (kept) {
      backups.push(manifest);
      warnings.push(
        `${storage.description}: backup ${manifest.id} is not believed (${reason}); kept only because unsigned backups are allowed`,
      );
    } else {
      warnings.push(
        `${storage.description}: ignoring backup ${manifest.id}: ${reason}; only manifests signed by one of the verify keys are believed`,
      );
    }
  });

  const byTargetAndId = (a: { target: string; id: string }, b: { target: string; id: string }) =>
    a.target < b.target ? -1 : a.target > b.target ? 1 : compareIds(a.id, b.id);
  backups.sort(byTargetAndId);
  untrusted.sort(byTargetAndId);
  // Orphans are judged by the manifest file's presence, not its content: data whose manifest a newer
  // datasaver wrote (or that is damaged) must never look like garbage to prune.
  const incomplete = others.filter((o) => !committed.has(`${o.target}/${o.id}`));
  return { backups, incomplete, objects: byKey, warnings, untrusted };
}

/** Why a manifest (as parsed from storage) is not believed under `trust`; undefined when it is. */
function signatureProblem(
  json: unknown,
  trust: ManifestTrust | undefined,
): Exclude<SignatureCheck, { status: 'ok' }> | undefined {
  if (!trust || trust.verifyKeys.length === 0) return undefined;
  const check = verifyManifestSignature(json, trust.verifyKeys);
  return check.status === 'ok' ? undefined : check;
}

async function readManifest(
  storage: StorageBackend,
  key: string,
  size: number | undefined,
  signal?: AbortSignal,
): Promise<{ manifest: Manifest; json: unknown } | { error: string }> {
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
  // Its data objects must be this backup's own, each the part it is listed as: prune deletes them,
  // restore reads them.
  for (const { part, manifest } of backupParts(result.manifest)) {
    const data = parseKey(manifest.object);
    if (
      data?.kind !== 'data' ||
      data.id !== parsedKey.id ||
      data.target !== parsedKey.target ||
      data.part !== part
    ) {
      return { error: `its data object ${manifest.object} is not ${parsedKey.id}'s` };
    }
  }
  return result;
}

/** A committed backup and the storage it was found in. */
export interface StoredBackup {
  manifest: Manifest;
  storage: StorageBackend;
  /** Why its dates cannot be believed (manifest-trust.ts); only ever set for a backup named by its id. */
  suspect?: string;
  /** Why its signature is not believed; only ever set when the trust allows unsigned manifests. */
  untrusted?: string;
}

interface FindOptions {
  signal?: AbortSignal | undefined;
  /** Told about a storage that could not be read while another may still answer. */
  onUnreadable?: ((storage: StorageBackend, err: unknown) => void) | undefined;
  /** The time suspect dates are judged against. */
  now?: Date | undefined;
  /** Which manifests to believe (the target's verify keys); absent: every readable one. */
  trust?: ManifestTrust | undefined;
}

/**
 * Every trusted committed backup of `target` in `storages`, newest first; a backup held by several
 * storages comes once per storage, in the order of `storages` (a damaged copy in one may be intact in
 * another). Suspect backups are never among them (manifest-trust.ts), nor backups whose signature `trust`
 * does not believe, unless it allows them (then `untrusted` says why). Throws UsageError naming what was
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
  const ignored = new Set<string>();
  const unreadable = await eachCatalog(storages, target, options, (storage, catalog) => {
    for (const b of catalog.backups) {
      if (manifestDistrust(b, now) === undefined) found.push(stored(b, storage, catalog));
      else suspect.add(b.id);
    }
    for (const u of catalog.untrusted) if (!u.kept) ignored.add(u.id);
    return false;
  });
  if (found.length === 0) {
    if (unreadable !== undefined) throw unreadable.err;
    const unsigned =
      ignored.size > 0
        ? ` (${ignored.size} backup(s) ignored: their manifests are not signed by one of the verify keys)`
        : '';
    throw new UsageError(
      `no ${suspect.size > 0 ? 'trusted ' : ''}backups of target ${target} in ${where(storages)}${suspect.size > 0 ? ` (${suspect.size} suspect backup(s) are never \`latest\`)` : ''}${unsigned}`,
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
  let unsigned: StoredBackup | undefined;
  let ignored: UntrustedBackup | undefined;
  const unreadable = await eachCatalog(storages, backupTarget, options, (storage, catalog) => {
    const found = catalog.backups.find((b) => b.id === ref);
    // A copy whose signature is not believed is the last resort: another storage may hold one that is.
    if (found) {
      const candidate = stored(found, storage, catalog);
      if (candidate.untrusted === undefined) best = candidate;
      else unsigned ??= candidate;
    } else ignored ??= catalog.untrusted.find((u) => u.id === ref);
    return best !== undefined;
  });
  best ??= unsigned;
  if (!best) {
    if (ignored !== undefined) throw refusal(ignored);
    if (unreadable !== undefined) throw unreadable.err;
    throw new UsageError(`no committed backup ${ref} in ${where(storages)}`, {
      hint: 'run `datasaver list --all` to see what storage holds',
    });
  }
  const suspect = manifestDistrust(best.manifest, options.now ?? new Date());
  return suspect === undefined ? best : { ...best, suspect };
}

/** The backup as found, with the reason its signature is not believed when it was kept all the same. */
function stored(manifest: Manifest, storage: StorageBackend, catalog: Catalog): StoredBackup {
  const untrusted = catalog.untrusted.find((u) => u.id === manifest.id && u.kept);
  return untrusted === undefined ? { manifest, storage } : { manifest, storage, untrusted: untrusted.reason };
}

/** Why a backup named by its id is refused: its manifest is not signed by one of the verify keys. */
function refusal(backup: UntrustedBackup): VerifyError {
  return new VerifyError(
    backup.id,
    'manifest',
    `its manifest is not believed (${backup.reason}): only manifests signed by one of the verify keys (DATASAVER_VERIFY_KEYS) are`,
    {
      hint: backup.altered
        ? 'its manifest was changed after it was signed: restore another backup; `datasaver list` shows every backup ignored and why'
        : 'if you know where this backup came from and trust it, restore it with --allow-unsigned; `datasaver list` shows every backup ignored and why',
    },
  );
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
  visit: (storage: StorageBackend, catalog: Catalog) => boolean,
): Promise<{ err: unknown } | undefined> {
  let unreadable: { err: unknown } | undefined;
  for (const storage of storages) {
    let catalog: Catalog;
    try {
      catalog = await readCatalog(storage, { target, signal: options.signal, trust: options.trust });
    } catch (err) {
      options.signal?.throwIfAborted();
      options.onUnreadable?.(storage, err);
      unreadable ??= { err };
      continue;
    }
    if (visit(storage, catalog)) break;
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
  /**
   * The newest trusted backup: a suspect one (dated after `now`) never counts as a success, nor one whose
   * signature is not believed (it is not among the backups at all).
   */
  newest: Manifest | undefined;
}

/**
 * Counts the committed backups of `target` in one storage that `trust` believes, and finds the newest
 * trusted one at `now`.
 */
export async function readTargetUsage(
  storage: StorageBackend,
  target: string,
  options: { now: Date; signal?: AbortSignal | undefined; trust?: ManifestTrust | undefined },
): Promise<TargetUsage> {
  // Never unsigned backups, whatever the trust says: health must not count one as a success.
  const trust = options.trust && { verifyKeys: options.trust.verifyKeys };
  const catalog = await readCatalog(storage, { target, signal: options.signal, trust });
  const own = catalog.backups.filter((m) => m.target === target);
  return {
    backups: own.length,
    bytes: own.reduce((n, m) => n + m.storedBytes, 0),
    newest: own.filter((m) => manifestDistrust(m, options.now) === undefined).at(-1),
  };
}
