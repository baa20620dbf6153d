/**
 * PostgreSQL's client tools (pg_dump, pg_restore, psql from postgresql-client) and the version rules
 * between them, the server and a backup: pg_dump must be as new as the server it dumps, pg_restore and
 * psql as new as the pg_dump that wrote a backup, and plain SQL from storage only goes to a psql with
 * `\restrict`. The checks are pure: they return the error to throw, or undefined.
 */
import { BackupError, ToolMissingError } from '../../util/errors.ts';
import type { Tool } from '../../util/process.ts';
import { atLeast, recordedMajor, type ToolVersion } from '../tool-version.ts';
import { readToolVersion, toolIn } from '../tools.ts';

/** First minor release of each major whose psql has `\restrict`; every major from RESTRICT_ALWAYS has it. */
const RESTRICT_SINCE: Readonly<Record<number, number>> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };
const RESTRICT_ALWAYS = 18;

export function postgresTool(toolDir: string | undefined, name: string): Tool {
  return toolIn(toolDir, name, 'postgresql-client');
}

/** `pg_dump (PostgreSQL) 15.18` and the like, as `15.18` (a major alone when the tool prints one). */
export function parsePostgresVersion(stdout: string): ToolVersion | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
  if (!m) return undefined;
  return { version: m[2] ? `${m[1]}.${m[2]}` : m[1]!, major: Number(m[1]), minor: Number(m[2] ?? 0) };
}

/** The version of a PostgreSQL tool; throws ToolMissingError or BackupError (see readToolVersion). */
export function postgresToolVersion(tool: Tool): Promise<ToolVersion> {
  return readToolVersion(tool, parsePostgresVersion);
}

/**
 * The BackupError when the dump tool `name` (pg_dump, pg_dumpall) is older than the server's major
 * version (`where` names the server).
 */
export function dumpToolTooOld(
  pgDump: ToolVersion,
  server: { version: string; major: number },
  where: string,
  name = 'pg_dump',
): BackupError | undefined {
  if (pgDump.major >= server.major) return undefined;
  return new BackupError(
    `${name} ${pgDump.version} cannot dump ${where}: the server runs PostgreSQL ${server.version}, and ${name} must be the same major version or newer`,
    {
      hint: `install postgresql-client-${server.major} (or newer) and put it first on PATH, or set DATASAVER_TOOL_DIR to its bin directory`,
    },
  );
}

/**
 * The ToolMissingError when the local `pg_restore`/`psql` (`name`) is older than the pg_dump that wrote a
 * backup (its manifest's `toolVersion`); undefined when it is new enough or nothing was recorded.
 */
export function readerTooOld(
  name: string,
  reader: ToolVersion,
  dumpToolVersion: string | undefined,
): ToolMissingError | undefined {
  const dumpMajor = recordedMajor(dumpToolVersion);
  if (!dumpMajor || reader.major >= dumpMajor) return undefined;
  return new ToolMissingError(
    `${name} ${reader.version} cannot read this backup: it was written by ${dumpToolVersion}`,
    {
      hint: `install postgresql-client-${dumpMajor} (or newer) and put it first on PATH, or set DATASAVER_TOOL_DIR to its bin directory`,
    },
  );
}

/** Whether a backup's recorded pg_dump version calls for a reader check at all. */
export function recordsDumpMajor(dumpToolVersion: string | undefined): boolean {
  return recordedMajor(dumpToolVersion) > 0;
}

/**
 * The ToolMissingError when `psql` lacks `\restrict` (see script.ts): it would run any meta-command a
 * forged plain dump holds, so such a restore is refused before it starts.
 */
export function lacksRestrict(psql: ToolVersion): ToolMissingError | undefined {
  const minor = RESTRICT_SINCE[psql.major];
  if (atLeast(psql, RESTRICT_ALWAYS) || (minor !== undefined && psql.minor >= minor)) return undefined;
  const wanted = minor !== undefined ? `${psql.major}.${minor}` : undefined;
  return new ToolMissingError(
    `psql ${psql.version} cannot restore plain SQL backups safely: it lacks \\restrict, which keeps psql meta-commands in a backup (such as \\! shell commands) from running on this host`,
    {
      hint: `install ${wanted ? `postgresql-client-${psql.major} ${wanted} or newer` : 'postgresql-client-17 (or newer)'} (psql 13.22, 14.19, 15.14, 16.10, 17.6, 18 and later have it), or set DATASAVER_TOOL_DIR to its bin directory; custom-format backups restore with pg_restore and do not need it`,
    },
  );
}
