/**
 * What `datasaver restore` did (or, with --dry-run, would do), for people or (`--json`) for scripts: one
 * dump, or a whole-server set (its roles and tablespaces, then each database). Every name printed comes
 * from the backup or its manifest, and is made printable first.
 */
import type { Manifest } from '../catalog/manifest.ts';
import type { DumpEntry } from '../engines/engine.ts';
import type { PassedOver } from '../jobs/intact.ts';
import type { RestorePlan } from '../jobs/restore.ts';
import type { SetRestorePlan } from '../jobs/restore-set.ts';
import { printable } from '../util/printable.ts';
import type { CliContext } from './context.ts';
import { formatBytes, printJson } from './output.ts';

export interface PrintOptions {
  json?: boolean | undefined;
  dryRun?: boolean | undefined;
  /** `--database`: the one database of a set restored. */
  database?: string | undefined;
  /** Parallel jobs asked for. */
  jobs: number;
}

const ACTIONS = {
  create: 'create it and restore',
  'restore-into-empty': 'restore into it (it is empty)',
  overwrite: 'restore over its existing objects',
  'drop-and-recreate': 'drop it, recreate it and restore',
  'add-tables': 'restore the named tables into it, leaving the rest alone',
} as const;

/** Prints a restore's plan or result; returns the exit code. */
export function printRestore(
  ctx: CliContext,
  plan: RestorePlan | SetRestorePlan,
  manifest: Manifest,
  opts: PrintOptions,
  passedOver: PassedOver[],
): number {
  if (opts.json) {
    printJson(ctx.stdout, { ...plan, passedOver, dryRun: opts.dryRun ?? false });
    return 0;
  }
  if ('set' in plan) printSet(ctx, plan, manifest, opts);
  else printDump(ctx, plan, manifest, opts);
  return 0;
}

function printDump(ctx: CliContext, plan: RestorePlan, manifest: Manifest, opts: PrintOptions): void {
  if (opts.jobs > 1 && plan.jobs === 1)
    ctx.stderr.write('note: plain SQL backups restore with one job; --jobs was ignored\n');
  if (opts.dryRun) {
    ctx.stdout.write(`dry run: would ${ACTIONS[plan.action]}: ${plan.destination.description}\n`);
    ctx.stdout.write(
      `backup ${manifest.id} (${opts.database === undefined ? `${manifest.format}, ${formatBytes(manifest.sizeBytes)}` : printable(`database ${opts.database}, ${manifest.format}`)}) contains ${plan.entries?.length ?? 0} entries:\n`,
    );
    writeEntries(ctx, plan.entries);
    return;
  }
  writeSettings(ctx, plan, '');
  ctx.stdout.write(
    `restored ${plan.tables ? `table${plan.tables.length > 1 ? 's' : ''} ${plan.tables.join(', ')} of ` : ''}${opts.database === undefined ? '' : `${printable(`database ${opts.database}`)} of `}${manifest.id} into ${plan.destination.description} (${plan.action}, ${plan.jobs} job${plan.jobs > 1 ? 's' : ''})\n`,
  );
}

function printSet(ctx: CliContext, plan: SetRestorePlan, manifest: Manifest, opts: PrintOptions): void {
  const count = `${plan.databases.length} database${plan.databases.length === 1 ? '' : 's'}`;
  if (!plan.rolePasswords) {
    ctx.stderr.write(
      `warning: backup ${manifest.id} holds no role passwords (its backup user could not read them): the roles it creates have none; set them with ALTER ROLE ... PASSWORD\n`,
    );
  }
  if (opts.dryRun) {
    ctx.stdout.write(
      `dry run: backup ${manifest.id} is a whole-server set (${formatBytes(manifest.sizeBytes)}): its roles and tablespaces, then ${count}\n`,
    );
    ctx.stdout.write(`roles and tablespaces it defines (${plan.globalsEntries?.length ?? 0}):\n`);
    writeEntries(ctx, plan.globalsEntries);
    for (const db of plan.databases) {
      ctx.stdout.write(
        `database ${printable(db.database)}: would ${ACTIONS[db.action]}: ${printable(db.destination.description)}; ${db.entries?.length ?? 0} entries:\n`,
      );
      writeEntries(ctx, db.entries);
    }
    return;
  }
  const g = plan.globals;
  const line = (label: string, names: string[] | undefined) => {
    if (names?.length) ctx.stdout.write(`${printable(`${label}: ${names.join(', ')}`)}\n`);
  };
  line('roles created', g?.created);
  line('roles that existed, left as they are', g?.existing);
  line('tablespaces created', g?.tablespacesCreated);
  line('tablespaces that existed, left as they are', g?.tablespacesExisting);
  if (g?.skipped.length) ctx.stdout.write(`${printable(`left out: ${g.skipped.join('; ')}`)}\n`);
  for (const db of plan.databases) {
    writeSettings(ctx, db, `database ${db.database}: `);
    ctx.stdout.write(
      `${printable(`restored database ${db.database} into ${db.destination.description}`)} (${db.action}, ${db.jobs} job${db.jobs > 1 ? 's' : ''})\n`,
    );
  }
  ctx.stdout.write(`restored ${manifest.id}: roles and tablespaces, and ${count}\n`);
}

/** A dump's entries, one per line: names come from the stored dump itself. */
function writeEntries(ctx: CliContext, entries: DumpEntry[] | undefined): void {
  for (const e of entries ?? [])
    ctx.stdout.write(`  ${printable(`${e.type.padEnd(18)} ${e.schema ? `${e.schema}.` : ''}${e.name}`)}\n`);
}

/** The database settings applied and skipped; role and setting names come from the manifest. */
function writeSettings(ctx: CliContext, plan: RestorePlan, prefix: string): void {
  const settings = plan.databaseSettings;
  if (settings?.applied.length)
    ctx.stdout.write(`${printable(`${prefix}database settings applied: ${settings.applied.join('; ')}`)}\n`);
  if (settings?.skipped.length)
    ctx.stdout.write(
      `${printable(`${prefix}database settings skipped (role missing on this server): ${settings.skipped.join('; ')}`)}\n`,
    );
}
