/**
 * A process that starts a throwaway drill server and then waits to be killed, for the tests of what a
 * kill -9 during a drill leaves: `node scratch-child.ts <engine> <parent>` makes a private temp dir of
 * kind `drill` under `<parent>`, starts the engine's scratch server in it, prints `{"dir": ...}` as one
 * line on stdout once the server accepts connections, and waits.
 */
import { startScratchServer } from '../../src/engines/index.ts';
import { type EngineName, isEngineName } from '../../src/engines/registry.ts';
import { makePrivateTempDir } from '../../src/util/private-temp.ts';

const [engine, parent] = process.argv.slice(2);
if (!engine || !isEngineName(engine) || !parent) throw new Error('usage: scratch-child.ts <engine> <parent>');
const dir = await makePrivateTempDir('drill', parent);
await startScratchServer(engine as EngineName, { dir });
process.stdout.write(`${JSON.stringify({ dir })}\n`);
setInterval(() => {}, 1 << 30);
