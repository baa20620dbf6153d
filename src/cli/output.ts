/** Human output: byte sizes, tables, and a progress line on terminals. */

import { formatBytes } from '../util/format.ts';
import type { Out } from '../util/log.ts';
import { printable } from '../util/printable.ts';

export type { Out };
export { formatBytes };

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** `2026-01-11T02:00:15.000Z` -> `2026-01-11 02:00:15`. */
export function formatTime(iso: string): string {
  return iso
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')
    .replace(/Z$/, '');
}

/**
 * A left-aligned table with a header row, columns two spaces apart. Cells are made printable: a value
 * read from storage can never move the cursor or start a row of its own.
 */
export function renderTable(header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map((c) => printable(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function printJson(out: Out, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A single progress line, redrawn in place at most every 200 ms; only on a terminal, so logs and pipes
 * stay clean.
 */
export class Progress {
  readonly #out: Out;
  readonly #enabled: boolean;
  readonly #started = Date.now();
  #last = 0;
  #drawn = false;

  constructor(out: Out, enabled: boolean) {
    this.#out = out;
    this.#enabled = enabled && out.isTTY === true;
  }

  /** Redraws with `text`; `rateBytes` adds a throughput figure. */
  update(text: string, rateBytes?: number): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#last < 200) return;
    this.#last = now;
    const secs = (now - this.#started) / 1000;
    const rate = rateBytes !== undefined && secs > 0 ? `, ${formatBytes(rateBytes / secs)}/s` : '';
    this.#out.write(`\r\x1b[2K${text}${rate}, ${formatDuration(now - this.#started)}`);
    this.#drawn = true;
  }

  done(): void {
    if (this.#drawn) this.#out.write('\r\x1b[2K');
    this.#drawn = false;
  }
}
