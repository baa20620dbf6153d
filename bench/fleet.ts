/**
 * Fleet-scale catalog benchmark: how long the commands that read a target's whole catalog take when it
 * holds many backups. Committed backups (a small data object and a manifest with a few tables' facts,
 * as the backup job writes them) are written straight into local storage and into the test S3 server,
 * then `list --json` and `prune --dry-run` run through the CLI against each, and the retention plan (the
 * pure function) runs in this process over ten times as many backups.
 *
 *   node bench/fleet.ts [--backups 10000] [--repeat 3] [--cli dist/main.js]
 *
 * See bench/README.md for the targets these are held to.
 */
import { execFile as execFileCb } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { backupId } from '../src/catalog/layout.ts';
import { DEFAULT_RULES, planRetention } from '../src/retention/policy.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { S3Storage } from '../src/storage/s3/s3.ts';
import { mapLimit } from '../src/util/concurrency.ts';
import { storeBackup } from '../test/support/manifests.ts';
import {
  S3_ACCESS_KEY,
  S3_BUCKET,
  S3_SECRET_KEY,
  s3StorageConfig,
  startS3Server,
} from '../test/support/s3-server.ts';
import { formatSeconds } from './lib/format.ts';
import { parseBenchArgs, runScript, writeResults } from './lib/options.ts';

const execFile = promisify(execFileCb);
/** The target storeBackup writes. */
const TARGET = 'shop';
const USAGE = `usage: node bench/fleet.ts [--backups 10000] [--repeat 3] [--cli dist/main.js]

Writes --backups committed backups of one target to local storage and to a local S3 server, and times
list and prune --dry-run over them, and the retention plan over ten times as many. See bench/README.md.`;

/** The facts of a small database's ten tables, as a backup's manifest records them. */
const FACTS = {
  exact: true,
  tables: Array.from({ length: 10 }, (_, i) => ({ name: `public.table_${i}`, rows: 1000 * i })),
};

/** Writes `count` hourly backups of target `shop`, the newest an hour before `now`, into `storage`. */
async function fill(storage: StorageBackend, count: number, now: Date): Promise<void> {
  const hours = Array.from({ length: count }, (_, i) => i + 1);
  await mapLimit(hours, 32, (h) =>
    storeBackup(storage, new Date(now.getTime() - h * 3_600_000), {
      overrides: { facts: FACTS, labels: ['scheduled'], durationMs: 30_000 },
    }),
  );
}

/** The median wall time of `repeat` runs of the CLI with `args`, in seconds; fails when it fails. */
async function timeCli(cli: string, args: string[], env: NodeJS.ProcessEnv, repeat: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    await execFile(process.execPath, [cli, ...args], { env, maxBuffer: 512 * 1024 * 1024 });
    times.push((performance.now() - start) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

/** The median time of the retention plan over `count` hourly backups, in seconds. */
function timePlan(count: number, now: Date, repeat: number): number {
  const candidates = Array.from({ length: count }, (_, i) => {
    const time = new Date(now.getTime() - (i + 1) * 3_600_000);
    return { id: backupId(TARGET, time), time, problem: undefined, series: 'full' };
  });
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    planRetention(candidates, { ...DEFAULT_RULES, timeZone: 'Europe/Berlin' }, now);
    times.push((performance.now() - start) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

async function main(): Promise<void> {
  const { common, values } = parseBenchArgs(USAGE, 1, { backups: { type: 'string', default: '10000' } });
  const backups = Number(values.backups);
  if (!Number.isInteger(backups) || backups < 1) throw new Error('--backups must be a positive integer');
  if (!existsSync(common.cli))
    throw new Error(`${common.cli} not found: run \`npm run build\`, or pass --cli`);
  const dir = await mkdtemp(join(tmpdir(), 'datasaver-fleet-'));
  const s3 = await startS3Server(join(dir, 's3'), [S3_BUCKET]);
  try {
    const now = new Date();
    const local = join(dir, 'local');
    const prefix = 'fleet';
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('DATASAVER_') && !k.startsWith('PG')),
    );
    // A target only prune needs (its retention); nothing connects to the database.
    const target = { DATASAVER_DATABASE_URL: `postgres://bench@127.0.0.1:1/${TARGET}` };
    const localEnv = { ...base, ...target, DATASAVER_STORAGE_PATH: local };
    const s3Env = {
      ...base,
      ...target,
      DATASAVER_STORAGE_BACKEND: 's3',
      DATASAVER_S3_ENDPOINT: s3.endpoint,
      DATASAVER_S3_BUCKET: S3_BUCKET,
      DATASAVER_S3_PREFIX: prefix,
      DATASAVER_S3_REGION: 'us-east-1',
      DATASAVER_S3_FORCE_PATH_STYLE: 'true',
      DATASAVER_S3_ACCESS_KEY: S3_ACCESS_KEY,
      DATASAVER_S3_SECRET_KEY: S3_SECRET_KEY,
    };
    let start = performance.now();
    await fill(new LocalStorage(local), backups, now);
    console.log(
      `${backups} backups written to local storage in ${formatSeconds((performance.now() - start) / 1000)}`,
    );
    start = performance.now();
    await fill(new S3Storage(s3StorageConfig(s3.endpoint, prefix)), backups, now);
    console.log(`${backups} backups written to S3 in ${formatSeconds((performance.now() - start) / 1000)}`);

    const rows: { check: string; seconds: number; target: number }[] = [];
    const list = ['list', '--json', '--target', TARGET];
    const prune = ['prune', '--dry-run', '--json'];
    rows.push({
      check: `list, ${backups} backups, local`,
      seconds: await timeCli(common.cli, list, localEnv, common.repeat),
      target: 1,
    });
    rows.push({
      check: `list, ${backups} backups, S3`,
      seconds: await timeCli(common.cli, list, s3Env, common.repeat),
      target: 2,
    });
    rows.push({
      check: `prune --dry-run, ${backups} backups, local`,
      seconds: await timeCli(common.cli, prune, localEnv, common.repeat),
      target: 1,
    });
    rows.push({
      check: `retention plan, ${backups * 10} backups`,
      seconds: timePlan(backups * 10, now, common.repeat),
      target: 1,
    });

    console.log('');
    console.log(`${'check'.padEnd(44)}  ${'median'.padStart(8)}  ${'target'.padStart(8)}  result`);
    for (const r of rows) {
      const ok = r.seconds < r.target ? 'ok' : 'OVER';
      console.log(
        `${r.check.padEnd(44)}  ${formatSeconds(r.seconds).padStart(8)}  ${`< ${r.target} s`.padStart(8)}  ${ok}`,
      );
    }
    const file = await writeResults({ backups, repeat: common.repeat, rows }, 'fleet-');
    console.log(`\nresults written to ${file}`);
  } finally {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

runScript(main);
