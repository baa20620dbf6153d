/**
 * The environment of every program datasaver starts (pg_dump, psql, mariadb, redis-cli, redis-server...),
 * built here and nowhere else. It is an allow-list: a child gets where to find programs and files, its
 * locale and time zone, the system's CA certificates, and the variables its own documentation names for
 * connecting. It never gets datasaver's settings (DATASAVER_*: storage keys, webhook URLs, bot tokens,
 * the database URL), cloud credentials (AWS_*), or anything else the parent process happens to hold: a
 * tool that misbehaves, or a dump that makes it misbehave, finds no secret that is not its own.
 *
 * A password reaches each tool only the way that tool is meant to take it: PGPASSWORD for libpq tools,
 * REDISCLI_AUTH for redis-cli, an option file for the MySQL/MariaDB tools (see engines/mysql/args.ts);
 * callers put it in `set`.
 */

declare const toolEnvBrand: unique symbol;

/** An environment built by `toolEnv`; the only kind `spawnTool`/`runTool` accept. */
export type ToolEnv = Readonly<Record<string, string>> & { readonly [toolEnvBrand]: true };

/** What every tool may see from the parent: program and file lookup, locale, time zone, CA bundle. */
const BASE = ['PATH', 'HOME', 'TMPDIR', 'TZ', 'LANG', 'LANGUAGE', 'SSL_CERT_FILE', 'SSL_CERT_DIR'];
const LOCALE = /^LC_[A-Z_]+$/;
/** Kerberos/GSSAPI client settings, for servers that authenticate that way. */
const KERBEROS = ['KRB5CCNAME', 'KRB5_CONFIG'];

/**
 * libpq's connection and TLS variables, as a user may set them for pg_dump, pg_restore and psql. Left out
 * are those datasaver decides itself: PGDATABASE (each run names its database), PGAPPNAME, and the psql
 * settings (PSQLRC and friends) that could change how psql reads a script.
 */
export const LIBPQ_ENV: readonly string[] = [
  'PGHOST',
  'PGHOSTADDR',
  'PGPORT',
  'PGUSER',
  'PGPASSWORD',
  'PGPASSFILE',
  'PGSERVICE',
  'PGSERVICEFILE',
  'PGSYSCONFDIR',
  'PGOPTIONS',
  'PGCONNECT_TIMEOUT',
  'PGCLIENTENCODING',
  'PGDATESTYLE',
  'PGTZ',
  'PGTARGETSESSIONATTRS',
  'PGLOADBALANCEHOSTS',
  'PGREQUIREAUTH',
  'PGCHANNELBINDING',
  'PGSSLMODE',
  'PGREQUIRESSL',
  'PGSSLNEGOTIATION',
  'PGSSLCOMPRESSION',
  'PGSSLCERT',
  'PGSSLKEY',
  'PGSSLCERTMODE',
  'PGSSLROOTCERT',
  'PGSSLCRL',
  'PGSSLCRLDIR',
  'PGSSLSNI',
  'PGSSLMINPROTOCOLVERSION',
  'PGSSLMAXPROTOCOLVERSION',
  'PGMINPROTOCOLVERSION',
  'PGMAXPROTOCOLVERSION',
  'PGREQUIREPEER',
  'PGGSSENCMODE',
  'PGGSSLIB',
  'PGGSSDELEGATION',
  'PGKRBSRVNAME',
  ...KERBEROS,
];

/**
 * The MySQL/MariaDB client library's connection variables. MYSQL_PWD is passed only by callers whose
 * target has no password of its own (the option file carries the target's).
 */
export const MYSQL_ENV: readonly string[] = [
  'MYSQL_HOST',
  'MYSQL_TCP_PORT',
  'MYSQL_UNIX_PORT',
  'MYSQL_HOME',
  'MYSQL_TEST_LOGIN_FILE',
  'MARIADB_PLUGIN_DIR',
  'LIBMYSQL_PLUGIN_DIR',
  'LIBMYSQL_PLUGINS',
  'LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN',
  ...KERBEROS,
];

export interface ToolEnvOptions {
  /** Further variables the tool may take from the parent (e.g. LIBPQ_ENV). */
  pass?: readonly string[] | undefined;
  /** Values datasaver sets itself, over the parent's; undefined leaves a variable as the parent has it. */
  set?: Readonly<Record<string, string | undefined>> | undefined;
}

/** The allow-listed environment for a child process, from the parent's `parent` (usually process.env). */
export function toolEnv(
  parent: Readonly<Record<string, string | undefined>>,
  options: ToolEnvOptions = {},
): ToolEnv {
  const pass = new Set([...BASE, ...(options.pass ?? [])]);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && (pass.has(name) || LOCALE.test(name))) env[name] = value;
  }
  for (const [name, value] of Object.entries(options.set ?? {})) {
    if (value !== undefined) env[name] = value;
  }
  return env as ToolEnv;
}
