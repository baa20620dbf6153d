/**
 * Seeded generator of a realistic benchmark database (see lib/dataset.ts for what is in it).
 *
 *   node bench/generate.ts --url postgres://user:pw@host:port/db [--size-mb 500] [--seed 42] [--concurrency 2]
 *
 * The database must exist; the generator (re)creates its tables. The same seed and size always produce
 * the same rows. Importable: `generateDatabase(server, dbName, { sizeMb, seed })`.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildDataset, type SqlTask, TABLES } from './lib/dataset.ts';
import { formatMb, formatSeconds, secondsSince } from './lib/format.ts';

/** Anything that can name a database's connection URL, e.g. the throwaway server of test/support. */
export interface GeneratorTarget {
  url(database: string): string;
}

export interface GenerateOptions {
  sizeMb: number;
  seed: number;
  /** Connections loading and indexing in parallel; defaults to the number of CPUs, at most 4. */
  concurrency?: number;
  /** Progress lines: one per phase, and one per statement when `verbose`. */
  log?: (line: string) => void;
  verbose?: boolean;
}

export interface GenerateResult {
  databaseBytes: number;
  seconds: number;
  rows: Record<string, number>;
}

const SESSION_SETTINGS = [
  "SET TIME ZONE 'UTC'",
  "SET maintenance_work_mem = '256MB'",
  "SET work_mem = '64MB'",
  'SET max_parallel_maintenance_workers = 0',
  'SET max_parallel_workers_per_gather = 0',
  'SET jit = off',
].join('; ');

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // A lost connection also rejects the running query; without a listener it would crash the process.
  client.on('error', () => {});
  await client.connect();
  await client.query(SESSION_SETTINGS);
  return client;
}

/** Runs the tasks on the clients in parallel, largest first, each client taking the next task when free. */
async function runTasks(clients: pg.Client[], tasks: SqlTask[], log?: (line: string) => void): Promise<void> {
  const queue = [...tasks].sort((a, b) => b.weight - a.weight);
  const worker = async (client: pg.Client) => {
    for (let task = queue.shift(); task; task = queue.shift()) {
      const started = performance.now();
      await client.query(task.sql);
      log?.(`  ${task.label}: ${formatSeconds(secondsSince(started))}`);
    }
  };
  await Promise.all(clients.map(worker));
}

async function readRowCounts(client: pg.Client): Promise<Record<string, number>> {
  const { rows } = await client.query<{ relname: string; reltuples: string }>(
    'SELECT relname, reltuples::int8 AS reltuples FROM pg_class WHERE relkind = $1 AND relname = ANY($2)',
    ['r', [...TABLES]],
  );
  return Object.fromEntries(
    TABLES.map((t) => [t, Number(rows.find((r) => r.relname === t)?.reltuples ?? 0)]),
  );
}

async function readDatabaseBytes(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ bytes: string }>(
    'SELECT pg_database_size(current_database()) AS bytes',
  );
  return Number(rows[0]?.bytes ?? 0);
}

export async function generateDatabase(
  server: GeneratorTarget,
  dbName: string,
  options: GenerateOptions,
): Promise<GenerateResult> {
  const log = options.log ?? (() => {});
  const concurrency = options.concurrency ?? Math.min(4, availableParallelism());
  const dataset = buildDataset(options.sizeMb, options.seed);
  const started = performance.now();
  log(`generating ~${options.sizeMb} MB (seed ${options.seed}): ${JSON.stringify(dataset.plan)}`);
  const url = server.url(dbName);
  const clients = await Promise.all(Array.from({ length: concurrency }, () => connect(url)));
  try {
    await clients[0]!.query(dataset.schema);
    for (const [phase, tasks] of [
      ['load', dataset.loads],
      ['index', dataset.indexes],
      ['foreign keys', dataset.foreignKeys],
      ['finish', dataset.finish],
    ] as const) {
      const phaseStarted = performance.now();
      await runTasks(clients, tasks, options.verbose ? log : undefined);
      log(`${phase}: ${formatSeconds(secondsSince(phaseStarted))}`);
    }
    return {
      databaseBytes: await readDatabaseBytes(clients[0]!),
      seconds: secondsSince(started),
      rows: await readRowCounts(clients[0]!),
    };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** A target for a full connection URL: the same server, any database name. */
export function urlTarget(url: string): GeneratorTarget & { database: string } {
  const parsed = new URL(url);
  return {
    database: decodeURIComponent(parsed.pathname.slice(1)),
    url(database) {
      const u = new URL(url);
      u.pathname = `/${encodeURIComponent(database)}`;
      return u.toString();
    },
  };
}

function parsePositiveNumber(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got '${value}'`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      'size-mb': { type: 'string', default: '500' },
      seed: { type: 'string', default: '42' },
      concurrency: { type: 'string' },
    },
  });
  if (!values.url)
    throw new Error('usage: node bench/generate.ts --url postgres://… [--size-mb 500] [--seed 42]');
  const target = urlTarget(values.url);
  if (!target.database) throw new Error('--url must name a database');
  const result = await generateDatabase(target, target.database, {
    sizeMb: parsePositiveNumber('size-mb', values['size-mb']),
    seed: Number(values.seed),
    concurrency: values.concurrency
      ? Math.ceil(parsePositiveNumber('concurrency', values.concurrency))
      : undefined,
    log: (line) => console.error(line),
    verbose: true,
  });
  console.log(
    `database ${target.database}: ${formatMb(result.databaseBytes)} (pg_database_size) in ${formatSeconds(result.seconds)}`,
  );
  console.log(`rows: ${JSON.stringify(result.rows)}`);
}

if (process.argv[1] === import.meta.filename) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
