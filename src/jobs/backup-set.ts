/**
 * A whole-server backup set (Engine.serverSet): the server's globals, then every database it holds, each
 * streamed to its own object through its own pipeline (jobs/backup-stream.ts), `dumpJobs` databases at
 * once, and ONE manifest over all of them, written last (catalog/manifest.ts `set`).
 *
 * Commit rules, on top of a one-dump backup's:
 *   - a destination that failed any part gets no manifest, and every part it took is deleted again;
 *   - any part's dump failing (or no destination taking a part) fails the whole run: the other dumps are
 *     stopped and every part written anywhere is deleted;
 *   - a crash at any point leaves parts without a manifest: an incomplete backup, never listed, pruned
 *     after the grace period.
 */
import { databasePart, dataExtension, GLOBALS_PART, partKey } from '../catalog/layout.ts';
import {
  type BackupSet,
  type Manifest,
  SET_MANIFEST_VERSION,
  type SetDatabase,
  type SetObject,
} from '../catalog/manifest.ts';
import type { DatabaseFacts, ServerInfo, ServerMembers, ServerSet } from '../engines/engine.ts';
import { compressionExtension } from '../pipeline/compression.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { mapLimit } from '../util/concurrency.ts';
import { printable } from '../util/printable.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import type { BackupDeps, BackupRequest } from './backup.ts';
import { freeId, type StreamedObject, type StreamObjectRequest, streamObject } from './backup-stream.ts';
import { type CommitOutcome, commitBackup, runFields } from './commit.ts';

/** Takes a whole-server backup set of `deps.engine` (which must have a `serverSet`) and commits it. */
export async function runBackupSet(
  request: BackupRequest,
  deps: BackupDeps,
): Promise<CommitOutcome & { manifest: Manifest; members: ServerMembers }> {
  const { target } = request;
  const { engine, destinations, signal } = deps;
  const now = deps.now ?? (() => new Date());
  const format = request.format ?? target.format;
  const upload = new SetUpload(request, deps);
  const { serverSet } = upload;

  // The server and the dump tool checked, and what the set will hold, before anything is written.
  const [server, members] = await Promise.all([
    engine.preflight({ signal }),
    serverSet.members(target.excludeDatabases, { signal }),
  ]);
  const startedAt = now();
  const compression = compressionExtension(target.compression.algorithm);
  const encrypted = target.encryption.encrypt !== undefined;
  const globalsExtension = dataExtension(serverSet.globalsExtension, compression, encrypted);
  const dumpExtension = dataExtension(engine.descriptor.extension(format), compression, encrypted);
  const globalsKey = (id: string) => partKey(target.name, id, GLOBALS_PART, globalsExtension);
  const id = await freeId(destinations, upload.failed, target.name, startedAt, globalsKey, signal);

  const globals = await upload.guard(() =>
    upload.part(globalsKey(id), 'globals', false, (s) =>
      serverSet.dumpGlobals({ rolePasswords: members.rolePasswords, signal: s }),
    ),
  );
  const partKeyOf = (part: number) => partKey(target.name, id, databasePart(part), dumpExtension);
  const { databases, dropped } = await dumpDatabases(members.databases, partKeyOf, request, upload);
  await upload.finish();

  const finishedAt = now();
  const set: BackupSet = {
    // finish() threw if any part is missing.
    globals: { ...globals!, format: serverSet.globalsFormat, rolePasswords: members.rolePasswords },
    databases,
    excluded: members.excluded,
    unreadable: [...members.unreadable, ...dropped],
  };
  const objects: SetObject[] = [set.globals, ...set.databases];
  const clear: Manifest = {
    version: SET_MANIFEST_VERSION,
    ...runFields(request, engine.descriptor.name, id, { startedAt, finishedAt }),
    sizeBytes: objects.reduce((n, o) => n + o.sizeBytes, 0),
    storedBytes: objects.reduce((n, o) => n + o.storedBytes, 0),
    sha256: set.globals.sha256,
    object: set.globals.object,
    database: null,
    serverVersion: server.serverVersion,
    toolVersion: server.toolVersion,
    datasaverVersion: DATASAVER_VERSION,
    facts: { exact: set.databases.every((d) => d.facts.exact), tables: [] },
    set,
  };
  const uploads = destinations.map((d) => upload.failed.get(d));
  const taken = { ...members, databases: set.databases.map((d) => d.database!), unreadable: set.unreadable };
  return { ...(await commitBackup(clear, target, uploads, deps)), members: taken };
}

/**
 * Dumps every database of `names` (in name order, `dumpJobs` at once) to the part key `keyOf` gives its
 * number. Databases dropped before their turn are left out and returned in `dropped`; any other failure
 * is the set's (upload.finish throws it).
 */
async function dumpDatabases(
  names: string[],
  keyOf: (part: number) => string,
  request: BackupRequest,
  upload: SetUpload,
): Promise<{ databases: SetDatabase[]; dropped: ServerMembers['unreadable'] }> {
  const serverSet = upload.serverSet;
  const format = request.format ?? request.target.format;
  const schemaOnly = request.schemaOnly ?? request.target.schemaOnly;
  // Parts are numbered in name order, skipping databases dropped before their turn: no gap in the keys.
  const numbering = new PartNumbers(names.length);
  const dropped: ServerMembers['unreadable'] = [];
  const named = names.map((name, index) => ({ name, index }));
  const dumped = await mapLimit(named, request.target.dumpJobs, ({ name, index }) =>
    upload.guard(async (): Promise<SetDatabase | undefined> => {
      const database = serverSet.database(name);
      let part: number | undefined;
      let read: [ServerInfo, DatabaseFacts] | undefined;
      try {
        read = await Promise.all([
          database.preflight({ signal: upload.signal }),
          database.facts({ signal: upload.signal }),
        ]).catch(async (err: unknown) => {
          if (!(await droppedSince(serverSet, name, upload.signal))) throw err;
          return undefined;
        });
        part = await numbering.take(index, read !== undefined);
      } finally {
        numbering.pass(index);
      }
      if (!read || part === undefined) {
        dropped.push({ database: name, reason: 'dropped while the set was taken' });
        return undefined;
      }
      const [info, liveFacts] = read;
      let facts = liveFacts;
      const object = await upload.part(keyOf(part), `database ${name}`, true, (s) =>
        database.dump({ format, schemaOnly, signal: s, onFacts: (f) => (facts = f) }),
      );
      const settings = info.databaseSettings ? { databaseSettings: info.databaseSettings } : {};
      return { ...object, database: name, ...settings, facts };
    }),
  );
  return { databases: dumped.filter((d) => d !== undefined), dropped };
}

/**
 * Whether database `name` is gone from the server since the set's members were read: a database dropped
 * before its turn is left out of the set (and said so), where any other failure fails the set.
 */
async function droppedSince(serverSet: ServerSet, name: string, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    return !(await serverSet.databaseExists(name, { signal }));
  } catch {
    return false;
  }
}

/**
 * What a whole-server set lacks because the backup user could not read it (or it went away during the
 * backup), and role passwords it could not read; none for one dump.
 */
export function setWarnings(members: ServerMembers | undefined): string[] {
  if (!members) return [];
  const warnings = members.unreadable.map(
    (u) => `database ${printable(u.database)} is not in the backup (${printable(u.reason)})`,
  );
  if (!members.rolePasswords) {
    warnings.push(
      'role passwords are not in the backup: the backup user cannot read them; restored roles get no password',
    );
  }
  return warnings;
}

/**
 * Part numbers handed out in name order to databases whose dumps may start in any order: each waits for
 * the one before it to have taken its number (or passed, dropped or failed), so the keys have no gap.
 */
class PartNumbers {
  readonly #passed: Promise<void>[];
  readonly #pass: (() => void)[] = [];
  #next = 0;

  constructor(count: number) {
    this.#passed = Array.from({ length: count }, () => new Promise<void>((r) => this.#pass.push(r)));
  }

  /** Waits for the database before `index`, then gives `index` the next number (none when not `present`). */
  async take(index: number, present: boolean): Promise<number | undefined> {
    if (index > 0) await this.#passed[index - 1];
    const number = present ? this.#next++ : undefined;
    this.pass(index);
    return number;
  }

  /** `index` is done numbering (taken, or never will: it failed); those after it may go on. */
  pass(index: number): void {
    this.#pass[index]!();
  }
}

/**
 * The uploads of one set: which destinations failed a part (they get no later part, no manifest, and
 * lose the parts they took), every part written where, the progress summed over the parts, and the one
 * signal that stops every dump when any part fails.
 */
class SetUpload {
  /** Destinations that failed a part (or could not be reached), and the first reason. */
  readonly failed = new Map<StorageBackend, unknown>();
  /** Aborts when the caller's signal does, or when any part failed. */
  readonly signal: AbortSignal;
  /** The engine's whole-server side, whose parts this uploads. */
  readonly serverSet: ServerSet;
  readonly #written: { key: string; uploads: (unknown | undefined)[] }[] = [];
  readonly #stop = new AbortController();
  #failure: { error: unknown } | undefined;
  readonly #request: BackupRequest;
  readonly #deps: BackupDeps;
  /** Per part key: raw and stored bytes so far. */
  readonly #progress = new Map<string, [number, number]>();

  constructor(request: BackupRequest, deps: BackupDeps) {
    this.#request = request;
    this.#deps = deps;
    this.signal = deps.signal ? AbortSignal.any([deps.signal, this.#stop.signal]) : this.#stop.signal;
    this.serverSet = deps.engine.serverSet as ServerSet;
  }

  /**
   * Runs one part's work unless the set has failed already. Never rejects: the first failure is kept
   * (finish throws it) and stops every other part; undefined when it failed or did not run.
   */
  async guard<T>(work: () => Promise<T>): Promise<T | undefined> {
    if (this.#failure) return undefined;
    try {
      return await work();
    } catch (error) {
      this.#failure ??= { error };
      this.#stop.abort();
      return undefined;
    }
  }

  /**
   * Once every part has settled: after a failure, deletes every part written anywhere and throws the
   * first failure; otherwise deletes the parts that destinations which failed another part took.
   */
  async finish(): Promise<void> {
    if (this.#failure) {
      await this.#discard(this.#deps.destinations);
      throw this.#failure.error;
    }
    await this.#discard([...this.failed.keys()]);
  }

  /** Streams one part to every destination that has not failed yet; `label` names it in messages. */
  async part(
    key: string,
    label: string,
    failpoint: boolean,
    source: StreamObjectRequest['source'],
  ): Promise<SetObject> {
    const { target } = this.#request;
    const { engine, destinations, onProgress } = this.#deps;
    const streamed = await streamObject({
      target,
      destinations,
      unreachable: this.failed,
      objectKey: key,
      engineName: engine.descriptor.name,
      label: `${target.name}, ${label}`,
      source,
      failpoint,
      signal: this.signal,
      onProgress: onProgress && ((raw, stored) => this.#onProgress(key, raw, stored)),
    });
    this.#record(key, streamed);
    return {
      object: key,
      sizeBytes: streamed.rawBytes,
      storedBytes: streamed.storedBytes,
      sha256: streamed.sha256,
    };
  }

  #record(key: string, streamed: StreamedObject): void {
    this.#written.push({ key, uploads: streamed.uploads });
    streamed.uploads.forEach((reason, i) => {
      const destination = this.#deps.destinations[i]!;
      if (reason !== undefined && !this.failed.has(destination)) this.failed.set(destination, reason);
    });
  }

  async #discard(from: StorageBackend[]): Promise<void> {
    const { destinations } = this.#deps;
    await Promise.all(
      this.#written.flatMap(({ key, uploads }) =>
        destinations.map((d, i) =>
          uploads[i] === undefined && from.includes(d) ? d.delete(key).catch(() => {}) : undefined,
        ),
      ),
    );
  }

  #onProgress(key: string, raw: number, stored: number): void {
    this.#progress.set(key, [raw, stored]);
    let rawSum = 0;
    let storedSum = 0;
    for (const [r, s] of this.#progress.values()) {
      rawSum += r;
      storedSum += s;
    }
    this.#deps.onProgress?.(rawSum, storedSum);
  }
}
