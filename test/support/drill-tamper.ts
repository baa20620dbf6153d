/**
 * For restore drill tests: a stored backup's raw dump read and replaced (recompressed with the manifest's
 * compression, the manifest's sizes and sha256 recomputed, its recorded facts kept) so that the checksum
 * and `verify` pass while the data differs from the facts; the drill record beside the manifest; and a
 * temp dir the drills' throwaway servers can use.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { processesUsing } from './processes.ts';

/** What `backup --json` prints of a backup, as far as these helpers need it. */
export interface StoredBackup {
  id: string;
  target: string;
  object: string;
  compression: 'zstd' | 'gzip' | 'none';
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

/** What drills left under `parent`: its `datasaver-drill-*` dirs and the processes that use them. */
export async function drillLeftovers(parent: string): Promise<{ dirs: string[]; pids: number[] }> {
  const dirs = (await readdir(parent)).filter((d) => d.startsWith('datasaver-drill-'));
  return { dirs, pids: await processesUsing(parent) };
}
