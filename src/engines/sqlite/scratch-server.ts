/**
 * A restore drill's scratch place for SQLite (see ../scratch.ts): no server, only the path of a database
 * file in the private dir, which the restore creates and the caller removes with the dir.
 */
import { join } from 'node:path';
import type { ScratchServer, ScratchServerOptions } from '../scratch.ts';
import { scratchServer } from '../scratch-process.ts';

/** The file a drill restores into; see StartScratchServer. Throws only when the signal has aborted. */
export async function startSqliteScratchServer(options: ScratchServerOptions): Promise<ScratchServer> {
  const database = join(options.dir, 'drill.sqlite');
  return scratchServer('temporary SQLite file', { database }, async () => {}, options.signal);
}
