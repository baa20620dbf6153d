/**
 * For restore drill tests through the command line: backups taken and drilled, a stored backup's raw dump
 * read and replaced (recompressed with the manifest's compression, the manifest's sizes and sha256
 * recomputed, its recorded facts kept) so that the checksum and `verify` pass while the data differs from
 * the facts, the drill record beside the manifest, and a temp dir the drills' throwaway servers can use.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { expect } from 'vitest';
import type { DrillResult } from '../../src/jobs/drill.ts';
import { type CliResult, runCli, startPausedAt } from './cli.ts';
import { tempDir } from './pg.ts';
import { processesUsing } from './processes.ts';

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

function manifestPath(storage: string, b: StoredBackup): string {
  return join(storage, b.target, `${b.id}.manifest.json`);
}

/** The backup's dump as the engine wrote it (decompressed). */
export async function readDump(storage: string, b: StoredBackup): Promise<Buffer> {
  const stored = await readFile(join(storage, b.object));
  if (b.compression === 'zstd') return zstdDecompressSync(stored);
  if (b.compression === 'gzip') return gunzipSync(stored);
  return stored;
}

/**
 * Stores `raw` as the backup's dump and rewrites its manifest's sizes and checksum to match, keeping
 * everything else in it (its facts above all): a backup whose bytes pass every check but hold other data.
 */
export async function replaceDump(storage: string, b: StoredBackup, raw: Buffer): Promise<void> {
  const stored =
    b.compression === 'zstd' ? zstdCompressSync(raw) : b.compression === 'gzip' ? gzipSync(raw) : raw;
  await writeFile(join(storage, b.object), stored);
  const path = manifestPath(storage, b);
  const manifest = JSON.parse(await readFile(path, 'utf8'));
  Object.assign(manifest, {
    sizeBytes: raw.length,
    storedBytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
  });
  await writeFile(path, JSON.stringify(manifest, null, 2));
}

/** The backup's recorded facts. */
export async function recordedFacts(
  storage: string,
  b: StoredBackup,
): Promise<{ tables: { name: string; rows: number }[]; objects?: { kind: string; count: number }[] }> {
  return JSON.parse(await readFile(manifestPath(storage, b), 'utf8')).facts;
}

/** The `<id>.drill.json` beside the manifest. */
export async function drillRecord(storage: string, b: StoredBackup): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(storage, b.target, `${b.id}.drill.json`), 'utf8'));
}

/**
 * A new directory for the CLI's TMPDIR, where drills put their throwaway servers: in the system temp dir
 * (short, for a Redis socket path) and passable by others (0711, as /tmp is), since as root the MariaDB
 * server runs as its own account.
 */
export async function drillTempParent(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dsdrill-'));
  await chmod(dir, 0o711);
  return dir;
}

/** Removes a drillTempParent dir, and stops any server a failed test left running in it. */
export async function removeDrillTempParent(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  for (const pid of await processesUsing(dir)) process.kill(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
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
