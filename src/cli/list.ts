import { readCatalog, type UntrustedBackup } from '../catalog/catalog.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { manifestDistrust } from '../catalog/manifest-trust.ts';
import { isBackupSet } from '../catalog/parts.ts';
import type { Config } from '../config/types.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ExitCode, errorMessage } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { allStorages, type CliContext, readConfig, trustFor } from './context.ts';
import { formatBytes, formatTime, printJson, renderTable } from './output.ts';

export interface ListOptions {
  target?: string;
  all?: boolean;
  json?: boolean;
}

type ListedBackup = Manifest & { storage: string; suspect: string | null };

interface IncompleteObject {
  storage: string;
  target: string;
  id: string;
  key: string;
  kind: 'data' | 'verify' | 'drill';
  size: number;
  modified: string;
}

/** What every storage holds, and what could not be read. */
interface Listing {
  backups: ListedBackup[];
  incomplete: IncompleteObject[];
  warnings: string[];
  unreadable: { storage: string; error: string }[];
  /** Backups ignored because their manifest is not signed by one of their target's verify keys. */
  untrusted: (UntrustedBackup & { storage: string })[];
}

/**
 * `datasaver list`: committed backups from storage (and incomplete ones with --all). A suspect backup
 * (manifest-trust.ts) is listed with its reason (`suspect` in JSON, the STATUS column in text) and a
 * warning. A backup whose manifest is not signed by one of its target's verify keys is not listed: it is
 * reported (a warning, and `untrusted` in JSON). A storage that cannot be read is an error (exit 6),
 * never "no backups found".
 */
export async function listCommand(ctx: CliContext, opts: ListOptions): Promise<number> {
  const config = await readConfig(ctx);
  const storages = await allStorages(ctx, config);
  const listing = await readListing(ctx, config, storages, opts.target);
  for (const w of listing.warnings) ctx.stderr.write(`warning: ${w}\n`);
  const code = listing.unreadable.length > 0 ? ExitCode.storage : ExitCode.ok;
  if (opts.json) {
    const { backups, incomplete, warnings, unreadable, untrusted } = listing;
    printJson(
      ctx.stdout,
      opts.all
        ? { backups, incomplete, warnings, unreadable, untrusted }
        : { backups, warnings, unreadable, untrusted },
    );
    return code;
  }
  ctx.stdout.write(renderListing(listing, { ...opts, storages: storages.length }));
  return code;
}

/** Reads each storage's catalog; one storage down is reported (on stderr, and in `unreadable`) and skipped. */
async function readListing(
  ctx: CliContext,
  config: Config,
  storages: StorageBackend[],
  target: string | undefined,
): Promise<Listing> {
  const now = new Date();
  const listing: Listing = { backups: [], incomplete: [], warnings: [], unreadable: [], untrusted: [] };
  for (const storage of storages) {
    let catalog: Awaited<ReturnType<typeof readCatalog>>;
    try {
      // Each target's backups are judged by that target's verify keys.
      catalog = await readCatalog(storage, { target, signal: ctx.signal, trust: (t) => trustFor(config, t) });
    } catch (err) {
      // One storage down never hides what the others hold; the exit code says something was missing.
      if (ctx.signal.aborted) throw err;
      const error = printable(errorMessage(err));
      listing.unreadable.push({ storage: storage.description, error });
      ctx.stderr.write(`Error: cannot list ${storage.description}: ${error}\n`);
      continue;
    }
    for (const m of catalog.backups) {
      const suspect = manifestDistrust(m, now) ?? null;
      if (suspect !== null) {
        listing.warnings.push(
          `${storage.description}: backup ${m.id} is suspect: ${suspect}; it is never latest and retention never counts it`,
        );
      }
      listing.backups.push({ ...m, storage: storage.description, suspect });
    }
    listing.incomplete.push(
      ...catalog.incomplete.map((o) => ({
        storage: storage.description,
        target: o.target,
        id: o.id,
        key: o.key,
        kind: o.kind,
        size: o.size,
        modified: o.modified.toISOString(),
      })),
    );
    listing.warnings.push(...catalog.warnings);
    listing.untrusted.push(...catalog.untrusted.map((u) => ({ ...u, storage: storage.description })));
  }
  return listing;
}

/** The listing as a table (a DESTINATION column with several storages), or a line saying why there is none. */
function renderListing(
  { backups, incomplete, warnings, unreadable }: Listing,
  opts: ListOptions & { storages: number },
): string {
  const several = opts.storages > 1;
  const status = opts.all || backups.some((m) => m.suspect !== null);
  // Shown once whole-server sets are listed: which database a backup holds, or that it holds them all.
  const database = backups.some(isBackupSet);
  const rows = backups.map((m) => [
    ...(several ? [m.storage] : []),
    m.target,
    ...(database ? [databaseColumn(m)] : []),
    m.id,
    formatTime(m.createdAt),
    formatBytes(m.storedBytes),
    formatBytes(m.sizeBytes),
    m.schemaOnly ? `${m.format} (schema)` : m.format,
    m.compression,
    m.labels.join(',') || '-',
    ...(status ? [m.suspect === null ? 'committed' : `suspect: ${m.suspect}`] : []),
  ]);
  if (opts.all) {
    for (const o of incomplete)
      rows.push([
        ...(several ? [o.storage] : []),
        o.target,
        ...(database ? ['-'] : []),
        o.id,
        formatTime(o.modified),
        formatBytes(o.size),
        '-',
        '-',
        '-',
        '-',
        o.kind === 'data' ? 'incomplete' : `orphan ${o.kind} record`,
      ]);
  }
  if (unreadable.length > 0 && rows.length === 0) {
    // Nothing readable is not the same as nothing stored: the errors above say what could not be read.
    return `cannot tell which backups exist: ${unreadable.length} of ${opts.storages} storage(s) could not be read\n`;
  }
  if (rows.length === 0) {
    // Files that were there but could not be read are not "nothing".
    return warnings.length > 0
      ? `no readable backups${opts.target ? ` of ${opts.target}` : ''} found: ${warnings.length} file(s) skipped, see the warnings above\n`
      : `no backups${opts.target ? ` of ${opts.target}` : ''} found\n`;
  }
  const header = [
    'TARGET',
    ...(database ? ['DATABASE'] : []),
    'ID',
    'CREATED (UTC)',
    'STORED',
    'RAW',
    'FORMAT',
    'COMPRESSION',
    'LABELS',
  ];
  const columns = [...(several ? ['DESTINATION'] : []), ...header, ...(status ? ['STATUS'] : [])];
  return renderTable(columns, rows);
}

/** A backup's DATABASE cell: its database (`-` when sealed), or `server (N databases)` for a set. */
export function databaseColumn(m: Manifest): string {
  if (!isBackupSet(m)) return m.database === null ? '-' : printable(m.database);
  const n = m.set.databases.length;
  return `server (${n} database${n === 1 ? '' : 's'})`;
}
