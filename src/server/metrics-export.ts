/**
 * Where a one-shot run's metrics go: a file for node_exporter's textfile collector, and a Prometheus
 * Pushgateway. Both take the text exposition as rendered by prom-client (metrics.ts).
 */
import { chmod, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { publish, writeTemp } from '../util/durable-file.ts';
import { redact, type Secret } from '../util/secret.ts';

/** The Pushgateway job every datasaver push is grouped under. */
export const PUSH_JOB = 'datasaver';

/**
 * Replaces `path` with `body` atomically: node_exporter reads the file at any moment, and must never see
 * half of it. The temp file is a dot file in the same directory (the collector reads only `*.prom`, and
 * a rename is atomic only within one file system), mode 0644 (the exporter usually runs as another user;
 * the metrics hold no secrets). Throws the file system's error; the temp file is then removed.
 */
export async function writeMetricsFile(path: string, body: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeTemp(temp, [Buffer.from(body, 'utf8')]);
    await chmod(temp, 0o644);
    await publish(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
}

/** The Pushgateway path of a target's group: job `datasaver`, grouping label `target`. */
export function pushPath(target: string): string {
  return `/metrics/job/${PUSH_JOB}/target/${encodeURIComponent(target)}`;
}

/**
 * PUTs `body` as the group of `target` on the Pushgateway at `url`, replacing what an earlier run pushed
 * there, as a textfile is replaced. Throws an Error whose message names the gateway without credentials
 * when the request fails, times out (`timeoutMs`) or gets a status other than 2xx.
 */
export async function pushMetrics(
  url: Secret,
  target: string,
  body: string,
  options: { contentType: string; timeoutMs: number },
): Promise<void> {
  const base = new URL(url.reveal());
  const where = `${base.protocol}//${base.host}`;
  const headers: Record<string, string> = { 'content-type': options.contentType };
  // fetch refuses URLs with credentials: they go in the Authorization header instead.
  if (base.username || base.password) {
    const user = decodeURIComponent(base.username);
    const password = decodeURIComponent(base.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    base.username = '';
    base.password = '';
  }
  const endpoint = new URL(`${base.pathname.replace(/\/+$/, '')}${pushPath(target)}`, base);
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'PUT',
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    const reason =
      err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : err;
    throw new Error(`cannot push metrics to the Pushgateway at ${where}: ${redact(String(reason), [url])}`);
  }
  await response.body?.cancel();
  if (!response.ok) {
    throw new Error(`the Pushgateway at ${where} refused the metrics of ${target}: HTTP ${response.status}`);
  }
}
