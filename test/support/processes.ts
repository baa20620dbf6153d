/** Processes seen through /proc, for tests about what a killed datasaver leaves running. */
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * Pids of processes whose command line names a path in `dir`, inside an argument too (redis-server
 * retitles itself `redis-server unixsocket:<path>`).
 */
export async function processesUsing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.includes(`${dir}/`))) pids.push(Number(name));
  }
  return pids;
}

/** Whether process `pid` runs (and is not a zombie). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of the processes whose parent is `pid` (a postmaster's backends). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const statText = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(statText.slice(statText.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** A server's processes: those naming its dir, and their children (a postmaster's backends). */
export async function serverProcesses(dir: string): Promise<number[]> {
  const named = await processesUsing(dir);
  return [...named, ...named.flatMap(childrenOf)];
}

/**
 * Pids of processes that run in `dir` (their working directory is in it, removed or not: a postmaster's
 * backends and helpers work in its data directory) or whose command line names a path in it.
 */
export async function processesWithin(dir: string): Promise<number[]> {
  const pids = new Set(await processesUsing(dir));
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cwd = await readlink(`/proc/${name}/cwd`).catch(() => '');
    if (cwd.startsWith(`${dir}/`)) pids.add(Number(name));
  }
  return [...pids].filter(processRunning);
}
