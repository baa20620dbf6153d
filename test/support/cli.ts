/** Runs datasaver's real command line (src/main.ts under Node's type stripping) as a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for assertions about what a user sees. */
  output: string;
}

/**
 * Starts the CLI. `prefix` runs it through another command that execs it (e.g. `prlimit --nofile=N:N`),
 * so the child's pid is still datasaver's.
 */
export function startCli(
  args: string[],
  env: Record<string, string | undefined>,
  prefix: string[] = [],
): ChildProcess {
  // A clean environment: nothing from the developer's shell (PG*, DATASAVER_*) leaks into a test.
  const base = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8' };
  const [command, ...before] = [...prefix, process.execPath];
  return spawn(command!, [...before, MAIN, ...args], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function collect(child: ChildProcess): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  return { code, signal, stdout, stderr, output: stdout + stderr };
}

export async function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  return collect(startCli(args, env));
}

/**
 * Starts datasaver with the failpoint (src/util/failpoint.ts) `name` set to pause, and resolves once the
 * process holds there, with the process and its eventual result.
 */
export async function startPausedAt(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ child: ChildProcess; done: Promise<CliResult> }> {
  const child = startCli(args, { ...env, DATASAVER_FAILPOINT: `${name}=pause` });
  const done = collect(child);
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes(`failpoint ${name}\n`)) resolve();
    });
    child.once('close', () => reject(new Error(`datasaver ended before failpoint ${name}: ${seen}`)));
  });
  return { child, done };
}
