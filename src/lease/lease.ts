/**
 * One writer per target. Before a run writes or deletes anything of a target in a destination (backup,
 * prune, resuming uploads), it takes the target's lease there: the object `<target>/<target>.lease.json`
 * (record.ts) naming its holder (host, pid, PID namespace, boot id, process start time, a random
 * token, what it is doing), when it was taken and when it expires. This file takes leases; held.ts
 * renews, confirms and releases one; state.ts judges whose a lease is.
 *
 * - **Taking it.** An absent lease is created with `put(ifAbsent)`: where the service enforces that (local
 *   disk, S3 with conditional writes), exactly one of two processes gets it. Where it cannot
 *   (`put` says `ifAbsentEnforced: false`), the creator also waits `settleMs` and reads the lease
 *   back: whoever's write landed last holds it, the other sees that and waits. Best effort: two creators
 *   whose check and write overlap, and whose read-backs both come before the later write, would both run.
 * - **Someone else's lease** is waited for, polling, up to `waitMs` (the CLI waits a TTL, so that the lease
 *   of a holder that died elsewhere expires meanwhile); then the run fails with LeaseHeldError (exit 6).
 *   The daemon waits 0 and skips the run.
 * - **Taken over** when it expired (its holder stopped renewing: killed, cut off), or at once when its
 *   holder ran on this host in this PID namespace and that process is gone (state.ts): the next run
 *   after a crash does not wait. Taking over deletes the old lease and creates ours as above, then always
 *   reads it back after `settleMs`, since two processes may be taking over the same old lease.
 * - **Renewed, confirmed and released** by the HeldLease it gives (held.ts).
 *
 * Expiry compares the clocks of different hosts: with renewals every third of the TTL, clocks that differ
 * by less than two thirds of it are safe (S3 itself refuses requests from clocks 15 minutes off). A lease
 * claiming to last longer than MAX_LEASE_TTL_SECONDS after its object was last written expires then.
 */
import { randomBytes } from 'node:crypto';
import { leaseKey } from '../catalog/layout.ts';
import { DEFAULT_LEASE_TTL_SECONDS } from '../config/target.ts';
import { type StorageBackend, StorageConflictError } from '../storage/backend.ts';
import { StorageError } from '../util/errors.ts';
import { failpoint } from '../util/failpoint.ts';
import {
  type ConfirmLease,
  HeldLease,
  type LeaseClock,
  type LeaseLostError,
  systemLeaseClock,
} from './held.ts';
import { describeHolder, type LeaseRecord, leaseBody, readLease } from './record.ts';
import { isProcessAlive, judgeLease, type LeaseIdentity, processIdentity } from './state.ts';

/** Another datasaver process held the target's lease for longer than this run would wait (exit 6). */
export class LeaseHeldError extends StorageError {
  readonly lease: LeaseRecord;
  constructor(storage: string, lease: LeaseRecord, waitedMs: number) {
    super(
      `${storage}: target ${lease.target} is held by another datasaver run (${describeHolder(lease)}); its lease expires at ${lease.expiresAt}${waitedMs > 0 ? `; waited ${Math.round(waitedMs / 1000)} s` : ''}`,
      {
        hint: 'run one writer per target (one daemon or CronJob). A holder that was killed is taken over once its lease expires (DATASAVER_LEASE_TTL_SECONDS), at once when it ran on this host',
      },
    );
    this.lease = lease;
  }
}

export interface LeaseOptions {
  /** What the run does (backup, prune, resume): shown to whoever meets the lease. */
  operation: string;
  /** How long a lease lives unless renewed (renewed every third of it). */
  ttlMs: number;
  /** How long to wait for someone else's lease; 0 to fail at once. */
  waitMs: number;
  /** Pause before reading back a lease written without an enforced `ifAbsent`. Default 1 s, at most TTL/12. */
  settleMs?: number | undefined;
  /** Told once when the run starts waiting for someone else's lease. */
  onWait?: ((storage: StorageBackend, lease: LeaseRecord) => void) | undefined;
  /** Stops taking the lease (waiting included): rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Default: the system clock (tests move a fake one). */
  clock?: LeaseClock | undefined;
  /** Who this process is; default processIdentity(). */
  self?: LeaseIdentity | undefined;
  /** Whether a holder's pid still runs here; default isProcessAlive. */
  isAlive?: ((pid: number, startTime?: string) => boolean) | undefined;
}

/**
 * Takes the lease of `target` in `storage`, waiting for another holder up to `options.waitMs`. Rejects
 * with LeaseHeldError when another holder keeps it longer; StorageError when storage fails or something
 * that is not a lease blocks its key; the signal's reason when aborted.
 */
export async function acquireLease(
  storage: StorageBackend,
  target: string,
  options: LeaseOptions,
): Promise<HeldLease> {
  const clock = options.clock ?? systemLeaseClock;
  const isAlive = options.isAlive ?? isProcessAlive;
  const { signal, ttlMs } = options;
  // The lease must outlive its own read-back: past a sixth of the TTL its watchdog would count it lost.
  const settleMs = Math.min(options.settleMs ?? 1000, ttlMs / 12);
  const self = {
    ...(options.self ?? processIdentity()),
    token: randomBytes(12).toString('hex'),
    operation: options.operation,
  };
  const started = clock.now().getTime();
  const poll = Math.min(5000, Math.max(100, ttlMs / 10));
  let announced = false;
  for (;;) {
    signal?.throwIfAborted();
    const current = await readLease(storage, target, ttlMs, signal);
    const now = clock.now();
    const state = judgeLease(current, self, now, isAlive);
    if (state === 'held' && current) {
      const waited = now.getTime() - started;
      if (waited >= options.waitMs) throw new LeaseHeldError(storage.description, current, waited);
      if (!announced) options.onWait?.(storage, current);
      announced = true;
      await clock.sleep(Math.min(poll, options.waitMs - waited), signal);
      continue;
    }
    // Our own write whose answer was lost (the retry met it as "already exists"): it is ours.
    if (state === 'ours' && current) return new HeldLease(storage, current, { ttlMs, clock });
    if (state === 'expired' || state === 'orphaned') await storage.delete(leaseKey(target), { signal });
    const record: LeaseRecord = {
      target,
      holder: self,
      acquiredAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
    };
    let enforced: boolean;
    try {
      const put = await storage.put(leaseKey(target), leaseBody(record), { ifAbsent: true, signal });
      enforced = put.ifAbsentEnforced !== false;
    } catch (err) {
      if (!(err instanceof StorageConflictError)) throw err;
      // Someone was quicker: theirs is judged after a poll interval. Something at the key that reads as no
      // lease (a directory or a dangling link on local disk) conflicts every time: it is waited for like a
      // held lease, never retried at once.
      const waited = clock.now().getTime() - started;
      if (waited >= options.waitMs) {
        const theirs = await readLease(storage, target, ttlMs, signal);
        if (theirs) continue;
        throw new StorageError(
          `${storage.description}: cannot create the lease of ${target}: ${leaseKey(target)} is taken by something that is not a readable object (a directory, a dangling link?)`,
          { hint: 'remove it; datasaver writes only a small JSON file there' },
        );
      }
      await clock.sleep(Math.min(poll, options.waitMs - waited), signal);
      continue;
    }
    if (state !== 'free' || !enforced) {
      await clock.sleep(settleMs, signal);
      const back = await readLease(storage, target, ttlMs, signal);
      if (back?.holder.token !== self.token) continue; // a later write won
    }
    return new HeldLease(storage, record, { ttlMs, clock });
  }
}

/** How a kind of run meets someone else's lease; the rest of LeaseOptions comes from the target. */
export interface LeasePolicy {
  /** Default: a little over the TTL, so that a lease whose holder died elsewhere expires meanwhile. */
  waitMs?: number | undefined;
  onWait?: LeaseOptions['onWait'];
  settleMs?: number | undefined;
  clock?: LeaseClock | undefined;
}

/** The lease options of a run of `target` doing `operation`. */
export function targetLeaseOptions(
  target: { leaseTtlSeconds?: number | undefined },
  operation: string,
  policy: LeasePolicy | undefined,
  signal: AbortSignal | undefined,
): LeaseOptions {
  const ttlMs = (target.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS) * 1000;
  return { ...policy, operation, ttlMs, waitMs: policy?.waitMs ?? Math.round(ttlMs * 1.25), signal };
}

/** What a run that waits for someone else's lease says. */
export function waitingMessage(storage: StorageBackend, lease: LeaseRecord): string {
  return `waiting for the lease of ${lease.target} in ${storage.description}: held by ${describeHolder(lease)}, expires at ${lease.expiresAt} unless renewed`;
}

export interface LeasedRun<T> {
  result: T;
  /** Destinations whose lease could not be taken for a storage error: left out of the run. */
  unavailable: { storage: StorageBackend; error: unknown }[];
  /** Set when a lease was lost during the run (which was then aborted through its signal). */
  lost: LeaseLostError | undefined;
  /** Leases that could not be released (they expire on their own). */
  warnings: string[];
}

/**
 * Runs `run` holding the lease of `target` in each destination it can reach. Another holder that stays
 * past `waitMs` fails the whole run (LeaseHeldError) before anything is written; a destination whose lease
 * cannot be written (unreachable, access denied) is left out and reported, as a failed upload would be;
 * if no destination is left, that error is thrown. The run's signal also aborts when a lease is lost.
 */
export async function withLeases<T>(
  target: string,
  destinations: StorageBackend[],
  options: LeaseOptions,
  run: (destinations: StorageBackend[], signal: AbortSignal, confirmLease: ConfirmLease) => Promise<T>,
): Promise<LeasedRun<T>> {
  const held: HeldLease[] = [];
  const unavailable: LeasedRun<T>['unavailable'] = [];
  const releaseAll = async () =>
    (await Promise.all(held.map((l) => l.release()))).filter((w): w is string => w !== undefined);
  try {
    // The same order in every process, so that two never each wait for a lease the other holds.
    const ordered = [...destinations].sort((a, b) => (a.description < b.description ? -1 : 1));
    for (const storage of ordered) {
      try {
        held.push(await acquireLease(storage, target, options));
      } catch (err) {
        if (err instanceof LeaseHeldError || options.signal?.aborted || !(err instanceof StorageError))
          throw err;
        unavailable.push({ storage, error: err });
      }
    }
  } catch (err) {
    await releaseAll();
    throw err;
  }
  if (held.length === 0 && unavailable.length > 0) throw unavailable[0]!.error;
  const lostSignals = held.map((l) => l.lost);
  const signal = AbortSignal.any(options.signal ? [options.signal, ...lostSignals] : lostSignals);
  const lostError = () => lostSignals.find((s) => s.aborted)?.reason as LeaseLostError | undefined;
  let outcome: { result: T } | { error: unknown };
  try {
    // A test hook: a run stopped here holds the target (see util/failpoint.ts).
    await failpoint('lease-taken');
    const leased = destinations.filter((d) => held.some((l) => l.storage === d));
    const confirmLease = async (storage: StorageBackend) => {
      await held.find((l) => l.storage === storage)?.confirm();
    };
    outcome = { result: await run(leased, signal, confirmLease) };
  } catch (err) {
    outcome = { error: lostError() ?? err };
  }
  const warnings = await releaseAll();
  if ('error' in outcome) throw outcome.error;
  return { result: outcome.result, unavailable, lost: lostError(), warnings };
}
