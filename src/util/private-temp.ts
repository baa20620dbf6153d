/**
 * datasaver's private temporary directories (a spooled dump, a MySQL option file holding the password, a
 * SQLite copy) and the sweep that removes those a crashed run left behind.
 *
 * A directory is made with mode 0700 and named `datasaver-<kind>-<boot>-<pid>-<start>-XXXXXX`: the owner
 * is the process `<pid>` that started `<start>` clock ticks after the boot `<boot>` (pid and start in
 * base 36; boot is the first 8 hex digits of the kernel's boot id). The pid alone would not do: in a
 * container datasaver is PID 1 after every restart, so "pid 1 is alive" says nothing about the run that
 * made the directory. A process is the owner only while that pid still runs with that start time, which
 * no later process can have.
 *
 * The sweep removes a directory only when all of this holds: its name has that form, it is a directory
 * (not a symlink) owned by our user, and its owner is gone (that pid runs no more or runs another
 * process, or the machine has rebooted since). Everything else is left alone, including every directory
 * of a datasaver still running on this host. It cannot judge processes of another PID namespace, so a
 * temp directory shared by datasaver containers is not supported: give each container its own (the
 * default, a container's own /tmp, is). Without /proc (not Linux) nothing is swept.
 */
import { randomBytes } from 'node:crypto';
import { type Dirent, promises as fs } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Who made a directory: a process on one boot of one machine. */
export interface TempOwner {
  /** First 8 hex digits of the kernel's boot id; `00000000` when unknown. */
  boot: string;
  pid: number;
  /** Start time of the process, in clock ticks after boot (/proc/<pid>/stat field 22). */
  start: string;
}

const UNKNOWN_BOOT = '00000000';
/** `<boot>-<pid>-<start>`, pid and start in base 36: names stay short (a Unix socket path in one must fit). */
const OWNER = '([0-9a-f]{8})-([0-9a-z]+)-([0-9a-z]+)';
const NAME = new RegExp(`^datasaver-([a-z]+(?:-[a-z]+)*)-${OWNER}-[A-Za-z0-9]{6}$`);
const BESIDE = new RegExp(`^\\.(.+)\\.datasaver-${OWNER}-[0-9a-f]{6}$`);

function parseOwner(boot: string, pid: string, start: string): TempOwner {
  return { boot, pid: Number.parseInt(pid, 36), start: String(Number.parseInt(start, 36)) };
}

/** This process's owner tag for a new name (pid only, no start time, where /proc is missing). */
async function ownerTag(): Promise<string> {
  const o = (await currentOwner()) ?? { boot: UNKNOWN_BOOT, pid: process.pid, start: '0' };
  return `${o.boot}-${o.pid.toString(36)}-${BigInt(o.start).toString(36)}`;
}

/** The kind and owner a directory's name records, or undefined for any other name. */
export function parseTempDirName(name: string): { kind: string; owner: TempOwner } | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  return { kind: m[1]!, owner: parseOwner(m[2]!, m[3]!, m[4]!) };
}

/**
 * Whether the owner of a directory still runs. `self` is this process (undefined without /proc: nothing
 * can be judged); `running` is the start time of whatever process holds the recorded pid now, if any.
 */
export function ownerState(
  recorded: TempOwner,
  self: TempOwner | undefined,
  running: string | undefined,
): 'alive' | 'gone' | 'unknown' {
  if (!self || self.boot === UNKNOWN_BOOT || recorded.start === '0') return 'unknown';
  // Every process of an earlier boot has ended (the start times of two boots are not comparable).
  if (recorded.boot !== self.boot) return 'gone';
  return running === recorded.start ? 'alive' : 'gone';
}

/**
 * The start time of process `pid` (field 22 of /proc/<pid>/stat), or undefined if it is not running
 * (no such process, or a zombie: killed, not yet reaped by its parent).
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

let selfOwner: Promise<TempOwner | undefined> | undefined;

/** This process as an owner; undefined where /proc is missing. */
export function currentOwner(): Promise<TempOwner | undefined> {
  selfOwner ??= (async () => {
    const start = await processStartTime(process.pid);
    if (start === undefined) return undefined;
    const bootId = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '');
    const boot = bootId.replace(/-/g, '').slice(0, 8);
    return { boot: /^[0-9a-f]{8}$/.test(boot) ? boot : UNKNOWN_BOOT, pid: process.pid, start };
  })();
  return selfOwner;
}

/**
 * Makes a new directory only this user can enter (mode 0700), named for `kind` (lower-case words joined
 * by `-`) and this process, under `parent` (default: the system temp dir). The caller removes it; if
 * the process dies first, the next datasaver to start sweeps it.
 */
export async function makePrivateTempDir(kind: string, parent: string = tmpdir()): Promise<string> {
  if (!/^[a-z]+(?:-[a-z]+)*$/.test(kind)) throw new Error(`invalid temp dir kind '${kind}'`);
  return mkdtemp(join(parent, `datasaver-${kind}-${await ownerTag()}-`));
}

/**
 * A name for a hidden temp file beside `path` (written there so that a rename publishes it atomically),
 * `.<name>.datasaver-<boot>-<pid>-<start>-<random>`: its owner is recorded as for a directory.
 */
export async function tempFileBeside(path: string): Promise<string> {
  const random = randomBytes(3).toString('hex');
  return join(dirname(path), `.${basename(path)}.datasaver-${await ownerTag()}-${random}`);
}

/**
 * Removes the temp files beside `path` (see `tempFileBeside`) whose owner is gone: what a run killed
 * while writing `path` left. Returns their paths. A live process's files, and every other name (the
 * WAL files a SQLite restore moves aside among them), are left alone.
 */
export async function sweepTempFilesBeside(path: string): Promise<string[]> {
  const self = await currentOwner();
  if (!self) return [];
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const m = BESIDE.exec(name);
    if (!m || m[1] !== basename(path)) continue;
    const file = join(dirname(path), name);
    if (!(await abandoned(file, 'file', parseOwner(m[2]!, m[3]!, m[4]!), self))) continue;
    await rm(file, { force: true });
    removed.push(file);
  }
  return removed;
}

/** Whether `path` is this user's file or directory (never a symlink) and its recorded owner is gone. */
async function abandoned(
  path: string,
  type: 'file' | 'directory',
  owner: TempOwner,
  self: TempOwner,
): Promise<boolean> {
  if (ownerState(owner, self, await processStartTime(owner.pid)) !== 'gone') return false;
  const info = await fs.lstat(path).catch(() => undefined);
  if (!info || info.uid !== process.getuid?.()) return false;
  return type === 'file' ? info.isFile() : info.isDirectory();
}

export interface SweepResult {
  /** Directories removed, with the owner that left them and the pids of its tools that were stopped. */
  removed: { path: string; kind: string; owner: TempOwner; stopped: number[] }[];
  /** Directories that were stale but could not be removed. */
  failed: { path: string; error: unknown }[];
}

/** Removes the private temp dirs under `parent` (default: the system temp dir) whose owner is gone. */
export async function sweepStaleTempDirs(parent: string = tmpdir()): Promise<SweepResult> {
  const result: SweepResult = { removed: [], failed: [] };
  const self = await currentOwner();
  if (!self) return result;
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
    if (!(await abandoned(path, 'directory', parsed.owner, self))) continue;
    try {
      const stopped = await stopToolsUsing(path);
      await rm(path, { recursive: true, force: true });
      result.removed.push({ path, ...parsed, stopped });
    } catch (error) {
      result.failed.push({ path, error });
    }
  }
  return result;
}

/**
 * SIGKILLs this user's processes whose command line names `dir` or a path in it (inside an argument too:
 * redis-server retitles itself `redis-server unixsocket:<path>`): the tools a crashed run
 * started on its files (a Redis restore's loader, a parallel `pg_restore`, a MySQL client reading the
 * option file), which its death left running. Their owner is gone, so nothing waits for them.
 */
async function stopToolsUsing(dir: string): Promise<number[]> {
  const stopped: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(name);
    if (!/^\d+$/.test(name) || pid === process.pid) continue;
    const [cmdline, info] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
      fs.stat(`/proc/${pid}`).catch(() => undefined),
    ]);
    if (info?.uid !== process.getuid?.()) continue;
    if (!cmdline.split('\0').some((arg) => arg === dir || arg.includes(`${dir}/`))) continue;
    try {
      process.kill(pid, 'SIGKILL');
      stopped.push(pid);
    } catch {
      // it ended on its own meanwhile
    }
  }
  return stopped;
}
