/**
 * What the MySQL/MariaDB tools' error output means: the server's error number, whether it is about
 * connecting (exit 3) or a statement (the caller's error class), and the message and hint to show.
 */
import { type BackupError, ConnectionError, type RestoreError } from '../../util/errors.ts';
import { describeExit, type Exit } from '../../util/process.ts';

type FailAs = typeof BackupError | typeof RestoreError;

/** The server and account a tool talked to, as messages name them. */
export interface ServerContext {
  /** `host:port`. */
  where: string;
  /** The user, or `the default user`. */
  user: string;
  host: string | undefined;
  tlsCa: string | undefined;
  /** Removes secrets from a tool's output. */
  redact: (text: string) => string;
}

/**
 * The client's error lines. MariaDB's client also echoes the failing statement, which in a dump can be an
 * INSERT of megabytes: the `ERROR nnnn ... at line n: ... near '...'` line says enough.
 */
export function clientMessage(stderr: string): string {
  const errors = stderr.split('\n').filter((l) => /^ERROR \d+/.test(l));
  if (errors.length > 0) return errors.join('\n');
  const text = stderr.trim();
  return text.length > 2000 ? `...${text.slice(-2000)}` : text;
}

/** The MySQL error number in a tool's message (`ERROR 1045 (28000): ...`, `Got error: 2002: ...`). */
export function mysqlErrorCode(text: string): number | undefined {
  const m = /\b(?:ERROR|Got error:|Error:?)\s+(\d{4})\b/.exec(text) ?? /\((\d{4})\)\s*$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Errors that mean the session never started, or ended: the server is unreachable or refuses us. */
function isConnectionErrorCode(code: number): boolean {
  return (
    [1040, 1043, 1044, 1045, 1049, 1129, 1130, 1203, 1226, 1251, 1698, 1862, 3159].includes(code) ||
    (code >= 2000 && code < 3000)
  );
}

/** The server's words without the tool's prefix (`ERROR 1045 (28000): `, `mariadb-dump: Got error: 1045: `). */
function serverMessage(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line
    .replace(/^.*?\bERROR\s+\d+\s+\([0-9A-Z]+\)(?: at line \d+)?:\s*/, '')
    .replace(/^.*?\bGot error:\s+\d+:\s*/, '')
    .trim();
}

/** Turns a client's stderr into a ConnectionError (could not connect) or `FailAs` (a statement failed). */
export function clientFailure(stderr: string, exit: Exit, FailAs: FailAs, server: ServerContext): Error {
  const text = server.redact(clientMessage(stderr)) || describeExit(exit);
  const code = mysqlErrorCode(stderr);
  // The client numbers statement errors by script line; errors on connecting have no line.
  const duringStatement = / at line \d+/.test(stderr);
  const lost = code === 2006 || code === 2013;
  if (code !== undefined && (lost || (!duringStatement && isConnectionErrorCode(code)))) {
    return connectionError(code, text, server);
  }
  return new FailAs(`${server.where}: ${text}`);
}

function connectionError(code: number, text: string, server: ServerContext): ConnectionError {
  const { where, user } = server;
  const message = serverMessage(text);
  const known: Record<number, [string, string, boolean]> = {
    1045: [
      `authentication failed for user ${user} on ${where}: ${message}`,
      'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD',
      false,
    ],
    1698: [
      `authentication failed for user ${user} on ${where}: ${message}`,
      'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD',
      false,
    ],
    1044: [
      `${where} refused user ${user}: ${message}`,
      'grant the user access to the database, or check DATASAVER_DB_NAME',
      false,
    ],
    1049: [`${where}: ${message}`, 'check DATASAVER_DB_NAME (or the database in the URL)', false],
    1130: [
      `${where} does not accept user ${user} from this host: ${message}`,
      "check the host part of the user's account on the server",
      false,
    ],
    1129: [`${where} blocks this host: ${message}`, 'run FLUSH HOSTS on the server', false],
    1862: [`the password of user ${user} on ${where} has expired`, 'set a new password for the user', false],
    2005: [`cannot resolve host ${server.host}: ${message}`, 'check DATASAVER_DB_HOST', false],
    2026: [
      `TLS connection to ${where} failed: ${message}`,
      server.tlsCa
        ? `check that DATASAVER_DB_TLS_CA holds the CA that signed the server's certificate, and that the certificate names ${server.host ?? 'the host'}`
        : "check the server's TLS setup, or unset DATASAVER_DB_TLS",
      false,
    ],
    2059: [
      `the client tools cannot use the authentication method of user ${user} on ${where}: ${message}`,
      'install client tools that match the server, or change the authentication plugin of the user',
      false,
    ],
    2061: [
      `${where} requires a secure connection for user ${user}: ${message}`,
      'set DATASAVER_DB_TLS=true',
      false,
    ],
    3159: [`${where} requires TLS: ${message}`, 'set DATASAVER_DB_TLS=true', false],
  };
  const [msg, hint, transient] = known[code] ?? [
    `cannot connect to the MySQL/MariaDB server at ${where}: ${message}`,
    'check that the server runs and DATASAVER_DB_HOST/PORT',
    true,
  ];
  return new ConnectionError(msg, { hint, transient });
}
