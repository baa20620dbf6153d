/**
 * One-shot `datasaver backup` (a CronJob, a host cron) gives Prometheus the daemon's metrics: a textfile
 * for node_exporter (`--metrics-file`) and a push to a Pushgateway (`DATASAVER_PUSHGATEWAY_URL`). Real
 * server, real CLI, and a Pushgateway stand-in on loopback that records what it is sent.
 */

import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';
import { parseExposition, sampleValue } from '../support/prom-text.ts';

let db: string;
const pushes: { method: string; path: string; body: string; contentType: string }[] = [];
let gatewayStatus = 200;
const gateway = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    pushes.push({
      method: req.method ?? '',
      path: req.url ?? '',
      body,
      contentType: req.headers['content-type'] ?? '',
    });
    res.writeHead(gatewayStatus).end();
  });
});
let gatewayUrl = '';

beforeAll(async () => {
  db = uniqueName('metrics');
  await createRichDatabase(db);
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  const addr = gateway.address();
  gatewayUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(() => new Promise((r) => gateway.close(r)));

describe('one-shot backup metrics', () => {
  it('a good backup, then a failed one: the textfile and the push say so, with no secret', async () => {
    const storage = await tempDir();
    const dir = await tempDir();
    const file = join(dir, 'datasaver.prom');
    pushes.length = 0;
    gatewayStatus = 200;
    const env = targetEnv(db, storage, { DATASAVER_PUSHGATEWAY_URL: gatewayUrl });
    const good = await runCli(['backup', '--json', '--metrics-file', file], env);
    expect(good.code, good.output).toBe(0);
    const backup = (JSON.parse(good.stdout) as { backups: { finishedAt: string; storedBytes: number }[] })
      .backups[0]!;
    const target = { target: db };
    const written = parseExposition(await readFile(file, 'utf8'));
    expect(sampleValue(written, 'datasaver_target_healthy', target)).toBe(1);
    expect(sampleValue(written, 'datasaver_backups_succeeded_total', target)).toBe(1);
    expect(sampleValue(written, 'datasaver_backup_last_stored_bytes', target)).toBe(backup.storedBytes);
    expect(sampleValue(written, 'datasaver_backup_last_success_timestamp_seconds', target)).toBe(
      Date.parse(backup.finishedAt) / 1000,
    );
    expect(
      sampleValue(written, 'datasaver_stored_backups', { ...target, destination: `local:${storage}` }),
    ).toBe(1);
    expect(await readdir(dir)).toEqual(['datasaver.prom']);

    expect(pushes).toHaveLength(1);
    expect(pushes[0]).toMatchObject({ method: 'PUT', path: `/metrics/job/datasaver/target/${db}` });
    expect(pushes[0]!.contentType).toMatch(/^text\/plain/);
    const pushed = parseExposition(pushes[0]!.body);
    expect(sampleValue(pushed, 'datasaver_target_healthy', target)).toBe(1);
    expect(sampleValue(pushed, 'datasaver_backups_succeeded_total', target)).toBe(1);

    // The database is gone: the run fails, and both say so, keeping the last success from storage.
    const failed = await runCli(['backup', '--metrics-file', file], {
      ...env,
      DATASAVER_DB_PORT: '1',
    });
    expect(failed.code, failed.output).toBe(3);
    const after = parseExposition(await readFile(file, 'utf8'));
    expect(sampleValue(after, 'datasaver_target_healthy', target)).toBe(0);
    expect(sampleValue(after, 'datasaver_backups_failed_total', target)).toBe(1);
    expect(
      sampleValue(after, 'datasaver_backup_duration_seconds_count', { ...target, result: 'failure' }),
    ).toBe(1);
    expect(sampleValue(after, 'datasaver_backup_last_success_timestamp_seconds', target)).toBe(
      Date.parse(backup.finishedAt) / 1000,
    );
    expect(pushes).toHaveLength(2);
    expect(sampleValue(parseExposition(pushes[1]!.body), 'datasaver_backups_failed_total', target)).toBe(1);
    for (const text of [await readFile(file, 'utf8'), ...pushes.map((p) => p.body)]) {
      expect(text).not.toContain(server().password);
    }
  });

  it('a Pushgateway that refuses is a warning: the backup still exits 0', async () => {
    gatewayStatus = 503;
    pushes.length = 0;
    const url = gatewayUrl.replace('http://', 'http://push:gatewaysecret@');
    const res = await runCli(['backup'], targetEnv(db, await tempDir(), { DATASAVER_PUSHGATEWAY_URL: url }));
    expect(res.code, res.output).toBe(0);
    expect(pushes).toHaveLength(1);
    expect(res.stderr).toMatch(
      /warning: the Pushgateway at http:\/\/127\.0\.0\.1:\d+ refused the metrics of .*: HTTP 503/,
    );
    expect(res.output).not.toContain('gatewaysecret');
  });

  it('a --metrics-file in a directory that does not exist fails before any backup', async () => {
    const storage = await tempDir();
    const res = await runCli(['backup', '--metrics-file', '/nonexistent/dir/x.prom'], targetEnv(db, storage));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('--metrics-file: /nonexistent/dir is not a directory');
    expect(await readdir(storage)).toEqual([]);
  });
});
