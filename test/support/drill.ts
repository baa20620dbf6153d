/**
 * Helpers for the restore drill tests: where their throwaway servers live, backups taken and drilled
 * through the command line, stored backups rewritten so that `verify` still passes (the checksum and
 * sizes of the manifest recomputed, its facts kept), the drill record, and what a drill left behind (its
 * private dirs, its processes, its scratch databases).
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { expect } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import type { DrillResult } from '../../src/jobs/drill.ts';
import { parseTempDirName, SCRATCH_DATABASE_PREFIX } from '../../src/util/private-temp.ts';
import { type CliResult, collect, runCli, startCli, startPausedAt } from './cli.ts';
import { tempDir } from './pg.ts';
import { processesUsing } from './processes.ts';

/**
 * A parent dir for drill dirs, directly in the system temp dir (a Unix socket path in it must fit 107
 * bytes) and passable by other users (0711), as /tmp is: as root, a throwaway PostgreSQL runs as its
 * own account and must reach its directory. Pass it as TMPDIR, so that the CLI's sweep looks there.
 */
export async function drillParent(): Promise<string> {
  const parent = await mkdtemp(join(tmpdir(), 'ds-drill-'));
  await chmod(parent, 0o711);
  return parent;
}

/** Kills what a failed test left running in `parent` and removes it (nothing when it was never made). */
export async function removeDrillParent(parent: string | undefined): Promise<void> {
  if (parent === undefined) return;
  for (const pid of await processesUsing(parent)) process.kill(pid, 'SIGKILL');
  await rm(parent, { recursive: true, force: true });
}

/** Runs the CLI and returns its result and its pid (the owner named in the temp dirs it makes). */
export async function runCliWithPid(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<CliResult & { pid: number }> {
  const child = startCli(args, env);
  return { ...(await collect(child)), pid: child.pid! };
}

/** The private temp dirs under `parent` whose owner is process `pid`: of one `kind` (`drill`), or all. */
export async function tempDirsOf(parent: string, pid: number, kind?: string): Promise<string[]> {
  return (await readdir(parent))
    .filter((name) => {
      const parsed = parseTempDirName(name);
      return parsed?.owner.pid === pid && (kind === undefined || parsed.kind === kind);
    })
    .map((name) => join(parent, name));
}

/** The drill dirs under `parent` whose owner is process `pid`. */
export function drillDirsOf(parent: string, pid: number): Promise<string[]> {
  return tempDirsOf(parent, pid, 'drill');
}

/** The pid that made a drill's scratch database, from its name (util/private-temp.ts scratchDatabaseName). */
export function scratchDatabaseOwner(name: string): number | undefined {
  if (!name.startsWith(SCRATCH_DATABASE_PREFIX)) return undefined;
  const pid = name.slice(SCRATCH_DATABASE_PREFIX.length).split('_')[2];
  return pid === undefined ? undefined : Number.parseInt(pid, 36);
}

/** Resolves once the child writes `text` on stderr (from now on: earlier output is not seen). */
export function stderrSays(child: ChildProcess, text: string): Promise<void> {
  let seen = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes(text)) resolve();
    });
    child.once('close', () => reject(new Error(`the process ended without saying '${text}': ${seen}`)));
  });
}

/** A stored backup in a local storage dir: its manifest, read and rewritten as a file. */
export interface StoredFiles {
  manifestPath: string;
  manifest: Manifest;
  objectPath: string;
}

export async function storedFiles(storage: string, target: string, id: string): Promise<StoredFiles> {
  const manifestPath = join(storage, target, `${id}.manifest.json`);
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  return { manifestPath, manifest, objectPath: join(storage, manifest.object) };
}

/** The raw dump of a stored backup, decompressed as its manifest says. */
export async function storedDump(storage: string, target: string, id: string): Promise<Buffer> {
  const { manifest, objectPath } = await storedFiles(storage, target, id);
  const stored = await readFile(objectPath);
  switch (manifest.compression) {
    case 'zstd':
      return zstdDecompressSync(stored);
    case 'gzip':
      return gunzipSync(stored);
    case 'none':
      return stored;
  }
}

/**
 * Stores `raw` as the backup's dump, compressed as its manifest says, and rewrites the manifest's sizes
 * and sha256 to match (the rest, its facts among them, as they were): what someone who can write storage
 * could do, and what `verify` cannot tell from a real backup. Each file is replaced by a rename, so a
 * drill reading it meanwhile (the daemon's) sees the old file or the new one, never half of one.
 */
export async function replaceStoredDump(
  storage: string,
  target: string,
  id: string,
  raw: Buffer,
): Promise<void> {
  const { manifestPath, manifest, objectPath } = await storedFiles(storage, target, id);
  const compress = { zstd: zstdCompressSync, gzip: gzipSync, none: (b: Buffer) => b }[manifest.compression];
  const stored = compress(raw);
  await replaceFile(objectPath, stored);
  const rewritten: Manifest = {
    ...manifest,
    sizeBytes: raw.length,
    storedBytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
  };
  await replaceFile(manifestPath, `${JSON.stringify(rewritten, null, 2)}\n`);
}

async function replaceFile(path: string, data: Buffer | string): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

/** What `backup --json` prints of a backup, as far as these helpers need it. */
export interface StoredBackup {
  id: string;
  target: string;
  object: string;
  compression: 'zstd' | 'gzip' | 'none';
}

/** The CLI's environment for a drill test. */
export type DrillEnv = Record<string, string> & { DATASAVER_STORAGE_PATH: string };

/**
 * The CLI's environment for a target (`target`: its DATASAVER_* settings), storing in a new directory,
 * with `tmp` as its TMPDIR.
 */
export async function drillEnv(target: Record<string, string>, tmp: string): Promise<DrillEnv> {
  return { ...target, DATASAVER_STORAGE_PATH: await tempDir('drill-store-'), TMPDIR: tmp };
}

/** Takes a backup (asserting it succeeded) and returns it as `backup --json` prints it. */
export async function backUp(env: Record<string, string>): Promise<StoredBackup> {
  const res = await runCli(['backup', '--json'], env);
  expect(res.code, res.output).toBe(0);
  return JSON.parse(res.stdout).backups[0];
}

/** Drills backup `id` with --json: the exit code, its one result, and what was printed. */
export async function drillJson(
  id: string,
  env: Record<string, string>,
): Promise<{ code: number | null; result: DrillResult; res: CliResult }> {
  const res = await runCli(['drill', id, '--json'], env);
  expect(res.stdout, res.output).not.toBe('');
  return { code: res.code, result: JSON.parse(res.stdout).drills[0], res };
}

/** The backup's recorded facts. */
export async function recordedFacts(
  storage: string,
  b: StoredBackup,
): Promise<{ tables: { name: string; rows: number }[]; objects?: { kind: string; count: number }[] }> {
  return (await storedFiles(storage, b.target, b.id)).manifest.facts;
}

/** The `<id>.drill.json` beside the manifest. */
export async function drillRecord(storage: string, b: StoredBackup): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(storage, b.target, `${b.id}.drill.json`), 'utf8'));
}

/**
 * What datasaver left under `parent` (its TMPDIR): every entry (a drill's `datasaver-drill-*` dir, a
 * tool's option file or spool dir) and the processes that use them.
 */
export async function drillLeftovers(parent: string): Promise<{ dirs: string[]; pids: number[] }> {
  return { dirs: (await readdir(parent)).sort(), pids: await processesUsing(parent) };
}

/**
 * Kills -9 a drill of backup `id` while it holds its restored copy (failpoint `drill.restored`), then
 * checks that the next command (`list`) stops the throwaway server the drill left under `tmp` and removes
 * its directory, saying so, and that nothing is left there.
 */
export async function killedDrillIsSweptByNextCommand(id: string, env: DrillEnv, tmp: string): Promise<void> {
  const run = await startPausedAt('drill.restored', ['drill', id], env);
  let held: { dirs: string[]; pids: number[] };
  try {
    held = await drillLeftovers(tmp);
  } finally {
    run.child.kill('SIGKILL');
  }
  expect((await run.done).signal).toBe('SIGKILL');
  const drillDirs = held.dirs.filter((d) => d.startsWith('datasaver-drill-'));
  expect(drillDirs).toHaveLength(1);
  expect(held.pids.length).toBeGreaterThan(0);
  expect(await drillLeftovers(tmp)).toEqual(held);

  const next = await runCli(['list'], env);
  expect(next.code, next.output).toBe(0);
  const note = new RegExp(
    `note: removed ${tmp}/${drillDirs[0]}, a temporary directory \\(drill\\) of datasaver process ${run.child.pid}, which ended without removing it; stopped the tool process\\(es\\) it left running: (.*)`,
  ).exec(next.stderr);
  expect(note, next.stderr).not.toBeNull();
  expect(note![1]!.split(', ').map(Number)).toEqual(expect.arrayContaining(held.pids));
  expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
}
