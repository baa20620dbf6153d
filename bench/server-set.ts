/**
 * Whole-server backup set benchmark: four generated databases on a throwaway PostgreSQL, backed up as
 * one datasaver set (one dump at a time, and `--dump-jobs` at once), against `pg_dumpall | zstd` and
 * against four sequential datasaver backups of one database each.
 *
 *   node bench/server-set.ts [--size-mb 250] [--seed 42] [--repeat 1] [--dump-jobs 2] [--cli dist/main.js]
 *
 * See bench/README.md for what is measured and how.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PostgresServer, startPostgres } from '../test/support/postgres-server.ts';
import { generateDatabase } from './generate.ts';
import { cleanEnv, pgEnv, storedBytesFromJson, toSample } from './lib/commands.ts';
import { formatMb, formatSeconds } from './lib/format.ts';
import { createRunner, findGnuTime, type Runner } from './lib/measure.ts';
import { parseBenchArgs, runScript, writeResults } from './lib/options.ts';
import { formatResults, type Sample, type ScenarioResult, summarize } from './lib/report.ts';

const DATABASES = ['shop1', 'shop2', 'shop3', 'shop4'];
const USAGE = `usage: node bench/server-set.ts [--size-mb 250] [--seed 42] [--repeat 1] [--dump-jobs 2] [--cli dist/main.js]

Starts a throwaway PostgreSQL with four generated databases of --size-mb each, and measures a datasaver
whole-server set against pg_dumpall | zstd and four sequential single-database backups. See bench/README.md.`;

interface Options {
  sizeMb: number;
  seed: number;
  repeat: number;
  dumpJobs: number;
  cli: string;
}

interface Row {
  id: string;
  title: string;
  run(rep: number): Promise<Sample>;
}

function parseOptions(): Options {
  const { common, values } = parseBenchArgs(USAGE, 250, { 'dump-jobs': { type: 'string', default: '2' } });
  const dumpJobs = Number(values['dump-jobs']);
  if (!Number.isInteger(dumpJobs) || dumpJobs < 1) throw new Error('--dump-jobs must be a positive integer');
  if (!existsSync(common.cli))
    throw new Error(`${common.cli} not found: run \`npm run build\`, or pass --cli`);
  return { ...common, dumpJobs };
}

/** The rows: what is measured, each run in a fresh storage directory under `dir`. */
function rows(server: PostgresServer, runner: Runner, dir: string, options: Options): Row[] {
  const datasaverEnv = (storage: string, database: string, extra: NodeJS.ProcessEnv = {}) => ({
    ...cleanEnv(server),
    DATASAVER_DATABASE_URL: server.url(database),
    DATASAVER_STORAGE_PATH: storage,
    ...extra,
  });
  const backup = { file: process.execPath, args: [options.cli, 'backup', '--json'] };
  const storage = async (name: string) => {
    const path = join(dir, name);
    await rm(path, { recursive: true, force: true });
    await mkdir(path, { recursive: true });
    return path;
  };
  const set = (jobs: number): Row => ({
    id: `datasaver_set_jobs${jobs}`,
    title: `datasaver backup, whole-server set, ${jobs} dump${jobs === 1 ? '' : 's'} at a time`,
    async run(rep) {
      const env = datasaverEnv(await storage(`set-${jobs}-${rep}`), '*', {
        DATASAVER_TARGET_NAME: 'server',
        DATASAVER_DUMP_JOBS: String(jobs),
      });
      const m = await runner.measure([backup], { output: 'capture', env });
      return toSample(m, storedBytesFromJson(m.stdout));
    },
  });
  return [
    {
      id: 'pg_dumpall_zstd',
      title: 'pg_dumpall | zstd > file',
      async run() {
        const file = join(dir, 'dumpall.sql.zst');
        const stages = [
          { file: join(server.binDir, 'pg_dumpall'), args: [] },
          { file: 'zstd', args: ['-q', '-c'] },
        ];
        const m = await runner.measure(stages, { output: { file }, env: pgEnv(server) });
        return toSample(m, (await stat(file)).size);
      },
    },
    set(1),
    ...(options.dumpJobs > 1 ? [set(options.dumpJobs)] : []),
    {
      id: 'datasaver_four_backups',
      title: 'datasaver backup of each database, one after the other',
      async run(rep) {
        const samples: Sample[] = [];
        for (const db of DATABASES) {
          const env = datasaverEnv(await storage(`single-${db}-${rep}`), db);
          const m = await runner.measure([backup], { output: 'capture', env });
          samples.push(toSample(m, storedBytesFromJson(m.stdout)));
        }
        // Wall times and sizes add up; the peak is the largest of the four (they never overlap).
        const largest = samples.reduce((a, b) => (b.peakRssKb > a.peakRssKb ? b : a));
        return {
          ...largest,
          wallSeconds: samples.reduce((n, s) => n + s.wallSeconds, 0),
          outputBytes: samples.reduce((n, s) => n + (s.outputBytes ?? 0), 0),
        };
      },
    },
  ];
}

/** The ratios the benchmark exists for, one line each. */
function ratios(results: ScenarioResult[], dumpJobs: number): string[] {
  const get = (id: string) => results.find((r) => r.id === id)?.summary;
  const [dumpall, set, parallel, four] = [
    get('pg_dumpall_zstd'),
    get('datasaver_set_jobs1'),
    get(`datasaver_set_jobs${dumpJobs}`),
    get('datasaver_four_backups'),
  ];
  const ratio = (name: string, a: number | null | undefined, b: number | null | undefined) =>
    `${name}: ${a != null && b ? (a / b).toFixed(3) : '-'}`;
  return [
    ratio('set wall / pg_dumpall|zstd wall', set?.wallSeconds, dumpall?.wallSeconds),
    ratio('set size / pg_dumpall|zstd size', set?.outputBytes, dumpall?.outputBytes),
    ratio('set wall / four sequential backups wall', set?.wallSeconds, four?.wallSeconds),
    ...(dumpJobs > 1
      ? [ratio(`set wall, ${dumpJobs} at a time / one at a time`, parallel?.wallSeconds, set?.wallSeconds)]
      : []),
  ];
}

async function main(): Promise<void> {
  const options = parseOptions();
  const server = await startPostgres();
  const dir = await mkdtemp(join(tmpdir(), 'datasaver-bench-set-'));
  const cleanup = () => server.stop().then(() => rm(dir, { recursive: true, force: true }));
  process.once('SIGINT', () => {
    console.error('interrupted: stopping the server');
    cleanup().finally(() => process.exit(130));
  });
  try {
    console.log(`PostgreSQL ${server.version}; Node ${process.version}; ${availableParallelism()} CPUs`);
    for (const [i, db] of DATABASES.entries()) {
      await server.createDatabase(db);
      const generated = await generateDatabase(server, db, {
        sizeMb: options.sizeMb,
        seed: options.seed + i,
      });
      console.log(
        `${db}: ${formatMb(generated.databaseBytes)} generated in ${formatSeconds(generated.seconds)}`,
      );
    }
    const runner = createRunner({ scratchDir: dir, gnuTime: findGnuTime() });
    const measured = rows(server, runner, dir, options);
    const results: ScenarioResult[] = measured.map(({ id, title }) => ({
      id,
      title,
      status: 'ok',
      samples: [],
    }));
    for (let rep = 1; rep <= options.repeat; rep++) {
      console.log(`run ${rep}/${options.repeat}`);
      for (const [i, row] of measured.entries()) {
        const sample = await row.run(rep);
        results[i]!.samples.push(sample);
        console.log(`  ${row.title}: ${formatSeconds(sample.wallSeconds)}`);
      }
    }
    for (const r of results) r.summary = summarize(r.samples);
    const lines = ratios(results, options.dumpJobs);
    console.log(`\n${formatResults(results)}\n\n${lines.join('\n')}\n`);
    const file = await writeResults({ options, results, ratios: lines }, 'server-set-');
    console.log(`results written to ${file}`);
  } finally {
    await cleanup();
  }
}

runScript(main);
