/**
 * The throwaway redis-server a restore loads the backup into: the RDB spooled to a private directory
 * (checked on the way), then loaded by a server with no TCP port, no persistence and a unix socket only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { RestoreError, ToolMissingError } from '../../util/errors.ts';
import { killIfRunning, Tail, type Tool, toolMissing } from '../../util/process.ts';
import { toolEnv } from '../../util/tool-env.ts';
import { privateServerSettings, privateSocket } from './private-server.ts';
import { RdbChecker } from './rdb.ts';
import { RdbError, type RdbSummary } from './rdb-format.ts';

/** Writes the RDB to `file` while checking it; throws RestoreError (nothing touched yet) if damaged. */
export async function spoolAndCheck(
  source: AsyncIterable<Buffer>,
  file: string,
  signal: AbortSignal | undefined,
): Promise<RdbSummary> {
  const checker = new RdbChecker();
  const out: WriteStream = createWriteStream(file, { mode: 0o600 });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => {});
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      checker.push(chunk);
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
  } finally {
    out.destroy();
  }
  try {
    return checker.finish();
  } catch (err) {
    if (err instanceof RdbError) {
      throw new RestoreError(`the backup is not a complete RDB file: ${err.message}`, {
        hint: 'nothing was changed on the target; run datasaver verify on the backup',
        cause: err,
      });
    }
    throw err;
  }
}

export interface Loader {
  socket: string;
  stop(): Promise<void>;
}

/**
 * Starts a private redis-server on `dir/dump.rdb` (unix socket only, no persistence) and waits until loaded.
 * The file comes from storage, which is untrusted: with `sanitize` (Redis 6.2 and later) the loader checks
 * every encoded value in full before it uses it, so a crafted ziplist or listpack fails the load instead of
 * corrupting the loader's memory. It runs with no secret in its environment (see tool-env.ts).
 */
export async function startLoader(
  tool: Tool,
  dir: string,
  { databases, sanitize }: { databases: number; sanitize: boolean },
  summary: RdbSummary,
  signal: AbortSignal | undefined,
): Promise<Loader> {
  signal?.throwIfAborted();
  const socket = privateSocket(dir);
  const args = [
    ...privateServerSettings(dir, socket).flatMap(([name, value]) => [`--${name}`, value]),
    '--databases',
    String(databases),
    ...(sanitize ? ['--sanitize-dump-payload', 'yes'] : []),
  ];
  const child: ChildProcess = spawn(tool.command, args, {
    env: toolEnv(process.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = new Tail();
  let text = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    killIfRunning(child);
    await exited;
  };
  const onAbort = () => killIfRunning(child);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const ready = await new Promise<boolean>((resolve, reject) => {
      const onData = (c: Buffer) => {
        log.push(c);
        text = (text + c.toString('utf8')).slice(-8192);
        if (/ready to accept connections/i.test(text)) resolve(true);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? toolMissing(tool, err) : err),
      );
      child.once('close', () => resolve(false));
    });
    signal?.throwIfAborted();
    if (!ready) {
      const message = log.text();
      const version = /Can't handle RDB format version (\d+)/.exec(message)?.[1];
      if (version) {
        throw new ToolMissingError(
          `${tool.command} cannot load this backup: it is RDB version ${version}${summary.aux['redis-ver'] ? `, written by Redis ${summary.aux['redis-ver']}` : ''}`,
          {
            hint: 'install a redis-server at least as new as the server that was backed up, or set DATASAVER_TOOL_DIR',
          },
        );
      }
      throw new RestoreError(`the temporary redis-server could not load the backup: ${lastLines(message)}`, {
        hint: /module/i.test(message)
          ? 'the backup holds Redis module data: restore it with --to-file into a server that loads the module'
          : 'nothing was changed on the target',
      });
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { socket, stop };
}

function lastLines(text: string, n = 5): string {
  return text.split('\n').filter(Boolean).slice(-n).join(' | ');
}
