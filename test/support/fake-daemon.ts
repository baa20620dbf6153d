/**
 * The daemon with fake time, fake runs and fake drills, for the unit tests of its rules: a clock whose
 * timers fire as the test moves time on, runs the test settles by hand, and the notifications sent.
 */
import { pino } from 'pino';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { type Clock, MAX_TIMER_MS, type Timer } from '../../src/daemon/clock.ts';
import { Daemon } from '../../src/daemon/daemon.ts';
import type { RunDrill } from '../../src/daemon/drills.ts';
import type { RunTarget } from '../../src/daemon/run.ts';
import type { ReadUsage } from '../../src/daemon/usage.ts';
import type { CycleResult } from '../../src/jobs/cycle.ts';
import { type Notification, Notifier } from '../../src/notify/channels.ts';
import { DaemonMetrics } from '../../src/server/metrics.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { Secret } from '../../src/util/secret.ts';

export class FakeClock implements Clock {
  #t: number;
  #timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  constructor(iso: string) {
    this.#t = Date.parse(iso);
  }
  now(): Date {
    return new Date(this.#t);
  }
  setTimer(fn: () => void, ms: number): Timer {
    if (ms > MAX_TIMER_MS || ms < 0) throw new Error(`timer of ${ms} ms`);
    const timer = { at: this.#t + ms, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
  /** Moves time forward, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#t + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#t = Math.max(this.#t, due.at);
      due.fn();
    }
    this.#t = end;
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

export function manifest(id: string, finishedAt: string): Manifest {
  return {
    id,
    target: 'shop',
    finishedAt,
    createdAt: finishedAt,
    durationMs: 1000,
    sizeBytes: 1000,
    storedBytes: 100,
  } as Manifest;
}

/** Each call to runTarget waits for the test to settle it. */
export class Runs {
  readonly calls: { resolve: (r: CycleResult) => void; reject: (e: unknown) => void; signal: AbortSignal }[] =
    [];
  /** Whether a run says it started (took its lease) as soon as it is called. */
  startsAtOnce = true;
  readonly run: RunTarget = (_target, destinations, signal, onStarted) =>
    new Promise((resolve, reject) => {
      if (this.startsAtOnce) onStarted();
      this.calls.push({
        resolve: (r) => resolve({ ...r, backup: { ...r.backup, committed: destinations } }),
        reject,
        signal,
      });
    });
  succeed(i: number, id: string, at: string): void {
    this.calls[i]!.resolve({
      backup: { manifest: manifest(id, at), verified: false, committed: [], failures: [] },
      copies: [],
      pruned: [{ storage: 'memory', removed: 2 } as CycleResult['pruned'][number]],
      problems: [],
      warnings: [],
      interrupted: false,
    });
  }
}

export function setup(
  overrides: Partial<TargetConfig> = {},
  options: {
    readUsage?: ReadUsage;
    start?: string;
    random?: () => number;
    healthDetails?: boolean;
    destinations?: () => StorageBackend[];
    storage?: MemoryStorage;
    runDrill?: RunDrill;
  } = {},
) {
  const clock = new FakeClock(options.start ?? '2026-11-22T00:00:00Z');
  const runs = new Runs();
  const sent: Notification[] = [];
  const notifier = new Notifier({
    log: { warn: () => {}, debug: () => {} },
    fetch: async (_url, init) => {
      sent.push(JSON.parse(String(init?.body)) as Notification);
      return new Response(null, { status: 200 });
    },
  });
  const metrics = new DaemonMetrics({ processMetrics: false });
  const sleeps: number[] = [];
  const logs: Record<string, unknown>[] = [];
  const plain = offlineTarget('shop', undefined);
  const target: TargetConfig = {
    ...plain,
    connection: { ...plain.connection, password: new Secret('hunter2') },
    schedule: { cron: '*/10 * * * * *', jitterSeconds: 0, retryAttempts: 3, retryDelaySeconds: 30 },
    ...overrides,
  };
  target.notify = { ...target.notify, webhookUrl: new Secret('http://hook.invalid/x'), onSuccess: true };
  const daemon = new Daemon({
    targets: [target],
    log: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
    metrics,
    notifier,
    openDestinations: async () => options.destinations?.() ?? [options.storage ?? new MemoryStorage()],
    runTarget: runs.run,
    runDrill: options.runDrill ?? (async () => undefined),
    readUsage: options.readUsage ?? (async () => ({ backups: 0, bytes: 0, newest: undefined })),
    clock,
    random: options.random ?? (() => 0),
    sleep: async (ms) => void sleeps.push(ms),
    healthDetails: options.healthDetails ?? false,
  });
  const metric = async (name: string) => {
    const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
    return m?.values.find((v) => v.labels.target === 'shop')?.value;
  };
  const events = () => sent.map((n) => n.event);
  return { clock, runs, sent, events, daemon, metrics, metric, sleeps, logs };
}
