/**
 * What is set on a PostgreSQL database itself rather than in it: owner, `ALTER DATABASE … SET` and
 * `ALTER ROLE … IN DATABASE … SET` settings, grants and comment. Neither pg_restore without --create nor a
 * plain dump carries them into a database under another name, so datasaver reads them at backup time,
 * records them in the manifest and applies them to the database a restore creates.
 *
 * The manifest comes from untrusted storage: every name is quoted as an identifier, the comment as a
 * literal, and setting values never enter SQL text (they go through set_config parameters and are stored
 * with `SET … FROM CURRENT`).
 */
import type { DatabaseSettings } from '../engine.ts';

export const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;
export const DATABASE_PRIVILEGES = ['CONNECT', 'CREATE', 'TEMPORARY'] as const;
export type DatabasePrivilege = (typeof DATABASE_PRIVILEGES)[number];

/** Reads the connected database's settings (run in the backup's connection). */
export const READ_DATABASE_SETTINGS = `
  SELECT pg_catalog.pg_get_userbyid(d.datdba) AS owner,
         pg_catalog.shobj_description(d.oid, 'pg_database') AS comment,
         (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                   'role', CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END,
                   'config', s.setconfig))
            FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings,
         CASE WHEN d.datacl IS NULL THEN NULL ELSE
           (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                     'grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
                     'privilege', a.privilege_type, 'grantable', a.is_grantable)), '[]')
              FROM pg_catalog.aclexplode(d.datacl) a) END AS grants
    FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`;

export interface DatabaseSettingsRow {
  owner: string;
  comment: string | null;
  settings: { role: string | null; config: string[] }[] | null;
  grants: { grantee: string | null; privilege: string; grantable: boolean }[] | null;
}

/** The row READ_DATABASE_SETTINGS returns, as the manifest records it (sorted, so equal databases compare equal). */
export function toDatabaseSettings(row: DatabaseSettingsRow): DatabaseSettings {
  const settings = (row.settings ?? []).flatMap((s) =>
    s.config.map((entry) => {
      const eq = entry.indexOf('=');
      return { role: s.role, name: entry.slice(0, eq), value: entry.slice(eq + 1) };
    }),
  );
  settings.sort((a, b) => `${a.role ?? ''}\0${a.name}`.localeCompare(`${b.role ?? ''}\0${b.name}`));
  const grants = row.grants
    ?.filter((g) => (DATABASE_PRIVILEGES as readonly string[]).includes(g.privilege))
    .map((g) => ({ ...g, privilege: g.privilege as DatabasePrivilege }))
    .sort((a, b) => `${a.grantee ?? ''}\0${a.privilege}`.localeCompare(`${b.grantee ?? ''}\0${b.privilege}`));
  return { owner: row.owner, settings, grants: grants ?? null, comment: row.comment };
}

/** Roles the settings name: each must exist on the server they are applied on. */
export function rolesNamed(s: DatabaseSettings): string[] {
  const roles = new Set<string>([s.owner]);
  for (const g of s.grants ?? []) if (g.grantee !== null) roles.add(g.grantee);
  for (const x of s.settings) if (x.role !== null) roles.add(x.role);
  return [...roles].sort();
}

/** One statement: SQL text plus its parameters, and what it does, for the restore's output. */
export interface Step {
  sql: string;
  params: string[];
  describe: string;
}

export interface SettingsPlan {
  steps: Step[];
  /** What was left out because a role it names is missing, for the output. */
  skipped: string[];
}

/**
 * The statements that give `database` the recorded settings. Anything naming a role in `missing` is
 * left out (and listed in `skipped`). Throws on a setting name that is not a configuration parameter name.
 */
export function settingsPlan(
  database: string,
  s: DatabaseSettings,
  missing: ReadonlySet<string>,
): SettingsPlan {
  const db = quoteIdent(database);
  const steps: Step[] = [];
  const skipped: string[] = [];
  const ownerKept = !missing.has(s.owner);
  if (ownerKept)
    steps.push({
      sql: `ALTER DATABASE ${db} OWNER TO ${quoteIdent(s.owner)}`,
      params: [],
      describe: `owner ${s.owner}`,
    });
  else skipped.push(`owner ${s.owner}`);
  for (const x of s.settings) {
    const what = `${x.role === null ? '' : `role ${x.role}: `}${x.name} = ${x.value}`;
    if (x.role !== null && missing.has(x.role)) {
      skipped.push(`setting ${what}`);
      continue;
    }
    const name = settingName(x.name);
    const target = x.role === null ? `DATABASE ${db}` : `ROLE ${quoteIdent(x.role)} IN DATABASE ${db}`;
    if (x.name.toLowerCase() === 'role') {
      // set_config('role') would switch the role running the steps after it: a role name is one value,
      // so it goes in as a quoted literal instead.
      steps.push({
        sql: `ALTER ${target} SET ${name} = ${quoteLiteral(x.value)}`,
        params: [],
        describe: `setting ${what}`,
      });
      continue;
    }
    // set_config takes the value as the server stored it (a list such as `billing, public` stays a list);
    // FROM CURRENT then records it without the value ever being SQL text.
    steps.push({
      sql: 'SELECT pg_catalog.set_config($1, $2, true)',
      params: [x.name, x.value],
      describe: '',
    });
    steps.push({
      sql: `ALTER ${target} SET ${name} FROM CURRENT`,
      params: [],
      describe: `setting ${what}`,
    });
  }
  if (s.grants) {
    steps.push({ sql: `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`, params: [], describe: '' });
    if (ownerKept)
      steps.push({
        sql: `REVOKE ALL ON DATABASE ${db} FROM ${quoteIdent(s.owner)}`,
        params: [],
        describe: '',
      });
    for (const g of s.grants) {
      if (!(DATABASE_PRIVILEGES as readonly string[]).includes(g.privilege)) {
        throw new Error(`'${g.privilege}' is not a database privilege`);
      }
      const to = g.grantee === null ? 'PUBLIC' : g.grantee;
      const what = `grant ${g.privilege} to ${to}${g.grantable ? ' with grant option' : ''}`;
      if (g.grantee !== null && missing.has(g.grantee)) {
        skipped.push(what);
        continue;
      }
      const grantee = g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee);
      steps.push({
        sql: `GRANT ${g.privilege} ON DATABASE ${db} TO ${grantee}${g.grantable ? ' WITH GRANT OPTION' : ''}`,
        params: [],
        describe: what,
      });
    }
  }
  if (s.comment !== null)
    steps.push({
      sql: `COMMENT ON DATABASE ${db} IS ${quoteLiteral(s.comment)}`,
      params: [],
      describe: 'comment',
    });
  return { steps, skipped };
}

/** `"my ""db"""`: an SQL identifier, quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** An SQL string literal that reads the same whatever standard_conforming_strings is. */
export function quoteLiteral(value: string): string {
  const quoted = `'${value.replaceAll("'", "''")}'`;
  return value.includes('\\') ? `E${quoted.replaceAll('\\', '\\\\')}` : quoted;
}

/** `app.tenant` → `"app"."tenant"`: a configuration parameter name, each part quoted. */
function settingName(name: string): string {
  if (!SETTING_NAME.test(name)) throw new Error(`'${name}' is not a configuration parameter name`);
  return name.split('.').map(quoteIdent).join('.');
}
