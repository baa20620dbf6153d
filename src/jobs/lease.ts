/**
 * One writer per target (RELIABILITY.md promise 8). Before a run writes or deletes anything of a target in
 * a destination (backup, prune, resuming uploads), it takes the target's lease there: the object
 * `<target>/<target>.lease.json` (storage/layout.ts) naming its holder (host, pid, PID namespace, boot id,
 * process start time, a random token, what it is doing), when it was taken and when it expires.
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
 *   holder ran on this host (same host name and boot id: host names repeat, and the initial PID namespace
 *   has the same id on every Linux host) in this PID namespace and that process is gone (kill -9, OOM
 *   kill; a reused pid with another start time counts as gone): the next run after a crash does not wait. Taking over deletes the old lease and creates ours as above, then always
 *   reads it back after `settleMs`, since two processes may be taking over the same old lease.
 * - **Renewed** every third of the TTL while the run goes on. A renewal that finds another holder, or that
 *   cannot write before the lease would expire, aborts the run (its `lost` signal) rather than let two
 *   writers run. A watchdog fires `lost` a sixth of the TTL before the last good expiry whether or not a
 *   renewal is still in flight (a hung request, a stopped process), and aborts that renewal's I/O; once
 *   lost, the lease is never written or deleted by this run again.
 * - **Confirmed** just before each irreversible step (a manifest written, a backup or leftover deleted):
 *   jobs take a `ConfirmLease` that reads the lease back and throws LeaseLostError unless it is still
 *   ours. Two runs taking over the same old lease may each delete what the other just created; the
 *   renewal would find that only a third of a TTL later, the confirm finds it before anything commits.
 * - **Released** at the end: deleted if it is still ours and not about to expire.
 *
 * Expiry compares the clocks of different hosts: with renewals every third of the TTL, clocks that differ
 * by less than two thirds of it are safe (S3 itself refuses requests from clocks 15 minutes off). A lease
 * claiming to last longer than MAX_LEASE_TTL_SECONDS after its object was last written expires then.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { z } from 'zod';
import { leaseKey } from '../catalog/layout.ts';
import { DEFAULT_LEASE_TTL_SECONDS, MAX_LEASE_TTL_SECONDS } from '../config/target.ts';
import { readCapped } from '../pipeline/read.ts';
import { type StorageBackend, StorageConflictError, StorageNotFoundError } from '../storage/backend.ts';
import { errorMessage, StorageError } from '../util/errors.ts';
import { failpoint } from '../util/failpoint.ts';
import { bootId as procBootId, pidNamespace as procPidNamespace, procStat } from '../util/proc.ts';

/** A lease is a few hundred bytes; anything much bigger is not one and is not read whole. */
const MAX_LEASE_BYTES = 64 * 1024;

export interface LeaseHolder {
  host: string;
  pid: number;
  /** `readlink /proc/self/ns/pid` ('' where unknown): a pid names the same process only in one namespace. */
  pidNamespace: string;
  /**
   * /proc/sys/kernel/random/boot_id ('' where unknown): the initial PID namespace has the same id on every
   * Linux host, and host names repeat (cloned VMs, `localhost`), so only the boot id tells this machine's
   * pids from another's. Absent in leases of older datasaver versions.
   */
  bootId?: string | undefined;
  /** The holder's start time (/proc/<pid>/stat field 22, clock ticks since boot): a reused pid differs. */
  startTime?: string | undefined;
  /** Random, per run: tells this run's lease from any other's. */
  token: string;
  /** What the holder is doing: backup, prune, resume. */
  operation: string;
}

export interface LeaseRecord {
  target: string;
  holder: LeaseHolder;
  acquiredAt: string;
  expiresAt: string;
}

const BOOT_ID = /^[0-9a-f-]{0,64}$/;
const START_TIME = /^\d{0,20}$/;

/** Storage is untrusted: what is printed from a lease (host, operation) holds no terminal escapes. */
const leaseSchema = z.looseObject({
  target: z.string(),
  holder: z.looseObject({
    host: z.string().regex(/^[A-Za-z0-9_.:-]{1,253}$/),
    pid: z.number().int().nonnegative(),
    pidNamespace: z.string().regex(/^[A-Za-z0-9_:[\]-]{0,64}$/),
    bootId: z.string().regex(BOOT_ID).optional(),
    startTime: z.string().regex(START_TIME).optional(),
    token: z.string().regex(/^[A-Za-z0-9_:-]{1,128}$/),
    operation: z.string().regex(/^[a-z-]{1,32}$/),
  }),
  acquiredAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
}) satisfies z.ZodType<LeaseRecord>;

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

export function processIdentity(): LeaseIdentity {
  // '' without /proc (not Linux): a dead pid cannot be told from a live one elsewhere; leases just expire.
  const pidNamespace = procPidNamespace();
  // Kept to what a lease may hold (leaseSchema), or this process could not read its own lease back.
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.:-]/g, '_')
      .slice(0, 253) || 'unknown';
  return {
    host,
    pid: process.pid,
    pidNamespace: /^[A-Za-z0-9_:[\]-]{0,64}$/.test(pidNamespace) ? pidNamespace : '',
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

/** Describes a holder for messages: `host db-1, pid 42, backup since 2026-...`. */
export function describeHolder(lease: LeaseRecord): string {
  const h = lease.holder;
  return `host ${h.host}, pid ${h.pid}, ${h.operation} since ${lease.acquiredAt}`;
}

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

/** The run lost its lease (taken over, or not renewed in time) and was stopped (exit 6). */
export class LeaseLostError extends StorageError {
  constructor(message: string) {
    super(message, {
      hint: 'another datasaver run took over this target; nothing this run had not committed was kept. Run one writer per target, and keep the clocks of the hosts in sync',
    });
  }
}

export interface LeaseClock {
  now(): Date;
  /** Waits `ms`; rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemLeaseClock: LeaseClock = {
  now: () => new Date(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal }),
};

export interface LeaseOptions {
  /** What the run does (backup, prune, resume): shown to whoever meets the lease. */
  operation: string;
  ttlMs: number;
  /** How long to wait for someone else's lease; 0 to fail at once. */
  waitMs: number;
  /** Pause before reading back a lease written without an enforced `ifAbsent`. Default 1 s, at most TTL/12. */
  settleMs?: number | undefined;
  /** Told once when the run starts waiting for someone else's lease. */
  onWait?: ((storage: StorageBackend, lease: LeaseRecord) => void) | undefined;
  signal?: AbortSignal | undefined;
  clock?: LeaseClock | undefined;
  self?: LeaseIdentity | undefined;
  isAlive?: ((pid: number, startTime?: string) => boolean) | undefined;
}

/** What a lease key holds: a lease, nothing, or something unreadable (judged by its age). */
async function readLease(
  storage: StorageBackend,
  target: string,
  ttlMs: number,
  signal: AbortSignal | undefined,
): Promise<LeaseRecord | undefined> {
  const key = leaseKey(target);
  const info = await storage.stat(key, { signal });
  if (!info) return undefined;
  let text: string | undefined;
  if (info.size <= MAX_LEASE_BYTES) {
    // The object may have grown since the stat: reading stops at the cap whatever it says.
    const tooLarge = new Error('larger than a lease');
    try {
      const body = await readCapped(await storage.get(key, { signal }), MAX_LEASE_BYTES, () => tooLarge);
      text = body.toString('utf8');
    } catch (err) {
      signal?.throwIfAborted();
      if (err instanceof StorageNotFoundError) return undefined; // released meanwhile
      if (err !== tooLarge) throw err;
    }
  }
  const parsed = text === undefined ? undefined : safeParse(text);
  if (parsed && parsed.target === target) {
    // Renewals rewrite the object, so a live holder's lease is never older than its TTL.
    const latest = info.modified.getTime() + MAX_LEASE_TTL_SECONDS * 1000;
    if (Date.parse(parsed.expiresAt) <= latest) return parsed;
    return { ...parsed, expiresAt: new Date(latest).toISOString() };
  }
  // Not a lease datasaver wrote: it holds the target until it is as old as a lease would live.
  return {
    target,
    holder: {
      host: 'unknown',
      pid: 0,
      pidNamespace: '',
      bootId: '',
      token: `unreadable:${info.modified.getTime()}`,
      operation: 'unknown',
    },
    acquiredAt: info.modified.toISOString(),
    expiresAt: new Date(info.modified.getTime() + ttlMs).toISOString(),
  };
}

function safeParse(text: string): LeaseRecord | undefined {
  try {
    const result = leaseSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

function leaseBody(lease: LeaseRecord): Buffer[] {
  return [Buffer.from(`${JSON.stringify(lease, null, 2)}\n`)];
}

/** A lease this run holds in one destination, renewed until released. */
export class HeldLease {
  readonly storage: StorageBackend;
  readonly #record: LeaseRecord;
  readonly #options: LeaseOptions & { clock: LeaseClock };
  readonly #lost = new AbortController();
  readonly #stop = new AbortController();
  /** Aborts renewal I/O (and the watchdog) once the lease is lost or released. */
  readonly #done: AbortSignal;
  readonly #renewing: Promise<void>;
  readonly #watching: Promise<void>;
  /** How long before its expiry a lease that was not renewed counts as lost: a sixth of the TTL. */
  readonly #margin: number;
  #expiresAt: number;

  constructor(storage: StorageBackend, record: LeaseRecord, options: LeaseOptions & { clock: LeaseClock }) {
    this.storage = storage;
    this.#record = record;
    this.#options = options;
    this.#margin = options.ttlMs / 6;
    this.#expiresAt = Date.parse(record.expiresAt);
    this.#done = AbortSignal.any([this.#stop.signal, this.#lost.signal]);
    this.#renewing = this.#renew();
    this.#watching = this.#watch();
  }

  /** Aborts (with a LeaseLostError) when the lease was taken over or could not be renewed in time. */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /**
   * Reads the lease back just before an irreversible step (a manifest written, a backup deleted): a
   * takeover whose delete raced ours, or a renewal that came too late, is found here rather than at the
   * next renewal. Throws LeaseLostError (and aborts `lost`) when the lease is no longer this run's.
   */
  async confirm(): Promise<void> {
    this.#lost.signal.throwIfAborted();
    const current = await readLease(this.storage, this.#record.target, this.#options.ttlMs, this.#done);
    if (this.#stillOurs(current)) this.#checkTime();
    this.#lost.signal.throwIfAborted();
  }

  /** False (and the lease lost) when `current` is not this run's lease. */
  #stillOurs(current: LeaseRecord | undefined): boolean {
    if (current?.holder.token === this.#record.holder.token) return true;
    const who = current ? `taken over by ${describeHolder(current)}` : 'removed by someone else';
    this.#lose(
      `${this.storage.description}: the lease of ${this.#record.target} was ${who}; this run stopped`,
    );
    return false;
  }

  /** Loses the lease once it is within the margin of its expiry: another run may take it any moment. */
  #checkTime(why = ''): void {
    if (this.#options.clock.now().getTime() < this.#expiresAt - this.#margin) return;
    this.#lose(
      `${this.storage.description}: the lease of ${this.#record.target} was not renewed in time (it expires at ${new Date(this.#expiresAt).toISOString()}${why}); this run stopped`,
    );
  }

  /**
   * Fires `lost` near the expiry whether or not a renewal is in flight: a renewal that hangs (a storage
   * timeout retried, a process stopped with SIGSTOP) must not leave the run going past its lease.
   */
  async #watch(): Promise<void> {
    const { clock } = this.#options;
    for (;;) {
      const left = this.#expiresAt - this.#margin - clock.now().getTime();
      if (left <= 0) return this.#checkTime();
      try {
        await clock.sleep(left, this.#done);
      } catch {
        return; // released or lost
      }
    }
  }

  async #renew(): Promise<void> {
    const { clock, ttlMs } = this.#options;
    const every = ttlMs / 3;
    const { storage } = this;
    const target = this.#record.target;
    const done = this.#done;
    for (;;) {
      try {
        await clock.sleep(every, done);
      } catch {
        return; // released or lost
      }
      // Woken too late (a stopped process): the lease may be someone else's already.
      this.#checkTime();
      if (done.aborted) return;
      try {
        const current = await readLease(storage, target, ttlMs, done);
        // Once lost, never written again: the lease may be another run's by now.
        if (done.aborted || !this.#stillOurs(current)) return;
        this.#checkTime();
        if (done.aborted) return;
        const expiresAt = clock.now().getTime() + ttlMs;
        const renewed = { ...this.#record, expiresAt: new Date(expiresAt).toISOString() };
        await storage.put(leaseKey(target), leaseBody(renewed), { signal: done });
        if (!done.aborted) this.#expiresAt = expiresAt;
      } catch (err) {
        if (done.aborted) return;
        // A storage hiccup is tried again at the next tick, as long as the lease is still ours by then.
        if (clock.now().getTime() + every >= this.#expiresAt) {
          this.#lose(
            `${storage.description}: the lease of ${target} could not be renewed before it expires (${errorMessage(err)}); this run stopped`,
          );
          return;
        }
      }
    }
  }

  #lose(message: string): void {
    if (!this.#lost.signal.aborted) this.#lost.abort(new LeaseLostError(message));
  }

  /** Stops renewing and deletes the lease if it is still ours. Never throws: returns a warning instead. */
  async release(): Promise<string | undefined> {
    this.#stop.abort();
    await Promise.all([this.#renewing, this.#watching]);
    if (this.#lost.signal.aborted) return undefined; // someone else's now, or about to be
    const { storage } = this;
    const target = this.#record.target;
    try {
      const current = await readLease(storage, target, this.#options.ttlMs, undefined);
      // Near its expiry another run may be taking it over: it is left to expire rather than deleted.
      const inTime = this.#options.clock.now().getTime() < this.#expiresAt - this.#margin;
      if (current?.holder.token === this.#record.holder.token && inTime)
        await storage.delete(leaseKey(target));
      return undefined;
    } catch (err) {
      return `${storage.description}: could not release the lease of ${target} (${errorMessage(err)}); it expires at ${new Date(this.#expiresAt).toISOString()}`;
    }
  }
}

/** Takes the lease of `target` in `storage`, waiting for another holder up to `options.waitMs`. */
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
    if (state === 'ours' && current) return new HeldLease(storage, current, { ...options, clock });
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
    return new HeldLease(storage, record, { ...options, clock });
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

/**
 * Checks, just before an irreversible step in `storage`, that the run still holds the target's lease
 * there; throws LeaseLostError when it does not. Jobs take it as an optional dependency: without one
 * (tests, runs outside a lease) nothing is checked.
 */
export type ConfirmLease = (storage: StorageBackend) => Promise<void>;

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
