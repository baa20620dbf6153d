/**
 * The target lease (src/lease/lease.ts) on in-memory storage with an injected
 * clock: who may take it when, waiting and giving up, renewal and losing it, taking over from a crashed
 * holder, and the best-effort path for a service without conditional writes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { leaseKey } from '../../src/catalog/layout.ts';
import { type LeaseClock, LeaseLostError } from '../../src/lease/held.ts';
import { acquireLease, LeaseHeldError, type LeaseOptions, withLeases } from '../../src/lease/lease.ts';
import type { LeaseRecord } from '../../src/lease/record.ts';
import {
  isProcessAlive,
  judgeLease,
  type LeaseIdentity,
  processIdentity,
  processStartTime,
} from '../../src/lease/state.ts';
import {
  type ObjectInfo,
  type OpOptions,
  type PutOptions,
  type StorageBackend,
  StorageConflictError,
} from '../../src/storage/backend.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { StorageError } from '../../src/util/errors.ts';
import { tempDir } from '../support/pg.ts';

/** Time stands still until the test moves it; sleepers wake in order as it passes them. */
class FakeClock implements LeaseClock {
  t = Date.parse('2026-12-01T02:00:00Z');
  #sleepers: { at: number; wake: () => void }[] = [];

  now(): Date {
    return new Date(this.t);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper = { at: this.t + ms, wake: resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time forward by `ms`, letting every sleeper due on the way run before the next. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const next = this.#sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      this.t = Math.max(this.t, next.at);
      next.wake();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

const TTL = 60_000;
const HERE: LeaseIdentity = {
  host: 'db-1',
  pid: 100,
  pidNamespace: 'pid:[4026531836]',
  bootId: '0f6e2a4c-3b1d-4e8a-9c5f-7d2b1a0e9f31',
};

function options(clock: FakeClock, overrides: Partial<LeaseOptions> = {}): LeaseOptions {
  return {
    operation: 'backup',
    ttlMs: TTL,
    waitMs: 0,
    settleMs: 1000,
    clock,
    self: HERE,
    isAlive: () => true,
    ...overrides,
  };
}

async function stored(storage: StorageBackend, target = 'shop'): Promise<LeaseRecord | undefined> {
  if (!(await storage.stat(leaseKey(target)))) return undefined;
  return JSON.parse(await text(await storage.get(leaseKey(target)))) as LeaseRecord;
}

function lease(holder: Partial<LeaseRecord['holder']>, expiresAt: string): LeaseRecord {
  return {
    target: 'shop',
    holder: { ...HERE, token: 'theirs', operation: 'backup', ...holder },
    acquiredAt: '2026-12-01T01:59:00.000Z',
    expiresAt,
  };
}

async function plant(storage: StorageBackend, record: LeaseRecord): Promise<void> {
  await storage.put(leaseKey(record.target), [Buffer.from(JSON.stringify(record))]);
}

describe('judgeLease', () => {
  const now = new Date('2026-12-01T02:00:00Z');
  const self = { ...HERE, pid: 200, token: 'mine' };
  const live = '2026-12-01T02:01:00.000Z';

  it('no lease is free; our own token is ours; one past its expiry has expired', () => {
    expect(judgeLease(undefined, self, now, () => true)).toBe('free');
    expect(judgeLease(lease({ token: 'mine' }, live), self, now, () => true)).toBe('ours');
    expect(judgeLease(lease({}, '2026-12-01T02:00:00.000Z'), self, now, () => true)).toBe('expired');
  });

  it('a live lease of a pid that is gone is orphaned only on this host and in this PID namespace', () => {
    const dead = () => false;
    expect(judgeLease(lease({}, live), self, now, dead)).toBe('orphaned');
    expect(judgeLease(lease({}, live), self, now, () => true)).toBe('held');
    expect(judgeLease(lease({ host: 'db-2' }, live), self, now, dead)).toBe('held');
    expect(judgeLease(lease({ pidNamespace: 'pid:[4026532000]' }, live), self, now, dead)).toBe('held');
    // Where the namespace is unknown, a pid says nothing: wait for the expiry.
    expect(judgeLease(lease({ pidNamespace: '' }, live), { ...self, pidNamespace: '' }, now, dead)).toBe(
      'held',
    );
  });

  it('a namesake host (a cloned VM, `localhost`) in the initial PID namespace is told apart by its boot id', () => {
    const dead = () => false;
    const other = '9a1b2c3d-0000-4000-8000-000000000000';
    expect(judgeLease(lease({ bootId: other }, live), self, now, dead)).toBe('held');
    // A lease of an older datasaver, without a boot id, is waited out.
    expect(judgeLease(lease({ bootId: undefined }, live), self, now, dead)).toBe('held');
    expect(judgeLease(lease({ bootId: '' }, live), { ...self, bootId: '' }, now, dead)).toBe('held');
  });

  it("the holder's start time is asked about with its pid: a reused pid is another process", () => {
    const asked: [number, string | undefined][] = [];
    const reused = (pid: number, startTime?: string) => {
      asked.push([pid, startTime]);
      return startTime !== '5000';
    };
    expect(judgeLease(lease({ pid: 42, startTime: '5000' }, live), self, now, reused)).toBe('orphaned');
    expect(judgeLease(lease({ pid: 42, startTime: '7000' }, live), self, now, reused)).toBe('held');
    expect(asked).toEqual([
      [42, '5000'],
      [42, '7000'],
    ]);
  });
});

describe('isProcessAlive', () => {
  it('this process is alive with its own start time, and not with another (its pid reused)', () => {
    const start = processStartTime(process.pid);
    expect(start).toMatch(/^\d+$/);
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(process.pid, start)).toBe(true);
    expect(isProcessAlive(process.pid, `${Number(start) + 1}`)).toBe(false);
  });
});

describe('acquireLease', () => {
  it('takes a free lease, naming the holder; release deletes it', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    expect(await stored(storage)).toEqual({
      target: 'shop',
      holder: { ...HERE, token: expect.stringMatching(/^[0-9a-f]{24}$/), operation: 'backup' },
      acquiredAt: '2026-12-01T02:00:00.000Z',
      expiresAt: '2026-12-01T02:01:00.000Z',
    });
    expect(await held.release()).toBeUndefined();
    expect(await stored(storage)).toBeUndefined();
  });

  it("another holder's live lease fails at once without a wait, naming the holder", async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await plant(storage, lease({ host: 'db-2', pid: 7 }, '2026-12-01T02:00:30.000Z'));
    const err = (await acquireLease(storage, 'shop', options(clock)).catch(
      (e: unknown) => e,
    )) as LeaseHeldError;
    expect(err).toBeInstanceOf(LeaseHeldError);
    expect(err.exitCode).toBe(6);
    expect(err.message).toBe(
      'memory: target shop is held by another datasaver run (host db-2, pid 7, backup since 2026-12-01T01:59:00.000Z); its lease expires at 2026-12-01T02:00:30.000Z',
    );
    expect(err.hint).toMatch(/one writer per target/);
  });

  it('a holder that keeps renewing outlasts the wait: the waiter gives up, told once it was waiting', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const first = await acquireLease(storage, 'shop', options(clock));
    const waits: LeaseRecord[] = [];
    const second = acquireLease(
      storage,
      'shop',
      options(clock, { self: { ...HERE, host: 'db-2' }, waitMs: 2 * TTL, onWait: (_, l) => waits.push(l) }),
    ).catch((e: unknown) => e);
    await clock.advance(2 * TTL + 1);
    const err = await second;
    expect(err).toBeInstanceOf(LeaseHeldError);
    expect((err as LeaseHeldError).message).toMatch(/waited 120 s$/);
    expect(waits).toHaveLength(1);
    // The first holder renewed all along: its lease is still ours, and reaches past the waiter's give-up.
    expect(Date.parse((await stored(storage))!.expiresAt)).toBeGreaterThan(clock.t);
    expect(first.lost.aborted).toBe(false);
    await first.release();
  });

  it('a foreign holder that stopped renewing (killed) is taken over once its lease expires', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await plant(storage, lease({ host: 'db-2', pid: 7 }, '2026-12-01T02:00:45.000Z'));
    let done = false;
    const taking = acquireLease(storage, 'shop', options(clock, { waitMs: TTL })).then((l) => {
      done = true;
      return l;
    });
    await clock.advance(44_000);
    expect(done).toBe(false);
    await clock.advance(10_000); // past the expiry, and the read-back after a takeover
    const held = await taking;
    expect((await stored(storage))!.holder).toMatchObject({ host: 'db-1', pid: 100 });
    await held.release();
  });

  it('the read-back after a takeover is kept short of the TTL, so the new lease is not lost at once', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await plant(storage, lease({ host: 'db-2', pid: 7 }, '2026-12-01T01:59:00.000Z'));
    const taking = acquireLease(storage, 'shop', options(clock, { settleMs: TTL }));
    await clock.advance(TTL / 12); // the read-back waits at most a twelfth of the TTL
    const held = await taking;
    expect(held.lost.aborted).toBe(false);
    await clock.advance(TTL);
    expect(held.lost.aborted).toBe(false);
    await held.release();
  });

  it('a holder on this host whose pid is gone (kill -9) is taken over at once', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await plant(storage, lease({ pid: 42 }, '2026-12-01T02:00:45.000Z'));
    const alive = (pid: number) => pid !== 42;
    const taking = acquireLease(storage, 'shop', options(clock, { isAlive: alive }));
    await clock.advance(1000); // the read-back after a takeover; no waiting for the expiry
    const held = await taking;
    expect((await stored(storage))!.holder).toMatchObject({ pid: 100 });
    await held.release();
  });

  it.each([
    ['not JSON', 'not json'],
    [
      'a holder with a terminal escape',
      JSON.stringify(lease({ host: 'db\u001b[2J' }, '2026-12-01T03:00:00.000Z')),
    ],
  ])('an unreadable lease object (%s) holds the target until it is a TTL old', async (_, body) => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await storage.put(leaseKey('shop'), [Buffer.from(body)]);
    clock.t = storage.objects.get(leaseKey('shop'))!.modified.getTime();
    const err = await acquireLease(storage, 'shop', options(clock)).catch((e: unknown) => e);
    expect((err as LeaseHeldError).message).toMatch(/host unknown/);
    clock.t += TTL;
    const taking = acquireLease(storage, 'shop', options(clock));
    await clock.advance(1000);
    await (await taking).release();
  });
  it('a lease object that grows past 64 KB after its size was read is read no further, and is unreadable', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await storage.put(leaseKey('shop'), [Buffer.from('{}')]);
    clock.t = storage.objects.get(leaseKey('shop'))!.modified.getTime();
    let served = 0;
    storage.get = async () =>
      Readable.from(
        (async function* () {
          for (;;) {
            if (served >= 1024 * 1024) throw new Error('read a megabyte of a lease');
            served += 16 * 1024;
            yield Buffer.alloc(16 * 1024, 0x20);
          }
        })(),
        { highWaterMark: 1 },
      );
    const err = await acquireLease(storage, 'shop', options(clock)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseHeldError);
    expect((err as LeaseHeldError).message).toMatch(/host unknown/);
    expect(served).toBeLessThanOrEqual(128 * 1024);
  });

  it('a lease claiming an expiry far ahead holds the target at most a day past its last write', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await plant(storage, lease({ host: 'db-2', pid: 7 }, '3000-01-01T00:00:00.000Z'));
    const written = storage.objects.get(leaseKey('shop'))!.modified.getTime();
    clock.t = written + 23 * 3_600_000;
    const err = await acquireLease(storage, 'shop', options(clock)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseHeldError);
    expect((err as LeaseHeldError).lease.expiresAt).toBe(new Date(written + 86_400_000).toISOString());
    clock.t = written + 86_400_000;
    const taking = acquireLease(storage, 'shop', options(clock));
    await clock.advance(1000); // the read-back after a takeover
    const held = await taking;
    expect((await stored(storage))!.holder).toMatchObject({ host: 'db-1', pid: 100 });
    await held.release();
  });

  it('a lease whose creation answer was lost (the retry met it as existing) is recognised as ours', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const put = storage.put.bind(storage);
    storage.put = async (key, body, opts) => {
      await put(key, body, opts);
      if (opts?.ifAbsent) throw new StorageConflictError('memory', key);
      return { size: 0 };
    };
    const held = await acquireLease(storage, 'shop', options(clock));
    expect((await stored(storage))!.holder.pid).toBe(100);
    await held.release();
    expect(await stored(storage)).toBeUndefined();
  });
});

describe('confirming the lease before an irreversible step', () => {
  it('two runs that took over the same expired lease: the one whose lease was deleted by the other finds out before it commits', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    await plant(storage, lease({ host: 'db-2', pid: 7 }, '2026-12-01T01:59:59.000Z'));
    // B read the expired lease too; its delete arrives late, after A has settled and read its own back.
    const a = acquireLease(storage, 'shop', options(clock));
    await clock.advance(1000);
    const held = await a;
    await storage.delete(leaseKey('shop'));
    await plant(storage, lease({ host: 'db-3', token: 'late-taker' }, '2026-12-01T02:01:01.000Z'));
    const err = await held.confirm().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect((err as Error).message).toMatch(/taken over by host db-3/);
    expect(held.lost.aborted).toBe(true);
    await held.release();
    expect((await stored(storage))!.holder.token).toBe('late-taker');
  });

  it('withLeases hands the run a check per destination that passes while the lease is its own', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const outcome = await withLeases('shop', [storage], options(clock), async (_, signal, confirm) => {
      await confirm(storage);
      await plant(storage, lease({ host: 'db-2', token: 'usurper' }, '2026-12-01T03:00:00.000Z'));
      await confirm(storage).catch(() => {});
      return signal.aborted;
    });
    expect(outcome.result).toBe(true); // the run's signal aborted the moment the check failed
    expect(outcome.lost).toBeInstanceOf(LeaseLostError);
    expect((await stored(storage))!.holder.token).toBe('usurper'); // not released: not ours
  });
});

describe('a lease key that conflicts but reads as no lease', () => {
  it('is polled like a held lease, counted against the wait, then fails naming the key', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    let attempts = 0;
    storage.put = async (key) => {
      // Without a pause between attempts this would spin for ever; stop it to fail the test instead.
      if (++attempts > 100) throw new Error('retried without pausing');
      throw new StorageConflictError('memory', key);
    };
    const taking = acquireLease(storage, 'shop', options(clock, { waitMs: TTL })).catch((e: unknown) => e);
    await clock.advance(TTL);
    const err = await taking;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe(
      'memory: cannot create the lease of shop: shop/shop.lease.json is taken by something that is not a readable object (a directory, a dangling link?)',
    );
    // One attempt per poll interval (5 s at this TTL) over the one-minute wait.
    expect(attempts).toBe(13);
  });

  it('a directory at the key on local disk fails at once without a wait', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'shop', 'shop.lease.json'), { recursive: true });
    const storage = new LocalStorage(root);
    const put = storage.put.bind(storage);
    let attempts = 0;
    storage.put = (key, body, opts) => {
      if (++attempts > 100) throw new Error('retried without pausing');
      return put(key, body, opts);
    };
    const err = await acquireLease(storage, 'shop', options(new FakeClock())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/is taken by something that is not a readable object/);
  });
});

describe('renewal', () => {
  it('moves the expiry forward every third of the TTL', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    await clock.advance(TTL / 3);
    expect((await stored(storage))!.expiresAt).toBe(new Date(clock.t + TTL).toISOString());
    await clock.advance(TTL);
    expect((await stored(storage))!.expiresAt).toBe(new Date(clock.t + TTL).toISOString());
    expect(held.lost.aborted).toBe(false);
    await held.release();
  });

  it("this process's own identity (host name, pid, PID namespace) is one its renewals read back as its own", async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock, { self: processIdentity() }));
    expect((await stored(storage))!.holder).toMatchObject({
      pid: process.pid,
      pidNamespace: expect.stringMatching(/^pid:\[\d+\]$/),
      bootId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f-]{27}$/),
      startTime: expect.stringMatching(/^\d+$/),
    });
    await clock.advance(TTL);
    expect(held.lost.aborted).toBe(false);
    await held.release();
  });

  it('a lease taken over by someone else aborts the run and is not deleted on release', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    await plant(storage, lease({ host: 'db-2', token: 'usurper' }, '2026-12-01T03:00:00.000Z'));
    await clock.advance(TTL / 3);
    expect(held.lost.aborted).toBe(true);
    expect(held.lost.reason).toBeInstanceOf(LeaseLostError);
    expect((held.lost.reason as Error).message).toMatch(/was taken over by host db-2/);
    await held.release();
    expect((await stored(storage))!.holder.token).toBe('usurper');
  });

  it('a storage that keeps failing renewals aborts the run before the lease would expire', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    storage.put = async () => {
      throw new StorageError('memory: the service is down', { transient: true });
    };
    await clock.advance(TTL / 3);
    expect(held.lost.aborted).toBe(false); // one failure: tried again at the next tick
    await clock.advance(TTL / 3);
    expect(held.lost.aborted).toBe(true);
    expect((held.lost.reason as Error).message).toMatch(/could not be renewed before it expires/);
    expect(clock.t).toBeLessThan(Date.parse('2026-12-01T02:01:00.000Z'));
    await held.release();
  });
});

describe('a renewal that hangs', () => {
  it('the watchdog fires lost a sixth of the TTL before the expiry, and aborts the hung read', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    let aborted = false;
    storage.stat = (_key: string, opts?: OpOptions) =>
      new Promise<ObjectInfo | undefined>((_, reject) =>
        opts?.signal?.addEventListener('abort', () => {
          aborted = true;
          reject(opts.signal!.reason);
        }),
      );
    await clock.advance(TTL / 3); // the renewal starts and hangs
    await clock.advance(TTL / 2 - 1);
    expect(held.lost.aborted).toBe(false);
    await clock.advance(1); // 02:00:50, ten seconds before the lease expires
    expect(held.lost.aborted).toBe(true);
    expect((held.lost.reason as Error).message).toBe(
      'memory: the lease of shop was not renewed in time (it expires at 2026-12-01T02:01:00.000Z); this run stopped',
    );
    expect(aborted).toBe(true);
    await held.release();
  });

  it("a renewal whose read answers after the lease was lost never writes it: the new holder's lease stays", async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    const stat = storage.stat.bind(storage);
    let answer: () => void = () => {};
    storage.stat = (key: string) =>
      new Promise<ObjectInfo | undefined>((resolve) => {
        answer = () => resolve(stat(key));
      });
    const puts: string[] = [];
    const put = storage.put.bind(storage);
    storage.put = async (key, body, opts) => {
      puts.push(key);
      return put(key, body, opts);
    };
    await clock.advance(TTL / 3); // the renewal's read is sent, and stalls, ignoring its signal
    await clock.advance(TTL / 2);
    expect(held.lost.aborted).toBe(true);
    await clock.advance(TTL / 6); // expired: another run takes it
    storage.stat = stat;
    await plant(storage, lease({ host: 'db-2', token: 'next' }, '2026-12-01T02:02:00.000Z'));
    puts.length = 0;
    answer();
    await clock.advance(1000);
    const released = held.release();
    await clock.advance(1000);
    expect(await released).toBeUndefined();
    expect(puts).toEqual([]);
    expect((await stored(storage))!.holder.token).toBe('next');
  });

  it('a process that wakes after its lease would have expired (SIGSTOP) stops before renewing or confirming', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const held = await acquireLease(storage, 'shop', options(clock));
    clock.t += TTL; // no timer ran meanwhile
    const err = await held.confirm().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect((err as Error).message).toMatch(/not renewed in time/);
    await held.release();
    // Left to expire, not deleted: another run may already be taking it over.
    expect((await stored(storage))!.holder.pid).toBe(100);
  });
});

/** In-memory storage that, like an unmodified s3rver, ignores `ifAbsent` and says so. */
class UnconditionalStorage extends MemoryStorage {
  override async put(key: string, body: Parameters<MemoryStorage['put']>[1], options: PutOptions = {}) {
    const result = await super.put(key, body, { ...options, ifAbsent: false });
    return { ...result, ifAbsentEnforced: !options.ifAbsent };
  }
}

describe('without conditional writes', () => {
  it('two runs that create the lease at the same moment: the read-back lets only the later write hold it', async () => {
    const clock = new FakeClock();
    const storage = new UnconditionalStorage();
    const a = acquireLease(storage, 'shop', options(clock, { self: { ...HERE, pid: 1 } })).catch(
      (e: unknown) => e,
    );
    const b = acquireLease(storage, 'shop', options(clock, { self: { ...HERE, pid: 2 } })).catch(
      (e: unknown) => e,
    );
    await clock.advance(1000);
    const results = await Promise.all([a, b]);
    const winners = results.filter((r) => !(r instanceof Error));
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r instanceof LeaseHeldError)).toHaveLength(1);
    expect((await stored(storage))!.holder.pid).toBe(2);
  });
});

describe('withLeases', () => {
  it('holds the lease in every destination during the run and releases them after', async () => {
    const clock = new FakeClock();
    const [one, two] = [new MemoryStorage(), new MemoryStorage()];
    const seen: (LeaseRecord | undefined)[] = [];
    const run = await withLeases('shop', [one, two], options(clock), async (held) => {
      expect(held).toEqual([one, two]);
      seen.push(await stored(one), await stored(two));
      return 'done';
    });
    expect(run).toMatchObject({ result: 'done', unavailable: [], lost: undefined, warnings: [] });
    expect(seen.map((l) => l?.holder.pid)).toEqual([100, 100]);
    expect([await stored(one), await stored(two)]).toEqual([undefined, undefined]);
  });

  it('a destination whose lease cannot be written is left out and reported; another holder stops everything', async () => {
    const clock = new FakeClock();
    const [good, down] = [new MemoryStorage(), new MemoryStorage()];
    down.stat = async () => {
      throw new StorageError('memory: unreachable');
    };
    const run = await withLeases('shop', [good, down], options(clock), async (held) => held.length);
    expect(run.result).toBe(1);
    expect(run.unavailable.map((u) => (u.error as Error).message)).toEqual(['memory: unreachable']);

    const busy = new MemoryStorage();
    await plant(busy, lease({ host: 'db-2' }, '2026-12-01T03:00:00.000Z'));
    let ran = false;
    const err = await withLeases('shop', [good, busy], options(clock), async () => {
      ran = true;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseHeldError);
    expect(ran).toBe(false);
    expect(await stored(good)).toBeUndefined(); // the lease it had taken is given back
  });

  it('a lease lost during the run aborts its signal and fails it with LeaseLostError', async () => {
    const clock = new FakeClock();
    const storage = new MemoryStorage();
    const running = withLeases('shop', [storage], options(clock), async (_, signal) => {
      await plant(storage, lease({ host: 'db-2', token: 'usurper' }, '2026-12-01T03:00:00.000Z'));
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    }).catch((e: unknown) => e);
    await clock.advance(TTL / 3);
    expect(await running).toBeInstanceOf(LeaseLostError);
  });
});
