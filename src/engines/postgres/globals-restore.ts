/**
 * Reading and restoring a globals script (pg_dumpall --globals-only) from storage: read whole (it is
 * small), checked statement by statement (globals.ts) before anything is applied, then run statement by
 * statement over node-postgres, never through psql.
 */
import type pg from 'pg';
import { BackupError, errorMessage, RestoreError } from '../../util/errors.ts';
import { redact } from '../../util/secret.ts';
import type { ConnectionConfig, DumpInspection, GlobalsReport } from '../engine.ts';
import { postgresWhere, withMaintenanceClient } from './client.ts';
import { type GlobalsPlan, globalsEntries, planGlobals, RefusedGlobals, readGlobals } from './globals.ts';

/**
 * A globals script holds roles and tablespaces: far less than this (some 60,000 roles with passwords),
 * whatever the server. It is read whole, and what its statements are kept as takes up to about ten
 * times its size, so the cap is what a forged script can cost.
 */
export const GLOBALS_MAX_BYTES = 16 * 1024 * 1024;

/** Reads a globals script to its end and checks it; BackupError when it does not check. */
export async function inspectGlobals(
  source: AsyncIterable<Buffer>,
  _signal: AbortSignal | undefined,
): Promise<DumpInspection> {
  const text = await readScript(source, true, (m) => new BackupError(m));
  try {
    return { entries: globalsEntries(readGlobals(text)) };
  } catch (err) {
    if (err instanceof RefusedGlobals)
      throw new BackupError(`the globals script is not restorable: ${err.message}`);
    throw err;
  }
}

/**
 * Restores a globals script onto the server of `connection` (see ServerSet.restoreGlobals): checked
 * whole first, then roles and memberships in one transaction, then tablespaces one by one.
 */
export async function restoreGlobals(
  connection: ConnectionConfig,
  source: AsyncIterable<Buffer>,
  signal: AbortSignal | undefined,
): Promise<GlobalsReport> {
  const text = await readScript(source, false, (m) => new RestoreError(m, { hint: 'nothing was restored' }));
  let statements: ReturnType<typeof readGlobals>;
  try {
    statements = readGlobals(text);
  } catch (err) {
    if (!(err instanceof RefusedGlobals)) throw err;
    throw new RestoreError(`the globals script is refused: ${err.message}`, {
      hint: 'nothing was restored: the backup was altered or is damaged; restore single databases of it with --database, creating their roles by hand',
    });
  }
  const hide = (t: string) => redact(t, [connection.password]);
  return withMaintenanceClient(
    connection,
    signal,
    async (c) => {
      const plan = planGlobals(statements, await serverGlobals(c));
      // The script was read as standard_conforming_strings reads it; the server must read it the same.
      await c.query('SET standard_conforming_strings = on');
      await runRoles(c, plan, hide);
      await runTablespaces(c, plan, hide, postgresWhere(connection));
      const { created, existing, tablespacesCreated, tablespacesExisting, skipped } = plan;
      return { created, existing, tablespacesCreated, tablespacesExisting, skipped };
    },
    RestoreError,
  );
}

/** One statement alone: the extended protocol runs exactly one command, or refuses the text. */
function runOne(c: pg.Client, sql: string): Promise<unknown> {
  const query: pg.QueryConfig & { queryMode: 'extended' } = { text: sql, queryMode: 'extended' };
  return c.query(query);
}

async function runRoles(c: pg.Client, plan: GlobalsPlan, hide: (t: string) => string): Promise<void> {
  if (plan.roleSteps.length === 0) return;
  await c.query('BEGIN');
  for (const step of plan.roleSteps) {
    try {
      await runOne(c, step.sql);
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw new RestoreError(
        `restoring the roles failed at line ${step.line} of the globals script (${firstWords(step.sql)}): ${hide(errorMessage(err))}`,
        {
          hint: 'no role was created or changed (they are restored in one transaction); fix the cause and restore again',
        },
      );
    }
  }
  await c.query('COMMIT');
}

async function runTablespaces(
  c: pg.Client,
  plan: GlobalsPlan,
  hide: (t: string) => string,
  where: string,
): Promise<void> {
  const made: string[] = [];
  for (const step of plan.tablespaceSteps) {
    try {
      await runOne(c, step.sql);
    } catch (err) {
      const before = made.length > 0 ? `, and tablespaces ${made.join(', ')}` : '';
      throw new RestoreError(
        `restoring the tablespaces failed at line ${step.line} of the globals script (${firstWords(step.sql)}): ${hide(errorMessage(err))}`,
        {
          hint: `the roles were restored${before}; a tablespace's directory must exist on ${where}, empty and owned by the server's user: create it and restore again (what exists is left as it is)`,
        },
      );
    }
    if (step.creates !== undefined) made.push(step.creates);
  }
}

/** The roles, tablespaces and databases the server has now. */
async function serverGlobals(c: pg.Client) {
  const names = async (sql: string) => new Set((await c.query<{ n: string }>(sql)).rows.map((r) => r.n));
  return {
    roles: await names('SELECT rolname AS n FROM pg_catalog.pg_roles'),
    tablespaces: await names('SELECT spcname AS n FROM pg_catalog.pg_tablespace'),
    databases: await names('SELECT datname AS n FROM pg_catalog.pg_database'),
  };
}

/**
 * The whole script as text. Past GLOBALS_MAX_BYTES it is refused: a restore stops reading at once, an
 * inspection (`drain`) reads the source to its end first, as inspections do. Bytes that are not UTF-8
 * (pg_dumpall writes the script in UTF8) are refused too.
 */
async function readScript(
  source: AsyncIterable<Buffer>,
  drain: boolean,
  fail: (message: string) => Error,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size <= GLOBALS_MAX_BYTES) chunks.push(chunk);
    else if (!drain) break;
  }
  if (size > GLOBALS_MAX_BYTES) {
    throw fail(
      `the globals script is larger than ${GLOBALS_MAX_BYTES / 1024 / 1024} MiB: it is not one pg_dumpall wrote`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw fail('the globals script is not UTF-8 text');
  }
}

/** The first words of a statement, for messages (never a password: it stops before one). */
function firstWords(sql: string): string {
  return sql.trim().split(/\s+/).slice(0, 3).join(' ');
}
