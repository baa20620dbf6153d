/**
 * Prune: applies a target's retention policy (retention/policy.ts) to what storage holds, and removes
 * incomplete uploads older than a grace period. Planning only reads; `executePrune` deletes.
 *
 * Safety, in order of importance:
 * - Only backups with a readable manifest are ever judged by retention; objects datasaver cannot read
 *   (foreign files, manifests from a newer version) are never deleted.
 * - A backup is removed manifest first, then its data, then its verify record: a crash part-way leaves an
 *   orphan that a later prune collects, never a manifest that points at nothing.
 * - Data without a manifest is left alone until it is older than the grace period, so an upload in flight
 *   is never touched.
 */

import { type ManifestTrust, READ_CONCURRENCY, readCatalog } from '../catalog/catalog.ts';
import { drillKey, manifestKey, parseKey, verifyKey } from '../catalog/layout.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { manifestDistrust, retentionTime } from '../catalog/manifest-trust.ts';
import { storedObjects } from '../catalog/parts.ts';
import { recordedFailure } from '../catalog/records.ts';
import type { RetentionConfig } from '../config/types.ts';
import { type ConfirmLease, LeaseLostError } from '../lease/held.ts';
import { planRetention, type RetentionCandidate } from '../retention/policy.ts';
import { type ObjectInfo, type StorageBackend, StorageUnsupportedError } from '../storage/backend.ts';
import { mapLimit } from '../util/concurrency.ts';
import { CleanupError, errorMessage } from '../util/errors.ts';
import { failpoint } from '../util/failpoint.ts';

export interface PruneTarget {
  name: string;
  timeZone: string;
  retention: RetentionConfig;
  /**
   * Which manifests to believe (a TargetConfig's `signing`: its verify keys). A manifest not believed is
   * never judged by retention and its data never deleted; absent: every readable manifest is believed.
   */
  signing?: ManifestTrust | undefined;
}

export interface PruneDeps {
  storage: StorageBackend;
  now: Date;
  signal?: AbortSignal | undefined;
  /** Checks the target's lease just before each backup or leftover is deleted (lease/lease.ts). */
  confirmLease?: ConfirmLease | undefined;
}

export type PruneItemKind = 'backup' | 'incomplete' | 'verify-record' | 'drill-record' | 'temporary';

export interface PruneItem {
  kind: PruneItemKind;
  /** Backup id (for temporary data, the id its name carries, if any). */
  id: string;
  /** When the backup was taken, or when leftover data was last written. */
  time: string;
  /** Bytes that removing it frees. */
  bytes: number;
  action: 'keep' | 'remove';
  reasons: string[];
  /** A backup retention may count on (leftovers and damaged backups are not). */
  good: boolean;
  /** Retention series of a backup (`full`, `schema-only`); '' for leftovers. */
  series: string;
  /** Storage keys to delete, in order (manifest first). */
  keys: string[];
}

export interface PrunePlan {
  target: string;
  storage: string;
  now: string;
  /** Newest first: backups, then leftovers. */
  items: PruneItem[];
  warnings: string[];
}

export interface PruneResult extends PrunePlan {
  dryRun: boolean;
  removed: number;
  removedBytes: number;
  /** What could not be removed, and why; prune goes on past a failure to the next item. */
  failures: string[];
}

/** Reads storage and decides, for every backup of `target` and every leftover, whether it stays. */
export async function planPrune(target: PruneTarget, deps: PruneDeps): Promise<PrunePlan> {
  const { storage, now, signal } = deps;
  const catalog = await readCatalog(storage, { target: target.name, signal, trust: target.signing });
  const warnings = [...catalog.warnings];
  const backups = catalog.backups.filter((m) => m.target === target.name);
  // A suspect backup (dated in the future, or unlike its id) never fills a rule or the min-keep floor:
  // as a backup with a problem, retention keeps it inert inside the retention window (rule 5), placed at
  // the earlier of its two claimed times, and it counts again once the clock has passed its dates.
  const suspect = new Map(backups.map((m) => [m.id, manifestDistrust(m, now)]));
  const problems = await mapLimit(backups, READ_CONCURRENCY, async (m) => {
    const distrust = suspect.get(m.id);
    if (distrust !== undefined) return `suspect: ${distrust}`;
    return backupProblem(m, catalog.objects, storage, signal, warnings);
  });
  const candidates: RetentionCandidate[] = backups.map((m, i) => ({
    id: m.id,
    time: suspect.get(m.id) === undefined ? new Date(m.createdAt) : retentionTime(m),
    problem: problems[i],
    series: m.schemaOnly ? 'schema-only' : 'full',
  }));
  const decisions = planRetention(candidates, { ...target.retention, timeZone: target.timeZone }, now);
  const byId = new Map(backups.map((m, i) => [m.id, { m, problem: problems[i] }]));
  const items: PruneItem[] = decisions.map((d) => {
    const { m, problem } = byId.get(d.id)!;
    // Manifest first; then every data object (a set's parts: globals, then each database), records last.
    const objects = storedObjects(m).map((o) => o.object);
    const keys = [manifestKey(m.target, m.id), ...objects];
    for (const record of [verifyKey(m.target, m.id), drillKey(m.target, m.id)]) {
      if (catalog.objects.has(record)) keys.push(record);
    }
    return {
      kind: 'backup',
      id: m.id,
      time: m.createdAt,
      bytes: objects.reduce((n, key) => n + (catalog.objects.get(key)?.size ?? 0), 0),
      action: d.keep ? 'keep' : 'remove',
      reasons: d.reasons,
      good: problem === undefined,
      series: m.schemaOnly ? 'schema-only' : 'full',
      keys,
    };
  });

  const graceMs = target.retention.incompleteGraceHours * 3_600_000;
  const leftover = (obj: ObjectInfo, kind: PruneItemKind, id: string, what: string): PruneItem => {
    const old = now.getTime() - obj.modified.getTime() > graceMs;
    const grace = `${target.retention.incompleteGraceHours}h`;
    return {
      kind,
      id,
      time: obj.modified.toISOString(),
      bytes: obj.size,
      action: old ? 'remove' : 'keep',
      good: false,
      series: '',
      reasons: [old ? `${what}, older than ${grace}` : `${what}, younger than ${grace}: may be in flight`],
      keys: [obj.key],
    };
  };
  for (const o of catalog.incomplete.filter((x) => x.target === target.name)) {
    items.push(
      o.kind === 'data'
        ? leftover(o, 'incomplete', o.id, 'incomplete: data with no manifest')
        : leftover(
            o,
            o.kind === 'verify' ? 'verify-record' : 'drill-record',
            o.id,
            `${o.kind} record of a removed backup`,
          ),
    );
  }
  const temporary = await listTemporary(storage, `${target.name}/`, signal);
  for (const t of temporary) {
    // Only leftovers of writes datasaver makes: the name it was going to have must be this target's.
    const final = parseKey(t.finalKey);
    if (final?.target === target.name) items.push(leftover(t, 'temporary', final.id, 'unfinished write'));
  }
  return { target: target.name, storage: storage.description, now: now.toISOString(), items, warnings };
}

/**
 * Unfinished writes under `prefix`; none for a service that cannot list them (the backend has warned once,
 * with what to do instead).
 */
async function listTemporary(storage: StorageBackend, prefix: string, signal: AbortSignal | undefined) {
  try {
    return (await storage.listTemporary?.(prefix, { signal })) ?? [];
  } catch (err) {
    if (err instanceof StorageUnsupportedError) return [];
    throw err;
  }
}

/**
 * Carries out a plan: removes every item marked `remove`, backups first. A failure to delete is recorded
 * and prune goes on with the next item; for a backup, nothing after a failed step is attempted, so the
 * manifest is never left pointing at deleted data.
 */
export async function executePrune(
  plan: PrunePlan,
  deps: Omit<PruneDeps, 'now'>,
  options: { dryRun?: boolean | undefined } = {},
): Promise<PruneResult> {
  assertKeepsGoodBackups(plan);
  const result: PruneResult = {
    ...plan,
    dryRun: options.dryRun ?? false,
    removed: 0,
    removedBytes: 0,
    failures: [],
  };
  if (result.dryRun) return result;
  for (const item of plan.items) {
    if (item.action !== 'remove') continue;
    try {
      // Once per item: after its first key (a backup's manifest) is gone, the rest is an orphan anyway.
      await deps.confirmLease?.(deps.storage);
      for (const [step, key] of item.keys.entries()) {
        if (item.kind === 'temporary') await deps.storage.deleteTemporary!(key, { signal: deps.signal });
        else await deps.storage.delete(key, { signal: deps.signal });
        if (item.kind === 'backup' && step === 0) await failpoint('prune.between-manifest-and-data');
      }
      result.removed++;
      result.removedBytes += item.bytes;
    } catch (err) {
      // Another run holds the target now: nothing more is deleted.
      if (err instanceof LeaseLostError) throw err;
      deps.signal?.throwIfAborted();
      result.failures.push(`${item.keys[0]}: ${errorMessage(err)}`);
    }
  }
  return result;
}

/** Throws CleanupError naming the first failure when a prune could not remove everything it meant to. */
export function throwIfPruneFailed(result: PruneResult): void {
  if (result.failures.length === 0) return;
  throw new CleanupError(
    `prune of ${result.target} in ${result.storage} could not remove ${result.failures.length} item(s): ${result.failures[0]}`,
    { hint: 'nothing kept was touched; fix the storage error and run `datasaver prune` again' },
  );
}

/** Why a committed backup cannot be counted on, or undefined when it is good. */
async function backupProblem(
  m: Manifest,
  objects: Map<string, ObjectInfo>,
  storage: StorageBackend,
  signal: AbortSignal | undefined,
  warnings: string[],
): Promise<string | undefined> {
  const missing = missingData(m, objects);
  if (missing !== undefined) return missing;
  const verdict = await recordedFailure(storage, m.target, m.id, (key) => objects.get(key)?.size, signal);
  // An unreadable record says nothing either way: the backup is judged as if never checked.
  for (const u of verdict.unreadable) warnings.push(`${storage.description}: ignoring ${u.key}: ${u.error}`);
  return verdict.failed;
}

/**
 * Why a backup's data is not all in storage as its manifest records it (an object missing, or of
 * another size), or undefined when every data object (each part of a set) is there with its size.
 */
export function missingData(m: Manifest, objects: ReadonlyMap<string, ObjectInfo>): string | undefined {
  const set = storedObjects(m).length > 1;
  for (const { object, storedBytes } of storedObjects(m)) {
    const what = set ? `data object ${object}` : 'data object';
    const data = objects.get(object);
    if (!data) return `${what} missing`;
    if (data.size !== storedBytes) return `${what} is ${data.size} bytes, manifest says ${storedBytes}`;
  }
  return undefined;
}

/**
 * Defence in depth for the promise retention exists to keep: if a series has a good backup, a plan that
 * removes every good backup of it is a bug, and nothing is deleted.
 */
function assertKeepsGoodBackups(plan: PrunePlan): void {
  for (const series of new Set(plan.items.filter((i) => i.good).map((i) => i.series))) {
    const good = plan.items.filter((i) => i.good && i.series === series);
    if (!good.some((i) => i.action === 'keep')) {
      throw new CleanupError(
        `prune of ${plan.target} would remove every good ${series} backup; nothing was deleted`,
        {
          hint: 'this is a bug in datasaver; please report it with `datasaver prune --dry-run --json` output',
        },
      );
    }
  }
}

/** Plans and carries out a prune of one target's storage (what `datasaver prune` and every backup run). */
export async function prune(
  target: PruneTarget,
  deps: PruneDeps,
  options: { dryRun?: boolean | undefined } = {},
): Promise<PruneResult> {
  return executePrune(await planPrune(target, deps), deps, { dryRun: options.dryRun ?? false });
}
