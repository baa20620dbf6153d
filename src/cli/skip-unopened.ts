/**
 * `verify all` and `drill all` go on past a backup their key does not open. Such a backup is encrypted to
 * a key this machine lacks (an older identity after a rotation, or, without verify keys, a manifest
 * someone planted): a key problem, not damage, so it is reported and skipped, no record is written, and
 * the backups after it are still checked. One backup named alone fails as before.
 */

import { ConfigError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import type { CliContext } from './context.ts';

/** A backup that was not checked because no configured key opens it. */
export interface SkippedBackup {
  id: string;
  message: string;
}

/**
 * Runs `check` for backup `id`; when several backups are checked and it throws a ConfigError (no key, or
 * a key that opens none of its recipients), records the backup in `skipped`, warns, and returns
 * undefined. Any other error, or the only backup's, passes through.
 */
export async function skipUnopened<T>(
  ctx: CliContext,
  count: number,
  skipped: SkippedBackup[],
  id: string,
  check: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await check();
  } catch (err) {
    if (!(err instanceof ConfigError) || count === 1) throw err;
    skipped.push({ id, message: err.message });
    ctx.stderr.write(`warning: skipped ${id}: ${printable(err.message)}\n`);
    return undefined;
  }
}
