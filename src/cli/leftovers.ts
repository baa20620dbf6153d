/**
 * What a crashed run left on this host: every command starts by removing the private temporary
 * directories (spooled dumps, MySQL option files, SQLite copies) of datasaver processes that are gone.
 * A sweep never fails a command: what cannot be removed is reported and left for the next start.
 */
import { TEMP_DIR_TOOLS } from '../engines/registry.ts';
import { errorMessage } from '../util/errors.ts';
import { type SweepResult, sweepStaleTempDirs } from '../util/private-temp.ts';
import type { Out } from './output.ts';

/** Sweeps `parent` (default: the system temp dir) and says on `stderr` what was removed or stuck. */
export async function sweepLeftovers(stderr: Out, parent?: string): Promise<void> {
  let result: SweepResult;
  try {
    result = await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent);
  } catch (err) {
    stderr.write(`warning: could not look for what interrupted datasaver runs left: ${errorMessage(err)}\n`);
    return;
  }
  const { removed, failed } = result;
  for (const r of removed) {
    stderr.write(
      `note: removed ${r.path}, a temporary directory (${r.kind}) of datasaver process ${r.owner.pid}, which ended without removing it${r.stopped.length > 0 ? `; stopped the tool process(es) it left running: ${r.stopped.join(', ')}` : ''}\n`,
    );
  }
  for (const f of failed) {
    stderr.write(
      `warning: cannot remove ${f.path}, left by an interrupted datasaver run: ${errorMessage(f.error)}; remove it by hand\n`,
    );
  }
}
