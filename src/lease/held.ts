/**
 * A lease this run holds in one destination, from taking it to its release.
 *
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
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { leaseKey } from '../catalog/layout.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage, StorageError } from '../util/errors.ts';
import { describeHolder, type LeaseRecord, leaseBody, readLease } from './record.ts';

/** The run lost its lease (taken over, or not renewed in time) and was stopped (exit 6). */
export class LeaseLostError extends StorageError {
  constructor(message: string) {
    super(message, {
      hint: 'another datasaver run took over this target; nothing this run had not committed was kept. Run one writer per target, and keep the clocks of the hosts in sync',
    });
  }
}

/** Time as leases see it; tests pass a clock they move by hand. */
export interface LeaseClock {
  now(): Date;
  /** Waits `ms`; rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemLeaseClock: LeaseClock = {
  now: () => new Date(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal }),
};

/**
 * Checks, just before an irreversible step in `storage`, that the run still holds the target's lease
 * there; throws LeaseLostError when it does not. Jobs take it as an optional dependency: without one
 * (tests, runs outside a lease) nothing is checked.
 */
export type ConfirmLease = (storage: StorageBackend) => Promise<void>;

/** What a held lease needs to know: how long it lives, and the clock it is timed by. */
export interface HeldLeaseOptions {
  ttlMs: number;
  clock: LeaseClock;
}

/** A lease this run holds in one destination, renewed until released. */
export class HeldLease {
  readonly storage: StorageBackend;
  readonly #record: LeaseRecord;
  readonly #options: HeldLeaseOptions;
  readonly #lost = new AbortController();
  readonly #stop = new AbortController();
  /** Aborts renewal I/O (and the watchdog) once the lease is lost or released. */
  readonly #done: AbortSignal;
  readonly #renewing: Promise<void>;
  readonly #watching: Promise<void>;
  /** How long before its expiry a lease that was not renewed counts as lost: a sixth of the TTL. */
  readonly #margin: number;
  #expiresAt: number;

  constructor(storage: StorageBackend, record: LeaseRecord, options: HeldLeaseOptions) {
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
