import { describe, expect, it } from 'vitest';
import { type Endpoints, handle } from '../../src/server/http.ts';
import { DaemonMetrics } from '../../src/server/metrics.ts';

function endpoints(healthy: boolean, ready = true): Endpoints {
  const metrics = new DaemonMetrics({ processMetrics: false });
  metrics.registerTarget('shop', ['local:/b']);
  metrics.succeeded.inc({ target: 'shop' });
  return {
    health: () => ({ httpStatus: healthy ? 200 : 503, report: { status: healthy ? 'ok' : 'unhealthy' } }),
    ready: () => ready,
    metrics: () => metrics.render(),
  };
}

describe('HTTP endpoints, without a socket', () => {
  it('/health answers 200 or 503 with the JSON report', async () => {
    const ok = await handle('GET', '/health', endpoints(true));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ status: 'ok' });
    expect((await handle('GET', '/health?x=1', endpoints(false))).status).toBe(503);
  });

  it('/ready follows the scheduler', async () => {
    expect((await handle('GET', '/ready', endpoints(true, true))).status).toBe(200);
    expect((await handle('GET', '/ready', endpoints(true, false))).status).toBe(503);
  });

  it('/metrics is Prometheus text with per-target series present from the start', async () => {
    const res = await handle('GET', '/metrics', endpoints(true));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(/^datasaver_backups_succeeded_total\{target="shop"\} 1$/m);
    expect(res.body).toMatch(/^datasaver_backups_failed_total\{target="shop"\} 0$/m);
    expect(res.body).toMatch(/^datasaver_prune_deleted_total\{target="shop",destination="local:\/b"\} 0$/m);
  });

  it('unknown paths are 404 and other methods 405', async () => {
    expect((await handle('GET', '/nope', endpoints(true))).status).toBe(404);
    expect((await handle('POST', '/health', endpoints(true))).status).toBe(405);
  });
});
