/**
 * Helpers for the restore drill tests: where their throwaway servers live, stored backups rewritten so
 * that `verify` still passes (the checksum and sizes of the manifest recomputed, its facts kept), and
 * what a drill left behind (its private dirs, its scratch databases).
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { parseTempDirName, SCRATCH_DATABASE_PREFIX } from '../../src/util/private-temp.ts';
import { type CliResult, collect, startCli } from './cli.ts';
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

/** Kills what a failed test left running in `parent` and removes it. */
export async function removeDrillParent(parent: string): Promise<void> {
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
 * could do, and what `verify` cannot tell from a real backup.
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
  await writeFile(objectPath, stored);
  const rewritten: Manifest = {
    ...manifest,
    sizeBytes: raw.length,
    storedBytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
  };
  await writeFile(manifestPath, `${JSON.stringify(rewritten, null, 2)}\n`);
}
