/**
 * The dead man's switch: a timer of its own that reads only the recorded results, so a run that hangs
 * forever still turns its target stale. One `stale` notification goes out per alert window.
 */
import { staleEvent } from '../notify/events.ts';
import { targetHealth } from '../server/health.ts';
import { errorMessage } from '../util/errors.ts';
import type { Timer } from './clock.ts';
import { type DaemonContext, historyOf, type Slot } from './slot.ts';

export class StaleWatchdog {
  readonly #ctx: DaemonContext;
  readonly #slots: readonly Slot[];
  #timer: Timer | undefined;

  /** Watches `slots`, the daemon's own list: targets added to it later are watched too. */
  constructor(ctx: DaemonContext, slots: readonly Slot[]) {
    this.#ctx = ctx;
    this.#slots = slots;
  }

  /** Checks now, then again every tenth of the shortest alert window (1 s to 1 min) until `stop`. */
  start(): void {
    this.check();
    if (this.#ctx.signal.aborted) return;
    const shortest = Math.min(...this.#slots.map((s) => s.target.alertAfterHours * 3_600_000));
    const every = Math.min(60_000, Math.max(1000, Math.floor(shortest / 10)));
    this.#timer = this.#ctx.clock.setTimer(() => this.start(), every);
  }

  stop(): void {
    this.#timer?.cancel();
  }

  /** Sends `stale` for every target without a success in its window, once per window. Never throws. */
  check(): void {
    const { clock, log } = this.#ctx;
    try {
      const now = clock.now();
      for (const slot of this.#slots) {
        const health = updateHealthGauge(this.#ctx, slot);
        if (!health.stale) continue;
        const windowMs = slot.target.alertAfterHours * 3_600_000;
        if (slot.staleNotifiedAt !== undefined && now.getTime() - slot.staleNotifiedAt < windowMs) continue;
        slot.staleNotifiedAt = now.getTime();
        const reason = health.reasons.at(-1) ?? 'no recent successful backup';
        log.error({ target: slot.target.name, reason }, 'target is stale');
        this.#ctx.announce(slot, staleEvent(reason, historyOf(slot)));
      }
    } catch (err) {
      log.error({ error: errorMessage(err) }, 'internal error in the stale check');
    }
  }
}

/** The target's health now, also set as its `datasaver_target_healthy` gauge. */
export function updateHealthGauge(ctx: DaemonContext, slot: Slot) {
  const health = targetHealth(slot.status, ctx.clock.now(), ctx.startedAt());
  ctx.metrics.healthy.set({ target: slot.target.name }, health.healthy ? 1 : 0);
  return health;
}
