/**
 * What every throwaway drill server (scratch.ts) shares: finding the server binaries, the unprivileged
 * account a server runs as when datasaver is root, spawning it with its output in a log file inside the
 * private dir, waiting until it is ready, and stopping it.
 *
 * A server writes its log to a file, never to a pipe of ours: if datasaver is killed, the server runs on
 * (until the next start's sweep stops it) and must not depend on a reader that is gone. Its command line
 * names a path inside the private dir, which is how that sweep recognises it (util/private-temp.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, appendFile, chmod, chown, mkdir, open, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { errorMessage, RestoreError, ToolMissingError } from '../util/errors.ts';
import { toolEnv } from '../util/tool-env.ts';
import { type ConnectionConfig, NO_CONNECTION } from './engine.ts';
import type { ScratchServer } from './scratch.ts';

/** How long a server may take to initialise or start before the drill gives up on it. */
const START_TIMEOUT_MS = 120_000;
/** How long a stopped server may take to exit before it is SIGKILLed. */
const STOP_GRACE_MS = 10_000;
/** How often the readiness check runs while a server starts. */
const POLL_MS = 50;

/** The account a server runs as: another one than root's, which the servers refuse or should not use. */
export interface ServerAccount {
  name: string;
  uid: number;
  gid: number;
}

/** The first of `names` that is an executable file in one of `dirs` (searched in order), or undefined. */
export async function findExecutable(
  names: readonly string[],
  dirs: readonly string[],
): Promise<string | undefined> {
  for (const file of dirs.flatMap((dir) => names.map((name) => join(dir, name)))) {
    if (await isExecutable(file)) return file;
  }
  return undefined;
}

function isExecutable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * The error for server binaries not found on this machine (`what`: `PostgreSQL server (initdb,
 * postgres)`), naming the Debian package and the other way to drill: a server the user names.
 */
export function scratchServerMissing(
  what: string,
  looked: readonly string[],
  packageName: string,
): ToolMissingError {
  return new ToolMissingError(
    `cannot start a throwaway ${what} for the drill: not found in ${looked.join(', ') || 'any directory (PATH is empty)'}`,
    {
      hint: `install ${packageName} (Debian/Ubuntu: apt-get install ${packageName}), or set DATASAVER_DRILL_URL to a server where datasaver may create and drop a scratch database`,
    },
  );
}

/**
 * The account a server started by this process runs as: undefined when we are not root (it runs as us),
 * else `preferred` (the server's own system user) when it exists, else `nobody`. Read from /etc/passwd,
 * the only place a container has its users; RestoreError when neither exists there.
 */
export async function serverAccount(preferred: string): Promise<ServerAccount | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const accounts = parsePasswd(await readFile('/etc/passwd', 'utf8').catch(() => ''));
  const found = [preferred, 'nobody'].map((n) => accounts.get(n)).find((a) => a && a.uid !== 0);
  if (!found) {
    throw new RestoreError(
      `cannot start a throwaway server as root: neither a ${preferred} nor a nobody user exists in /etc/passwd`,
      {
        hint: `create the ${preferred} system user, run datasaver as a non-root user, or set DATASAVER_DRILL_URL`,
      },
    );
  }
  return found;
}

/** `/etc/passwd` lines as accounts by name. */
export function parsePasswd(text: string): Map<string, ServerAccount> {
  const accounts = new Map<string, ServerAccount>();
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && /^\d+$/.test(uid ?? '') && /^\d+$/.test(gid ?? '')) {
      accounts.set(name, { name, uid: Number(uid), gid: Number(gid) });
    }
  }
  return accounts;
}

/**
 * Makes `<dir>/<name>`, the server's own directory (mode 0700), owned by `account` when there is one:
 * the private dir stays root's, and becomes 0711 so that the server's account can pass through it to
 * its own directory without seeing anything else in it.
 */
export async function serverHome(
  dir: string,
  name: string,
  account: ServerAccount | undefined,
): Promise<string> {
  const home = join(dir, name);
  await mkdir(home, { mode: 0o700 });
  if (account) {
    await chown(home, account.uid, account.gid).catch((err: unknown) => {
      throw notPermitted(`give ${home} to the ${account.name} user`, err);
    });
    await chmod(dir, 0o711);
  }
  return home;
}

/**
 * The RestoreError for root without the capabilities a throwaway server needs (CAP_CHOWN, CAP_SETUID,
 * CAP_SETGID, CAP_DAC_OVERRIDE: a container that drops them), when `what` failed with `err`.
 */
export function notPermitted(what: string, err: unknown): RestoreError {
  return new RestoreError(`cannot ${what} for a throwaway server: ${errorMessage(err)}`, {
    hint: 'datasaver runs as root without the capabilities to start a server as another user: run it as a non-root user (the image does), or set DATASAVER_DRILL_URL',
    cause: err,
  });
}

/** The longest Unix socket path Linux takes (`sun_path` is 108 bytes with its terminating NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * Throws RestoreError, before anything starts, when the socket `path` of a throwaway server is too long
 * for a Unix socket (a deep temp dir).
 */
export function checkSocketPath(path: string): void {
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH) return;
  throw new RestoreError(
    `cannot start a throwaway server: its socket path ${path} is too long for a Unix socket`,
    {
      hint: `set TMPDIR to a shorter directory (the socket path must fit ${MAX_SOCKET_PATH} bytes), or set DATASAVER_DRILL_URL`,
    },
  );
}

/** A server (or its initialisation) running as a child process, its output going to `log`. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** The log file its stdout and stderr go to. */
  readonly log: string;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<void>;
  /** Sends `signal`, then SIGKILL if it still runs after a grace period, and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `command` as `account` (or as us) in `cwd`, with output appended to `log` and an environment of
 * the allow-listed basics only (no secret: a server takes its password from a file in the private dir).
 * The log file is opened here and handed over, so the account needs no right to it.
 */
export async function spawnServer(
  command: string,
  args: readonly string[],
  options: { cwd: string; log: string; account: ServerAccount | undefined },
): Promise<ServerProcess> {
  const out = await open(options.log, 'a', 0o600);
  let child: ChildProcess;
  let exited: Promise<void>;
  try {
    child = spawn(command, args, {
      cwd: options.cwd,
      env: toolEnv(process.env, { set: { HOME: options.cwd, TMPDIR: options.cwd } }),
      stdio: ['ignore', out.fd, out.fd],
      ...(options.account ? { uid: options.account.uid, gid: options.account.gid } : {}),
    });
    // Listening before anything is awaited: a failed spawn reports its error on the next tick.
    exited = new Promise<void>((resolve) => {
      // It could not be started (not executable by the account...): the log says why, for startFailed.
      child.once(
        'error',
        (err) => void appendFile(options.log, `${command}: ${err.message}\n`).finally(resolve),
      );
      child.once('exit', () => resolve());
    });
  } finally {
    await out.close();
  }
  const running = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  return {
    child,
    log: options.log,
    exited,
    async stop(signal = 'SIGKILL') {
      if (running()) child.kill(signal);
      const timer = setTimeout(() => running() && child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs a server's initialisation step (initdb, mariadb-install-db) to its end. Throws RestoreError with
 * its log's last lines when it fails, the signal's reason when `signal` aborts (the step is killed).
 */
export async function runStep(
  what: string,
  command: string,
  args: readonly string[],
  options: { cwd: string; log: string; account: ServerAccount | undefined; signal: AbortSignal | undefined },
): Promise<void> {
  options.signal?.throwIfAborted();
  const step = await spawnServer(command, args, options);
  const onAbort = () => void step.stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await step.exited;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  options.signal?.throwIfAborted();
  if (step.child.exitCode !== 0) throw await startFailed(what, step.log);
}

/**
 * Waits until `ready()` says the server accepts connections. Throws RestoreError with the log's last
 * lines when the server exits first or does not get ready in time, and the signal's reason when it
 * aborts; the caller stops the server in every case.
 */
export async function waitUntilReady(
  what: string,
  server: ServerProcess,
  ready: () => Promise<boolean>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exited = false;
  void server.exited.then(() => {
    exited = true;
  });
  while (!exited && Date.now() < deadline) {
    signal?.throwIfAborted();
    if (await ready()) return;
    await pause(server.exited, signal);
  }
  signal?.throwIfAborted();
  throw await startFailed(
    what,
    server.log,
    exited ? undefined : `not ready after ${START_TIMEOUT_MS / 1000} s`,
  );
}

/** Waits POLL_MS, or less when `exited` settles or `signal` aborts. */
function pause(exited: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, POLL_MS);
    signal?.addEventListener('abort', done, { once: true });
    void exited.then(done);
  });
}

/** Whether the text of `file` (a server's log) matches `pattern`; false while it cannot be read. */
export async function logSays(file: string, pattern: RegExp): Promise<boolean> {
  return pattern.test(await readFile(file, 'utf8').catch(() => ''));
}

/** The RestoreError for a server (or its initialisation) that did not start, with its log's last lines. */
export async function startFailed(what: string, log: string, why?: string): Promise<RestoreError> {
  const lines = (await readFile(log, 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-8);
  return new RestoreError(
    `${what} did not start${why ? ` (${why})` : ''}${lines.length > 0 ? `; its log ends:\n  ${lines.join('\n  ')}` : ''}`,
    {
      hint: 'nothing was restored, and what was started is stopped; fix what the log says (disk space, memory, a TMPDIR whose parents the server account cannot enter), or set DATASAVER_DRILL_URL to a server to drill on',
    },
  );
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken meanwhile). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * The ScratchServer for a server that is up: `stop` runs once however often it is called, and also when
 * `signal` aborts (the drill's signal covers the server it started). Connection settings not given are
 * unset (TLS off). When `signal` has aborted already (during the last steps of the start), the server
 * is stopped and the signal's reason thrown.
 */
export async function scratchServer(
  description: string,
  connection: Partial<ConnectionConfig>,
  stop: () => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<ScratchServer> {
  let stopping: Promise<void> | undefined;
  const stopOnce = () => {
    signal?.removeEventListener('abort', onAbort);
    stopping ??= stop().catch(() => {});
    return stopping;
  };
  const onAbort = () => void stopOnce();
  if (signal?.aborted) {
    await stopOnce();
    signal.throwIfAborted();
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    description,
    connection: { ...NO_CONNECTION, ...connection },
    stop: stopOnce,
  };
}
