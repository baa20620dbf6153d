/**
 * What every redis-server datasaver starts itself shares (a restore's loader, loader.ts; a drill's
 * throwaway server, scratch-server.ts): a Unix socket in a private dir and no TCP port, no persistence,
 * the dir as its working directory. redis-server retitles itself `redis-server unixsocket:<path>`, so
 * its command line keeps naming the dir for the start-up sweep of a killed run's temp dir.
 */
import { join } from 'node:path';
import { RestoreError } from '../../util/errors.ts';

/** The longest Unix socket path every platform takes (Linux allows 107 bytes, macOS 103). */
const MAX_SOCKET_PATH = 100;

/**
 * The socket of a private server in `dir`. Throws RestoreError when the path is too long for a socket
 * (a deep temp dir), before anything is started.
 */
export function privateSocket(dir: string): string {
  const socket = join(dir, 'redis.sock');
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new RestoreError(`the temporary directory ${dir} is too deep for a unix socket`, {
      hint: 'pass a shorter --temp-dir (or TMPDIR); nothing was changed on the target',
    });
  }
  return socket;
}

/**
 * The settings of a private server in `dir` listening on `socket` only (mode 0700: this user alone),
 * keeping nothing on disk but the file it loads at start (`dbfilename`, if present), logging to stdout.
 */
export function privateServerSettings(dir: string, socket: string): [string, string][] {
  return [
    ['port', '0'],
    ['unixsocket', socket],
    ['unixsocketperm', '700'],
    ['dir', dir],
    ['dbfilename', 'dump.rdb'],
    ['save', ''],
    ['appendonly', 'no'],
    ['daemonize', 'no'],
    ['logfile', ''],
  ];
}
