/**
 * Running an engine's tool to its end: killed when the signal aborts or the caller stops early, and
 * failing with the engine's own error when it exits non-zero.
 */
import { type Exit, feedStdin, killIfRunning, type Spawned, spawnTool, type Tool } from '../util/process.ts';
import type { ToolEnv } from '../util/tool-env.ts';

/** What a tool's non-zero exit means, given its exit and stderr (the engine redacts and words it). */
export type ToolFailure = (exit: Exit, stderr: string) => Error;

/**
 * Kills `p` when `signal` aborts. The returned `release` stops listening, kills `p` if it still runs (the
 * caller stopped early or failed: no tool is left running) and waits until it has ended; call it in a
 * `finally`. It never throws.
 */
export function killOnAbort(p: Spawned, signal: AbortSignal | undefined): () => Promise<void> {
  const onAbort = () => killIfRunning(p.child);
  signal?.addEventListener('abort', onAbort, { once: true });
  return async () => {
    signal?.removeEventListener('abort', onAbort);
    killIfRunning(p.child);
    await p.exited.catch(() => {});
  };
}

/**
 * Spawns a tool that writes its product to stdout, as a stream that fails, before it ends, with
 * `failure` if the tool exits non-zero, or with the signal's reason when it aborts. Destroying the stream
 * kills the tool. ToolMissingError when the tool is not installed.
 */
export async function* streamTool(
  tool: Tool,
  args: string[],
  env: ToolEnv,
  signal: AbortSignal | undefined,
  failure: ToolFailure,
): AsyncGenerator<Buffer> {
  signal?.throwIfAborted();
  const p = spawnTool(tool, args, { env });
  const release = killOnAbort(p, signal);
  try {
    for await (const chunk of p.child.stdout!) yield chunk as Buffer;
    const exit = await p.exited;
    signal?.throwIfAborted();
    if (exit.code !== 0) throw failure(exit, p.stderr.text());
  } finally {
    await release();
  }
}

/**
 * Runs a tool to its end, feeding it `input` on stdin when given (else it reads none); throws `failure`
 * if it exits non-zero, the signal's reason when it aborts, ToolMissingError, or `input`'s own error (the
 * tool is killed then, whatever it did with what it read).
 */
export async function runToEnd(
  tool: Tool,
  args: string[],
  env: ToolEnv,
  signal: AbortSignal | undefined,
  failure: ToolFailure,
  input?: AsyncIterable<Buffer>,
): Promise<void> {
  const p = spawnTool(tool, args, { env, stdout: 'ignore', stdin: input ? 'pipe' : 'ignore' });
  const release = killOnAbort(p, signal);
  try {
    if (input) {
      try {
        await feedStdin([p.child], input, signal);
      } catch (err) {
        killIfRunning(p.child);
        throw err;
      }
    }
    const exit = await p.exited;
    signal?.throwIfAborted();
    if (exit.code !== 0) throw failure(exit, p.stderr.text());
  } finally {
    await release();
  }
}
