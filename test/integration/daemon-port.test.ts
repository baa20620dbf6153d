/**
 * The daemon's port against a hostile neighbour, with a real daemon and the suite's PostgreSQL: it listens
 * on loopback unless told otherwise, and a flood of idle connections under a low open-file limit is capped
 * and dropped while scheduled backups (which need descriptors to spawn pg_dump) go on succeeding.
 */
import { connect, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { HTTP_LIMITS } from '../../src/server/http.ts';
import { type RunningDaemon, startDaemon, terminate, waitFor } from '../support/daemon.ts';
import { createDatabase, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;
const NEVER = '0 0 1 1 *';

beforeAll(async () => {
  db = uniqueName('port');
  await createDatabase(db);
});

/** Whether something answers HTTP on host:port. */
async function answers(host: string, port: number): Promise<boolean> {
  try {
    return (await fetch(`http://${host}:${port}/ready`)).ok;
  } catch {
    return false;
  }
}

/**
 * `count` idle TCP connections to a port that never send a byte; each one the server closes is opened
 * again a second later, as a hostile client would, until `stop()`.
 */
class IdleFlood {
  readonly #sockets = new Set<Socket>();
  #running = true;
  #connected = 0;
  closedByServer = 0;

  readonly host: string;
  readonly port: number;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  /** Opens `count` connections; resolves once every one of them has connected. */
  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.#open()));
  }

  #open(): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect(this.port, this.host);
      this.#sockets.add(socket);
      socket.on('error', () => {});
      socket.once('connect', () => {
        this.#connected++;
        resolve();
      });
      socket.once('close', () => {
        this.#sockets.delete(socket);
        resolve();
        if (!this.#running) return;
        this.closedByServer++;
        setTimeout(() => void (this.#running && this.#open()), 1000).unref();
      });
    });
  }

  get connected(): number {
    return this.#connected;
  }

  stop(): void {
    this.#running = false;
    for (const s of this.#sockets) s.destroy();
  }
}

/** The JSON log lines printed after `from` characters of output. */
function logLines(daemon: RunningDaemon, from: number): Record<string, unknown>[] {
  return daemon
    .stdout()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the daemon port', () => {
  it('listens on 127.0.0.1 by default; DATASAVER_METRICS_HOST=0.0.0.0 listens on every address', async () => {
    const env = targetEnv(db, await tempDir(), { DATASAVER_SCHEDULE: NEVER });
    const local = await startDaemon(env);
    try {
      expect(await answers('127.0.0.1', local.port)).toBe(true);
      // All of 127/8 is this host: another address in it tells "loopback only" from "every address".
      expect(await answers('127.0.0.2', local.port)).toBe(false);
    } finally {
      expect((await terminate(local)).result.code).toBe(0);
    }
    const everywhere = await startDaemon({ ...env, DATASAVER_METRICS_HOST: '0.0.0.0' });
    try {
      expect(await answers('127.0.0.2', everywhere.port)).toBe(true);
    } finally {
      expect((await terminate(everywhere)).result.code).toBe(0);
    }
  });

  it('hundreds of idle sockets under a low open-file limit: beyond the cap they are dropped, and backups succeed', async () => {
    // Far fewer descriptors than the flood has sockets: without the cap, accepting them exhausts the
    // limit and the next backup fails to spawn pg_dump (EMFILE).
    const limit = 128;
    const sockets = 300;
    const daemon = await startDaemon(
      targetEnv(db, await tempDir(), { DATASAVER_SCHEDULE: '*/2 * * * * *' }),
      [],
      { prefix: ['prlimit', `--nofile=${limit}:${limit}`, '--'] },
    );
    const flood = new IdleFlood('127.0.0.1', daemon.port);
    let result: Awaited<ReturnType<typeof terminate>>['result'];
    try {
      await flood.start(sockets);
      expect(flood.connected).toBeGreaterThanOrEqual(sockets);
      // Every connection beyond the cap is closed by the daemon, not left to pile up.
      await waitFor(
        'the connections beyond the cap to be closed',
        async () => flood.closedByServer >= sockets - HTTP_LIMITS.maxConnections,
      );
      // A scheduled run that starts while the flood goes on, and how it ends.
      const mark = daemon.stdout().length;
      const end = await waitFor('a backup started during the flood to end', async () => {
        const lines = logLines(daemon, mark);
        const started = lines.findIndex((l) => l.msg === 'backup started');
        if (started === -1) return undefined;
        return lines.slice(started).find((l) => l.msg === 'backup succeeded' || l.msg === 'backup failed');
      });
      expect(end, JSON.stringify(end)).toMatchObject({ msg: 'backup succeeded', target: db });

      // Once the flood is gone the port serves again; it counted what it dropped.
      flood.stop();
      const dropped = await waitFor('the port to answer again', () =>
        daemon.metric('datasaver_http_connections_dropped_total'),
      );
      expect(dropped).toBeGreaterThanOrEqual(sockets - HTTP_LIMITS.maxConnections);
    } finally {
      flood.stop();
      result = (await terminate(daemon)).result;
    }
    expect(result.code, result.output).toBe(0);
    expect(result.output).not.toMatch(/EMFILE/);
  });
});
