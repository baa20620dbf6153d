/**
 * The drill row: what `datasaver drill --json` reports, and how it is judged against its baseline.
 *
 * A drill starts a throwaway server of its own (initdb, start), restores into it, reads the copy's facts
 * and removes the server. Only its restore (checksum pass included: what `restoreMs` measures) does what
 * the baseline, `createdb` + `pg_restore -d` on the benchmark server, does; the ratio with a target uses
 * that. The drill's whole wall time against the baseline is shown beside it, without a target.
 */
import { type Check, check, type Summary } from './report.ts';

export interface DrillOutcome {
  /** The restore's own time, from `restoreMs`. */
  restoreSeconds: number;
  /** The backup restored and its copy matched its facts, item by item. */
  passed: boolean;
}

/** The programs of a drill's throwaway server, measured apart from datasaver (with what they start). */
export function isThrowawayServer(name: string): boolean {
  // The server retitles its processes `postgres: checkpointer` and the like.
  return name === 'initdb' || name === 'pg_ctl' || name === 'postgres' || name.startsWith('postgres:');
}

/** The single drill of `datasaver drill <id> --json`; throws when the output is not one drill. */
export function drillOutcome(stdout: string): DrillOutcome {
  const parsed = JSON.parse(stdout) as {
    drills?: { ok?: unknown; restoreMs?: unknown; compared?: unknown }[];
  };
  const [drill, ...more] = parsed.drills ?? [];
  if (!drill || more.length > 0 || typeof drill.restoreMs !== 'number') {
    throw new Error(
      `datasaver drill --json did not report one drill with its restoreMs: ${stdout.slice(0, 500)}`,
    );
  }
  // A drill that compared nothing (facts that are estimates) restored, but proved nothing.
  const passed = drill.ok === true && typeof drill.compared === 'number' && drill.compared > 0;
  return { restoreSeconds: drill.restoreMs / 1000, passed };
}

/** datasaver's own peak RSS (the `node` process), not the throwaway server's or its tools'. */
export function ownPeakRssKb(summary: Summary): number | null {
  return summary.processes.find((p) => p.label === 'node')?.peakRssKb ?? null;
}

/** The drill's checks: its restore against the baseline, and datasaver's memory. */
export function drillChecks(drill: Summary | undefined, baseline: Summary | undefined): Check[] {
  const restore = drill?.restoreSeconds;
  const own = drill ? ownPeakRssKb(drill) : null;
  return [
    check(
      'drill restore: restoreMs / (createdb + pg_restore)',
      restore !== undefined && baseline ? restore / baseline.wallSeconds : null,
      '<=',
      1.2,
    ),
    check('datasaver drill peak RSS, node only (MB)', own === null ? null : own / 1024, '<=', 150),
  ];
}

/** The ratio shown without a target: the drill's whole wall time (initdb, server start, compare, cleanup included). */
export function drillTotalRatio(drill: Summary | undefined, baseline: Summary | undefined): number | null {
  return drill && baseline ? drill.wallSeconds / baseline.wallSeconds : null;
}
