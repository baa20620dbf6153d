/**
 * A deterministic backup history for retention tests: 400 days of nightly backups ending the day before
 * `now`, with gaps (days with no backup), days with a second backup in the afternoon, and failed runs
 * mixed in (backups whose verification failed).
 */

import { backupId } from '../../src/catalog/layout.ts';
import type { RetentionCandidate } from '../../src/retention/policy.ts';

export const HISTORY_NOW = new Date('2026-11-22T12:00:00Z');

export function history400Days(): RetentionCandidate[] {
  const out: RetentionCandidate[] = [];
  const first = Date.UTC(2025, 9, 18); // 400 days before 2026-11-22
  for (let day = 0; day < 400; day++) {
    if ([5, 6, 7].includes(day % 37)) continue; // three-day outages
    const night = new Date(first + day * 86_400_000 + (2 * 3600 + 15) * 1000); // 02:00:15 UTC
    const failed = day % 13 === 0;
    out.push({
      id: backupId('shop', night),
      time: night,
      problem: failed ? 'verify failed (checksum)' : undefined,
    });
    if (day % 10 === 3) {
      const afternoon = new Date(night.getTime() + 12.5 * 3_600_000); // 14:30:15 UTC
      out.push({ id: backupId('shop', afternoon), time: afternoon });
    }
  }
  return out;
}
