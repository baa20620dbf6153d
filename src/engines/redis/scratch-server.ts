/**
 * A throwaway Redis server for a restore drill (see ../scratch.ts): redis-server on a Unix socket in the
 * private dir (no TCP port), a random password for the default user, no persistence. Its configuration,
 * password included, is a file in the private dir (mode 0600), never its command line. It runs as this
 * process's user, root included (redis-server does not refuse root, and nothing else reaches the socket).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Secret } from '../../util/secret.ts';
import type { ScratchServer, ScratchServerOptions } from '../scratch.ts';
import {
  findExecutable,
  logSays,
  scratchServer,
  scratchServerMissing,
  spawnServer,
  waitUntilReady,
} from '../scratch-process.ts';
import { privateServerSettings, privateSocket } from './private-server.ts';
import { redisToolVersion } from './tools.ts';

/**
 * Logical databases: more than servers are configured with in practice, so a backup of any of them
 * restores (an empty database costs a few hundred bytes).
 */
const DATABASES = 256;

/** Where `redis-server` is looked for (tests: an empty directory): each directory of this PATH. */
export interface RedisServerSearch {
  path: string | undefined;
}

/** Starts a throwaway Redis server in `options.dir`; see StartScratchServer. */
export async function startRedisScratchServer(
  options: ScratchServerOptions,
  search: RedisServerSearch = { path: process.env.PATH },
): Promise<ScratchServer> {
  const { dir, signal } = options;
  signal?.throwIfAborted();
  const dirs = (search.path ?? '').split(delimiter).filter(Boolean);
  const command = await findExecutable(['redis-server'], dirs);
  if (!command) throw scratchServerMissing('Redis server (redis-server)', ['PATH'], 'redis-server');
  const { version } = await redisToolVersion({ command, packageName: 'redis-server' });
  const what = `throwaway Redis ${version} server`;
  const socket = privateSocket(dir);
  const password = new Secret(randomBytes(24).toString('hex'));
  const config = join(dir, 'redis.conf');
  await writeFile(config, configText(dir, socket, password), { mode: 0o600, flag: 'wx' });
  const log = join(dir, 'redis.log');
  const server = await spawnServer(command, [config], { cwd: dir, log, account: undefined });
  try {
    await waitUntilReady(what, server, () => logSays(log, /ready to accept connections/i), signal);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return scratchServer(what, { host: socket, password }, () => server.stop(), signal);
}

/** redis.conf: the private settings, the password and room for any database; every value quoted. */
function configText(dir: string, socket: string, password: Secret): string {
  const settings: [string, string][] = [
    ...privateServerSettings(dir, socket),
    ['databases', String(DATABASES)],
    ['requirepass', password.reveal()],
  ];
  const quote = (value: string) => `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  return `${settings.map(([name, value]) => `${name} ${quote(value)}`).join('\n')}\n`;
}
