/**
 * Child processes for database tools. Arguments are always argv arrays (never a shell string) and secrets
 * travel in the child's environment, so nothing sensitive shows in `ps`. That environment is always an
 * allow-listed one from `toolEnv` (tool-env.ts), never the parent's. A tool that is not installed fails
 * with a message naming the package that provides it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { ToolMissingError } from './errors.ts';
import type { ToolEnv } from './tool-env.ts';

export interface Tool {
  /** Executable name or path. */
  command: string;
  /** Package that provides it, for the "not found" message, e.g. `postgresql-client`. */
  packageName: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Keeps the last `limit` bytes of a stream (a tool's stderr) for error messages. */
export class Tail {
  #chunks: Buffer[] = [];
  #size = 0;
  readonly #limit: number;

  constructor(limit = 16 * 1024) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size - (this.#chunks[0]?.length ?? 0) >= this.#limit)
      this.#size -= this.#chunks.shift()!.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8').trim();
  }
}

export interface Spawned {
  child: ChildProcess;
  stderr: Tail;
  /** Resolves when the process has exited and its streams are closed; rejects if it could not start. */
  exited: Promise<Exit>;
}

export function toolMissing(tool: Tool, err: unknown): ToolMissingError {
  return new ToolMissingError(`${tool.command} not found: it is needed for this operation`, {
    hint: `install ${tool.packageName} (Debian/Ubuntu: apt-get install ${tool.packageName}; Alpine: apk add ${tool.packageName}), or set DATASAVER_TOOL_DIR to the directory that holds it`,
    cause: err,
  });
}

export function spawnTool(
  tool: Tool,
  args: string[],
  options: { env: ToolEnv; stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' },
): Spawned {
  const child = spawn(tool.command, args, {
    env: options.env,
    stdio: [options.stdin ?? 'ignore', options.stdout ?? 'pipe', 'pipe'],
  });
  const stderr = new Tail();
  child.stderr?.on('data', (c: Buffer) => stderr.push(c));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? toolMissing(tool, err) : err);
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  exited.catch(() => {}); // observed by callers; avoid an unhandled rejection if they bail out first
  return { child, stderr, exited };
}

/** Runs a tool to completion and returns its output (for short commands such as `--version`). */
export async function runTool(
  tool: Tool,
  args: string[],
  env: ToolEnv,
): Promise<Exit & { stdout: string; stderr: string }> {
  const p = spawnTool(tool, args, { env });
  const out: Buffer[] = [];
  p.child.stdout?.on('data', (c: Buffer) => out.push(c));
  const exit = await p.exited;
  return { ...exit, stdout: Buffer.concat(out).toString('utf8'), stderr: p.stderr.text() };
}

/** Stops a child that is still running (consumer gave up, or an abort). */
export function killIfRunning(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export function describeExit(exit: Exit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Writes `source` into the stdin of each child with backpressure. A child that closes its stdin early (it
 * read all it needed, or it died) is skipped from then on, and the rest of `source` is still consumed, so
 * callers that hash the same bytes upstream see them all. Each child's exit status tells whether it was happy.
 */
export async function feedStdin(
  children: ChildProcess[],
  source: AsyncIterable<Buffer>,
  signal?: AbortSignal,
): Promise<void> {
  const open = new Set(children.map((c) => c.stdin!));
  for (const stdin of open) {
    const drop = () => open.delete(stdin); // EPIPE or close: the child stopped reading
    stdin.on('error', drop);
    stdin.on('close', drop);
  }
  for await (const chunk of source) {
    signal?.throwIfAborted();
    const waits: Promise<unknown>[] = [];
    for (const stdin of open) {
      if (!stdin.write(chunk)) waits.push(drainedOrClosed(stdin));
    }
    if (waits.length) await Promise.all(waits);
  }
  for (const stdin of open) stdin.end();
}

/** Resolves when `stream` can take more data or is gone; removes its listeners either way. */
function drainedOrClosed(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
