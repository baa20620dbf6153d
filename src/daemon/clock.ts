/** The daemon's time: injected, so the scheduling rules are tested with fake time. */

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
