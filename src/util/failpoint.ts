/**
 * Failpoints: named stage boundaries where a test can stop datasaver dead, to prove that a crash there
 * loses nothing. A test hook, not a feature: set by the environment variable
 * `DATASAVER_FAILPOINT` as comma-separated `name=action` pairs; without it every call returns at once.
 *
 * Actions:
 * - `kill`: SIGKILL this process on the spot. No `finally`, no cleanup, no exit handler runs: exactly a
 *   crash, an OOM kill or `kill -9`.
 * - `pause`: print `failpoint <name>` on stderr and wait (for SIGCONT, or forever), so that a test can
 *   look at what the process holds at that point (its temporary files, say) and then kill it.
 *
 * The points are listed here (`FAILPOINTS`) and in docs/architecture.md ("Failpoints"). A name that is
 * not one of them, or an action that is neither, fails the command as it starts (`checkFailpoints`).
 */

export const FAILPOINTS = [
  'backup.dumping',
  'backup.before-manifest',
  'prune.between-manifest-and-data',
  'resume.copying',
  'resume.before-manifest',
  'restore.spooled',
  'restore.streaming',
  'restore.loader-started',
  'drill.restored',
  'mysql.option-file',
  'lease-taken',
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

type Action = 'kill' | 'pause';

let armed: Map<string, Action> | undefined;

function parse(spec: string | undefined): Map<string, Action> {
  const points = new Map<string, Action>();
  for (const pair of (spec ?? '').split(',')) {
    if (pair.trim() === '') continue;
    const [name, action] = pair.split('=').map((s) => s.trim());
    if (!name || (action !== 'kill' && action !== 'pause')) {
      // A typo in a test hook must not pass as a run where nothing was injected.
      throw new Error(`DATASAVER_FAILPOINT: '${pair}' is not name=kill or name=pause`);
    }
    if (!(FAILPOINTS as readonly string[]).includes(name)) {
      throw new Error(
        `DATASAVER_FAILPOINT: there is no failpoint '${name}'; the failpoints: ${FAILPOINTS.join(', ')}`,
      );
    }
    points.set(name, action);
  }
  return points;
}

function points(): Map<string, Action> {
  armed ??= parse(process.env.DATASAVER_FAILPOINT);
  return armed;
}

const done = Promise.resolve();

/** Throws if DATASAVER_FAILPOINT is malformed or names an unknown point: at start, not at the first point. */
export function checkFailpoints(): void {
  points();
}

/** Whether a test armed the failpoint `name`. */
export function isFailpointArmed(name: FailpointName): boolean {
  return points().has(name);
}

/** Crashes or pauses here when a test armed `name`; otherwise returns at once. */
export function failpoint(name: FailpointName): Promise<void> {
  const action = points().get(name);
  if (action === undefined) return done;
  if (action === 'kill') {
    process.kill(process.pid, 'SIGKILL');
    return new Promise(() => {});
  }
  return new Promise((resolve) => {
    // A pending promise alone does not keep Node running: the timer does, until SIGCONT. The handler is
    // in place before the line is printed, so a test that answers the line at once is heard.
    const keepAlive = setInterval(() => {}, 1 << 30);
    process.once('SIGCONT', () => {
      clearInterval(keepAlive);
      resolve();
    });
    process.stderr.write(`failpoint ${name}\n`);
  });
}

/**
 * `source` with the failpoint `name` hit once, after its first item has been taken: a crash mid-stream,
 * with some bytes already passed on. The source itself when `name` is not armed.
 */
export function failpointAfterFirst<T>(name: FailpointName, source: AsyncIterable<T>): AsyncIterable<T> {
  if (!isFailpointArmed(name)) return source;
  return (async function* () {
    let first = true;
    for await (const item of source) {
      yield item;
      if (first) await failpoint(name);
      first = false;
    }
  })();
}
