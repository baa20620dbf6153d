/**
 * Scheduled restore drills in the daemon, with fake time and fake drills: a drill on its own schedule
 * beside backups, its result in /health and /metrics, a failed drill notifying and turning the target
 * unhealthy until a later one passes, a drill that cannot run reported without judging the backup, and
 * shutdown waiting for a running drill.
 */
import { describe, expect, it } from 'vitest';
import { drillKey } from '../../src/catalog/layout.ts';
import { generateSigningKey } from '../../src/catalog/signature.ts';
import type { RunDrill } from '../../src/daemon/drills.ts';
import type { DrillResult } from '../../src/jobs/drill.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { ConnectionError } from '../../src/util/errors.ts';
import { setup } from '../support/fake-daemon.ts';
import { storeBackup } from '../support/manifests.ts';

const DRILLS = { cron: '0 * * * * *' };

function result(ok: boolean, id = 'shop-20261122T000000Z'): DrillResult {
  return {
    id,
    target: 'shop',
    ok,
    reason: ok ? null : 'drill',
    message: ok
      ? null
      : "the restored copy differs from the backup's facts in 1 item(s): table public.orders: expected 10, found 9",
    place: 'throwaway test server',
    restoreMs: 1500,
    compared: 4,
    differences: ok ? [] : [{ item: 'table public.orders', expected: '10', found: '9' }],
    expired: [],
    note: null,
  };
}

/** Drills that wait for the test to settle them. */
class Drills {
  readonly calls: { settle: (r: DrillResult | Error) => void; signal: AbortSignal }[] = [];
  readonly run: RunDrill = (_target, _destinations, signal) =>
    new Promise((resolve, reject) => {
      this.calls.push({ settle: (r) => (r instanceof Error ? reject(r) : resolve(r)), signal });
    });
}

function drillSetup() {
  const drills = new Drills();
  const env = setup(
    {
      schedule: { cron: '0 0 3 * * *', jitterSeconds: 0, retryAttempts: 1, retryDelaySeconds: 1 },
      drill: { server: undefined, schedule: DRILLS.cron },
    },
    { runDrill: drills.run },
  );
  const target = () => env.daemon.health().report.targets[0]!;
  return { ...env, drills, target };
}

describe('scheduled restore drills', () => {
  it('drills on their own schedule and show in /health and /metrics; a drill time during a drill is skipped', async () => {
    const { clock, drills, daemon, metric, target, runs } = drillSetup();
    await daemon.start();
    expect(target()).toMatchObject({ drillSchedule: DRILLS.cron, nextDrill: '2026-11-22T00:01:00.000Z' });
    await clock.advance(60_000);
    expect(drills.calls).toHaveLength(1);
    expect(target().drilling).toBe(true);
    await clock.advance(60_000); // the next drill time while the first drill still runs
    expect(drills.calls).toHaveLength(1);
    drills.calls[0]!.settle(result(true));
    await clock.advance(0);
    expect(target()).toMatchObject({
      drilling: false,
      healthy: true,
      lastDrill: {
        result: 'passed',
        backupId: 'shop-20261122T000000Z',
        restoreMs: 1500,
        compared: 4,
        mismatches: 0,
      },
    });
    expect(await metric('datasaver_drill_last_restore_seconds')).toBe(1.5);
    expect(await metric('datasaver_drill_last_items_compared')).toBe(4);
    expect(await metric('datasaver_drill_last_success_timestamp_seconds')).toBe(
      Date.parse('2026-11-22T00:02:00Z') / 1000,
    );
    expect(runs.calls).toHaveLength(0); // drills run on their own schedule, not the backups'
  });

  it('a failed drill notifies, turns the target unhealthy and counts; a later drill that passes clears it', async () => {
    const { clock, drills, daemon, metric, target, sent, events } = drillSetup();
    await daemon.start();
    await clock.advance(60_000);
    drills.calls[0]!.settle(result(false));
    await clock.advance(0);
    expect(daemon.health().httpStatus).toBe(503);
    expect(target().healthy).toBe(false);
    expect(target().reasons[0]).toContain('failed its restore drill');
    // Without DATASAVER_HEALTH_DETAILS, no table name reaches /health.
    expect(JSON.stringify(target().lastDrill)).not.toContain('orders');
    expect(events()).toEqual(['drill-failure']);
    expect(sent[0]!.drill).toMatchObject({ result: 'failed', reason: 'drill', mismatches: 1 });
    expect(sent[0]!.message).toContain('failed its restore drill');
    expect(await metric('datasaver_drill_last_mismatches')).toBe(1);
    await clock.advance(60_000);
    drills.calls[1]!.settle(result(true));
    await clock.advance(0);
    expect(target().healthy).toBe(true);
    expect(events()).toEqual(['drill-failure', 'drill-success']);
  });

  it('a drill that cannot run is reported and notified, and judges nothing', async () => {
    const { clock, drills, daemon, target, events } = drillSetup();
    await daemon.start();
    await clock.advance(60_000);
    drills.calls[0]!.settle(new ConnectionError('drill server unreachable'));
    await clock.advance(0);
    expect(target()).toMatchObject({ healthy: true, lastDrill: { result: 'error', backupId: null } });
    expect(events()).toEqual(['drill-failure']);
  });

  it("a restart is not a reset: the newest backup's failed drill record keeps the target unhealthy", async () => {
    const storage = new MemoryStorage();
    const older = await storeBackup(storage, new Date('2026-11-20T02:00:00Z'), { drilled: true });
    const newest = await storeBackup(storage, new Date('2026-11-21T02:00:00Z'), { drilled: false });
    const { daemon, clock } = setup(
      { drill: { server: undefined, schedule: DRILLS.cron } },
      { storage, runDrill: new Drills().run },
    );
    await daemon.start();
    await clock.advance(0);
    const target = daemon.health().report.targets[0]!;
    expect(target.lastDrill).toMatchObject({
      backupId: newest.id,
      result: 'failed',
      restoreMs: 1200,
      mismatches: 1,
    });
    expect(target.healthy).toBe(false);
    expect(older.id).not.toBe(newest.id);
  });

  it('a drill record dated ahead of the clock is not believed at start', async () => {
    const storage = new MemoryStorage();
    const backup = await storeBackup(storage, new Date('2026-11-21T02:00:00Z'), { drilled: true });
    const record = JSON.parse(storage.objects.get(drillKey('shop', backup.id))!.data.toString());
    await storage.put(drillKey('shop', backup.id), [
      Buffer.from(JSON.stringify({ ...record, drilledAt: '2099-01-01T00:00:00Z' })),
    ]);
    const { daemon, clock, metric } = setup(
      { drill: { server: undefined, schedule: DRILLS.cron } },
      { storage, runDrill: new Drills().run },
    );
    await daemon.start();
    await clock.advance(0);
    expect(daemon.health().report.targets[0]!.lastDrill).toBeNull();
    expect(await metric('datasaver_drill_last_success_timestamp_seconds')).toBeUndefined();
  });

  it('with verify keys, a passed drill record in storage is not believed at start; a failed one is', async () => {
    const key = generateSigningKey();
    const signing = { signingKey: key, verifyKeys: [key.verifyKey] };
    for (const drilled of [true, false]) {
      const storage = new MemoryStorage();
      await storeBackup(storage, new Date('2026-11-21T02:00:00Z'), { drilled, signWith: key });
      const { daemon, clock, metric } = setup(
        { drill: { server: undefined, schedule: DRILLS.cron }, signing },
        { storage, runDrill: new Drills().run },
      );
      await daemon.start();
      await clock.advance(0);
      const { lastDrill } = daemon.health().report.targets[0]!;
      if (drilled) {
        expect(lastDrill).toBeNull();
        expect(await metric('datasaver_drill_last_success_timestamp_seconds')).toBeUndefined();
      } else {
        expect(lastDrill).toMatchObject({ result: 'failed' });
      }
      await daemon.stop(1000);
    }
  });

  it('shutdown aborts a running drill and waits for it', async () => {
    const { clock, drills, daemon } = drillSetup();
    await daemon.start();
    await clock.advance(60_000);
    const call = drills.calls[0]!;
    call.signal.addEventListener('abort', () => call.settle(new Error('aborted')));
    expect(await daemon.stop(5000)).toBe(true);
    expect(call.signal.aborted).toBe(true);
  });
});
