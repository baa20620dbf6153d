/**
 * A datasaver stand-in for the tests of what a kill -9 during a drill leaves, run as its own process
 * (and, for the non-root case, as another user):
 *   `node scratch-child.ts start <engine> <parent>` makes a private temp dir of kind `drill` under
 *   `<parent>`, starts the engine's scratch server in it, prints `{"dir": ...}` as one line on stdout
 *   once the server accepts connections, and waits to be killed;
 *   `node scratch-child.ts sweep <parent>` sweeps `<parent>` as the start of the next datasaver would,
 *   and prints the result as one line of JSON.
 */
import { startScratchServer } from '../../src/engines/index.ts';
import { isEngineName, TEMP_DIR_TOOLS } from '../../src/engines/registry.ts';
import { makePrivateTempDir, sweepStaleTempDirs } from '../../src/util/private-temp.ts';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'sweep' && args[0]) {
  const result = await sweepStaleTempDirs(TEMP_DIR_TOOLS, args[0]);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else if (mode === 'start' && args[0] && isEngineName(args[0]) && args[1]) {
  const dir = await makePrivateTempDir('drill', args[1]);
  await startScratchServer(args[0], { dir });
  process.stdout.write(`${JSON.stringify({ dir })}\n`);
  setInterval(() => {}, 1 << 30);
} else {
  throw new Error('usage: scratch-child.ts start <engine> <parent> | sweep <parent>');
}
