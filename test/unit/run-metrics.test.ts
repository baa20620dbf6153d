/**
 * A one-shot run's metrics: the daemon's definitions filled from the run, a valid text exposition, the
 * textfile replaced atomically, and the Pushgateway request.
 */

import { mkdtemp, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import type { CycleResult } from '../../src/jobs/cycle.ts';
import { DaemonMetrics } from '../../src/server/metrics.ts';
import { pushMetrics, writeMetricsFile } from '../../src/server/metrics-export.ts';
import { type OneShotRun, oneShotMetrics } from '../../src/server/run-metrics.ts';
import { Secret } from '../../src/util/secret.ts';
import { configError, configParser } from '../support/config.ts';
import { parseExposition, sampleValue } from '../support/prom-text.ts';

const COMMITTED = '2026-11-22T02:00:04.000Z';
const STORED = '2026-11-21T02:00:03.000Z';

function cycle(): CycleResult {
  return {
    backup: {
      manifest: { id: 'shop-new', finishedAt: COMMITTED, sizeBytes: 1000, storedBytes: 300 } as Manifest,
      verified: false,
      committed: [],
      failures: [],
    },
    copies: [],
    pruned: [{ storage: '/backups', removed: 2 } as CycleResult['pruned'][number]],
    problems: [],
    warnings: [],
    interrupted: false,
  };
}

function run(overrides: Partial<OneShotRun>): OneShotRun {
  return {
    target: 'shop',
    destinations: ['/backups'],
    ok: true,
    durationMs: 4200,
    finishedAt: new Date('2026-11-22T02:00:05.000Z'),
    result: cycle(),
    usage: [{ destination: '/backups', backups: 7, bytes: 2100 }],
    newestStored: new Date(COMMITTED),
    ...overrides,
  };
}

const exposition = async (runs: OneShotRun[]) => parseExposition((await oneShotMetrics(runs).render()).body);
const at = (iso: string) => Date.parse(iso) / 1000;

describe('one-shot run metrics', () => {
  it('a successful run: a valid exposition with the result, sizes, last success and storage', async () => {
    const exp = await exposition([run({})]);
    const shop = { target: 'shop' };
    expect(sampleValue(exp, 'datasaver_target_healthy', shop)).toBe(1);
    expect(sampleValue(exp, 'datasaver_backups_succeeded_total', shop)).toBe(1);
    expect(sampleValue(exp, 'datasaver_backups_failed_total', shop)).toBe(0);
    expect(sampleValue(exp, 'datasaver_backup_last_success_timestamp_seconds', shop)).toBe(at(COMMITTED));
    expect(sampleValue(exp, 'datasaver_backup_last_attempt_timestamp_seconds', shop)).toBe(
      at('2026-11-22T02:00:05.000Z'),
    );
    expect(sampleValue(exp, 'datasaver_backup_last_stored_bytes', shop)).toBe(300);
    expect(sampleValue(exp, 'datasaver_backup_duration_seconds_count', { ...shop, result: 'success' })).toBe(
      1,
    );
    expect(sampleValue(exp, 'datasaver_backup_duration_seconds_sum', { ...shop, result: 'success' })).toBe(
      4.2,
    );
    expect(sampleValue(exp, 'datasaver_stored_backups', { ...shop, destination: '/backups' })).toBe(7);
    expect(sampleValue(exp, 'datasaver_prune_deleted_total', { ...shop, destination: '/backups' })).toBe(2);
    expect(exp.types.get('datasaver_backup_duration_seconds')).toBe('histogram');
    // Not the process's: node_exporter has its own, and a textfile repeating them is refused.
    expect(exp.samples.some((s) => s.name.startsWith('process_') || s.name.startsWith('nodejs_'))).toBe(
      false,
    );
  });

  it('a failed run shows as a failure, with the last success still read from storage', async () => {
    const exp = await exposition([run({ ok: false, result: undefined, newestStored: new Date(STORED) })]);
    const shop = { target: 'shop' };
    expect(sampleValue(exp, 'datasaver_target_healthy', shop)).toBe(0);
    expect(sampleValue(exp, 'datasaver_backups_failed_total', shop)).toBe(1);
    expect(sampleValue(exp, 'datasaver_backups_succeeded_total', shop)).toBe(0);
    expect(sampleValue(exp, 'datasaver_backup_duration_seconds_count', { ...shop, result: 'failure' })).toBe(
      1,
    );
    expect(sampleValue(exp, 'datasaver_backup_last_success_timestamp_seconds', shop)).toBe(at(STORED));
  });

  it('a failed run with nothing in storage has no last success series, and several targets share one file', async () => {
    const exp = await exposition([
      run({ target: 'blog', ok: false, result: undefined, usage: [], newestStored: undefined }),
      run({}),
    ]);
    expect(() =>
      sampleValue(exp, 'datasaver_backup_last_success_timestamp_seconds', { target: 'blog' }),
    ).toThrow();
    expect(sampleValue(exp, 'datasaver_target_healthy', { target: 'blog' })).toBe(0);
    expect(sampleValue(exp, 'datasaver_target_healthy', { target: 'shop' })).toBe(1);
  });

  it('uses the metric names the daemon serves, which are unchanged', async () => {
    const daemon = new DaemonMetrics({ processMetrics: false });
    daemon.registerTarget('shop', ['/backups']);
    const served = parseExposition((await daemon.render()).body);
    const oneShot = await exposition([run({})]);
    const families = (e: typeof served) => [...e.types.keys()];
    expect(families(served).at(-1)).toBe('datasaver_http_connections_dropped_total');
    expect(families(served).slice(0, -1)).toEqual(families(oneShot));
  });
});

describe('DATASAVER_PUSHGATEWAY_URL', () => {
  const parse = configParser({ '/run/secrets/gw': 'http://u:filesecret@gw:9091\n' });
  const base = { DATASAVER_DATABASE_URL: 'postgres://db/shop', DATASAVER_STORAGE_PATH: '/b' };

  it('is a secret http(s) URL, from the environment, a file, or the YAML defaults', () => {
    expect(parse(base).targets[0]!.pushgatewayUrl).toBeUndefined();
    const cfg = parse({ ...base, DATASAVER_PUSHGATEWAY_URL: 'http://u:envsecret@gw:9091' });
    expect(cfg.targets[0]!.pushgatewayUrl?.reveal()).toBe('http://u:envsecret@gw:9091');
    expect(JSON.stringify(cfg)).not.toContain('envsecret');
    const fromFile = parse({ ...base, DATASAVER_PUSHGATEWAY_URL_FILE: '/run/secrets/gw' });
    expect(fromFile.targets[0]!.pushgatewayUrl?.reveal()).toBe('http://u:filesecret@gw:9091');
    const yaml = parse(
      {},
      'defaults:\n  storage: { path: /b }\n  pushgateway_url: https://gw.example\ntargets:\n  shop:\n    url: postgres://db/shop\n',
    );
    expect(yaml.targets[0]!.pushgatewayUrl?.reveal()).toBe('https://gw.example');
    const err = configError(() => parse({ ...base, DATASAVER_PUSHGATEWAY_URL: 'ftp://u:badsecret@gw' }));
    expect(err.message).toMatch(/DATASAVER_PUSHGATEWAY_URL: '\*\*\*' is not valid; expected an http/);
    expect(err.message).not.toContain('badsecret');
  });
});

describe('the exposition check itself', () => {
  it('refuses what a collector refuses', () => {
    const ok = '# TYPE a gauge\na{x="1"} 2\n';
    expect(parseExposition(ok).samples).toEqual([{ name: 'a', labels: { x: '1' }, value: 2 }]);
    expect(() => parseExposition(ok + ok)).toThrow(/second TYPE|twice/);
    expect(() => parseExposition('a 1\nb 2\na 3\n')).toThrow(/appears twice/);
    expect(() => parseExposition('a{x=1} 2\n')).toThrow(/bad labels/);
    expect(() => parseExposition('a 1.2.3\n')).toThrow(/bad value/);
    expect(() => parseExposition('a 1')).toThrow(/newline/);
  });
});

describe('the textfile', () => {
  it('replaces the file atomically: a reader of the old file keeps it whole, no temp file is left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'datasaver-metrics-'));
    const path = join(dir, 'datasaver.prom');
    await writeFile(path, 'old 1\n');
    const reader = await open(path, 'r');
    try {
      await writeMetricsFile(path, 'new 2\n');
      // Replaced by a rename, not rewritten in place: what was open still reads the complete old text.
      expect((await reader.readFile()).toString()).toBe('old 1\n');
    } finally {
      await reader.close();
    }
    expect(await readFile(path, 'utf8')).toBe('new 2\n');
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual(['datasaver.prom']);
  });

  it('a write that fails throws and leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'datasaver-metrics-'));
    await expect(writeMetricsFile(join(dir, 'missing', 'x.prom'), 'a 1\n')).rejects.toThrow(/ENOENT/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('the Pushgateway push', () => {
  const requests: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  let status = 200;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(status).end();
    });
  });
  let base = '';
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    base = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("PUTs the body to the target's group under job datasaver, credentials in a header", async () => {
    status = 200;
    requests.length = 0;
    const url = new Secret(`http://push:s3cret@${base}/gateway/`);
    await pushMetrics(url, 'shop', 'a 1\n', { contentType: 'text/plain; version=0.0.4', timeoutMs: 5000 });
    expect(requests).toHaveLength(1);
    const [r] = requests;
    expect(r!.method).toBe('PUT');
    expect(r!.url).toBe('/gateway/metrics/job/datasaver/target/shop');
    expect(r!.body).toBe('a 1\n');
    expect(r!.headers.authorization).toBe(`Basic ${Buffer.from('push:s3cret').toString('base64')}`);
  });

  it('a refused push throws, naming the gateway without its credentials', async () => {
    status = 500;
    const url = new Secret(`http://push:s3cret@${base}`);
    const push = pushMetrics(url, 'shop', 'a 1\n', { contentType: 'text/plain', timeoutMs: 5000 });
    await expect(push).rejects.toThrow(
      `the Pushgateway at http://${base} refused the metrics of shop: HTTP 500`,
    );
    await push.catch((err: Error) => expect(err.message).not.toContain('s3cret'));
  });
});
