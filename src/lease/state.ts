/**
 * Whose a lease is: this process's identity as a lease records it, and the judgement of a lease read from
 * storage (free, ours, expired, orphaned, held). A lease whose holder ran on this host (same host name
 * and boot id: host names repeat, and the initial PID namespace has the same id on every Linux host), in
 * this PID namespace, and is gone (kill -9, OOM kill; a reused pid with another start time counts as
 * gone) is orphaned and taken over at once: the next run after a crash does not wait for it to expire.
 */
import { hostname } from 'node:os';
import { bootId as procBootId, pidNamespace as procPidNamespace, procStat } from '../util/proc.ts';
import { BOOT_ID, type LeaseHolder, type LeaseRecord, PID_NAMESPACE } from './record.ts';

/** Who this process is, for leases: the same for every run of the process. */
export type LeaseIdentity = Pick<LeaseHolder, 'host' | 'pid' | 'pidNamespace' | 'bootId' | 'startTime'>;

/** This machine's boot id ('' where unknown): with the PID namespace, where a pid means this process. */
export function bootId(): string {
  const id = procBootId();
  return BOOT_ID.test(id) ? id : '';
}

/** When process `pid` started, in clock ticks since boot ('' where unknown). */
export function processStartTime(pid: number): string {
  const start = procStat(pid)?.start ?? '';
  return /^\d{1,20}$/.test(start) ? start : '';
}

/** This process, as its leases name their holder. */
export function processIdentity(): LeaseIdentity {
  // '' without /proc (not Linux): a dead pid cannot be told from a live one elsewhere; leases just expire.
  const pidNamespace = procPidNamespace();
  // Kept to what a lease may hold (record.ts), or this process could not read its own lease back.
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.:-]/g, '_')
      .slice(0, 253) || 'unknown';
  return {
    host,
    pid: process.pid,
    pidNamespace: PID_NAMESPACE.test(pidNamespace) ? pidNamespace : '',
    bootId: bootId(),
    startTime: processStartTime(process.pid),
  };
}

/**
 * Whether `pid` is a running process here (one we may not signal is running too), and, when the holder's
 * start time is known, the same process rather than a later one given the same pid.
 */
export function isProcessAlive(pid: number, startTime?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!startTime) return true;
  const now = processStartTime(pid);
  return now === '' || now === startTime;
}

/**
 * - `free`: no lease; `ours`: this run's own;
 * - `expired`: its holder stopped renewing it;
 * - `orphaned`: its holder ran on this host (same host name and boot id), in this PID namespace, and that
 *   process is gone (its pid is not running, or now names a process started at another time);
 * - `held`: someone else holds it.
 */
export type LeaseState = 'free' | 'ours' | 'expired' | 'orphaned' | 'held';

/** Judges a lease read from storage, at `now`. Pure: whether a pid is alive is asked of `isAlive`. */
export function judgeLease(
  lease: LeaseRecord | undefined,
  self: LeaseIdentity & { token: string },
  now: Date,
  isAlive: (pid: number, startTime?: string) => boolean,
): LeaseState {
  if (!lease) return 'free';
  const h = lease.holder;
  if (h.token === self.token) return 'ours';
  if (now.getTime() >= Date.parse(lease.expiresAt)) return 'expired';
  const known = (a: string | undefined, b: string | undefined) => !!a && a === b;
  const here =
    h.host === self.host && known(h.pidNamespace, self.pidNamespace) && known(h.bootId, self.bootId);
  if (here && h.pid !== self.pid && !isAlive(h.pid, h.startTime || undefined)) return 'orphaned';
  return 'held';
}
