import { UsageError } from '../errors.ts';
import { type PruneResult, prune, throwIfPruneFailed } from '../jobs/prune.ts';
import { openStorage } from '../storage/index.ts';
import { type CliContext, readConfig, selectTargets } from './context.ts';
import { formatBytes, formatTime, printJson, renderTable } from './output.ts';

export interface PruneOptions {
  target?: string;
  all?: boolean;
  dryRun?: boolean;
  now?: string;
  json?: boolean;
}

/** `datasaver prune` (alias `cleanup`): applies each selected target's retention policy to its storage. */
export async function pruneCommand(ctx: CliContext, opts: PruneOptions): Promise<number> {
  const now = opts.now === undefined ? new Date() : parseNow(opts.now);
  const config = await readConfig(ctx);
  const targets = selectTargets(config, opts.target, opts.all);
  const results: PruneResult[] = [];
  for (const target of targets) {
    const storage = openStorage(target.storage);
    const result = await prune(target, { storage, now, signal: ctx.signal }, { dryRun: opts.dryRun });
    results.push(result);
    for (const w of result.warnings) ctx.stderr.write(`warning: ${w}\n`);
    if (!opts.json) ctx.stdout.write(renderPrune(result));
  }
  if (opts.json) printJson(ctx.stdout, { results });
  for (const r of results) throwIfPruneFailed(r);
  return 0;
}

function parseNow(text: string): Date {
  const at = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(at.getTime())) {
    throw new UsageError(`--now '${text}' is not an ISO 8601 time`, {
      hint: 'e.g. --now 2027-01-01T00:00:00Z (a time without zone is read as local time)',
    });
  }
  return at;
}

/** The per-item table and a one-line summary. */
export function renderPrune(r: PruneResult): string {
  const header = `prune ${r.target} in ${r.storage}${r.dryRun ? ' (dry run: nothing is deleted)' : ''}\n`;
  if (r.items.length === 0) return `${header}nothing stored\n`;
  const rows = r.items.map((i) => [
    i.id || '-',
    i.kind === 'backup' ? 'backup' : i.kind,
    formatTime(i.time),
    formatBytes(i.bytes),
    i.action,
    i.reasons.join(', '),
  ]);
  const table = renderTable(['ID', 'KIND', 'TIME (UTC)', 'SIZE', 'ACTION', 'WHY'], rows);
  const remove = r.items.filter((i) => i.action === 'remove');
  const bytes = remove.reduce((n, i) => n + i.bytes, 0);
  const kept = r.items.length - remove.length;
  const summary = r.dryRun
    ? `would keep ${kept}, remove ${remove.length} (${formatBytes(bytes)})`
    : `kept ${kept}, removed ${r.removed} (${formatBytes(r.removedBytes)})${r.failures.length ? `, ${r.failures.length} failed` : ''}`;
  return `${header}${table}${summary}\n`;
}
