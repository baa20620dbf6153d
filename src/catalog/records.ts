/**
 * The records datasaver keeps beside a backup about how it was checked later: `<id>.verify.json` (the
 * last `verify`) and `<id>.drill.json` (the last restore drill). A failed one makes the backup not good:
 * retention stops counting it and `latest` passes it over. Records come from storage, which is
 * untrusted: one that cannot be read, or that names another backup, says nothing either way, and
 * nothing in one is shown without being made printable.
 */

import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { readRecord } from './catalog.ts';
import { drillKey, verifyKey } from './layout.ts';
import type { DrillRecord, VerifyRecord } from './manifest.ts';

export type RecordKind = 'verify' | 'drill';

/** Reasons whose messages datasaver composes from a manifest's clear fields alone (key, sizes, sha256). */
const CLEAR_REASONS: ReadonlySet<string> = new Set(['missing', 'size', 'checksum']);

/**
 * What a record may say in clear about a backup's failure. For an encrypted backup, storage must learn
 * nothing of the contents the manifest seals: a message about the stored object (missing, size,
 * checksum) is kept, and anything read from the dump or a restored copy (a tool's output, table names,
 * row counts) is replaced by a note. The command that failed printed it in full.
 */
export function recordableMessage(
  encrypted: boolean,
  reason: string | null,
  message: string | null,
): string | null {
  if (!encrypted || message === null || (reason !== null && CLEAR_REASONS.has(reason))) return message;
  return `${reason ?? 'failed'}: the details are not stored for an encrypted backup; run the check again with its key to see them`;
}

/** The keys of a backup's records, by kind. */
export function recordKeys(target: string, id: string): { kind: RecordKind; key: string }[] {
  return [
    { kind: 'verify', key: verifyKey(target, id) },
    { kind: 'drill', key: drillKey(target, id) },
  ];
}

export interface RecordVerdict {
  /** Why a record says the backup failed (`its drill at 2026-… failed (drill)`), if one does. */
  failed?: string;
  /** Records that could not be read, with the reason (for warnings). */
  unreadable: { key: string; error: string }[];
}

/**
 * Reads the backup's records and says whether one recorded a failure. `sizes` gives the listed size of
 * each record that exists (a record not in it is not read: the caller listed or stat'ed storage); storage
 * errors other than an unreadable record pass through, as does an abort.
 */
export async function recordedFailure(
  storage: StorageBackend,
  target: string,
  id: string,
  sizes: (key: string) => Promise<number | undefined> | number | undefined,
  signal?: AbortSignal | undefined,
): Promise<RecordVerdict> {
  const verdict: RecordVerdict = { unreadable: [] };
  for (const { kind, key } of recordKeys(target, id)) {
    const size = await sizes(key);
    if (size === undefined) continue;
    let record: unknown;
    try {
      record = JSON.parse(await readRecord(storage, key, { size, signal }));
    } catch (err) {
      signal?.throwIfAborted();
      verdict.unreadable.push({ key, error: printable(errorMessage(err)) });
      continue;
    }
    const failed = failureOf(record, kind, id);
    if (failed !== undefined) {
      verdict.failed ??= failed;
    }
  }
  return verdict;
}

/** `its verify at <time> failed (<reason>)` when `record` is a failed record of backup `id`. */
function failureOf(record: unknown, kind: RecordKind, id: string): string | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const r = record as Record<string, unknown>;
  if (r.id !== id || r.ok !== false) return undefined;
  const at = kind === 'verify' ? r.checkedAt : r.drilledAt;
  const when = typeof at === 'string' ? ` at ${printable(at)}` : '';
  const why = typeof r.reason === 'string' ? ` (${printable(r.reason)})` : '';
  return `its ${kind}${when} failed${why}`;
}

/**
 * Writes a backup's verify or drill record. Best effort: returns why it could not be written (read-only
 * storage on a disaster-recovery machine must still give the check's answer), or undefined. An abort
 * is thrown.
 */
export async function writeRecord(
  storage: StorageBackend,
  key: string,
  record: VerifyRecord | DrillRecord,
  signal?: AbortSignal | undefined,
): Promise<string | undefined> {
  try {
    await storage.put(key, [Buffer.from(`${JSON.stringify(record, null, 2)}\n`)], { signal });
    return undefined;
  } catch (err) {
    if (signal?.aborted) throw err;
    return errorMessage(err);
  }
}

/**
 * The last drill recorded for backup `id` of `target` in `storage` (`<id>.drill.json`), or undefined
 * when there is none to go by: absent, unreadable, malformed, or naming another backup. Its texts are
 * made printable. An abort is thrown.
 */
export async function readDrillRecord(
  storage: StorageBackend,
  target: string,
  id: string,
  signal?: AbortSignal | undefined,
): Promise<DrillRecord | undefined> {
  const key = drillKey(target, id);
  let record: unknown;
  try {
    const info = await storage.stat(key, { signal });
    if (!info) return undefined;
    record = JSON.parse(await readRecord(storage, key, { size: info.size, signal }));
  } catch {
    signal?.throwIfAborted();
    return undefined;
  }
  return drillRecordOf(record, id);
}

function drillRecordOf(value: unknown, id: string): DrillRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  const count = (v: unknown) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : 0);
  const text = (v: unknown) => (typeof v === 'string' ? printable(v) : null);
  if (r.id !== id || typeof r.ok !== 'boolean' || typeof r.drilledAt !== 'string') return undefined;
  if (Number.isNaN(Date.parse(r.drilledAt))) return undefined;
  return {
    id,
    ok: r.ok,
    reason: text(r.reason),
    message: text(r.message),
    drilledAt: new Date(r.drilledAt).toISOString(),
    restoreMs:
      typeof r.restoreMs === 'number' && Number.isFinite(r.restoreMs) ? count(Math.round(r.restoreMs)) : null,
    compared: count(r.compared),
    differences: [],
    differenceCount: count(r.differenceCount),
    place: text(r.place) ?? '',
    datasaverVersion: text(r.datasaverVersion) ?? '',
  };
}
