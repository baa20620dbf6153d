/** Aggregation of repeated samples, the target checks and the printed table. */
import { formatMb, formatSeconds } from './format.ts';
import type { ProcessPeak } from './rss.ts';

export interface Sample {
  wallSeconds: number;
  outputBytes: number | null;
  peakRssKb: number;
  processes: ProcessPeak[];
  gnuTimeMaxRssKb: Array<number | null>;
  /** Restores only: every table has as many rows as in the source database. */
  rowsMatch?: boolean;
  /** Drills only: the restore's own time, as datasaver reports it (`restoreMs`). */
  restoreSeconds?: number;
  /** Drills only: the throwaway server's peak RSS and processes, which `peakRssKb` leaves out. */
  server?: { peakRssKb: number; processes: number };
}

export interface Summary {
  wallSeconds: number;
  outputBytes: number | null;
  peakRssKb: number;
  /** Peak per process of the median-wall-time sample, labelled 'node', 'pg_dump', 'pg_dump#2', … */
  processes: Array<{ label: string; peakRssKb: number }>;
  rowsMatch?: boolean;
  /** Drills only: the median restore time. */
  restoreSeconds?: number;
  /** Drills only: the throwaway server's median peak RSS. */
  serverPeakRssKb?: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  status: 'ok' | 'skipped' | 'failed';
  note?: string;
  samples: Sample[];
  summary?: Summary;
}

export interface Check {
  name: string;
  value: number | null;
  comparator: '<=' | '>=';
  target: number;
  verdict: 'PASS' | 'FAIL' | 'n/a';
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function labelProcesses(processes: ProcessPeak[]): Array<{ label: string; peakRssKb: number }> {
  const seen = new Map<string, number>();
  return processes.map((p) => {
    const n = (seen.get(p.name) ?? 0) + 1;
    seen.set(p.name, n);
    return { label: n === 1 ? p.name : `${p.name}#${n}`, peakRssKb: p.peakRssKb };
  });
}

/** The sample with the median wall time (the lower one of an even count). */
function medianSample(samples: Sample[]): Sample {
  const sorted = [...samples].sort((a, b) => a.wallSeconds - b.wallSeconds);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

export function summarize(samples: Sample[]): Summary {
  const outputs = samples.map((s) => s.outputBytes).filter((b): b is number => b !== null);
  const rowChecks = samples.map((s) => s.rowsMatch).filter((m): m is boolean => m !== undefined);
  const restores = samples.map((s) => s.restoreSeconds).filter((t): t is number => t !== undefined);
  const servers = samples.flatMap((s) => (s.server ? [s.server.peakRssKb] : []));
  return {
    wallSeconds: median(samples.map((s) => s.wallSeconds)),
    outputBytes: outputs.length ? median(outputs) : null,
    peakRssKb: median(samples.map((s) => s.peakRssKb)),
    processes: labelProcesses(medianSample(samples).processes),
    ...(rowChecks.length ? { rowsMatch: rowChecks.every(Boolean) } : {}),
    ...(restores.length ? { restoreSeconds: median(restores) } : {}),
    ...(servers.length ? { serverPeakRssKb: median(servers) } : {}),
  };
}

export function check(name: string, value: number | null, comparator: '<=' | '>=', target: number): Check {
  const ok = value !== null && (comparator === '<=' ? value <= target : value >= target);
  return { name, value, comparator, target, verdict: value === null ? 'n/a' : ok ? 'PASS' : 'FAIL' };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const kbToMb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

export function formatResults(results: ScenarioResult[]): string {
  const rows = results.map((r) => {
    const s = r.summary;
    if (!s) return [r.title, r.status === 'skipped' ? 'skipped' : 'FAILED', '', '', r.note ?? ''];
    const processes = s.processes.map((p) => `${p.label} ${kbToMb(p.peakRssKb)}`).join(', ');
    const restored = s.rowsMatch === undefined ? '' : s.rowsMatch ? '; rows match' : '; ROW COUNTS DIFFER';
    const restore = s.restoreSeconds === undefined ? '' : `; restore ${formatSeconds(s.restoreSeconds)}`;
    const server =
      s.serverPeakRssKb === undefined ? '' : `; throwaway server apart: ${kbToMb(s.serverPeakRssKb)}`;
    return [
      r.title,
      formatSeconds(s.wallSeconds),
      s.outputBytes === null ? '-' : formatMb(s.outputBytes),
      kbToMb(s.peakRssKb),
      processes + restored + restore + server,
    ];
  });
  return table(['measurement', 'wall', 'output', 'peak RSS', 'per process (peak RSS)'], rows);
}

export function formatChecks(checks: Check[]): string {
  const rows = checks.map((c) => [
    c.name,
    c.value === null ? '-' : c.value.toFixed(Math.abs(c.value) >= 10 ? 1 : 3),
    `${c.comparator} ${c.target}`,
    c.verdict,
  ]);
  return table(['check', 'value', 'target', 'verdict'], rows);
}
