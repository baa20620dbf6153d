/**
 * Backup, restore and drill benchmark: datasaver against the usual pg_dump baselines on a throwaway
 * PostgreSQL.
 *
 *   node bench/run.ts [--size-mb 500] [--seed 42] [--repeat 1] [--keep] [--cli dist/main.js] [--s3]
 *
 * See bench/README.md for what is measured and how.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { type PostgresServer, startPostgres } from '../test/support/postgres-server.ts';
import {
  S3_ACCESS_KEY,
  S3_BUCKET,
  S3_SECRET_KEY,
  type S3Server,
  startS3Server,
} from '../test/support/s3-server.ts';
import { generateDatabase } from './generate.ts';
import { cleanEnv, pgEnv, storedBytesFromJson, toSample } from './lib/commands.ts';
import { TABLES } from './lib/dataset.ts';
import { drillChecks, drillOutcome, drillTotalRatio, isThrowawayServer } from './lib/drill.ts';
import { benchRecipient, encryptedChecks } from './lib/encrypted.ts';
import { formatMb, formatSeconds } from './lib/format.ts';
import { type Command, createRunner, findGnuTime, type Measurement, type Runner } from './lib/measure.ts';
import { parseBenchArgs, runScript, writeResults } from './lib/options.ts';
import {
  type Check,
  check,
  formatChecks,
  formatResults,
  type Sample,
  type ScenarioResult,
  summarize,
} from './lib/report.ts';

const SOURCE_DB = 'bench';
const USAGE = `usage: node bench/run.ts [--size-mb 500] [--seed 42] [--repeat 1] [--keep] [--cli dist/main.js] [--s3]

Starts a throwaway PostgreSQL, generates the benchmark database, and measures datasaver's backup,
restore and drill against pg_dump, pg_restore and createdb + pg_restore. See bench/README.md.`;

interface Options {
  sizeMb: number;
  seed: number;
  repeat: number;
  keep: boolean;
  /** The datasaver CLI to benchmark. */
  cli: string;
  /** Also back up to a local S3-compatible server (s3rver in its own process). */
  s3: boolean;
}

interface Bench {
  server: PostgresServer;
  /** Scratch directory for dumps, datasaver storage and GNU time output. */
  dir: string;
  runner: Runner;
  keep: boolean;
  cli: string;
  sourceRows: Record<string, number>;
  /** Uncompressed custom-format dump of the source database, the input of pg_restore. */
  restoreDump: string;
  /** Storage directory of the latest successful datasaver backup. */
  datasaverStorage: string | null;
  s3Server: S3Server | null;
  /** The age recipient of the encrypted backup row. */
  recipient: string;
}

interface Scenario {
  id: string;
  title: string;
  /** Needs dist/main.js; failures are reported instead of aborting the run. */
  datasaver: boolean;
  run(bench: Bench, rep: number): Promise<Sample>;
}

class Skip extends Error {}

// ---------------------------------------------------------------------------------------------------
// Commands and their environments

function datasaverEnv(server: PostgresServer, storage: string): NodeJS.ProcessEnv {
  return {
    ...cleanEnv(server),
    DATASAVER_DATABASE_URL: server.url(SOURCE_DB),
    DATASAVER_STORAGE_PATH: storage,
  };
}

function s3Env(server: PostgresServer, s3: S3Server, prefix: string): NodeJS.ProcessEnv {
  return {
    ...cleanEnv(server),
    DATASAVER_DATABASE_URL: server.url(SOURCE_DB),
    DATASAVER_STORAGE_BACKEND: 's3',
    DATASAVER_S3_ENDPOINT: s3.endpoint,
    DATASAVER_S3_BUCKET: S3_BUCKET,
    DATASAVER_S3_PREFIX: prefix,
    DATASAVER_S3_ACCESS_KEY: S3_ACCESS_KEY,
    DATASAVER_S3_SECRET_KEY: S3_SECRET_KEY,
  };
}

function pgTool(server: PostgresServer, tool: string, args: string[]): Command {
  return { file: join(server.binDir, tool), args };
}

function datasaver(bench: Bench, args: string[]): Command {
  return { file: process.execPath, args: [bench.cli, ...args] };
}

// ---------------------------------------------------------------------------------------------------
// Helpers for the scenarios

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

async function largestFile(dir: string): Promise<number | null> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const sizes = await Promise.all(
    entries.filter((e) => e.isFile()).map((e) => fileSize(join(e.parentPath, e.name))),
  );
  return sizes.length ? Math.max(...sizes) : null;
}

async function rowCounts(server: PostgresServer, db: string): Promise<Record<string, number>> {
  const sql = `SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(', ')}`;
  const [row] = await server.query<Record<string, string>>(db, sql);
  return Object.fromEntries(TABLES.map((t) => [t, Number(row?.[t])]));
}

async function dropDatabase(server: PostgresServer, db: string): Promise<void> {
  await server.query('postgres', `DROP DATABASE IF EXISTS "${db}"`);
}

async function freshDatabase(bench: Bench, prefix: string, rep: number): Promise<string> {
  const db = `${prefix}_${rep}`;
  await dropDatabase(bench.server, db);
  await bench.server.createDatabase(db);
  return db;
}

/** Checks the restored database against the source, then drops it (unless --keep). */
async function verifyRestore(bench: Bench, db: string, m: Measurement): Promise<Sample> {
  const restored = await rowCounts(bench.server, db);
  const rowsMatch = TABLES.every((t) => restored[t] === bench.sourceRows[t]);
  if (!bench.keep) await dropDatabase(bench.server, db);
  return toSample(m, null, rowsMatch);
}

// ---------------------------------------------------------------------------------------------------
// What is measured

const SCENARIOS: Scenario[] = [
  {
    id: 'pg_dump_raw',
    title: 'pg_dump -Fc -Z0 > /dev/null',
    datasaver: false,
    async run(b) {
      const command = pgTool(b.server, 'pg_dump', ['-Fc', '-Z0', SOURCE_DB]);
      return toSample(await b.runner.measure([command], { output: 'discard', env: pgEnv(b.server) }), null);
    },
  },
  {
    id: 'pg_dump_gzip',
    title: 'pg_dump -Fp | gzip > file',
    datasaver: false,
    async run(b) {
      const file = join(b.dir, 'dump.sql.gz');
      const stages = [pgTool(b.server, 'pg_dump', ['-Fp', SOURCE_DB]), { file: 'gzip', args: [] }];
      const m = await b.runner.measure(stages, { output: { file }, env: pgEnv(b.server) });
      return toSample(m, await fileSize(file));
    },
  },
  {
    id: 'pg_dump_custom',
    title: 'pg_dump -Fc -f file',
    datasaver: false,
    async run(b) {
      const file = join(b.dir, 'dump.custom');
      const command = pgTool(b.server, 'pg_dump', ['-Fc', '-f', file, SOURCE_DB]);
      const m = await b.runner.measure([command], { output: 'discard', env: pgEnv(b.server) });
      return toSample(m, await fileSize(file));
    },
  },
  {
    id: 'datasaver_backup',
    title: 'datasaver backup',
    datasaver: true,
    async run(b, rep) {
      const storage = join(b.dir, `storage-${rep}`);
      await mkdir(storage, { recursive: true });
      const m = await b.runner.measure([datasaver(b, ['backup', '--json'])], {
        output: 'capture',
        env: datasaverEnv(b.server, storage),
      });
      b.datasaverStorage = storage;
      return toSample(m, storedBytesFromJson(m.stdout) ?? (await largestFile(storage)));
    },
  },
  {
    id: 'datasaver_backup_encrypted',
    title: 'datasaver backup, encrypted (one age recipient)',
    datasaver: true,
    async run(b, rep) {
      const storage = join(b.dir, `storage-encrypted-${rep}`);
      await mkdir(storage, { recursive: true });
      const m = await b.runner.measure([datasaver(b, ['backup', '--json'])], {
        output: 'capture',
        env: { ...datasaverEnv(b.server, storage), DATASAVER_ENCRYPTION_RECIPIENTS: b.recipient },
      });
      const sample = toSample(m, storedBytesFromJson(m.stdout) ?? (await largestFile(storage)));
      // The restore and drill rows read the clear backup; this one is measured and removed.
      if (!b.keep) await rm(storage, { recursive: true, force: true });
      return sample;
    },
  },
  s3Backup('datasaver_backup_s3', 'datasaver backup to S3 (local s3rver)', {}),
  s3Backup('datasaver_backup_s3_read_back', 'datasaver backup to S3, read back', {
    DATASAVER_S3_VERIFY_UPLOAD: 'read-back',
  }),
  {
    id: 'pg_restore',
    title: 'pg_restore -d <new db> (-Fc -Z0 dump)',
    datasaver: false,
    async run(b, rep) {
      const db = await freshDatabase(b, 'restore_pg', rep);
      const command = pgTool(b.server, 'pg_restore', ['-d', db, b.restoreDump]);
      return verifyRestore(
        b,
        db,
        await b.runner.measure([command], { output: 'discard', env: pgEnv(b.server) }),
      );
    },
  },
  {
    id: 'datasaver_restore',
    title: 'datasaver restore latest',
    datasaver: true,
    async run(b, rep) {
      if (!b.datasaverStorage) throw new Skip('no datasaver backup to restore');
      const db = await freshDatabase(b, 'restore_ds', rep);
      const m = await b.runner.measure([datasaver(b, ['restore', 'latest', '--target-db', db, '--json'])], {
        output: 'capture',
        env: datasaverEnv(b.server, b.datasaverStorage),
      });
      return verifyRestore(b, db, m);
    },
  },
  {
    id: 'pg_restore_createdb',
    title: 'createdb + pg_restore -d (-Fc -Z0 dump)',
    datasaver: false,
    async run(b, rep) {
      // What a drill's restore does on its throwaway server: create the database, then restore into it.
      const db = `drill_pg_${rep}`;
      await dropDatabase(b.server, db);
      const env = pgEnv(b.server);
      const created = await b.runner.measure([pgTool(b.server, 'createdb', [db])], {
        output: 'discard',
        env,
      });
      const restored = await b.runner.measure([pgTool(b.server, 'pg_restore', ['-d', db, b.restoreDump])], {
        output: 'discard',
        env,
      });
      const sample = await verifyRestore(b, db, restored);
      return { ...sample, wallSeconds: created.wallSeconds + restored.wallSeconds };
    },
  },
  {
    id: 'datasaver_drill',
    title: 'datasaver drill <id> (throwaway server)',
    datasaver: true,
    async run(b) {
      if (!b.datasaverStorage) throw new Skip('no datasaver backup to drill');
      const m = await b.runner.measure([datasaver(b, ['drill', 'latest', '--json'])], {
        output: 'capture',
        env: datasaverEnv(b.server, b.datasaverStorage),
        apart: isThrowawayServer,
      });
      const { restoreSeconds, passed } = drillOutcome(m.stdout);
      // A passed drill compared every table's rows (and more) with the backup's facts.
      return {
        ...toSample(m, null, passed),
        restoreSeconds,
        server: { peakRssKb: m.apartPeakRssKb, processes: m.apartProcesses },
      };
    },
  },
];

/** A backup to the local S3 server (`--s3`), each run under a fresh prefix, with `extra` settings. */
function s3Backup(id: string, title: string, extra: NodeJS.ProcessEnv): Scenario {
  return {
    id,
    title,
    datasaver: true,
    async run(b, rep) {
      if (!b.s3Server) throw new Skip('run with --s3');
      const m = await b.runner.measure([datasaver(b, ['backup', '--json'])], {
        output: 'capture',
        env: { ...s3Env(b.server, b.s3Server, `${id}-${rep}`), ...extra },
      });
      return toSample(m, storedBytesFromJson(m.stdout));
    },
  };
}

function evaluate(results: ScenarioResult[]): Check[] {
  const get = (id: string) => results.find((r) => r.id === id)?.summary;
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a != null && b ? a / b : null;
  const [raw, gzip, backup, pgRestore, restore, s3] = [
    get('pg_dump_raw'),
    get('pg_dump_gzip'),
    get('datasaver_backup'),
    get('pg_restore'),
    get('datasaver_restore'),
    get('datasaver_backup_s3'),
  ];
  const s3Checks = s3
    ? [
        check('S3 backup wall: S3 / local disk', ratio(s3.wallSeconds, backup?.wallSeconds), '<=', 1.3),
        check('datasaver S3 backup peak RSS (MB)', s3.peakRssKb / 1024, '<=', 200),
      ]
    : [];
  return [
    ...s3Checks,
    check('backup wall: datasaver / raw pg_dump', ratio(backup?.wallSeconds, raw?.wallSeconds), '<=', 1.25),
    check('backup wall: pg_dump|gzip / datasaver', ratio(gzip?.wallSeconds, backup?.wallSeconds), '>=', 2.5),
    check('backup size: datasaver / pg_dump|gzip', ratio(backup?.outputBytes, gzip?.outputBytes), '<=', 1.0),
    check('datasaver backup peak RSS (MB)', backup ? backup.peakRssKb / 1024 : null, '<=', 150),
    check(
      'restore wall: datasaver / pg_restore',
      ratio(restore?.wallSeconds, pgRestore?.wallSeconds),
      '<=',
      1.15,
    ),
    ...encryptedChecks(get('datasaver_backup_encrypted'), backup),
    ...drillChecks(get('datasaver_drill'), get('pg_restore_createdb')),
  ];
}

// ---------------------------------------------------------------------------------------------------
// Orchestration

async function runScenario(
  bench: Bench,
  scenario: Scenario,
  result: ScenarioResult,
  rep: number,
): Promise<void> {
  if (result.status !== 'ok') return;
  if (scenario.datasaver && !existsSync(bench.cli)) {
    Object.assign(result, { status: 'skipped', note: `${bench.cli} not found: run \`npm run build\`` });
    console.log(`  ${scenario.title}: skipped: ${result.note}`);
    return;
  }
  try {
    // Write back what earlier rows left in the page cache, so that no row pays for another's writes
    // (datasaver and pg_dump -Fc -f fsync their output; gzip's output is left dirty).
    execFileSync('sync');
    const sample = await scenario.run(bench, rep);
    result.samples.push(sample);
    const size = sample.outputBytes === null ? '' : `, ${formatMb(sample.outputBytes)}`;
    console.log(`  ${scenario.title}: ${formatSeconds(sample.wallSeconds)}${size}`);
  } catch (err) {
    if (!scenario.datasaver && !(err instanceof Skip)) throw err;
    const note = err instanceof Error ? err.message : String(err);
    Object.assign(result, { status: err instanceof Skip ? 'skipped' : 'failed', note });
    console.log(`  ${scenario.title}: ${result.status}: ${note}`);
  }
}

async function runScenarios(bench: Bench, repeat: number): Promise<ScenarioResult[]> {
  const scenarios = SCENARIOS.filter((s) => bench.s3Server || !s.id.startsWith('datasaver_backup_s3'));
  const results: ScenarioResult[] = scenarios.map(({ id, title }) => ({
    id,
    title,
    status: 'ok',
    samples: [],
  }));
  for (let rep = 1; rep <= repeat; rep++) {
    console.log(`run ${rep}/${repeat}`);
    for (const [i, scenario] of scenarios.entries()) await runScenario(bench, scenario, results[i]!, rep);
  }
  for (const result of results) {
    if (result.status === 'ok' && result.samples.length) result.summary = summarize(result.samples);
  }
  return results;
}

/** Makes pg_restore's input; being a full dump, it is also the warm-up run that fills the caches. */
async function prepare(
  server: PostgresServer,
  dir: string,
  runner: Runner,
  options: Options,
): Promise<Bench> {
  const restoreDump = join(dir, 'restore-source.dump');
  const warmUp = pgTool(server, 'pg_dump', ['-Fc', '-Z0', '-f', restoreDump, SOURCE_DB]);
  const m = await runner.measure([warmUp], { output: 'discard', env: pgEnv(server) });
  console.log(`warm-up dump (pg_dump -Fc -Z0 -f file): ${formatSeconds(m.wallSeconds)}`);
  const sourceRows = await rowCounts(server, SOURCE_DB);
  const { keep, cli } = options;
  const s3Server = options.s3 ? await startS3Server(join(dir, 's3'), [S3_BUCKET]) : null;
  if (s3Server) console.log(`S3 server (s3rver) at ${s3Server.endpoint}, data in ${join(dir, 's3')}`);
  const recipient = await benchRecipient();
  return {
    server,
    dir,
    runner,
    keep,
    cli,
    sourceRows,
    restoreDump,
    datasaverStorage: null,
    s3Server,
    recipient,
  };
}

function parseOptions(): Options {
  const { common, values } = parseBenchArgs(USAGE, 500, {
    keep: { type: 'boolean', default: false },
    s3: { type: 'boolean', default: false },
  });
  return { ...common, keep: values.keep === true, s3: values.s3 === true };
}

async function describeKeptServer(server: PostgresServer, dir: string): Promise<void> {
  const [row] = await server.query<{ data_directory: string }>('postgres', 'SHOW data_directory');
  const dataDir = row?.data_directory ?? '?';
  const asPostgres = process.getuid?.() === 0 ? 'runuser -u postgres -- ' : '';
  console.log(`\n--keep: server left running at ${server.url(SOURCE_DB)}`);
  console.log(`  scratch files: ${dir}`);
  console.log(`  stop it with: ${asPostgres}${join(server.binDir, 'pg_ctl')} -D ${dataDir} -m fast stop`);
  console.log(`  then remove: ${resolve(dataDir, '..')} ${dir}`);
}

async function main(): Promise<void> {
  const options = parseOptions();
  const gnuTime = findGnuTime();
  if (!gnuTime) console.log('GNU time not found (apt-get install time): peak RSS from /proc polling only');
  const server = await startPostgres();
  const dir = await mkdtemp(join(tmpdir(), 'datasaver-bench-'));
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= options.keep
      ? describeKeptServer(server, dir)
      : server.stop().then(() => rm(dir, { recursive: true, force: true }));
    return cleaning;
  };
  process.once('SIGINT', () => {
    console.error('interrupted: stopping the server');
    cleanup().finally(() => process.exit(130));
  });
  try {
    console.log(
      `PostgreSQL ${server.version} on port ${server.port}; Node ${process.version}; ${availableParallelism()} CPUs`,
    );
    await server.createDatabase(SOURCE_DB);
    const generated = await generateDatabase(server, SOURCE_DB, {
      sizeMb: options.sizeMb,
      seed: options.seed,
      log: (line) => console.log(line),
    });
    console.log(
      `database: ${formatMb(generated.databaseBytes)} generated in ${formatSeconds(generated.seconds)}`,
    );

    const bench = await prepare(server, dir, createRunner({ scratchDir: dir, gnuTime }), options);
    const results = await runScenarios(bench, options.repeat).finally(() => bench.s3Server?.stop());
    const checks = evaluate(results);
    const get = (id: string) => results.find((r) => r.id === id)?.summary;
    const drillTotal = drillTotalRatio(get('datasaver_drill'), get('pg_restore_createdb'));
    console.log(`\n${formatResults(results)}\n\n${formatChecks(checks)}\n`);
    if (drillTotal !== null) {
      console.log(
        `drill wall, all of it (initdb, server start, compare, cleanup) / (createdb + pg_restore): ${drillTotal.toFixed(3)} (no target)\n`,
      );
    }

    const file = await writeResults({
      timestamp: new Date().toISOString(),
      options,
      environment: {
        node: process.version,
        postgres: server.version,
        cpus: availableParallelism(),
        cpuModel: cpus()[0]?.model ?? null,
        memoryBytes: totalmem(),
        rssMethod: `/proc VmHWM polling every 10 ms${gnuTime ? '; GNU time %M per stage as a cross-check' : ''}`,
      },
      database: {
        name: SOURCE_DB,
        bytes: generated.databaseBytes,
        generateSeconds: generated.seconds,
        rows: generated.rows,
      },
      results,
      checks,
      drillTotalRatio: drillTotal,
    });
    console.log(`results written to ${file}`);
  } finally {
    await cleanup();
  }
}

runScript(main);
