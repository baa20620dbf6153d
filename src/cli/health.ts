/**
 * `datasaver health`: asks a running daemon's `/health` and exits 0 when it answers 200, else 1. Made for
 * a container HEALTHCHECK: the address comes from the same settings the daemon uses (port and host, from
 * the environment or the config file), and from DATASAVER_METRICS_PORT alone when the config does not load.
 */
import { loadConfig } from '../config/load.ts';
import { ExitCode, errorMessage } from '../util/errors.ts';
import { redact } from '../util/secret.ts';
import type { CliContext } from './context.ts';
import { printJson } from './output.ts';

export interface HealthOptions {
  url?: string;
  timeout?: string;
  json?: boolean;
}

interface TargetSummary {
  target: string;
  healthy: boolean;
  reasons: string[];
  lastSuccess: { time: string; backupId: string } | null;
  nextRun: string | null;
}

export async function healthCommand(ctx: CliContext, opts: HealthOptions): Promise<number> {
  const url = opts.url ?? (await defaultUrl(ctx));
  const shown = redact(url);
  const timeoutMs = Math.max(1, Number(opts.timeout ?? 5)) * 1000;
  let status: number;
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ctx.signal]) });
    status = res.status;
    const text = await res.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    const why = cause ? errorMessage(cause) : errorMessage(err);
    if (opts.json) printJson(ctx.stdout, { url: shown, healthy: false, error: why });
    else ctx.stderr.write(`unhealthy: cannot reach ${shown}: ${why}\n`);
    return ExitCode.general;
  }
  const healthy = status === 200;
  if (opts.json) {
    printJson(ctx.stdout, { url: shown, healthy, httpStatus: status, report: body });
  } else {
    const targets = (body as { targets?: TargetSummary[] } | undefined)?.targets;
    ctx.stdout.write(`${healthy ? 'healthy' : 'unhealthy'} (HTTP ${status} from ${shown})\n`);
    for (const t of Array.isArray(targets) ? targets : []) {
      const last = t.lastSuccess
        ? `last success ${t.lastSuccess.backupId} at ${t.lastSuccess.time}`
        : 'no success yet';
      ctx.stdout.write(
        `  ${t.target}: ${t.healthy ? 'ok' : 'UNHEALTHY'}; ${last}; next run ${t.nextRun ?? 'none'}\n`,
      );
      for (const r of t.reasons ?? []) ctx.stdout.write(`    - ${r}\n`);
    }
  }
  return healthy ? ExitCode.ok : ExitCode.general;
}

async function defaultUrl(ctx: CliContext): Promise<string> {
  let port = ctx.env.DATASAVER_METRICS_PORT || '9090';
  let host = '127.0.0.1';
  try {
    const { daemon } = await loadConfig({ configFile: ctx.configFile, env: ctx.env });
    port = String(daemon.metricsPort);
    // A daemon listening on every interface answers on loopback; one bound to an address, there.
    if (!['0.0.0.0', '::', ''].includes(daemon.metricsHost)) host = daemon.metricsHost;
  } catch {
    // The daemon reports config problems itself; the port from the environment is the best guess.
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/health`;
}
