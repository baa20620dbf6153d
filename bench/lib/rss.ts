/**
 * Peak resident memory of a process tree, by polling /proc (Linux).
 *
 * Every `intervalMs` the monitor walks the tree below the root pids (/proc/<pid>/task/<tid>/children)
 * and reads each process's VmHWM ("high water mark": the kernel's own record of the process's peak
 * RSS) from /proc/<pid>/status. Because VmHWM is monotonic, a sample taken at any time before the
 * process exits already includes every earlier peak; polling only misses growth in a process's last
 * interval before it exits and processes that live shorter than one interval.
 *
 * The tree's peak is the largest sum, over the samples, of the peaks of the processes alive at that
 * sample: processes that run together (pg_dump | gzip) add up, processes that run one after the other (a
 * `pg_dump --version` check, then the dump) do not. As each term is a high-water mark, the sum bounds the
 * tree's simultaneous RSS from above.
 *
 * A process the caller sets apart by its program name (a drill's throwaway server: `postgres`, `initdb`),
 * with everything below it, is left out of both figures and summed on its own, the same way.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface ProcessPeak {
  pid: number;
  name: string;
  peakRssKb: number;
}

export interface RssReport {
  /** The peak of every process seen, in start order. */
  processes: ProcessPeak[];
  /** The largest sum of the peaks of the processes alive at the same sample. */
  treePeakRssKb: number;
  /** The same figure for the processes set apart and their descendants (0 when there were none). */
  apartPeakRssKb: number;
  /** How many processes were set apart. */
  apartProcesses: number;
}

export interface RssMonitor {
  /** Stops polling, after one last sample. */
  stop(): RssReport;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process exited in between
  }
}

function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((tid) =>
    (readText(`/proc/${pid}/task/${tid}/children`) ?? '').split(/\s+/).filter(Boolean).map(Number),
  );
}

/** The program's name: argv[0]'s basename ('node', 'pg_dump'), or the kernel's thread name as a fallback. */
function programName(pid: number, status: string): string {
  const argv0 = readText(`/proc/${pid}/cmdline`)?.split('\0')[0];
  return argv0 ? basename(argv0) : (status.match(/^Name:\s+(.*)$/m)?.[1] ?? '?');
}

function readStatus(pid: number): { name: string; hwmKb: number } | undefined {
  const status = readText(`/proc/${pid}/status`);
  const hwm = status?.match(/^VmHWM:\s+(\d+) kB/m);
  if (!status || !hwm) return undefined; // gone, or a zombie whose memory is already released
  return { name: programName(pid, status), hwmKb: Number(hwm[1]) };
}

/**
 * Polls the trees below `roots`. Processes in `exclude` (e.g. a /usr/bin/time wrapper) are walked
 * through but not reported; those whose program name `apart` accepts, and their descendants, are
 * reported apart (see the top of this file).
 */
export function monitorRss(
  roots: number[],
  options: { intervalMs?: number; exclude?: number[]; apart?: (name: string) => boolean } = {},
): RssMonitor {
  const peaks = new Map<number, ProcessPeak>();
  const apartPeaks = new Map<number, ProcessPeak>();
  const exclude = new Set(options.exclude ?? []);
  const isApart = options.apart ?? (() => false);
  let treePeakRssKb = 0;
  let apartPeakRssKb = 0;
  const sample = () => {
    let alive = 0;
    let aliveApart = 0;
    const queue = roots.map((pid) => ({ pid, apart: false }));
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const { pid } = next;
      const status = exclude.has(pid) ? undefined : readStatus(pid);
      const apart = next.apart || (status !== undefined && isApart(status.name));
      queue.push(...childrenOf(pid).map((child) => ({ pid: child, apart })));
      if (!status) continue;
      // A forked child seen before it exec'd the server was counted as its parent's copy: no longer.
      if (apart) peaks.delete(pid);
      const map = apart ? apartPeaks : peaks;
      const known = map.get(pid);
      // A new name or a lower VmHWM means the process exec'd since the last sample: a forked child is
      // first a copy of its parent (with the parent's RSS) until it execs the real program.
      const execd = known && (known.name !== status.name || status.hwmKb < known.peakRssKb);
      if (!known || execd) map.set(pid, { pid, name: status.name, peakRssKb: status.hwmKb });
      else known.peakRssKb = status.hwmKb;
      if (apart) aliveApart += status.hwmKb;
      else alive += status.hwmKb;
    }
    treePeakRssKb = Math.max(treePeakRssKb, alive);
    apartPeakRssKb = Math.max(apartPeakRssKb, aliveApart);
  };
  sample();
  const timer = setInterval(sample, options.intervalMs ?? 10);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return {
        processes: [...peaks.values()],
        treePeakRssKb,
        apartPeakRssKb,
        apartProcesses: apartPeaks.size,
      };
    },
  };
}
