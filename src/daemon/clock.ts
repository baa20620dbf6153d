/** The daemon's time: injected, so the scheduling rules are tested with fake time. */
import type { PlannedRun } from '../schedule/cron.ts';

export interface Timer {
  /** Stops the timer; its function is not called. Calling it again, or after it fired, does nothing. */
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /** Calls `fn` after `ms` (never more than MAX_TIMER_MS). */
  setTimer(fn: () => void, ms: number): Timer;
}

/**
 * The longest single timer: waits are done in steps of at most an hour, each re-reading the clock, so a
 * wall-clock change (NTP step, suspended VM) moves the run to the right time within the hour, and
 * setTimeout's 24.8-day limit is never reached.
 */
export const MAX_TIMER_MS = 3_600_000;

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Waits for a planned run on `clock` in steps of at most MAX_TIMER_MS, each re-reading the clock, and
 * calls `fire` at its time (not when `signal` aborted first; a wall clock set back meanwhile makes it
 * wait on). `onTimer` receives each step's timer, for the caller to cancel.
 */
export function waitForPlan(
  clock: Clock,
  plan: PlannedRun,
  signal: AbortSignal,
  onTimer: (timer: Timer) => void,
  fire: () => void,
): void {
  const delay = plan.at.getTime() - clock.now().getTime();
  if (delay > MAX_TIMER_MS) {
    onTimer(clock.setTimer(() => waitForPlan(clock, plan, signal, onTimer, fire), MAX_TIMER_MS));
    return;
  }
  onTimer(
    clock.setTimer(
      () => {
        if (signal.aborted) return;
        if (plan.at.getTime() - clock.now().getTime() > 1000)
          return waitForPlan(clock, plan, signal, onTimer, fire);
        fire();
      },
      Math.max(0, delay),
    ),
  );
}
