/**
 * ioredis connections to a Redis server for the control calls (INFO, key counts, a restore's writes):
 * never retrying or queueing, always closed after use, their failures turned into datasaver's errors.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Redis, RedisOptions } from 'ioredis';
import {
  type BackupError,
  ConnectionError,
  DatasaverError,
  errorMessage,
  RestoreError,
} from '../../util/errors.ts';
import { redact } from '../../util/secret.ts';
import type { ConnectionConfig } from '../engine.ts';
import { withSession } from '../session.ts';

export const DEFAULT_PORT = 6379;
/**
 * The ACL rights each job uses, exactly (README.md, "Redis"): every command datasaver sends. Connections
 * send no CLIENT SETINFO, so no right beyond these is ever tried.
 */
export const BACKUP_RIGHTS = '+info +sync +replconf';
export const RESTORE_RIGHTS = '~* +info +select +restore +flushall +function';

/** The server's host, or the path of its unix socket. */
export function redisHost(c: ConnectionConfig): string {
  return c.host ?? 'localhost';
}

/** The server as messages name it: `host:port`, or the socket's path. */
export function redisWhere(c: ConnectionConfig): string {
  const host = redisHost(c);
  return host.startsWith('/') ? host : `${host}:${c.port ?? DEFAULT_PORT}`;
}

/**
 * Runs `fn` on a fresh connection to the target, closed afterwards whatever happens (and at once when
 * `signal` aborts, which rejects with the signal's reason). Failing to connect or authenticate, a
 * NOPERM/NOAUTH/WRONGPASS reply and a connection lost midway are ConnectionErrors; other error replies
 * become `FailAs`; datasaver's own errors from `fn` pass as they are.
 */
export function withRedisClient<T>(
  c: ConnectionConfig,
  signal: AbortSignal | undefined,
  fn: (client: Redis) => Promise<T>,
  FailAs: typeof BackupError | typeof RestoreError,
): Promise<T> {
  const host = redisHost(c);
  const where = redisWhere(c);
  const hide = (text: string) => redact(text, [c.password]);
  return withSession({
    signal,
    open: async () =>
      connect(
        {
          ...(host.startsWith('/') ? { path: host } : { host, port: c.port ?? DEFAULT_PORT }),
          username: c.user,
          password: c.password?.reveal(),
          tls: c.tls ? { servername: isIP(host) ? undefined : host, ca: await tlsCa(c) } : undefined,
        },
        () => where,
        (err) => connectionError(err, c),
      ),
    close: (client) => client.disconnect(),
    use: fn,
    failure: (err) => {
      if (err instanceof DatasaverError) return err;
      if (isReplyError(err)) {
        if (/^(NOPERM|NOAUTH|WRONGPASS)/.test(errorMessage(err))) return connectionError(err, c);
        return new FailAs(`${where}: ${hide(errorMessage(err))}`, { cause: err });
      }
      return new ConnectionError(`lost the connection to ${where}: ${hide(errorMessage(err))}`, {
        cause: err,
      });
    },
  });
}

/** The CA certificates of DATASAVER_DB_TLS_CA, if set (else ioredis trusts the system's CAs). */
async function tlsCa(c: ConnectionConfig): Promise<Buffer | undefined> {
  const file = c.tlsCa;
  if (file === undefined) return undefined;
  try {
    return await readFile(file);
  } catch (err) {
    throw new ConnectionError(`cannot read the CA file ${file}: ${errorMessage(err)}`, {
      hint: 'set DATASAVER_DB_TLS_CA to a readable PEM file with the CA certificate(s) of the server',
      transient: false,
    });
  }
}

function connectionError(err: unknown, c: ConnectionConfig): ConnectionError {
  const message = redact(errorMessage(err), [c.password]);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const where = redisWhere(c);
  const user = c.user ?? 'default';
  if (
    /^(WRONGPASS|NOAUTH)/.test(message) ||
    /invalid password|without any password configured/i.test(message)
  ) {
    return new ConnectionError(`authentication failed for user ${user} on ${where}: ${message}`, {
      hint: 'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD (or the password in the URL)',
      cause: err,
      transient: false,
    });
  }
  if (/^NOPERM/.test(message)) {
    return new ConnectionError(`user ${user} on ${where} lacks a permission: ${message}`, {
      hint: `grant it: ACL SETUSER ${user} ${BACKUP_RIGHTS} (backups) or ${RESTORE_RIGHTS} (restores)`,
      cause: err,
      transient: false,
    });
  }
  if (code === 'ENOTFOUND') {
    return new ConnectionError(`cannot resolve host ${redisHost(c)}`, {
      hint: 'check DATASAVER_DB_HOST',
      cause: err,
      transient: false,
    });
  }
  return new ConnectionError(`cannot connect to Redis at ${where}: ${message}`, {
    hint: 'check that the server runs and DATASAVER_DB_HOST/PORT (and DATASAVER_DB_TLS)',
    cause: err,
  });
}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'ReplyError' || err.constructor.name === 'ReplyError');
}

/**
 * Connects an ioredis client that never retries or queues: a failure is reported once, as the error the
 * connection actually hit (ioredis itself only says "Connection is closed").
 */
export async function connect(
  options: RedisOptions,
  where: () => string,
  asError: (err: unknown) => Error = (err) =>
    new RestoreError(`cannot connect to ${where()}: ${errorMessage(err)}`, { cause: err }),
): Promise<Redis> {
  // Loaded here, not at start: ioredis adds ~20 MB to every process, and most targets are not Redis.
  const { Redis } = await import('ioredis');
  let lastError: unknown;
  const client = new Redis({
    ...options,
    protocol: 2,
    lazyConnect: true,
    connectTimeout: 10_000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    disableClientInfo: true,
  });
  client.on('error', (err: unknown) => {
    lastError ??= err;
  });
  try {
    await client.connect();
    return client;
  } catch (err) {
    client.disconnect();
    throw asError(lastError ?? err);
  }
}
