/**
 * The command line: argv -> command -> exit code. Commands are imported lazily so `datasaver --help` stays
 * fast; only this module turns errors into messages and exit codes.
 */
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_ENGINE, engineDescriptor } from '../engines/registry.ts';
import { DatasaverError, ExitCode, errorMessage, isAbortError } from '../util/errors.ts';
import { checkFailpoints } from '../util/failpoint.ts';
import { printable } from '../util/printable.ts';
import { redact } from '../util/secret.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import type { CliContext } from './context.ts';

export async function run(argv: string[], base: Omit<CliContext, 'configFile'>): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = new Command('datasaver')
    .description('Database backups that stream, checksum, verify and restore.')
    .version(DATASAVER_VERSION)
    .option(
      '-c, --config <file>',
      'YAML config file (default: $DATASAVER_CONFIG, else environment variables only)',
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => base.stdout.write(s), writeErr: (s) => base.stderr.write(s) });
  const ctx = (): CliContext => ({ ...base, configFile: program.opts<{ config?: string }>().config });
  // Before any command: a test's mistyped failpoint fails it now, and what a crashed run left in the
  // temp dir goes now (the daemon's too).
  program.hook('preAction', async () => {
    checkFailpoints();
    await (await import('./leftovers.ts')).sweepLeftovers(base.stderr);
  });
  const json = new Option('--json', 'machine-readable JSON on stdout');
  const target = new Option('-t, --target <name>', 'target to work on (default: the only configured one)');

  program
    .command('backup')
    .description('take a backup now')
    .addOption(target)
    .option('--all', 'back up every configured target')
    .option('-l, --label <label...>', 'labels to record (e.g. manual, daily); repeatable')
    .option('--schema-only', 'dump the schema without data')
    .option('--format <format>', `dump format, one of the engine's (${formatsExample()})`)
    .option('--verify', 'verify the backup right after it is committed')
    .option('--no-prune', 'skip the retention prune that follows a successful backup')
    .option(
      '--resume-uploads',
      'take no backup; copy backups some destinations missed (a failed S3 upload) from the others',
    )
    .option(
      '--metrics-file <path>',
      "write the run's metrics there at the end, succeeded or not, for a Prometheus textfile collector (replaced atomically)",
    )
    .addOption(json)
    .action(async (opts) => {
      exitCode = await (await import('./backup.ts')).backupCommand(ctx(), opts);
    });
  program
    .command('list')
    .description('list committed backups in storage')
    .addOption(target)
    .option('--all', 'also show incomplete backups (data without a manifest)')
    .addOption(json)
    .action(async (opts) => {
      exitCode = await (await import('./list.ts')).listCommand(ctx(), opts);
    });
  program
    .command('drill')
    .description(
      'restore backups into a scratch server or database, compare them with the facts recorded at backup time, and remove the copy',
    )
    .argument('[backup]', 'backup id, latest, or all', 'latest')
    .addOption(target)
    .option('-j, --jobs <n>', 'parallel restore workers, where the format allows them')
    .option(
      '--temp-dir <dir>',
      'where the throwaway server and any spooled dump live (default: the system temp dir)',
    )
    .addOption(json)
    .action(async (ref: string, opts) => {
      exitCode = await (await import('./drill.ts')).drillCommand(ctx(), ref, opts);
    });
  program
    .command('verify')
    .description('check backups: checksum, full decompression and dump structure')
    .argument('<backup>', 'backup id, latest, or all')
    .addOption(target)
    .addOption(json)
    .action(async (ref: string, opts) => {
      exitCode = await (await import('./verify.ts')).verifyCommand(ctx(), ref, opts);
    });
  program
    .command('restore')
    .description('restore a backup into a database (checksum verified first)')
    .argument('<backup>', 'backup id, or latest')
    .addOption(target)
    .option(
      '--database <name>',
      'of a whole-server backup set (PostgreSQL): restore this database alone (with --target-db, under another name); without it a set restores its roles and every database',
    )
    .option(
      '--target-db <name>',
      "database to restore into, created if missing (SQLite: a file path); default: the target's own",
    )
    .option('--dry-run', 'show what would be restored and where, change nothing')
    .option(
      '--force',
      'restore over what a non-empty destination holds; with --to-file, replace an existing file',
    )
    .option('--drop-existing', 'drop and recreate the database first, ending its other connections')
    .option('-j, --jobs <n>', 'parallel restore workers (custom format)')
    .option(
      '--skip-missing-roles',
      "PostgreSQL: when the backed-up database's owner, grants or role settings name roles this server lacks, leave those out (and say so) instead of refusing the restore",
    )
    .option(
      '--allow-unsigned',
      'with verify keys set (DATASAVER_VERIFY_KEYS): restore the backup named by its id although its manifest is unsigned or signed by a key not among them, with a warning (never latest; never a bad signature)',
    )
    .option(
      '--table <name>',
      'restore only this table (table or schema.table; repeat for more; PostgreSQL custom format): its definition and rows, not its indexes or constraints',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--to-file <path>',
      'write the backup as a file instead (Redis RDB, SQLite database, pg_dump archive, SQL script); needs only storage',
    )
    .option(
      '--temp-dir <dir>',
      'where a restore spools the decompressed dump (PostgreSQL, Redis; default: the system temp dir); what killed restores left there is removed first',
    )
    .addOption(json)
    .action(async (ref: string, opts) => {
      exitCode = await (await import('./restore.ts')).restoreCommand(ctx(), ref, opts);
    });
  program
    .command('prune')
    .alias('cleanup')
    .description('apply the retention policy: remove old backups and stale incomplete uploads')
    .addOption(target)
    .option('--all', 'prune every configured target')
    .option('--dry-run', 'show what would be kept and removed, and why; delete nothing')
    .option(
      '--now <time>',
      'with --dry-run: decide as if it were this ISO 8601 time (e.g. 2027-01-01T00:00:00Z)',
    )
    .addOption(json)
    .action(async (opts) => {
      exitCode = await (await import('./prune.ts')).pruneCommand(ctx(), opts);
    });
  program
    .command('daemon')
    .description('run every target on its schedule, serve /health, /ready and /metrics, send notifications')
    .option('--run-now', 'back every target up once at start, then follow the schedules')
    .action(async (opts) => {
      exitCode = await (await import('./daemon.ts')).daemonCommand(ctx(), opts);
    });
  program
    .command('health')
    .description("ask a running daemon's /health; exit 0 when healthy, 1 otherwise (for HEALTHCHECK)")
    .option('--url <url>', 'health endpoint (default: http://127.0.0.1:$DATASAVER_METRICS_PORT/health)')
    .option('--timeout <seconds>', 'give up after this long (default 5)')
    .addOption(json)
    .action(async (opts) => {
      exitCode = await (await import('./health.ts')).healthCommand(ctx(), opts);
    });
  program
    .command('keygen')
    .description(
      'make a new Ed25519 key for signing manifests (prints its verify key), or with --age an age identity (prints its recipient)',
    )
    .option('-o, --out <file>', 'where to write the new key (mode 0600); an existing file is never replaced')
    .option('--age', 'make an age identity for encrypted backups instead, in age-keygen format')
    .addOption(json)
    .action(async (opts) => {
      exitCode = await (await import('./keygen.ts')).keygenCommand(ctx(), opts);
    });
  program
    .command('config')
    .description('configuration tools')
    .command('check')
    .description('validate the configuration and print it, secrets redacted')
    .addOption(json)
    .action(async (opts) => {
      exitCode = await (await import('./config-check.ts')).configCheckCommand(ctx(), opts);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : ExitCode.general;
    return reportError(err, base);
  }
}

export function reportError(err: unknown, ctx: Omit<CliContext, 'configFile'>): number {
  if (isAbortError(err) || ctx.signal.aborted) {
    ctx.stderr.write('Error: interrupted; nothing was committed by the interrupted operation\n');
    return ExitCode.general;
  }
  if (err instanceof DatasaverError) {
    ctx.stderr.write(`Error: ${printable(redact(err.message), { multiline: true })}\n`);
    if (err.hint) ctx.stderr.write(`Try: ${printable(err.hint, { multiline: true })}\n`);
    return err.exitCode;
  }
  ctx.stderr.write(`Error: ${printable(redact(errorMessage(err)), { multiline: true })}\n`);
  if (ctx.env.DATASAVER_DEBUG && err instanceof Error && err.stack)
    ctx.stderr.write(`${printable(redact(err.stack), { multiline: true })}\n`);
  return ExitCode.general;
}

/** The default engine's formats, as an example in `backup --help`: `postgres: custom or plain`. */
function formatsExample(): string {
  const engine = engineDescriptor(DEFAULT_ENGINE);
  return `${engine.name}: ${engine.formatNames.join(' or ')}`;
}
