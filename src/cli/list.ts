import { ExitCode, errorMessage } from '../errors.ts';
import { readCatalog } from '../jobs/catalog.ts';
import type { Manifest } from '../manifest.ts';
import { allStorages, type CliContext, readConfig } from './context.ts';
import { formatBytes, formatTime, printJson, renderTable } from './output.ts';

export interface ListOptions {
  target?: string;
  all?: boolean;
  json?: boolean;
}

/** `datasaver list`: committed backups from storage (and incomplete ones with --all). */
export async function listCommand(ctx: CliContext, opts: ListOptions): Promise<number> {
  const config = await readConfig(ctx);
  const backups: (Manifest & { storage: string })[] = [];
  const incomplete: {
    storage: string;
    target: string;
    id: string;
    key: string;
    kind: 'data' | 'verify';
    size: number;
    modified: string;
  }[] = [];
  const warnings: string[] = [];
  const storages = await allStorages(ctx, config);
  const unreadable: { storage: string; error: string }[] = [];
  for (const storage of storages) {
    let catalog: Awaited<ReturnType<typeof readCatalog>>;
    try {
      catalog = await readCatalog(storage, { target: opts.target, signal: ctx.signal });
    } catch (err) {
      // One storage down never hides what the others hold; the exit code says something was missing.
      if (ctx.signal.aborted) throw err;
      unreadable.push({ storage: storage.description, error: errorMessage(err) });
      ctx.stderr.write(`Error: cannot list ${storage.description}: ${errorMessage(err)}\n`);
      continue;
    }
    backups.push(...catalog.backups.map((m) => ({ ...m, storage: storage.description })));
    incomplete.push(
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
    warnings.push(...catalog.warnings);
  }
  for (const w of warnings) ctx.stderr.write(`warning: ${w}\n`);

  if (opts.json) {
    printJson(
      ctx.stdout,
      opts.all ? { backups, incomplete, warnings, unreadable } : { backups, warnings, unreadable },
    );
    return unreadable.length > 0 ? ExitCode.storage : ExitCode.ok;
  }
  const several = storages.length > 1;
  const rows = backups.map((m) => [
    ...(several ? [m.storage] : []),
    m.target,
    m.id,
    formatTime(m.createdAt),
    formatBytes(m.storedBytes),
    formatBytes(m.sizeBytes),
    m.schemaOnly ? `${m.format} (schema)` : m.format,
    m.compression,
    m.labels.join(',') || '-',
    ...(opts.all ? ['committed'] : []),
  ]);
  if (opts.all) {
    for (const o of incomplete)
      rows.push([
        ...(several ? [o.storage] : []),
        o.target,
        o.id,
        formatTime(o.modified),
        formatBytes(o.size),
        '-',
        '-',
        '-',
        '-',
        o.kind === 'data' ? 'incomplete' : 'orphan verify record',
      ]);
  }
  const code = unreadable.length > 0 ? ExitCode.storage : ExitCode.ok;
  if (rows.length === 0) {
    ctx.stdout.write(`no backups${opts.target ? ` of ${opts.target}` : ''} found\n`);
    return code;
  }
  const header = ['TARGET', 'ID', 'CREATED (UTC)', 'STORED', 'RAW', 'FORMAT', 'COMPRESSION', 'LABELS'];
  const columns = [...(several ? ['DESTINATION'] : []), ...header, ...(opts.all ? ['STATUS'] : [])];
  ctx.stdout.write(renderTable(columns, rows));
  return code;
}
