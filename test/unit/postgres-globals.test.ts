import { describe, expect, it } from 'vitest';
import {
  type GlobalsStatement,
  globalsEntries,
  planGlobals,
  RefusedGlobals,
  readGlobals,
  type ServerGlobals,
} from '../../src/engines/postgres/globals.ts';
import { lexGlobals } from '../../src/engines/postgres/globals-lexer.ts';
import { inspectGlobals } from '../../src/engines/postgres/globals-restore.ts';
import { BackupError } from '../../src/util/errors.ts';

const KEY = 'y66yunZw5CDahXAaz9YqOghdPmat98jfRsjSmj6ZLLMH9biJ0X8r0szfCTHfimZ';
const HASH = 'SCRAM-SHA-256$4096:+hPNVGCB2VreAgvKcc4FeQ==$etx8Qs/PnCq+x8QQ=:xA2qk2T4MrGo77qfptt4n1J=';

/** What pg_dumpall 15.18 --globals-only wrote for a server with a group, three login roles and odd names. */
const REAL = `--
-- PostgreSQL database cluster dump
--

\\restrict ${KEY}

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE app;
ALTER ROLE app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD '${HASH}' VALID UNTIL '2030-01-01 00:00:00+00';
COMMENT ON ROLE app IS 'it''s the app
second line';
CREATE ROLE grp;
ALTER ROLE grp WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD '${HASH}';
CREATE ROLE reader;
ALTER ROLE reader WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE "we""ird";
ALTER ROLE "we""ird" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;

--
-- User Configurations
--

--
-- User Config "app"
--

ALTER ROLE app SET search_path TO 'a', 'b';
ALTER ROLE app SET work_mem TO '8MB';


--
-- Role memberships
--

GRANT grp TO app WITH ADMIN OPTION GRANTED BY postgres;
GRANT grp TO "we""ird" GRANTED BY postgres;
GRANT pg_read_all_data TO reader GRANTED BY postgres;

--
-- Tablespaces
--

CREATE TABLESPACE fast OWNER app LOCATION '/srv/fast';
GRANT ALL ON TABLESPACE fast TO grp;




\\unrestrict ${KEY}

--
-- PostgreSQL database cluster dump complete
--

`;

/** A script made of `body`, with pg_dumpall's header and completion marker. */
const script = (body: string) =>
  `--\n-- PostgreSQL database cluster dump\n--\n\n${body}\n\n--\n-- PostgreSQL database cluster dump complete\n--\n`;

const refusal = (text: string): string => {
  try {
    readGlobals(text);
  } catch (err) {
    expect(err).toBeInstanceOf(RefusedGlobals);
    return (err as Error).message;
  }
  throw new Error('the script was not refused');
};

const server = (
  roles: string[],
  tablespaces: string[] = [],
  databases: string[] = ['postgres'],
): ServerGlobals => ({
  roles: new Set(roles),
  tablespaces: new Set(tablespaces),
  databases: new Set(databases),
});

describe('globals script: reading', () => {
  it("classifies every statement of pg_dumpall's own output", () => {
    const statements = readGlobals(REAL);
    expect(statements.map((s) => s.kind)).toEqual([
      // The three session settings (SET …) are never run, so not kept.
      ...['role', 'role', 'role', 'role', 'role', 'role', 'role', 'role', 'role', 'role', 'role'],
      ...['role', 'role'],
      ...['membership', 'membership', 'membership'],
      ...['tablespace', 'tablespace'],
    ]);
    expect(globalsEntries(statements)).toEqual([
      { type: 'ROLE', schema: '', name: 'app' },
      { type: 'ROLE', schema: '', name: 'grp' },
      { type: 'ROLE', schema: '', name: 'postgres' },
      { type: 'ROLE', schema: '', name: 'reader' },
      { type: 'ROLE', schema: '', name: 'we"ird' },
      { type: 'TABLESPACE', schema: '', name: 'fast' },
    ]);
    const comment = statements.find((s) => s.sql.startsWith('COMMENT'));
    expect(comment).toMatchObject({ kind: 'role', role: 'app', line: 18 });
    expect(comment?.sql).toBe("COMMENT ON ROLE app IS 'it''s the app\nsecond line'");
    expect(statements.find((s) => s.kind === 'membership' && s.member === 'we"ird')).toMatchObject({
      role: 'grp',
      grantor: 'postgres',
      withoutGrantor: 'GRANT grp TO "we""ird"',
    });
  });

  it('keeps quoted strings, names, dollar quotes and nested comments inside their statement', () => {
    const statements = readGlobals(
      script(
        [
          `CREATE ROLE "a;b" /* a /* nested; */ comment; */;`,
          `COMMENT ON ROLE "a;b" IS 'x''; DROP ROLE b; --';`,
          `COMMENT ON ROLE "a;b" IS E'it\\'s; DROP ROLE b';`,
          `COMMENT ON ROLE "a;b" IS $q$; DROP ROLE b; $q$;`,
          'CREATE ROLE UPPER;',
          "SECURITY LABEL FOR selinux ON ROLE upper IS 'system_u:object_r:sepgsql_table_t:s0';",
          "SECURITY LABEL ON TABLESPACE fast IS 'x';",
        ].join('\n'),
      ),
    );
    expect(statements).toHaveLength(7);
    expect(statements[5]).toMatchObject({ kind: 'role', role: 'upper' });
    expect(statements[6]).toMatchObject({ kind: 'tablespace', tablespace: 'fast' });
    expect(statements.slice(0, 6).every((s) => s.kind === 'role')).toBe(true);
    expect((statements[0] as GlobalsStatement & { role: string }).role).toBe('a;b');
    expect((statements[4] as GlobalsStatement & { role: string }).role).toBe('upper');
  });

  it('reads the membership options of PostgreSQL 16 and later', () => {
    const [grant] = readGlobals(
      script('GRANT grp TO app WITH ADMIN OPTION, INHERIT FALSE, SET TRUE GRANTED BY boss;'),
    );
    expect(grant).toMatchObject({
      kind: 'membership',
      role: 'grp',
      member: 'app',
      grantor: 'boss',
      withoutGrantor: 'GRANT grp TO app WITH ADMIN OPTION, INHERIT FALSE, SET TRUE',
    });
  });

  it('refuses any statement a globals dump does not hold, naming it', () => {
    expect(refusal(script('DROP DATABASE shop;'))).toMatch(/line 5: .*DROP DATABASE shop/);
    expect(refusal(script('CREATE ROLE a; DROP ROLE b;'))).toMatch(/DROP ROLE b/);
    expect(refusal(script('ALTER ROLE CURRENT_USER WITH PASSWORD NULL;'))).toMatch(/not a role/);
    expect(refusal(script('CREATE ROLE newcomer ROLE postgres;'))).toMatch(/CREATE ROLE with options/);
    expect(refusal(script('ALTER ROLE app RENAME TO other;'))).toMatch(/ALTER ROLE app RENAME/);
    expect(refusal(script('GRANT ALL ON DATABASE shop TO app;'))).toMatch(/other than a tablespace/);
    expect(refusal(script('GRANT a, b TO c;'))).toMatch(/GRANT a , b/);
    expect(refusal(script('GRANT a TO b GRANTED BY c, d;'))).toMatch(/more than one/);
    expect(refusal(script("COPY (SELECT 1) TO PROGRAM 'id';"))).toMatch(/COPY/);
    // Without E, a backslash quotes nothing: the string ends early and DROP stands alone.
    expect(refusal(script("COMMENT ON ROLE a IS 'x\\'; DROP ROLE b; --';"))).toMatch(/DROP ROLE b/);
    // A list could name a tablespace that exists here beside a new one.
    expect(refusal(script('REVOKE ALL ON TABLESPACE newts, fast FROM app;'))).toMatch(
      /more than one tablespace/,
    );
    // The server cuts names at 63 bytes: a longer one could be an existing role in disguise.
    expect(refusal(script(`ALTER ROLE "${'r'.repeat(64)}" WITH SUPERUSER;`))).toMatch(/not a role/);
    expect(refusal(script(`GRANT a TO b GRANTED BY c${' , d'.repeat(40)};`))).toMatch(/more than one/);
  });

  it('keeps no more of a statement than it needs, however long a forged one is', () => {
    const words = Array.from({ length: 200_000 }, (_, i) => `w${i}`).join(' ');
    const [statement] = readGlobals(script(`ALTER ROLE app WITH ${words};`));
    expect(statement).toMatchObject({ kind: 'role', role: 'app' });
    expect(refusal(script(`CREATE ROLE a ${words};`))).toMatch(/CREATE ROLE with options/);
  });

  it('refuses psql commands other than \\restrict and \\unrestrict', () => {
    expect(refusal(script('\\! touch /tmp/owned'))).toMatch(/psql command \\!/);
    expect(refusal(script('\\connect shop'))).toMatch(/psql command \\connect/);
    expect(refusal(script('\\restrict abc; DROP'))).toMatch(/psql command \\restrict/);
    expect(refusal(script('CREATE ROLE a \\! id\n;'))).toMatch(/backslash command inside a statement/);
  });

  it('refuses a truncated script', () => {
    expect(refusal(REAL.slice(0, REAL.indexOf('CREATE ROLE grp')))).toMatch(/completion marker/);
    expect(refusal(REAL.slice(0, REAL.indexOf('second line')))).toMatch(/inside a quoted string/);
    expect(refusal(script('CREATE ROLE a'))).toMatch(/inside a statement/);
    expect(refusal(`${script('CREATE ROLE a;')}CREATE ROLE b;\n`)).toMatch(/completion marker/);
    expect(refusal(script('CREATE ROLE a /* never closed'))).toMatch(/inside a comment/);
  });

  it('keeps the restrict keys it saw', () => {
    expect(lexGlobals(REAL, () => undefined).restrictKeys).toEqual([KEY, KEY]);
  });

  it('inspects a stored script to its end, and fails a refused one with a BackupError', async () => {
    const chunks = (text: string) =>
      (async function* () {
        for (let i = 0; i < text.length; i += 7) yield Buffer.from(text.slice(i, i + 7));
      })();
    const inspection = await inspectGlobals(chunks(REAL), undefined);
    expect(inspection.entries.map((e) => e.name)).toEqual([
      'app',
      'grp',
      'postgres',
      'reader',
      'we"ird',
      'fast',
    ]);
    await expect(inspectGlobals(chunks(script('DROP TABLE t;')), undefined)).rejects.toThrow(BackupError);
  });
});

describe('globals script: restore plan', () => {
  it('onto a fresh server: every role but the existing superuser, in order, then the tablespaces', () => {
    const plan = planGlobals(readGlobals(REAL), server(['postgres', 'pg_read_all_data']));
    expect(plan.created).toEqual(['app', 'grp', 'reader', 'we"ird']);
    expect(plan.existing).toEqual(['postgres']);
    expect(plan.roleSteps.map((s) => s.sql.split(' ').slice(0, 3).join(' '))).toEqual([
      'CREATE ROLE app',
      'ALTER ROLE app',
      'COMMENT ON ROLE',
      'CREATE ROLE grp',
      'ALTER ROLE grp',
      'CREATE ROLE reader',
      'ALTER ROLE reader',
      'CREATE ROLE "we""ird"',
      'ALTER ROLE "we""ird"',
      'ALTER ROLE app',
      'ALTER ROLE app',
      'GRANT grp TO',
      'GRANT grp TO',
      'GRANT pg_read_all_data TO',
    ]);
    expect(plan.roleSteps.some((s) => s.sql.includes('ROLE postgres'))).toBe(false);
    expect(plan.tablespaceSteps.map((s) => s.creates)).toEqual(['fast', undefined]);
    expect(plan.tablespacesCreated).toEqual(['fast']);
    expect(plan.skipped).toEqual([]);
  });

  it('leaves a role that exists exactly as it is, with the memberships given to it', () => {
    const plan = planGlobals(readGlobals(REAL), server(['postgres', 'app', 'pg_read_all_data'], ['fast']));
    expect(plan.existing).toEqual(['app', 'postgres']);
    expect(plan.roleSteps.some((s) => /ROLE app\b/.test(s.sql))).toBe(false);
    expect(plan.skipped).toEqual(['grant grp to app: app existed']);
    expect(plan.tablespaceSteps).toEqual([]);
    expect(plan.tablespacesExisting).toEqual(['fast']);
  });

  it('grants as the user restoring when the recorded grantor is nowhere, and skips settings of a missing database', () => {
    const statements = readGlobals(
      script(
        [
          'CREATE ROLE a;',
          'GRANT pg_monitor TO a GRANTED BY gone;',
          'GRANT nowhere TO a;',
          "ALTER ROLE a IN DATABASE shop SET work_mem TO '8MB';",
        ].join('\n'),
      ),
    );
    const plan = planGlobals(statements, server(['postgres', 'pg_monitor']));
    expect(plan.roleSteps.map((s) => s.sql)).toEqual(['CREATE ROLE a', 'GRANT pg_monitor TO a']);
    expect(plan.skipped).toEqual([
      'grant pg_monitor to a granted by gone: granted by the user restoring (gone does not exist here)',
      'grant nowhere to a: role nowhere does not exist here',
      'settings of role a in database shop: no such database here',
    ]);
    const withShop = planGlobals(statements, server(['postgres', 'pg_monitor'], [], ['shop']));
    expect(withShop.roleSteps.map((s) => s.sql)).toContain(
      "ALTER ROLE a IN DATABASE shop SET work_mem TO '8MB'",
    );
  });
});
