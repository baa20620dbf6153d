/**
 * Resuming uploads: when a target has several destinations and one of them missed a backup (S3 was down,
 * say), copy it there from a destination that has it. Storage is the only record of what is missing, so
 * this needs no state: it compares the destinations' catalogs.
 *
 * Only backups that the destination's retention would keep are copied (a backup another destination has
 * not pruned yet is not worth bringing back). Each copy is checked against the manifest (size and sha256
 * of the bytes that arrived) before its manifest is written, exactly as a new backup is.
 */

import { readCatalog } from '../catalog/catalog.ts';
import type { Manifest, SetObject } from '../catalog/manifest.ts';
import { manifestDistrust } from '../catalog/manifest-trust.ts';
import { storedObjects } from '../catalog/parts.ts';
import { type ConfirmLease, LeaseLostError } from '../lease/held.ts';
import { Meter } from '../pipeline/meter.ts';
import { chain } from '../pipeline/read.ts';
import { planRetention } from '../retention/policy.ts';
import { type StorageBackend, StorageConflictError } from '../storage/backend.ts';
import { errorMessage, StorageError } from '../util/errors.ts';
import { failpoint, failpointAfterFirst } from '../util/failpoint.ts';
import { commit } from './commit.ts';
import type { PruneTarget } from './prune.ts';

export interface CopyResult {
  id: string;
  from: string;
  to: string;
  bytes: number;
  /** Why the copy failed; undefined when it succeeded. */
  error?: string | undefined;
}

export interface ResumeDeps {
  destinations: StorageBackend[];
  now: Date;
  signal?: AbortSignal | undefined;
  /** Checks the target's lease in a destination just before a copy's manifest is written there. */
  confirmLease?: ConfirmLease | undefined;
}

/** Copies every backup that some destinations of `target` have and others lack, where retention keeps it. */
export async function resumeUploads(target: PruneTarget, deps: ResumeDeps): Promise<CopyResult[]> {
  const { destinations, signal } = deps;
  if (destinations.length < 2) return [];
  const catalogs = await Promise.all(
    destinations.map(async (d) =>
      (await readCatalog(d, { target: target.name, signal, trust: target.signing })).backups.filter(
        (m) => m.target === target.name,
      ),
    ),
  );
  const holders = new Map<string, { manifest: Manifest; at: StorageBackend[] }>();
  catalogs.forEach((backups, i) => {
    for (const m of backups) {
      const entry = holders.get(m.id) ?? { manifest: m, at: [] };
      entry.at.push(destinations[i]!);
      holders.set(m.id, entry);
    }
  });

  const results: CopyResult[] = [];
  for (const [i, to] of destinations.entries()) {
    const have = new Set(catalogs[i]!.map((m) => m.id));
    const missing = [...holders.values()].filter((h) => !have.has(h.manifest.id));
    if (missing.length === 0) continue;
    const candidates = [...catalogs[i]!, ...missing.map((h) => h.manifest)].map((m) => ({
      id: m.id,
      time: new Date(m.createdAt),
      // Suspect backups (manifest-trust.ts) never take a real one's place, and are never spread further.
      problem: manifestDistrust(m, deps.now),
      series: m.schemaOnly ? 'schema-only' : 'full',
    }));
    const kept = new Set(
      planRetention(candidates, { ...target.retention, timeZone: target.timeZone }, deps.now)
        .filter((d) => d.keep)
        .map((d) => d.id),
    );
    for (const { manifest, at } of missing) {
      if (!kept.has(manifest.id) || manifestDistrust(manifest, deps.now) !== undefined) continue;
      const result: CopyResult = { id: manifest.id, from: '', to: to.description, bytes: 0 };
      // Each holder in turn: one damaged or unreachable copy does not stop the others from serving.
      for (const from of at) {
        result.from = from.description;
        try {
          result.bytes = await copyBackup(manifest, from, to, signal, deps.confirmLease);
          result.error = undefined;
          break;
        } catch (err) {
          if (err instanceof LeaseLostError) throw err;
          signal?.throwIfAborted();
          result.error = errorMessage(err);
        }
      }
      results.push(result);
    }
  }
  return results;
}

/**
 * Copies one committed backup: each data object (a set has several), checked against the manifest, then
 * the manifest. Throws when an object cannot be copied or does not match, after deleting the objects
 * this call wrote; returns the bytes now held for the backup.
 */
export async function copyBackup(
  manifest: Manifest,
  from: StorageBackend,
  to: StorageBackend,
  signal: AbortSignal | undefined,
  confirmLease?: ConfirmLease,
): Promise<number> {
  const copied: SetObject[] = [];
  let bytes = 0;
  try {
    for (const object of storedObjects(manifest)) {
      if (await copyObject(object, manifest.id, from, to, signal)) copied.push(object);
      bytes += object.storedBytes;
    }
  } catch (err) {
    await Promise.all(copied.map((o) => to.delete(o.object).catch(() => {})));
    throw err;
  }
  await failpoint('resume.before-manifest');
  await commit(to, manifest, signal, confirmLease);
  return bytes;
}

/**
 * Copies one data object, checked against what the manifest records of it. Returns true when it wrote
 * the object, false when the destination held exactly these bytes already (an upload whose manifest
 * write failed). Throws StorageError when the source does not match, or the destination holds other bytes.
 */
async function copyObject(
  object: SetObject,
  id: string,
  from: StorageBackend,
  to: StorageBackend,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const meter = new Meter({ hash: true });
  const source = await from.get(object.object, { signal });
  try {
    await to.put(object.object, failpointAfterFirst('resume.copying', chain(source, meter)), {
      signal,
      ifAbsent: true,
    });
  } catch (err) {
    if (!(err instanceof StorageConflictError)) throw err;
    // Data without a manifest is already there. Keep it only if it is exactly the backup's bytes.
    if (!(await sameBytes(to, object, signal))) {
      throw new StorageError(
        `${to.description}: ${object.object} exists and differs from the backup; it is left for prune to remove`,
      );
    }
    return false;
  }
  if (meter.bytes !== object.storedBytes || meter.digest() !== object.sha256) {
    await to.delete(object.object).catch(() => {});
    throw new StorageError(
      `${from.description}: ${object.object} does not match its manifest (damaged?); not copied`,
      { hint: `run \`datasaver verify ${id}\`` },
    );
  }
  return true;
}

async function sameBytes(storage: StorageBackend, object: SetObject, signal: AbortSignal | undefined) {
  const meter = new Meter({ hash: true });
  for await (const _ of chain(await storage.get(object.object, { signal }), meter)) {
    // hashing as it flows
  }
  return meter.bytes === object.storedBytes && meter.digest() === object.sha256;
}
