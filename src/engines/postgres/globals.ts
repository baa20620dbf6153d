/**
 * What a globals script (`pg_dumpall --globals-only`) may hold, and how it is restored onto a server that
 * may already have some of its roles. Every statement is classified by its head (command and subject);
 * only what pg_dumpall writes for roles, memberships and tablespaces passes, anything else is refused
 * naming its first words. Each statement later runs alone through the extended protocol, which runs one
 * command or none, so what follows a checked head can only be that command's own clauses. Pure.
 */
import { lexGlobals, RefusedGlobals, type Statement, type Token } from './globals-lexer.ts';

export { RefusedGlobals } from './globals-lexer.ts';

/** One statement of a globals script, by what it is about. */
export type GlobalsStatement =
  /** `SET …` and `SELECT pg_catalog.set_config(…)`: the dump session's settings, never run. */
  | { kind: 'session'; sql: string; line: number }
  /** CREATE ROLE, ALTER ROLE (`WITH …`, `SET …`, `IN DATABASE d SET …`), COMMENT ON ROLE. */
  | { kind: 'role'; sql: string; line: number; role: string; create: boolean; database: string | undefined }
  /** `GRANT role TO member [WITH …] [GRANTED BY grantor]`. */
  | {
      kind: 'membership';
      sql: string;
      line: number;
      role: string;
      member: string;
      grantor: string | undefined;
      /** The statement without its GRANTED BY clause. */
      withoutGrantor: string;
    }
  /** CREATE / ALTER TABLESPACE, COMMENT ON TABLESPACE, GRANT / REVOKE … ON TABLESPACE. */
  | { kind: 'tablespace'; sql: string; line: number; tablespace: string; create: boolean };

/**
 * Reads and checks a whole globals script. Throws RefusedGlobals (its message names the line and the
 * statement's first words) on anything a globals dump does not hold, or on a truncated script.
 */
export function readGlobals(text: string): GlobalsStatement[] {
  // Session settings are never run: not kept either.
  return lexGlobals(text, (s) => {
    const statement = classify(s);
    return statement.kind === 'session' ? undefined : statement;
  }).statements;
}

/** Role specifications that are not names: they would act on whoever restores, or on everyone. */
const NOT_A_ROLE = new Set(['current_user', 'session_user', 'current_role', 'public', 'all', 'none', 'user']);

function classify(s: Statement): GlobalsStatement {
  const t = s.tokens;
  const at = (i: number) => (t[i]?.kind === 'word' ? t[i]!.value : undefined);
  const base = { sql: s.sql, line: s.line };
  const refuse = (why = 'a statement a globals dump does not hold'): never => {
    const words = t
      .slice(0, 4)
      .map((x) => x.text)
      .join(' ');
    throw new RefusedGlobals(
      `line ${s.line}: ${why}: ${words.length > 60 ? `${words.slice(0, 60)}…` : words}`,
    );
  };
  const name = (i: number): string => roleName(t[i]) ?? refuse('not a role or tablespace name');
  const head = `${at(0)} ${at(1)}`;
  if (at(0) === 'set') return { kind: 'session', ...base };
  if (at(0) === 'select' && at(1) === 'pg_catalog' && t[2]?.text === '.' && at(3) === 'set_config') {
    return { kind: 'session', ...base };
  }
  if (head === 'create role') {
    // pg_dumpall creates a bare role and gives its attributes in ALTER ROLE; CREATE ROLE's own options
    // could also make roles that exist here members of it (ROLE, ADMIN), which restore never does.
    if (s.tokenCount !== 3) return refuse('a CREATE ROLE with options');
    return { kind: 'role', ...base, role: name(2), create: true, database: undefined };
  }
  if (head === 'alter role') {
    const role = name(2);
    if (at(3) === 'with' || at(3) === 'set')
      return { kind: 'role', ...base, role, create: false, database: undefined };
    if (at(3) === 'in' && at(4) === 'database' && at(6) === 'set') {
      return { kind: 'role', ...base, role, create: false, database: name(5) };
    }
    return refuse('an ALTER ROLE other than its attributes or settings');
  }
  // COMMENT ON ROLE|TABLESPACE x IS …, and SECURITY LABEL [FOR provider] ON ROLE|TABLESPACE x IS ….
  const on =
    at(0) === 'comment' ? 1 : at(0) === 'security' && at(1) === 'label' ? (at(2) === 'for' ? 4 : 2) : -1;
  if (
    on !== -1 &&
    at(on) === 'on' &&
    (at(on + 1) === 'role' || at(on + 1) === 'tablespace') &&
    at(on + 3) === 'is'
  ) {
    const subject = name(on + 2);
    if (at(on + 1) === 'role')
      return { kind: 'role', ...base, role: subject, create: false, database: undefined };
    return { kind: 'tablespace', ...base, tablespace: subject, create: false };
  }
  if (head === 'create tablespace') return { kind: 'tablespace', ...base, tablespace: name(2), create: true };
  if (head === 'alter tablespace' && ['set', 'reset', 'owner'].includes(at(3) ?? '')) {
    return { kind: 'tablespace', ...base, tablespace: name(2), create: false };
  }
  if (at(0) === 'grant' || at(0) === 'revoke') {
    const on = t.findIndex((x) => x.kind === 'word' && x.value === 'on');
    if (on !== -1) {
      const privileges = t.slice(1, on).every((x) => x.kind === 'word' || x.text === ',');
      if (!privileges || at(on + 1) !== 'tablespace')
        return refuse('a grant on something other than a tablespace');
      // One tablespace only: a list could name one that exists here beside a new one.
      if (at(on + 3) !== 'to' && at(on + 3) !== 'from') return refuse('a grant on more than one tablespace');
      return { kind: 'tablespace', ...base, tablespace: name(on + 2), create: false };
    }
    if (at(0) === 'grant' && at(2) === 'to') return membership(s, name(1), name(3), refuse);
  }
  return refuse();
}

/** `GRANT role TO member [WITH option …] [GRANTED BY grantor]`, nothing else after the member. */
function membership(
  s: Statement,
  role: string,
  member: string,
  refuse: (why?: string) => never,
): GlobalsStatement {
  const t = s.tokens;
  if (s.tokenCount > t.length) refuse('a role membership with more than one role, member or grantor');
  let i = 4;
  if (t[i]?.kind === 'word' && t[i]!.value === 'with') {
    i++;
    // ADMIN OPTION (before PostgreSQL 16), or ADMIN / INHERIT / SET with TRUE or FALSE, comma-separated.
    while (i < t.length && (t[i]!.kind === 'word' || t[i]!.text === ',') && t[i]!.value !== 'granted') i++;
  }
  let grantor: string | undefined;
  const granted = i;
  if (t[i]?.kind === 'word' && t[i]!.value === 'granted' && t[i + 1]?.value === 'by') {
    grantor = roleName(t[i + 2]) ?? refuse('a grantor that is not a role name');
    i += 3;
  }
  if (i !== t.length) refuse('a role membership with more than one role, member or grantor');
  const withoutGrantor = grantor === undefined ? s.sql : s.sql.slice(0, t[granted]!.start).trimEnd();
  return { kind: 'membership', sql: s.sql, line: s.line, role, member, grantor, withoutGrantor };
}

/**
 * A name is at most this many bytes: the server cuts longer ones, so a longer name in a script could
 * be taken for a new role here while the server applies it to an existing one.
 */
const MAX_NAME_BYTES = 63;

/** A role or tablespace name: a quoted identifier, or a plain word that is not a special role spec. */
function roleName(token: Token | undefined): string | undefined {
  const name =
    (token?.kind === 'ident' && token.value !== '') ||
    (token?.kind === 'word' && !NOT_A_ROLE.has(token.value))
      ? token.value
      : undefined;
  return name !== undefined && Buffer.byteLength(name) <= MAX_NAME_BYTES ? name : undefined;
}

/** What a server already has, for `planGlobals`. */
export interface ServerGlobals {
  roles: ReadonlySet<string>;
  tablespaces: ReadonlySet<string>;
  databases: ReadonlySet<string>;
}

/** What restoring a globals script onto one server does, statement by statement. */
export interface GlobalsPlan {
  /** Statements about roles and memberships, in the script's order: run in one transaction. */
  roleSteps: { sql: string; line: number }[];
  /**
   * Statements about tablespaces, in order: each on its own (CREATE TABLESPACE cannot be in a
   * transaction); `creates` names the tablespace a CREATE makes.
   */
  tablespaceSteps: { sql: string; line: number; creates: string | undefined }[];
  created: string[];
  existing: string[];
  tablespacesCreated: string[];
  tablespacesExisting: string[];
  skipped: string[];
}

/**
 * How `statements` restore onto a server holding `server`: whatever is about a role or tablespace that
 * exists there is left out (the existing one stays exactly as it is), so is a membership of a member
 * that existed, and a GRANTED BY naming a role that exists neither there nor in the script.
 */
export function planGlobals(statements: readonly GlobalsStatement[], server: ServerGlobals): GlobalsPlan {
  const plan: GlobalsPlan = {
    roleSteps: [],
    tablespaceSteps: [],
    created: [],
    existing: [],
    tablespacesCreated: [],
    tablespacesExisting: [],
    skipped: [],
  };
  const created = new Set(statements.flatMap((s) => (s.kind === 'role' && s.create ? [s.role] : [])));
  const roleAfter = (r: string) => server.roles.has(r) || created.has(r);
  const step = (s: GlobalsStatement, sql = s.sql) => ({ sql, line: s.line });
  for (const s of statements) {
    if (s.kind === 'session') continue;
    if (s.kind === 'role') {
      if (server.roles.has(s.role)) {
        if (s.create) plan.existing.push(s.role);
      } else if (s.database !== undefined && !server.databases.has(s.database)) {
        plan.skipped.push(`settings of role ${s.role} in database ${s.database}: no such database here`);
      } else {
        if (s.create) plan.created.push(s.role);
        plan.roleSteps.push(step(s));
      }
    } else if (s.kind === 'membership') {
      const what = `grant ${s.role} to ${s.member}`;
      if (server.roles.has(s.member)) plan.skipped.push(`${what}: ${s.member} existed`);
      else if (!roleAfter(s.role)) plan.skipped.push(`${what}: role ${s.role} does not exist here`);
      else if (s.grantor !== undefined && !roleAfter(s.grantor)) {
        plan.skipped.push(
          `${what} granted by ${s.grantor}: granted by the user restoring (${s.grantor} does not exist here)`,
        );
        plan.roleSteps.push(step(s, s.withoutGrantor));
      } else plan.roleSteps.push(step(s));
    } else if (server.tablespaces.has(s.tablespace)) {
      if (s.create) plan.tablespacesExisting.push(s.tablespace);
    } else {
      if (s.create) plan.tablespacesCreated.push(s.tablespace);
      plan.tablespaceSteps.push({ ...step(s), creates: s.create ? s.tablespace : undefined });
    }
  }
  return plan;
}

/** The roles and tablespaces a script defines, as a dump's table of contents (`verify`, `--dry-run`). */
export function globalsEntries(
  statements: readonly GlobalsStatement[],
): { type: string; schema: string; name: string }[] {
  return statements.flatMap((s) => {
    if (s.kind === 'role' && s.create) return [{ type: 'ROLE', schema: '', name: s.role }];
    if (s.kind === 'tablespace' && s.create) return [{ type: 'TABLESPACE', schema: '', name: s.tablespace }];
    return [];
  });
}
