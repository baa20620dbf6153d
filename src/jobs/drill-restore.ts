/**
 * A drill's restore and its verdict (jobs/drill.ts runs them in a scratch place and records them): the
 * backup is restored as a user would restore it (jobs/restore.ts), the copy's facts are read the way the
 * engine counted the dump's and compared item by item (jobs/facts-compare.ts).
 *
 * A whole-server backup set is drilled part by part in the place's one scratch database: its globals
 * are read and checked (ServerSet.inspectGlobals), never applied (a scratch place gets none of the
 * backup's roles), then each database is restored into the scratch database, compared with its own
 * recorded facts, and dropped before the next, so a set needs the room of its largest database only.
 * Its differences are named by database (`shop: table public.orders`); its restore time is the sum of its
 * parts'.
 */
import type { Manifest } from '../catalog/manifest.ts';
import { type BackupPart, backupParts } from '../catalog/parts.ts';
import type { DatabaseFacts } from '../engines/engine.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { checkedDumpStream } from '../pipeline/read.ts';
import {
  BackupError,
  DestinationError,
  errorMessage,
  RestoreError,
  ToolMissingError,
  UsageError,
  VerifyError,
} from '../util/errors.ts';
import { failpoint } from '../util/failpoint.ts';
import type { DrillDeps, DrillPlace, DrillResult } from './drill.ts';
import { compareFacts, type FactDifference } from './facts-compare.ts';
import { keyFor, runRestore } from './restore.ts';
import { checkStoredObject, partLabel } from './verify.ts';

/** What the restore and the comparison decide of a drill's result. */
export type DrillFindings = Partial<
  Pick<
    DrillResult,
    'ok' | 'reason' | 'message' | 'restoreMs' | 'compared' | 'differences' | 'expired' | 'note'
  >
>;

/** How a backup failed in the restore (a verify reason, or `restore`), and what happened. */
type Failed = Pick<DrillResult, 'reason' | 'message'>;

/** The comparison of a restored copy with the facts its backup recorded. */
interface Comparison {
  compared: number;
  differences: FactDifference[];
  expired: FactDifference[];
  /** Why nothing was compared (estimated facts); null when compared. */
  note: string | null;
}

/** Drills one dump: restores it into the place, reads the copy back and judges it. */
export async function drillDump(
  place: DrillPlace,
  manifest: Manifest,
  deps: DrillDeps,
  clock: () => number,
): Promise<DrillFindings> {
  const started = clock();
  const restored = await restoreInto(place, manifest, place.database, 0, deps);
  // It did not restore: there is no recovery time to report.
  if (restored !== true) return restored;
  const restoreMs = Math.round(clock() - started);
  await failpoint('drill.restored');
  deps.onPhase?.('compare');
  const judged = await judgeCopy(place, manifest, place.database, deps.signal);
  return { restoreMs, ...('reason' in judged ? judged : verdict(judged)) };
}

/** Drills a whole-server set part by part in the place's scratch database: see above. */
export async function drillSet(
  place: DrillPlace,
  manifest: Manifest,
  deps: DrillDeps,
  clock: () => number,
): Promise<DrillFindings> {
  const scratch = place.database;
  if (scratch === undefined) {
    throw new UsageError(`backup ${manifest.id} is a whole-server set: its drill needs a scratch database`);
  }
  const [globals, ...parts] = backupParts(manifest);
  let restoreMs = 0;
  let done = 0; // stored bytes of the parts before this one
  const started = clock();
  const inspected = await inspectGlobals(place, manifest, globals!, deps);
  if (inspected !== true) return inspected;
  restoreMs += clock() - started;
  done += globals!.manifest.storedBytes;
  const found: { label: string; comparison: Comparison }[] = [];
  for (const part of parts) {
    const label = part.manifest.database ?? part.part ?? '';
    const from = clock();
    const restored = await restoreInto(place, part.manifest, scratch, done, deps);
    if (restored !== true) return { ...restored, message: `${partLabel(part)}: ${restored.message}` };
    restoreMs += clock() - from;
    done += part.manifest.storedBytes;
    await failpoint('drill.restored');
    deps.onPhase?.('compare');
    const judged = await judgeCopy(place, part.manifest, scratch, deps.signal);
    if ('reason' in judged) return { ...judged, restoreMs, message: `${partLabel(part)}: ${judged.message}` };
    found.push({ label, comparison: judged });
    // The next database restores into a fresh scratch database of the same name.
    await place.engine.dropDatabase(scratch, { signal: deps.signal });
  }
  const named = (d: FactDifference, label: string) => ({ ...d, item: `${label}: ${d.item}` });
  const notes = found.filter((f) => f.comparison.note !== null).map((f) => f.label);
  return {
    restoreMs: Math.round(restoreMs),
    ...verdict({
      compared: found.reduce((n, f) => n + f.comparison.compared, 0),
      differences: found.flatMap((f) => f.comparison.differences.map((d) => named(d, f.label))),
      expired: found.flatMap((f) => f.comparison.expired.map((d) => named(d, f.label))),
      note: notes.length === 0 ? null : `${ESTIMATES} (databases ${notes.join(', ')})`,
    }),
  };
}

/**
 * Reads and checks a set's globals (checksum, then their statements): true, or how the backup failed.
 * The place's engine must support sets: a set's manifest naming an engine without is no drill to run.
 */
async function inspectGlobals(
  place: DrillPlace,
  manifest: Manifest,
  globals: BackupPart,
  deps: DrillDeps,
): Promise<true | Failed> {
  const { signal, storage } = deps;
  const serverSet = place.engine.serverSet;
  if (serverSet === undefined) {
    throw new UsageError(
      `backup ${manifest.id} is a whole-server set, which the ${place.engine.descriptor.label} engine cannot drill`,
    );
  }
  const part = globals.manifest;
  deps.onPhase?.('checksum');
  try {
    await checkStoredObject(part, {
      storage,
      signal,
      onProgress: (_pass, n) => deps.onProgress?.('checksum', n),
    });
    const source = checkedDumpStream(await storage.get(part.object, { signal }), part, {
      memory: new MemoryGovernor(),
      decrypt: keyFor(part, deps.decrypt),
    });
    await serverSet.inspectGlobals(source, { signal, dumpToolVersion: part.toolVersion });
    return true;
  } catch (err) {
    if (signal?.aborted) throw err;
    if (err instanceof VerifyError) return { reason: err.reason, message: `globals: ${err.detail}` };
    // A script that does not check (not a globals dump, truncated, a statement no globals dump holds) is
    // the backup's fault; storage that cannot be read is not.
    if (err instanceof BackupError && !(err instanceof ToolMissingError))
      return { reason: 'structure', message: `globals: ${errorMessage(err)}` };
    throw err;
  }
}

/** Restores one dump into `database` of the place: true, or how the backup failed. Other errors are thrown. */
async function restoreInto(
  place: DrillPlace,
  manifest: Manifest,
  database: string | undefined,
  before: number,
  deps: DrillDeps,
): Promise<true | Failed> {
  try {
    await runRestore(
      {
        // What is set on the database itself (owner, grants, settings) is left out too: applying it on a
        // drill server needs rights a drill's user need not have (membership in the owner's role,
        // superuser for a role's settings), and would fail the backup for them.
        manifest: { ...manifest, databaseSettings: undefined },
        opened: true,
        targetDatabase: database,
        dryRun: false,
        force: false,
        dropExisting: false,
        jobs: deps.jobs ?? 1,
        tempDir: deps.tempDir,
        // A scratch place has none of the backup's roles: ownership and grants are not what a drill checks.
        skipMissingRoles: true,
        skipOwnership: true,
        disposable: true,
      },
      {
        engine: place.engine,
        storage: deps.storage,
        signal: deps.signal,
        decrypt: deps.decrypt,
        onProgress: (phase, bytes) => {
          if (bytes === 0) deps.onPhase?.(phase);
          deps.onProgress?.(phase, before + bytes);
        },
      },
    );
    return true;
  } catch (err) {
    if (deps.signal?.aborted) throw err;
    if (err instanceof VerifyError) return { reason: err.reason, message: err.detail };
    // A scratch server without an extension the dump uses says nothing of the backup: it cannot run here.
    if (err instanceof RestoreError && !(err instanceof DestinationError)) {
      return { reason: 'restore', message: errorMessage(err) };
    }
    throw err;
  }
}

/**
 * The restored copy against the recorded facts. A copy that restored but cannot be read back fails the
 * backup: what it restored decides what the copy allows (a dump can revoke its own database's CONNECT
 * right), so an unreadable copy is no reason to pass it, nor to call the drill unable to run.
 */
async function judgeCopy(
  place: DrillPlace,
  manifest: Manifest,
  database: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Comparison | Failed> {
  let found: DatabaseFacts;
  try {
    found = await readFacts(place, manifest, database, signal);
  } catch (err) {
    if (signal?.aborted) throw err;
    return { reason: 'restore', message: `the restored copy cannot be read: ${errorMessage(err)}` };
  }
  return compareCopy(manifest.facts, found);
}

/**
 * The restored copy's facts, named as the backup's: an engine whose facts name tables by their database
 * reads a copy restored under another name as `<copy>.<table>`.
 */
async function readFacts(
  place: DrillPlace,
  manifest: Manifest,
  from: string | undefined,
  signal: AbortSignal | undefined,
): Promise<DatabaseFacts> {
  const found = await place.engine.restoredFacts(from, { signal });
  const to = manifest.database;
  if (!place.engine.descriptor.tablesNamedByDatabase || from === undefined || to === null || from === to) {
    return found;
  }
  const rename = (name: string) =>
    name.startsWith(`${from}.`) ? `${to}.${name.slice(from.length + 1)}` : name;
  return { ...found, tables: found.tables.map((t) => ({ ...t, name: rename(t.name) })) };
}

const ESTIMATES =
  'the backup restored; its recorded facts are estimates (an older datasaver, or a schema-only dump), so the copy was not compared with them';

/** The recorded facts against the copy's: nothing compared when they are estimates. */
function compareCopy(expected: DatabaseFacts, found: DatabaseFacts): Comparison {
  if (!expected.exact) return { compared: 0, differences: [], expired: [], note: ESTIMATES };
  // Only keys that had a time to live and are gone from the copy can have expired: the copy's own count
  // of them says how many, so a key without one missing from the copy is always a difference.
  const expiredKeys = Math.max(0, expiringKeys(expected) - expiringKeys(found));
  return { ...compareFacts(expected, found, { mayExpire: expiredKeys }), note: null };
}

/** The drill's verdict from a comparison. */
function verdict(
  c: Comparison,
): Pick<DrillResult, 'ok' | 'reason' | 'message' | 'compared' | 'differences' | 'expired' | 'note'> {
  const ok = c.differences.length === 0;
  const shown = c.differences.slice(0, 3).map((d) => `${d.item}: expected ${d.expected}, found ${d.found}`);
  const more = c.differences.length - shown.length;
  return {
    ok,
    reason: ok ? null : 'drill',
    message: ok
      ? null
      : `the restored copy differs from the backup's facts in ${c.differences.length} item(s): ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`,
    ...c,
  };
}

/** How many keys with a time to live the facts count (those of a backup may expire before a drill). */
function expiringKeys(facts: DatabaseFacts): number {
  return facts.objects?.find((o) => o.kind === 'expiring keys')?.count ?? 0;
}
