/**
 * Who made a private temp file or directory, and whether that maker is gone: the judgement behind the
 * sweep of what a crashed run left (see private-temp.ts).
 *
 * A process is named by its boot, pid and start time: the pid alone would not do, since in a container
 * datasaver is PID 1 after every restart. Whether a pid runs can only be seen for a process of this
 * machine in this PID namespace, so an owner also records its place: a digest of the machine (hostname
 * and machine id) and its PID namespace (`pid:[<inode>]`). A temp dir on a shared volume (NFS, a
 * ReadWriteMany claim) or one /tmp shared by the containers of a pod holds the files of processes that
 * this one cannot see; those are never judged gone.
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { bootId, pidNamespace, procStat } from './proc.ts';

/** A process on one boot of one machine, as a temp name records it. */
export interface TempOwner {
  /** First 8 hex digits of the kernel's boot id; `00000000` when unknown. */
  boot: string;
  pid: number;
  /** Start time of the process, in clock ticks after boot (/proc/<pid>/stat field 22). */
  start: string;
}

/** Where an owner ran; `''` for what could not be read. */
export interface OwnerPlace {
  /** Digest of the machine's hostname and machine id (the id itself is not to be shown around). */
  host: string;
  /** The owner's PID namespace, as /proc/self/ns/pid names it: `pid:[4026531836]`. */
  pidns: string;
}

export type PlacedOwner = TempOwner & OwnerPlace;

export const UNKNOWN_BOOT = '00000000';
/** How often a process touches the records of the temp dirs it holds (private-temp.ts). */
export const HEARTBEAT_MS = 60_000;
/** A record untouched for this long has no owner left, whatever PID namespace made it. */
export const HEARTBEAT_STALE_MS = 5 * HEARTBEAT_MS;

/**
 * Whether the owner of a temp file or directory still runs. `self` is this process (undefined without
 * /proc: nothing can be judged); `running` is the start time of whatever process of our namespace holds
 * the recorded pid now, if any. An owner of another machine or PID namespace is `unknown`: its
 * processes cannot be seen from here, so a pid that is free here says nothing about it.
 */
export function ownerState(
  recorded: PlacedOwner,
  self: PlacedOwner | undefined,
  running: string | undefined,
  recordAgeMs?: number,
): 'alive' | 'gone' | 'unknown' {
  if (!self || self.boot === UNKNOWN_BOOT || self.pidns === '' || recorded.start === '0') return 'unknown';
  if (recorded.host !== self.host) return 'unknown';
  if (recorded.pidns !== self.pidns) {
    // Another PID namespace on this machine: the container this one replaced (restarted after a crash:
    // every process of it ended) or a live container sharing the temp dir. Its pids mean nothing here;
    // the heartbeat its owner keeps on the record (private-temp.ts) tells them apart.
    if (recorded.boot !== self.boot) return 'gone';
    return recordAgeMs !== undefined && recordAgeMs > HEARTBEAT_STALE_MS ? 'gone' : 'unknown';
  }
  // Same machine and namespace, another boot: this machine rebooted, and every process of that boot
  // has ended (the start times of two boots are not comparable).
  if (recorded.boot !== self.boot) return 'gone';
  return running === recorded.start ? 'alive' : 'gone';
}

/**
 * The start time of process `pid` (field 22 of /proc/<pid>/stat), or undefined if it is not running
 * (no such process, or a zombie: killed, not yet reaped by its parent).
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = procStat(pid);
  return !stat || stat.state === 'Z' || stat.state === 'X' ? undefined : stat.start;
}

const digest = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex');

async function machineDigest(): Promise<string> {
  let id = '';
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    id = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (id) break;
  }
  return digest('datasaver-host', hostname(), id).slice(0, 32);
}

let selfOwner: Promise<PlacedOwner | undefined> | undefined;

/** This process as an owner; undefined where /proc is missing. */
export function currentOwner(): Promise<PlacedOwner | undefined> {
  selfOwner ??= (async () => {
    const start = await processStartTime(process.pid);
    if (start === undefined) return undefined;
    const boot = bootId().replace(/-/g, '').slice(0, 8);
    const pidns = pidNamespace();
    return {
      boot: /^[0-9a-f]{8}$/.test(boot) ? boot : UNKNOWN_BOOT,
      pid: process.pid,
      start,
      host: await machineDigest(),
      pidns: /^pid:\[\d+\]$/.test(pidns) ? pidns : '',
    };
  })();
  return selfOwner;
}

/** A short digest of a place, for names that have no room for a record (8 hex digits). */
export function placeTag(place: OwnerPlace): string {
  return digest('datasaver-place', place.host, place.pidns).slice(0, 8);
}

/** The owner record written into each private temp dir before it is used. */
export const OWNER_RECORD = '.datasaver-owner';
/** A record is a few dozen bytes: anything larger is not one, and is not read. */
const RECORD_MAX = 512;

export function ownerRecord(owner: PlacedOwner): string {
  return `${JSON.stringify({ v: 1, ...owner })}\n`;
}

/**
 * The owner recorded in `dir`'s record file, or undefined when there is none to trust: missing, not a
 * regular file of this user (a symlink is never followed), larger than a record, or malformed.
 */
export async function readOwnerRecord(dir: string): Promise<PlacedOwner | undefined> {
  const file = `${dir}/${OWNER_RECORD}`;
  const ours = (info: { isFile(): boolean; size: number; uid: number }) =>
    info.isFile() && info.size <= RECORD_MAX && info.uid === process.getuid?.();
  // lstat first, so that nothing but a regular file (never a FIFO or a device) is opened at all.
  const info = await fs.lstat(file).catch(() => undefined);
  if (!info || !ours(info)) return undefined;
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!ours(await handle.stat())) return undefined;
    const buf = Buffer.alloc(RECORD_MAX);
    const { bytesRead } = await handle.read(buf, 0, RECORD_MAX, 0);
    return parseOwnerRecord(buf.subarray(0, bytesRead).toString('utf8'));
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

export function parseOwnerRecord(text: string): PlacedOwner | undefined {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null) return undefined;
  const { v, boot, pid, start, host, pidns } = r as Record<string, unknown>;
  if (
    v !== 1 ||
    typeof boot !== 'string' ||
    !/^[0-9a-f]{8}$/.test(boot) ||
    typeof pid !== 'number' ||
    !Number.isSafeInteger(pid) ||
    pid <= 0 ||
    typeof start !== 'string' ||
    !/^\d+$/.test(start) ||
    typeof host !== 'string' ||
    !/^[0-9a-f]{32}$/.test(host) ||
    typeof pidns !== 'string' ||
    !/^(pid:\[\d+\])?$/.test(pidns)
  )
    return undefined;
  return { boot, pid, start, host, pidns };
}
