/**
 * Scheduled restore drills (DATASAVER_DRILL_SCHEDULE): the daemon drills each target's newest backup on
 * the target's drill schedule (jobs/drill.ts). A drill runs beside the target's backups (it reads
 * storage and writes only its record, and retention never removes the newest backup), never beside
 * another drill of the target: a drill time that arrives while one is going is skipped and logged.
 * Each result goes to `/health` (a failed drill makes the target unhealthy until a later one passes),
 * `/metrics`, the log and notifications (`drill-failure`, and `drill-success` with on_success).
 */

import { trustedBackups } from '../catalog/catalog.ts';
import { readDrillRecord } from '../catalog/records.ts';
import type { TargetConfig } from '../config/types.ts';
import { type DrillResult, drillStatus, drillStatusOfRecord } from '../jobs/drill.ts';
import { drillEvent } from '../notify/events.ts';
import { planNext } from '../schedule/cron.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage } from '../util/errors.ts';
import { redact } from '../util/secret.ts';
import { waitForPlan } from './clock.ts';
import { type DaemonContext, historyOf, type Slot } from './slot.ts';
import { updateHealthGauge } from './watchdog.ts';

/** How far ahead of the daemon's clock a drill record may be dated (another machine's clock). */
const CLOCK_SLACK_MS = 5 * 60_000;

/**
 * Drills the newest backup of a target in its destinations; resolves undefined when it has none yet.
 * Throws when the drill cannot run (no scratch server, storage that cannot be read, an abort).
 */
export type RunDrill = (
  target: TargetConfig,
  destinations: StorageBackend[],
  signal: AbortSignal,
) => Promise<DrillResult | undefined>;

export class DrillScheduler {
  readonly #ctx: DaemonContext;
  readonly #runDrill: RunDrill;
  readonly #random: () => number;

  constructor(ctx: DaemonContext, runDrill: RunDrill, random: () => number) {
    this.#ctx = ctx;
    this.#runDrill = runDrill;
    this.#random = random;
  }

  /** Plans the slot's next drill (after the drill time `previous` that just fired). */
  arm(slot: Slot, previous?: Date): void {
    const schedule = slot.drillSchedule;
    if (!schedule || this.#ctx.signal.aborted) return;
    const plan = planNext(
      schedule,
      this.#ctx.clock.now(),
      slot.target.schedule.jitterSeconds * 1000,
      this.#random,
      previous,
    );
    slot.status.nextDrill = plan ? plan.at.toISOString() : null;
    if (!plan) return;
    waitForPlan(
      this.#ctx.clock,
      plan,
      this.#ctx.signal,
      (timer) => {
        slot.drillTimer = timer;
      },
      () => {
        this.arm(slot, plan.nominal);
        this.trigger(slot);
      },
    );
  }

  /**
   * Until this process has drilled the target, the newest backup's drill record in storage is its last
   * drill, so a restart does not clear a failed drill from `/health`. With verify keys set, only a failed
   * record is taken (records carry no signature). Never throws.
   */
  async seed(slot: Slot): Promise<void> {
    const { signal } = this.#ctx;
    if (!slot.drillSchedule) return;
    try {
      const newest = (
        await trustedBackups(slot.destinations, slot.target.name, { signal, trust: slot.target.signing })
      )[0];
      if (!newest) return;
      const { manifest, storage } = newest;
      const record = await readDrillRecord(storage, manifest.target, manifest.id, signal);
      if (!record || slot.status.lastDrill || slot.drilling) return;
      // A record dated before its backup or ahead of the clock is forged or garbled: it must not stand
      // for a recent drill (it would keep a drill-age alert quiet).
      const at = Date.parse(record.drilledAt);
      if (at < Date.parse(manifest.createdAt) || at > this.#ctx.clock.now().getTime() + CLOCK_SLACK_MS)
        return;
      const status = drillStatusOfRecord(record);
      // Records are not signed: with verify keys set, storage is not trusted to say a drill passed (a
      // planted record would quiet the drill-age alert); a failure it records still stands.
      if (status.result === 'passed' && slot.target.signing.verifyKeys.length > 0) return;
      slot.status.lastDrill = status;
      if (status.result === 'passed') {
        this.#ctx.metrics.drillLastSuccess.set(
          { target: slot.target.name },
          Date.parse(status.finishedAt) / 1000,
        );
      }
      updateHealthGauge(this.#ctx, slot);
    } catch (err) {
      // No backup yet, or storage that cannot be read now: the first drill will tell.
      if (!signal.aborted)
        this.#ctx.log.debug(
          { target: slot.target.name, error: redact(errorMessage(err)) },
          'no drill record read at start',
        );
    }
  }

  /** Starts a drill of the slot's target now, unless one is going. */
  trigger(slot: Slot): void {
    const { log } = this.#ctx;
    if (this.#ctx.signal.aborted) return;
    if (slot.drilling) {
      log.warn(
        { target: slot.target.name },
        'skipped a scheduled drill: the previous drill of this target is still going',
      );
      return;
    }
    slot.status.drilling = true;
    slot.drilling = this.#drill(slot)
      .catch((err: unknown) => {
        log.error(
          { target: slot.target.name, error: redact(errorMessage(err)) },
          'internal error in a drill',
        );
      })
      .finally(() => {
        slot.status.drilling = false;
        slot.drilling = undefined;
      });
  }

  async #drill(slot: Slot): Promise<void> {
    const { target } = slot;
    const { clock, signal } = this.#ctx;
    const log = this.#ctx.log.child({ target: target.name });
    const startedAt = clock.now();
    log.info('drill started');
    let result: DrillResult | undefined;
    try {
      result = await this.#runDrill(target, slot.destinations, signal);
    } catch (err) {
      if (signal.aborted) {
        log.warn('drill interrupted by shutdown; its scratch copy was removed');
        return;
      }
      const error = redact(errorMessage(err), [
        target.connection.password,
        target.drill.server?.connection.password,
      ]);
      this.#record(slot, drillStatus({ error, backupId: null }, startedAt, clock.now()));
      return;
    }
    if (!result) {
      log.info('no backup to drill yet');
      return;
    }
    this.#record(slot, drillStatus({ result }, startedAt, clock.now()));
  }

  #record(slot: Slot, status: ReturnType<typeof drillStatus>): void {
    const log = this.#ctx.log.child({ target: slot.target.name });
    slot.status.lastDrill = status;
    this.#ctx.metrics.observeDrill(slot.target.name, status);
    const fields = {
      backupId: status.backupId,
      reason: status.reason,
      restoreMs: status.restoreMs,
      compared: status.compared,
      mismatches: status.mismatches,
    };
    if (status.result === 'passed')
      log.info(fields, 'drill passed: the backup restored to the data it was taken from');
    else if (status.result === 'failed')
      log.error({ ...fields, error: status.message }, 'the backup failed its restore drill');
    else log.error({ error: status.message }, 'the restore drill could not run');
    this.#ctx.announce(slot, drillEvent(status, historyOf(slot)));
    updateHealthGauge(this.#ctx, slot);
  }
}
