/**
 * Whether a manifest's times can be believed, as a pure function of the manifest and the clock. Storage is
 * untrusted: anyone who can write it can forge a manifest dated next year, and
 * a manifest written while the host's clock was wrong looks the same. Such a backup is *suspect*:
 *   - it never fills a keep rule or the min-keep floor (prune passes the reason as a retention problem,
 *     so rule 5 of retention/policy.ts keeps it, inert, inside the retention window);
 *   - it is never `latest` (an explicit id still restores, with a warning naming the reason);
 *   - it never counts as the daemon's last success after a restart (the dead man's switch stays armed);
 *   - `list` marks it and prune shows the reason.
 * Once the clock passes its dates it is an ordinary backup again: a backup taken while the clock ran
 * ahead is real data, and is never deleted for its dates alone.
 */

import { parseBackupId } from './layout.ts';
import type { Manifest } from './manifest.ts';

/** How far ahead of `now` a backup's times may be: clocks of two hosts sharing storage drift a little. */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/**
 * How far `createdAt` may be from the time in the backup's id. The backup job makes both from the same
 * instant, the id truncated to the second, so a real manifest is 0-999 ms after its id's time; the rest
 * is slack for a rounding of the stored milliseconds.
 */
export const ID_TOLERANCE_MS = 2_000;

/** The times a trust decision reads: the manifest's own fields. */
export type ManifestTimes = Pick<Manifest, 'id' | 'createdAt' | 'finishedAt'>;

/**
 * Why the manifest's times cannot be trusted at `now`, or undefined when they can. The reason names the
 * field and both times, so `list` and `prune --dry-run` can show it as is.
 */
export function manifestDistrust(m: ManifestTimes, now: Date): string | undefined {
  const created = Date.parse(m.createdAt);
  const finished = Date.parse(m.finishedAt);
  const idTime = parseBackupId(m.id)?.time.getTime();
  if (Number.isNaN(created) || Number.isNaN(finished)) return 'its times cannot be read';
  const limit = now.getTime() + FUTURE_TOLERANCE_MS;
  if (created > limit) return `created in the future (${m.createdAt}; the time here is ${now.toISOString()})`;
  if (finished > limit) {
    return `finished in the future (${m.finishedAt}; the time here is ${now.toISOString()})`;
  }
  if (idTime === undefined) return 'its id holds no time';
  const skew = created - idTime;
  if (skew < 0 || skew >= ID_TOLERANCE_MS) {
    return `created at ${m.createdAt}, but its id says ${new Date(idTime).toISOString()}`;
  }
  if (finished < created) return `finished (${m.finishedAt}) before it was created (${m.createdAt})`;
  return undefined;
}

/**
 * When retention should place a suspect backup (a trusted one is placed at its `createdAt`): the earlier
 * of its `createdAt` and its id's time, so an inconsistent manifest ages out with the older of its two
 * claims rather than the later.
 */
export function retentionTime(m: ManifestTimes): Date {
  const created = Date.parse(m.createdAt);
  const idTime = parseBackupId(m.id)?.time.getTime() ?? created;
  return new Date(Math.min(created, idTime));
}
