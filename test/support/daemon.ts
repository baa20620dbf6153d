/** Helpers for daemon tests: a running `datasaver daemon`, a webhook receiver, and polling. */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DrillStatus } from '../../src/jobs/drill.ts';
import { type CliResult, collect, startCli } from './cli.ts';
import { freePort } from './postgres-server.ts';

export interface RunningDaemon {
  child: ChildProcess;
  port: number;
  url(path: string): string;
  /** Resolves when the process has exited. */
  exited: Promise<CliResult>;
  get(path: string): Promise<{ status: number; text: string }>;
  health(): Promise<{ status: number; body: HealthBody }>;
  /** The value of one Prometheus series (`name{labels}`), or undefined. */
  metric(series: string): Promise<number | undefined>;
  /** What the daemon has printed to stdout so far (its JSON log lines). */
  stdout(): string;
}

export interface HealthBody {
  status: string;
  targets: {
    target: string;
    healthy: boolean;
    stale: boolean;
    reasons: string[];
    running: boolean;
    lastAttempt: { ok: boolean; backupId: string | null; error: string | null; exitCode: number } | null;
    lastSuccess: { time: string; backupId: string; sizeBytes: number; durationMs: number } | null;
    nextRun: string | null;
    skippedRuns: number;
    /** Present on targets with a drill schedule. */
    drillSchedule?: string;
    nextDrill?: string | null;
    lastDrill?: DrillStatus | null;
    destinations: { destination: string; backups: number; bytes: number }[];
  }[];
}

export async function startDaemon(
  env: Record<string, string>,
  args: string[] = [],
  options: { prefix?: string[] } = {},
): Promise<RunningDaemon> {
  const port = await freePort();
  const child = startCli(
    ['daemon', ...args],
    {
      DATASAVER_METRICS_PORT: String(port),
      DATASAVER_LOG_FORMAT: 'json',
      ...env,
    },
    options.prefix,
  );
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const exited = collect(child);
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  const get = async (path: string) => {
    const res = await fetch(url(path));
    return { status: res.status, text: await res.text() };
  };
  const daemon: RunningDaemon = {
    child,
    port,
    url,
    exited,
    get,
    stdout: () => stdout,
    health: async () => {
      const r = await get('/health');
      return { status: r.status, body: JSON.parse(r.text) as HealthBody };
    },
    metric: async (series) => {
      const { text } = await get('/metrics');
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    },
  };
  // Ready once /ready answers 200; a daemon that exits first is a failure with its output.
  let done = false;
  void exited.then(() => (done = true));
  await waitFor('the daemon to be ready', async () => {
    if (done) throw new Error(`the daemon exited early:\n${(await exited).output}`);
    return (await get('/ready').catch(() => ({ status: 0 }))).status === 200;
  });
  return daemon;
}

/** Polls `check` until it returns a truthy value (which is returned), or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T>,
  timeoutMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('the daemon exited early')) throw err;
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

export interface Receiver {
  url: string;
  received: Record<string, unknown>[];
  /** The path of every request, in order (pings differ by path: /start, /fail). */
  paths: string[];
  close(): Promise<void>;
}

/** A local webhook endpoint that records every JSON body posted to it. */
export async function startReceiver(): Promise<Receiver> {
  const received: Record<string, unknown>[] = [];
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try {
        received.push(JSON.parse(body) as Record<string, unknown>);
      } catch {
        received.push({ raw: body, path: req.url });
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    paths,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Sends SIGTERM and returns how long the daemon took to exit, and its result. */
export async function terminate(daemon: RunningDaemon): Promise<{ ms: number; result: CliResult }> {
  const t0 = Date.now();
  daemon.child.kill('SIGTERM');
  const result = await daemon.exited;
  return { ms: Date.now() - t0, result };
}
