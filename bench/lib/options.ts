/** The command line every benchmark script shares (size, seed, repetitions, the CLI), and its results file. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export interface CommonOptions {
  /** Size of each generated database, in MB. */
  sizeMb: number;
  seed: number;
  /** Runs of each measurement. */
  repeat: number;
  /** The datasaver CLI to benchmark. */
  cli: string;
}

/**
 * Parses `--size-mb`, `--seed`, `--repeat`, `--cli` and `-h` plus the script's `extra` options; prints
 * `usage` and exits on `-h`. Throws naming the first option that is not a valid number. The extra
 * options' values come back as parsed.
 */
export function parseBenchArgs(
  usage: string,
  defaultSizeMb: number,
  extra: ParseArgsOptionsConfig,
): { common: CommonOptions; values: Record<string, string | boolean | undefined> } {
  const { values } = parseArgs({
    options: {
      'size-mb': { type: 'string', default: String(defaultSizeMb) },
      seed: { type: 'string', default: '42' },
      repeat: { type: 'string', default: '1' },
      cli: { type: 'string', default: join(ROOT, 'dist', 'main.js') },
      help: { type: 'boolean', short: 'h', default: false },
      ...extra,
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const common = {
    sizeMb: Number(values['size-mb']),
    seed: Number(values.seed),
    repeat: Number(values.repeat),
    cli: resolve(String(values.cli)),
  };
  if (!(common.sizeMb > 0)) throw new Error('--size-mb must be a positive number');
  if (!Number.isInteger(common.seed) || common.seed < 0)
    throw new Error('--seed must be a non-negative integer');
  if (!Number.isInteger(common.repeat) || common.repeat < 1)
    throw new Error('--repeat must be a positive integer');
  return { common, values: values as Record<string, string | boolean | undefined> };
}

/** Writes `report` as JSON to bench/results/<prefix><timestamp>.json (gitignored); returns its path. */
export async function writeResults(report: object, prefix = ''): Promise<string> {
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${prefix}${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

/** Runs a benchmark script's `main`: a failure is printed with its stack and sets exit code 1. */
export function runScript(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  });
}
