/**
 * Runs the MySQL/MariaDB tools against a target: the password in a private option file removed when the
 * tool is done, the connection's options, an allow-listed environment, killed on abort.
 */
import type { BackupError, RestoreError } from '../../util/errors.ts';
import { type Spawned, spawnTool } from '../../util/process.ts';
import { redact } from '../../util/secret.ts';
import { MYSQL_ENV, type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type { EngineTarget } from '../engine.ts';
import { killOnAbort } from '../tool-run.ts';
import { connectionArgs, createOptionFile } from './args.ts';
import { clientFailure, type ServerContext } from './errors.ts';
import { parseBatchOutput } from './sql.ts';
import type { ResolvedTool } from './tools.ts';

export interface Started {
  p: Spawned;
  /** Stops the tool if it still runs and removes the option file; call it in a `finally`. */
  close: () => Promise<void>;
  /** Removes the option file early, once the tool has read it. */
  forgetPassword: () => Promise<void>;
}

export class MysqlRunner {
  readonly #target: EngineTarget;

  constructor(target: EngineTarget) {
    this.#target = target;
  }

  /** The server and account, as messages name them. */
  get server(): ServerContext {
    const c = this.#target.connection;
    return {
      where: `${c.host ?? 'localhost'}:${c.port ?? 3306}`,
      user: c.user ?? 'the default user',
      host: c.host,
      tlsCa: c.tlsCa,
      redact: (text) => this.redact(text),
    };
  }

  redact(text: string): string {
    return redact(text, [this.#target.connection.password]);
  }

  /**
   * Starts `tool` with the password's option file and the connection's arguments before `args`; it is
   * killed when `signal` aborts. Rejects with the signal's reason when already aborted.
   */
  async start(
    tool: ResolvedTool,
    args: string[],
    spawn: { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' },
    signal: AbortSignal | undefined,
  ): Promise<Started> {
    signal?.throwIfAborted();
    const file = await createOptionFile(this.#target.connection.password);
    let p: Spawned;
    try {
      p = spawnTool(tool, [...file.args, ...connectionArgs(this.#target.connection, tool.flavour), ...args], {
        env: this.#env(),
        ...spawn,
      });
    } catch (err) {
      await file.remove();
      throw err;
    }
    const release = killOnAbort(p, signal);
    return {
      p,
      forgetPassword: file.remove,
      close: async () => {
        await release();
        await file.remove();
      },
    };
  }

  /**
   * Runs SQL through the client in batch mode and returns the rows (tab-separated fields, unescaped).
   * Failing to connect is a ConnectionError; a failing statement is `failAs`; an abort rejects with the
   * signal's reason.
   */
  async query(
    client: ResolvedTool,
    sql: string,
    options: {
      signal?: AbortSignal | undefined;
      failAs: typeof BackupError | typeof RestoreError;
      force?: boolean;
    },
  ): Promise<string[][]> {
    const { signal } = options;
    const args = [
      '--connect-timeout=10',
      '--batch',
      '--skip-column-names',
      '--default-character-set=utf8mb4',
    ];
    if (options.force) args.push('--force');
    args.push(`--execute=${sql}`);
    const { p, close } = await this.start(client, args, {}, signal);
    try {
      const out: Buffer[] = [];
      p.child.stdout?.on('data', (c: Buffer) => out.push(c));
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) throw clientFailure(p.stderr.text(), exit, options.failAs, this.server);
      return parseBatchOutput(Buffer.concat(out).toString('utf8'));
    } finally {
      await close();
    }
  }

  /** The password is in the option file; MYSQL_PWD passes only for a target that has none. */
  #env(): ToolEnv {
    const own = this.#target.connection.password !== undefined;
    return toolEnv(process.env, { pass: own ? MYSQL_ENV : [...MYSQL_ENV, 'MYSQL_PWD'] });
  }
}
