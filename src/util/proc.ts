/**
 * What Linux's /proc says about processes and this machine, read in one place for the lease
 * (lease/lease.ts) and the owners of temp dirs (util/temp-owner.ts). Where there is no /proc (not Linux),
 * each answer is empty and callers judge nothing by it.
 */
import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Process `pid`'s state letter (`R`, `S`, `Z` for a zombie...) and start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot), or undefined when there is no such process.
 */
export function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) may hold spaces and parentheses: count from the last ')'. Field 3 is the
    // state, field 22 the start time.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', start: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** This machine's boot id (/proc/sys/kernel/random/boot_id), '' where unknown. */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** This process's PID namespace as /proc/self/ns/pid names it (`pid:[4026531836]`), '' where unknown. */
export function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '';
  }
}
