/**
 * How the MySQL/MariaDB tools are told where to connect, as whom and what to dump: their options, and the
 * private option file that carries the password (never argv, never the environment).
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failpoint } from '../../util/failpoint.ts';
import { makePrivateTempDir } from '../../util/private-temp.ts';
import type { Secret } from '../../util/secret.ts';
import type { ConnectionConfig } from '../engine.ts';
import type { Flavour, ToolInfo } from './tools.ts';

/** Options that say where and as whom to connect; the password is in the option file. */
export function connectionArgs(c: ConnectionConfig, flavour: Flavour): string[] {
  const args: string[] = [];
  if (c.host !== undefined) args.push(`--host=${c.host}`);
  if (c.port !== undefined) args.push(`--port=${c.port}`);
  if (c.user !== undefined) args.push(`--user=${c.user}`);
  // MySQL's tools dropped --ssl for --ssl-mode; MariaDB's never had --ssl-mode. With a CA, the server's
  // certificate must chain to it and name the host.
  if (c.tlsCa !== undefined) {
    args.push(`--ssl-ca=${c.tlsCa}`);
    args.push(flavour === 'mariadb' ? '--ssl-verify-server-cert' : '--ssl-mode=VERIFY_IDENTITY');
  } else if (c.tls) {
    args.push(flavour === 'mariadb' ? '--ssl' : '--ssl-mode=REQUIRED');
  }
  return args;
}

/** The dump tool's options after the connection's: what to dump and how. */
export function dumpArgs(
  tool: ToolInfo,
  databases: string[] | undefined,
  schemaOnly: boolean,
  options: { several?: boolean } = {},
): string[] {
  const args = [
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    // The form the dump's facts are counted from (dump-facts.ts), whatever an option file says: rows
    // in multi-row INSERTs, names in backticks.
    '--extended-insert',
    '--quote-names',
    '--default-character-set=utf8mb4',
    '--max-allowed-packet=1G',
  ];
  // mariadb-dump's default, stated so an option file cannot change it: no rows of tables whose data lives
  // elsewhere (MERGE, CONNECT, FEDERATED...), which the facts count as 0 (restored-facts.ts).
  if (tool.flavour === 'mariadb') args.push('--no-data-med');
  if (tool.flavour === 'mysql') {
    // A logical backup restores anywhere: no GTID_PURGED that only an empty replica would accept.
    args.push('--set-gtid-purged=OFF');
    // mysqldump 8 asks for histograms, which MariaDB servers do not have.
    if (tool.major >= 8) args.push('--column-statistics=0');
  }
  if (schemaOnly) args.push('--no-data');
  if (!databases) args.push('--all-databases');
  else if (databases.length === 1 && !options.several) args.push('--', databases[0]!);
  else args.push('--databases', '--', ...databases);
  return args;
}

/** An option file giving the password to every client tool: `[client]` with the value quoted and escaped. */
export function optionFileText(password: string): string {
  const escaped = password.replace(/[\\"\n\r\t\b]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      case '\b':
        return '\\b';
      default:
        return `\\${c}`;
    }
  });
  return `[client]\npassword="${escaped}"\n`;
}

/**
 * Writes the password to a private option file for one tool run; `args` is `--defaults-extra-file=...`,
 * which the tools only accept as their first argument. Without a password there is no file.
 */
export async function createOptionFile(
  password: Secret | undefined,
): Promise<{ args: string[]; remove: () => Promise<void> }> {
  if (!password) return { args: [], remove: async () => {} };
  const dir = await makePrivateTempDir('mysql'); // mode 0700, swept at the next start if we crash
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'client.cnf');
    await writeFile(file, optionFileText(password.reveal()), { mode: 0o600, flag: 'wx' });
    await failpoint('mysql.option-file');
    return { args: [`--defaults-extra-file=${file}`], remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
