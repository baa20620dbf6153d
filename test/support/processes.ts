/** Processes seen through /proc, for tests about what a killed datasaver leaves running. */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

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
