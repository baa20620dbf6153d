/**
 * datasaver end to end against a throwaway PostgreSQL: load sample data, back it up, list, verify, restore
 * into a new database and show that the data matches; then run the sidecar daemon for a few seconds and
 * ask its /health. Uses the built CLI (dist/main.js), as a user would.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startPostgres } from '../test/support/postgres-server.ts';
import { RICH_DATA_SQL, RICH_SCHEMA_SQL } from '../test/support/sample-data.ts';

const cli = join(import.meta.dirname, '..', 'dist', 'main.js');
const step = (text: string) => console.log(`\n\x1b[1m==> ${text}\x1b[0m`);

step('starting a throwaway PostgreSQL server');
const server = await startPostgres();
const storage = mkdtempSync(join(tmpdir(), 'datasaver-demo-backups-'));
let ok = false;
try {
  console.log(`PostgreSQL ${server.version} on 127.0.0.1:${server.port}; backups go to ${storage}`);
  step('loading sample data into database "shop"');
  await server.createDatabase('shop');
  await server.query('shop', RICH_SCHEMA_SQL);
  await server.query('shop', RICH_DATA_SQL);
  const env = { ...process.env, DATASAVER_DATABASE_URL: server.url('shop'), DATASAVER_STORAGE_PATH: storage };
  const datasaver = (...args: string[]) => {
    console.log(`$ datasaver ${args.join(' ')}`);
    const res = spawnSync(process.execPath, [cli, ...args], { env, stdio: 'inherit' });
    if (res.status !== 0) throw new Error(`datasaver ${args[0]} exited with ${res.status}`);
  };

  step('backing up');
  datasaver('backup', '--label', 'manual');
  step('listing backups');
  datasaver('list');
  step('verifying the newest backup (checksum, decompression, pg_restore structure check)');
  datasaver('verify', 'latest');
  step('asking retention what it keeps and why (grandfather-father-son; nothing is deleted)');
  datasaver('prune', '--dry-run');
  step('restoring it into a new database "shop_restored"');
  datasaver('restore', 'latest', '--target-db', 'shop_restored');

  step('comparing source and restored databases');
  const dump = (db: string) =>
    execFileSync(join(server.binDir, 'pg_dump'), ['--no-password'], {
      env: {
        ...process.env,
        PGHOST: '127.0.0.1',
        PGPORT: String(server.port),
        PGUSER: 'postgres',
        PGPASSWORD: server.password,
        PGDATABASE: db,
      },
      maxBuffer: 1 << 30,
    })
      .toString()
      .split('\n')
      .filter((l) => !/^\\(un)?restrict /.test(l))
      .join('\n');
  const counts = `SELECT 'sales.customers' AS "table", count(*) AS rows FROM sales.customers
    UNION ALL SELECT 'sales.orders', count(*) FROM sales.orders
    UNION ALL SELECT 'public.audit', count(*) FROM public.audit
    UNION ALL SELECT 'large objects', count(*) FROM pg_largeobject_metadata`;
  const [a, b] = await Promise.all([server.query('shop', counts), server.query('shop_restored', counts)]);
  console.table(a.map((r, i) => ({ table: r.table, source: r.rows, restored: b[i]?.rows })));
  ok = dump('shop') === dump('shop_restored');
  console.log(
    ok
      ? '\x1b[32mpg_dump of source and restored database are identical: the data matches.\x1b[0m'
      : '\x1b[31mMISMATCH between source and restored database\x1b[0m',
  );

  step('running the sidecar: `datasaver daemon` on a 2-second schedule, then asking its /health');
  const port = String(await freePort());
  const daemonEnv = { ...env, DATASAVER_SCHEDULE: '*/2 * * * * *', DATASAVER_METRICS_PORT: port };
  console.log(`$ DATASAVER_SCHEDULE='*/2 * * * * *' DATASAVER_METRICS_PORT=${port} datasaver daemon`);
  const daemon = spawn(process.execPath, [cli, 'daemon'], {
    env: daemonEnv,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => daemon.on('close', resolve));
  let backups = 0;
  for (let i = 0; i < 100 && backups < 2; i++) {
    await sleep(100);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(
      (r) => r.text(),
      () => '',
    );
    backups = Number(/^datasaver_backups_succeeded_total\{target="shop"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
  }
  console.log(`$ datasaver health`);
  const health = spawnSync(process.execPath, [cli, 'health'], { env: daemonEnv, stdio: 'inherit' });
  daemon.kill('SIGTERM');
  const daemonExit = await exited;
  console.log(`daemon took ${backups} scheduled backups and exited ${daemonExit} on SIGTERM`);
  ok = ok && backups >= 2 && health.status === 0 && daemonExit === 0;
} finally {
  step('tearing down');
  await server.stop();
  rmSync(storage, { recursive: true, force: true });
}
process.exitCode = ok ? 0 : 1;
