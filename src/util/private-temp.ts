/**
 * datasaver's private temporary directories (a spooled dump, a MySQL option file holding the password, a
 * SQLite copy) and the sweep that removes those a crashed run left behind.
 *
 * A directory is made with mode 0700 and named `datasaver-<kind>-<boot>-<pid>-<start>-XXXXXX`: the owner
 * is the process `<pid>` that started `<start>` clock ticks after the boot `<boot>` (pid and start in
 * base 36; boot is the first 8 hex digits of the kernel's boot id). The name stays short because a Redis
 * restore puts a Unix socket in the directory. Before the directory is used, an owner record
 * (`.datasaver-owner`, see temp-owner.ts) is written into it: the same owner plus its machine and PID
 * namespace.
 *
 * The sweep removes a directory only when all of this holds: its name has that form, it is a directory
 * (not a symlink) owned by our user, it holds a readable record that agrees with its name, the record
 * places its owner on this machine, and that owner is gone. In our PID namespace, gone means its pid runs
 * no more or runs another process, or the machine has rebooted since. In another PID namespace of this
 * machine (the container this one replaced after a crash, whose processes all ended with it; or a live
 * container sharing the temp dir, whose processes cannot be seen from here) it means the record's
 * heartbeat stopped: a process touches the records of the directories it holds every minute, and one
 * untouched for five minutes has no owner left. Everything else is left alone: every directory of a
 * datasaver still running on this host, and every directory of another machine. A directory without a
 * readable record is left alone too: its name cannot tell which PID namespace made it (the containers
 * of one pod share a boot id, and each is PID 1), and a maker that has just created it may not have
 * written its record yet. Such a directory is what a datasaver killed in the instant between the two
 * steps left (empty), or an older datasaver's. Without /proc (not Linux) nothing is swept.
 *
 * Files beside a restore destination have no room for a record: their name carries an 8-hex digest of
 * the machine and PID namespace instead, and only those with ours are judged.
 */
import { randomBytes } from 'node:crypto';
import { type Dirent, promises as fs } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { procStat } from './proc.ts';
import {
  currentOwner,
  HEARTBEAT_MS,
  OWNER_RECORD,
  type OwnerPlace,
  ownerRecord,
  ownerState,
  type PlacedOwner,
  placeTag,
  processStartTime,
  readOwnerRecord,
  type TempOwner,
  UNKNOWN_BOOT,
} from './temp-owner.ts';

/** `<boot>-<pid>-<start>`, pid and start in base 36: names stay short (a Unix socket path in one must fit). */
const OWNER = '([0-9a-f]{8})-([0-9a-z]+)-([0-9a-z]+)';
const NAME = new RegExp(`^datasaver-([a-z]+(?:-[a-z]+)*)-${OWNER}-[A-Za-z0-9]{6}$`);
const BESIDE = new RegExp(`^\\.(.+)\\.datasaver-([0-9a-f]{8})-${OWNER}-[0-9a-f]{6}$`);

function parseOwner(boot: string, pid: string, start: string): TempOwner {
  return { boot, pid: Number.parseInt(pid, 36), start: String(Number.parseInt(start, 36)) };
}

const UNKNOWN_PLACE: OwnerPlace = { host: '', pidns: '' };

/** This process as an owner, with stand-ins where /proc is missing (nothing is judged then). */
async function self(): Promise<PlacedOwner> {
  return (await currentOwner()) ?? { boot: UNKNOWN_BOOT, pid: process.pid, start: '0', ...UNKNOWN_PLACE };
}

/** An owner's tag in a name. */
function ownerTag(o: TempOwner): string {
  return `${o.boot}-${o.pid.toString(36)}-${BigInt(o.start).toString(36)}`;
}

/** The kind and owner a directory's name records, or undefined for any other name. */
export function parseTempDirName(name: string): { kind: string; owner: TempOwner } | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  return { kind: m[1]!, owner: parseOwner(m[2]!, m[3]!, m[4]!) };
}

/**
 * Makes a new directory only this user can enter (mode 0700), named for `kind` (lower-case words joined
 * by `-`) and this process, under `parent` (default: the system temp dir), holding its owner record.
 * The caller removes it; if the process dies first, the next datasaver to start on this machine in
 * this PID namespace sweeps it.
 */
export async function makePrivateTempDir(kind: string, parent: string = tmpdir()): Promise<string> {
  if (!/^[a-z]+(?:-[a-z]+)*$/.test(kind)) throw new Error(`invalid temp dir kind '${kind}'`);
  const me = await self();
  const dir = await mkdtemp(join(parent, `datasaver-${kind}-${ownerTag(me)}-`));
  try {
    await writeFile(join(dir, OWNER_RECORD), ownerRecord(me), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  keepAlive(join(dir, OWNER_RECORD));
  return dir;
}

/** Records of the temp dirs this process holds, touched every HEARTBEAT_MS until their dir is gone. */
const heartbeats = new Set<string>();
let heartbeat: NodeJS.Timeout | undefined;

/**
 * A live owner's heartbeat: a sweep in another PID namespace on this machine (a container sharing the
 * temp dir) cannot see its pid, but sees the record's modification time move.
 */
function keepAlive(record: string): void {
  heartbeats.add(record);
  heartbeat ??= setInterval(() => void touchRecords(), HEARTBEAT_MS).unref();
}

/** One beat of the heartbeat (exported for tests): touches every record held, forgets removed ones. */
export async function touchRecords(): Promise<void> {
  const now = new Date();
  await Promise.all(
    [...heartbeats].map((file) => fs.utimes(file, now, now).catch(() => heartbeats.delete(file))),
  );
  if (heartbeats.size === 0 && heartbeat) {
    clearInterval(heartbeat);
    heartbeat = undefined;
  }
}

/**
 * A name for a hidden temp file beside `path` (written there so that a rename publishes it atomically),
 * `.<name>.datasaver-<place>-<boot>-<pid>-<start>-<random>`: its owner is recorded as for a directory,
 * its machine and PID namespace as a digest (`placeTag`).
 */
export async function tempFileBeside(path: string): Promise<string> {
  const me = await self();
  const random = randomBytes(3).toString('hex');
  return join(dirname(path), `.${basename(path)}.datasaver-${placeTag(me)}-${ownerTag(me)}-${random}`);
}

/**
 * Removes the temp files beside `path` (see `tempFileBeside`) made on this machine in this PID namespace
 * whose owner is gone: what a run killed while writing `path` left. Returns their paths. A live
 * process's files, those of another machine or container, and every other name (the WAL files a SQLite
 * restore moves aside among them) are left alone.
 */
export async function sweepTempFilesBeside(path: string): Promise<string[]> {
  const me = await currentOwner();
  if (!me) return [];
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const m = BESIDE.exec(name);
    if (!m || m[1] !== basename(path) || m[2] !== placeTag(me)) continue;
    const file = join(dirname(path), name);
    const owner = { ...parseOwner(m[3]!, m[4]!, m[5]!), host: me.host, pidns: me.pidns };
    if (!(await ownEntry(file, 'file')) || !(await gone(owner, me))) continue;
    await rm(file, { force: true });
    removed.push(file);
  }
  return removed;
}

/** How the names of drill scratch databases begin (`scratchDatabaseName`). */
export const SCRATCH_DATABASE_PREFIX = 'datasaver_drill_';
const SCRATCH = new RegExp(
  `^${SCRATCH_DATABASE_PREFIX}([0-9a-f]{8})_([0-9a-f]{8})_([0-9a-z]+)_([0-9a-z]+)_[0-9a-f]{6}$`,
);

/**
 * A unique name for a database a restore drill creates on a server the user names (at most 63
 * characters of `[a-z0-9_]`, valid unquoted in PostgreSQL and MySQL):
 * `datasaver_drill_<place>_<boot>_<pid>_<start>_<random>`, its owner recorded as for a file beside a
 * restore destination, so that a later drill can tell which leftovers are a killed drill's.
 */
export async function scratchDatabaseName(): Promise<string> {
  const me = await self();
  const owner = ownerTag(me).replaceAll('-', '_');
  return `${SCRATCH_DATABASE_PREFIX}${placeTag(me)}_${owner}_${randomBytes(3).toString('hex')}`;
}

/**
 * Of `names` (a drill server's databases), those a drill of this machine and PID namespace created and
 * whose owner is gone: what a drill killed before it could drop its database left. Everything else, a
 * running drill's database and another machine's among them, is left out.
 */
export async function abandonedScratchDatabases(names: readonly string[]): Promise<string[]> {
  const me = await currentOwner();
  if (!me) return [];
  const abandoned: string[] = [];
  for (const name of names) {
    const m = SCRATCH.exec(name);
    if (!m || m[1] !== placeTag(me)) continue;
    const owner = { ...parseOwner(m[2]!, m[3]!, m[4]!), host: me.host, pidns: me.pidns };
    if (await gone(owner, me)) abandoned.push(name);
  }
  return abandoned;
}

/** Whether `path` is this user's file or directory (never a symlink). */
async function ownEntry(path: string, type: 'file' | 'directory'): Promise<boolean> {
  const info = await fs.lstat(path).catch(() => undefined);
  if (!info || info.uid !== process.getuid?.()) return false;
  return type === 'file' ? info.isFile() : info.isDirectory();
}

async function gone(owner: PlacedOwner, me: PlacedOwner, recordAgeMs?: number): Promise<boolean> {
  return ownerState(owner, me, await processStartTime(owner.pid), recordAgeMs) === 'gone';
}

/**
 * Whether the directory `path`, named for `named`, is ours and abandoned: our user's directory holding a
 * record that agrees with its name and places a gone owner on this machine in our PID namespace.
 */
async function abandonedDir(path: string, named: TempOwner, me: PlacedOwner): Promise<boolean> {
  if (!(await ownEntry(path, 'directory'))) return false;
  const record = await readOwnerRecord(path);
  if (!record || ownerTag(record) !== ownerTag(named)) return false;
  const touched = await fs.lstat(join(path, OWNER_RECORD)).catch(() => undefined);
  return gone(record, me, touched ? Date.now() - touched.mtimeMs : undefined);
}

export interface SweepResult {
  /** Directories removed, with the owner that left them and the pids of its tools that were stopped. */
  removed: { path: string; kind: string; owner: TempOwner; stopped: number[] }[];
  /** Directories that were stale but could not be removed. */
  failed: { path: string; error: unknown }[];
}

/**
 * Removes the private temp dirs under `parent` (default: the system temp dir) whose owner is gone, and
 * first stops the processes of `tools` its owner left running on them (see stopToolsUsing). `tools` are
 * the command names of the tools datasaver runs on temp-dir files (the engines' registry has them: this
 * layer knows no engine).
 */
export async function sweepStaleTempDirs(
  tools: ReadonlySet<string>,
  parent: string = tmpdir(),
): Promise<SweepResult> {
  const result: SweepResult = { removed: [], failed: [] };
  const me = await currentOwner();
  if (!me) return result;
  let entries: Dirent[];
  try {
    entries = await readdir(parent, { withFileTypes: true });
  } catch {
    return result; // no such directory, or not ours to read: nothing of ours to sweep
  }
  for (const entry of entries) {
    const parsed = parseTempDirName(entry.name);
    if (!parsed) continue;
    const path = join(parent, entry.name);
    if (!(await abandonedDir(path, parsed.owner, me))) continue;
    try {
      const stopped = await stopToolsUsing(path, tools);
      await waitEnded(stopped);
      await rm(path, { recursive: true, force: true });
      result.removed.push({ path, ...parsed, stopped });
    } catch (error) {
      result.failed.push({ path, error });
    }
  }
  return result;
}

/** How long a sweep waits for the processes it stopped to end before it removes their directory. */
const STOPPED_WAIT_MS = 5_000;

/**
 * Waits until none of `pids` runs (a zombie has ended), for at most STOPPED_WAIT_MS: a server being torn
 * down must not write into a directory as it is removed. After that the removal is tried anyway; what it
 * cannot remove is reported and left for the next start.
 */
async function waitEnded(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + STOPPED_WAIT_MS;
  const runs = (pid: number) => {
    const stat = procStat(pid);
    return stat !== undefined && stat.state !== 'Z';
  };
  while (pids.some(runs) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Whether `pid` is one of `tools`, the tools datasaver runs on the files of its temp dirs, by command
 * name (`comm`, at most 15 bytes: theirs fit) or executable name. Nothing else is ever stopped: an
 * operator's `less`, `cp` or `rsync` of a leftover spool names it too.
 */
async function isOurTool(pid: number, tools: ReadonlySet<string>): Promise<boolean> {
  const [comm, exe] = await Promise.all([
    readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''),
    readlink(`/proc/${pid}/exe`).catch(() => ''),
  ]);
  return tools.has(comm.trim()) || tools.has(basename(exe.replace(/ \(deleted\)$/, '')));
}

/**
 * SIGKILLs this user's processes of `tools` whose command line names `dir` or a path in it (inside
 * an argument too: redis-server retitles itself `redis-server unixsocket:<path>`): the tools a crashed
 * run started on its files (a Redis restore's loader, a parallel `pg_restore`, a MySQL client reading
 * the option file, a drill's throwaway server), which its death left running. Their owner is gone, so
 * nothing waits for them. As root, other users' processes are stopped too (under the same conditions):
 * a throwaway server started by root runs as an unprivileged account (PostgreSQL refuses root), in a
 * directory of this root-owned dir.
 */
async function stopToolsUsing(dir: string, tools: ReadonlySet<string>): Promise<number[]> {
  const stopped: number[] = [];
  const uid = process.getuid?.();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(name);
    if (!/^\d+$/.test(name) || pid === process.pid) continue;
    const [cmdline, info] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
      fs.stat(`/proc/${pid}`).catch(() => undefined),
    ]);
    if (!info || (uid !== 0 && info.uid !== uid)) continue;
    if (!cmdline.split('\0').some((arg) => arg === dir || arg.includes(`${dir}/`))) continue;
    if (!(await isOurTool(pid, tools))) continue;
    try {
      process.kill(pid, 'SIGKILL');
      stopped.push(pid);
    } catch {
      // it ended on its own meanwhile
    }
  }
  return stopped;
}
