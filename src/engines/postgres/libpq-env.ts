/** The environment PostgreSQL's client tools run with: libpq's settings, the password never in argv. */
import { LIBPQ_ENV, type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type { ConnectionConfig } from '../engine.ts';

/** The database control queries and tools connect to for server-wide work (pg_dumpall's own default). */
export const MAINTENANCE_DATABASE = 'postgres';

/**
 * libpq environment for a tool connecting to `database`: connection settings and the password, never on
 * the command line. The user's own libpq variables (PGHOST, PGPASSWORD, PGSSLROOTCERT...) pass where the
 * target leaves a setting open, as node-postgres reads them for the control connection too.
 */
export function libpqEnv(c: ConnectionConfig, database: string): ToolEnv {
  return toolEnv(process.env, {
    pass: LIBPQ_ENV,
    set: {
      PGAPPNAME: 'datasaver',
      PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10',
      PGHOST: c.host,
      PGPORT: c.port === undefined ? undefined : String(c.port),
      PGUSER: c.user,
      PGDATABASE: database,
      PGSSLMODE: c.sslmode,
      PGPASSWORD: c.password?.reveal(),
    },
  });
}
