/**
 * Runs a command, or a pipeline of commands connected stdout → stdin by the kernel (the data never
 * passes through this process), and measures its wall time and the peak RSS of every process in the
 * tree (see rss.ts). When GNU time is installed, each stage is also wrapped in `/usr/bin/time -f %M`,
 * whose figure (the max RSS of the stage and its waited-for descendants, from wait4's rusage) is kept
 * as a cross-check of the polled one.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { monitorRss, type ProcessPeak } from './rss.ts';

export interface Command {
  file: string;
  args: string[];
}

/** Where the last stage's stdout goes. */
export type Output = { file: string } | 'discard' | 'capture';

export interface MeasureOptions {
  output: Output;
  env: NodeJS.ProcessEnv;
  /** Programs measured apart, with their descendants (a drill's throwaway server; see rss.ts). */
  apart?: (name: string) => boolean;
}

export interface Measurement {
  wallSeconds: number;
  /** Peak RSS of each process of the tree (wrappers excluded), in start order. */
  processes: ProcessPeak[];
  /** Peak RSS of the tree: the largest sum of the peaks of the processes running at the same time. */
  peakRssKb: number;
  /** The same for the processes measured apart, and how many there were (0 and 0 without `apart`). */
  apartPeakRssKb: number;
  apartProcesses: number;
  /** Per stage, GNU time's %M (KB), when GNU time is installed. */
  gnuTimeMaxRssKb: Array<number | null>;
  stdout: string;
}

export interface Runner {
  readonly gnuTime: string | null;
  measure(stages: Command[], options: MeasureOptions): Promise<Measurement>;
}

/** The path of GNU time, or null (e.g. BusyBox time or none: install Debian's `time` package). */
export function findGnuTime(path = '/usr/bin/time'): string | null {
  try {
    return execFileSync(path, ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).includes('GNU')
      ? path
      : null;
  } catch {
    return null;
  }
}

interface Stage {
  child: ChildProcess;
  command: string;
  timeFile: string | null;
  stderr: string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function collect(stream: Readable | null, sink: (chunk: string) => void): void {
  stream?.setEncoding('utf8').on('data', sink);
}

function parseGnuTime(file: string | null): number | null {
  if (!file) return null;
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const kb = Number(lines[lines.length - 1]);
    return Number.isFinite(kb) ? kb : null;
  } catch {
    return null;
  }
}

export function createRunner(options: { scratchDir: string; gnuTime: string | null }): Runner {
  let counter = 0;

  const startStage = (
    command: Command,
    env: NodeJS.ProcessEnv,
    stdin: Readable | 'ignore',
    stdout: 'pipe' | 'ignore' | number,
  ): Stage => {
    const timeFile = options.gnuTime
      ? join(options.scratchDir, `time-${process.pid}-${++counter}.txt`)
      : null;
    const [file, args] = timeFile
      ? [options.gnuTime!, ['-f', '%M', '-o', timeFile, command.file, ...command.args]]
      : [command.file, command.args];
    const child = spawn(file, args, { env, stdio: [stdin, stdout, 'pipe'] });
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    const stage: Stage = {
      child,
      command: [command.file, ...command.args].join(' '),
      timeFile,
      stderr: '',
      done,
    };
    collect(child.stderr, (chunk) => {
      stage.stderr = (stage.stderr + chunk).slice(-4000);
    });
    return stage;
  };

  /** Spawns the stages, each reading the previous one's stdout, all in the same tick. */
  const startPipeline = (stages: Command[], { output, env }: MeasureOptions): Stage[] => {
    const outFd = typeof output === 'object' ? openSync(output.file, 'w') : null;
    const started: Stage[] = [];
    try {
      let stdin: Readable | 'ignore' = 'ignore';
      stages.forEach((command, i) => {
        const last = i === stages.length - 1;
        const stdout = !last ? 'pipe' : (outFd ?? (output === 'capture' ? 'pipe' : 'ignore'));
        const stage = startStage(command, env, stdin, stdout);
        // The child got its own copy of the pipe; close ours now, before the event loop could read from it.
        if (stdin !== 'ignore') stdin.destroy();
        started.push(stage);
        if (!last) stdin = stage.child.stdout!;
      });
    } finally {
      if (outFd !== null) closeSync(outFd);
    }
    return started;
  };

  return {
    gnuTime: options.gnuTime,
    async measure(commands, measureOptions) {
      const startedAt = performance.now();
      const stages = startPipeline(commands, measureOptions);
      const pids = stages.map((s) => s.child.pid).filter((pid): pid is number => pid !== undefined);
      const monitor = monitorRss(pids, {
        exclude: options.gnuTime ? pids : [],
        ...(measureOptions.apart ? { apart: measureOptions.apart } : {}),
      });
      let stdout = '';
      collect(stages[stages.length - 1]?.child.stdout ?? null, (chunk) => {
        stdout += chunk;
      });
      const results = await Promise.allSettled(stages.map((s) => s.done));
      const wallSeconds = (performance.now() - startedAt) / 1000;
      const { processes, treePeakRssKb, apartPeakRssKb, apartProcesses } = monitor.stop();
      results.forEach((result, i) => {
        const stage = stages[i]!;
        if (result.status === 'rejected') throw new Error(`${stage.command}: ${String(result.reason)}`);
        const { code, signal } = result.value;
        if (code !== 0) {
          throw new Error(
            `${stage.command} failed (${signal ?? `exit code ${code}`}): ${stage.stderr.trim()}`,
          );
        }
      });
      return {
        wallSeconds,
        processes,
        peakRssKb: treePeakRssKb,
        apartPeakRssKb,
        apartProcesses,
        gnuTimeMaxRssKb: stages.map((s) => parseGnuTime(s.timeFile)),
        stdout,
      };
    },
  };
}
