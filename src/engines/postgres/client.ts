/**
 * node-postgres connections for the small control queries (versions, facts, create/drop database,
 * settings): connected the way libpq would for the configured sslmode, always closed after use, and
 * their failures turned into datasaver's errors.
 */
import pg from 'pg';
import {
  type BackupError,
  ConnectionError,
  DatasaverError,
  errorMessage,
  type RestoreError,
} from '../../util/errors.ts';
import { redact } from '../../util/secret.ts';
import type { ConnectionConfig } from '../engine.ts';
import { withSession } from '../session.ts';
import { quoteIdent } from './dbsettings.ts';
import { MAINTENANCE_DATABASE } from './libpq-env.ts';

/** The server as messages name it: `host:port`. */
export function postgresWhere(c: ConnectionConfig): string {
  return `${c.host ?? 'localhost'}:${c.port ?? 5432}`;
}

/**
 * Runs `fn` on a fresh connection to `database`, closed afterwards whatever happens (and at once when
 * `signal` aborts, which rejects with the signal's reason). Connection failures are ConnectionErrors (a
 * connection lost mid-query too); SQL errors become `FailAs` (BackupError on the backup path,
 * RestoreError on the restore path); datasaver's own errors from `fn` pass as they are.
 */
export function withPostgresClient<T>(
  connection: ConnectionConfig,
  database: string,
  signal: AbortSignal | undefined,
  fn: (c: pg.Client) => Promise<T>,
  FailAs: typeof BackupError | typeof RestoreError,
): Promise<T> {
  const where = postgresWhere(connection);
  const hide = (text: string) => redact(text, [connection.password]);
  return withSession({
    signal,
    open: () => connect(connection, database),
    close: (client) => client.end().catch(() => {}),
    use: fn,
    failure: (err) => {
      if (err instanceof pg.DatabaseError) {
        return new FailAs(`${where}/${database}: ${hide(err.message)}`, { cause: err });
      }
      if (err instanceof DatasaverError) return err;
      // The connection dropped mid-query (server restart, network): a connection problem, exit 3.
      return new ConnectionError(`lost the connection to ${where}/${database}: ${hide(errorMessage(err))}`, {
        cause: err,
      });
    },
  });
}

/**
 * withPostgresClient on the maintenance database (`postgres`), for queries about the server as a whole;
 * on template1 where the server has no `postgres` (a restore that was recreating it was cut short), so
 * that restoring it again is not locked out.
 */
export function withMaintenanceClient<T>(
  connection: ConnectionConfig,
  signal: AbortSignal | undefined,
  fn: (c: pg.Client) => Promise<T>,
  FailAs: typeof BackupError | typeof RestoreError,
): Promise<T> {
  return withPostgresClient(connection, MAINTENANCE_DATABASE, signal, fn, FailAs).catch((err: unknown) => {
    // Failing to connect at all: nothing of `fn` ran.
    if (!(err instanceof ConnectionError) || (err.cause as { code?: string })?.code !== '3D000') throw err;
    return withPostgresClient(connection, 'template1', signal, fn, FailAs);
  });
}

/**
 * Connects like libpq would for the configured sslmode (the dump tools use libpq itself): `prefer`, the
 * default, tries TLS and falls back to a plain connection only when the server has no TLS; `allow` tries
 * plain first and TLS if the server insists; `require` encrypts without checking the certificate;
 * `verify-ca`/`verify-full` check it against the system's CA store.
 */
async function connect(c: ConnectionConfig, database: string): Promise<pg.Client> {
  const mode = c.sslmode ?? process.env.PGSSLMODE ?? 'prefer';
  const tls = { rejectUnauthorized: false };
  const attempts: (false | { rejectUnauthorized: boolean })[] =
    mode === 'disable'
      ? [false]
      : mode === 'allow'
        ? [false, tls]
        : mode === 'prefer'
          ? [tls, false]
          : mode === 'require'
            ? [tls]
            : [{ rejectUnauthorized: true }];
  for (let i = 0; ; i++) {
    const client = new pg.Client({
      host: c.host,
      port: c.port,
      user: c.user,
      database,
      password: c.password?.reveal(),
      application_name: 'datasaver',
      connectionTimeoutMillis: 10_000,
      ssl: attempts[i]!,
    });
    client.on('error', () => {}); // a dropped idle connection surfaces through the pending query instead
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => {});
      const message = errorMessage(err);
      const retry =
        i + 1 < attempts.length &&
        (attempts[i] ? /does not support SSL/i.test(message) : /no encryption|SSL/i.test(message));
      if (!retry) throw connectionError(err, c, database);
    }
  }
}

/** What failing to connect means, with a hint; `transient` only where retrying can help. */
function connectionError(err: unknown, c: ConnectionConfig, database: string): ConnectionError {
  const e = err as Error & { code?: string };
  const user = c.user ?? 'the default user';
  const where = postgresWhere(c);
  const byCode: Record<string, [string, string]> = {
    '28P01': [
      `authentication failed for user ${user} on ${where}`,
      'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD',
    ],
    '28000': [
      `${where} refused user ${user}: ${e.message}`,
      "check the server's pg_hba.conf and the user name",
    ],
    '3D000': [
      `database ${database} does not exist on ${where}`,
      'check DATASAVER_DB_NAME (or the database in the URL)',
    ],
    ECONNREFUSED: [
      `cannot connect to PostgreSQL at ${where}: connection refused`,
      'check that the server runs and DATASAVER_DB_HOST/PORT',
    ],
    ENOTFOUND: [`cannot resolve host ${c.host}`, 'check DATASAVER_DB_HOST'],
    EAI_AGAIN: [`cannot resolve host ${c.host}`, 'check DATASAVER_DB_HOST and DNS'],
  };
  const known = e.code ? byCode[e.code] : undefined;
  const [message, hint] = known ?? [
    `cannot connect to PostgreSQL at ${where}: ${redact(e.message, [c.password])}`,
    'check the connection settings and that the server is reachable',
  ];
  // Retrying cannot fix credentials, a missing database or a host name that does not exist.
  const transient = !['28P01', '28000', '3D000', 'ENOTFOUND'].includes(e.code ?? '');
  return new ConnectionError(message, { hint, cause: err, transient });
}

/** Drops `database`, ending its other sessions first (a drill's copy, a database restore replaces). */
export async function dropDatabase(c: pg.Client, database: string): Promise<void> {
  await c.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [database],
  );
  await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)}`);
}
