/**
 * `datasaver daemon`: the sidecar. Loads the config, starts the HTTP port and the scheduler, and runs
 * until SIGTERM/SIGINT; then stops scheduling, aborts running backups and exits within the shutdown bound.
 */
import type { Server } from 'node:http';
import { type StoredBackup, trustedBackups } from '../catalog/catalog.ts';
import { assertIdentityOpensRecipients } from '../config/encryption-settings.ts';
import type { DaemonConfig, TargetConfig } from '../config/types.ts';
import { Daemon } from '../daemon/daemon.ts';
import type { RunDrill } from '../daemon/drills.ts';
import type { RunTarget } from '../daemon/run.ts';
import { readStorageUsage } from '../daemon/usage.ts';
import { createEngine } from '../engines/index.ts';
import { runCycle } from '../jobs/cycle.ts';
import { drillBackup } from '../jobs/drill.ts';
import { Notifier } from '../notify/channels.ts';
import { close, serve } from '../server/http.ts';
import { DaemonMetrics } from '../server/metrics.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { openStorage } from '../storage/index.ts';
import { ConfigError, ExitCode, errorMessage, UsageError } from '../util/errors.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { type CliContext, readConfig } from './context.ts';
import { placesFor } from './drill.ts';
import { sweepLeftovers } from './leftovers.ts';

export interface DaemonCommandOptions {
  /** Back every target up once at start, then follow the schedules. */
  runNow?: boolean;
}

/** What the daemon's backups are labelled with. */
export const SCHEDULED_LABEL = 'scheduled';

export async function daemonCommand(ctx: CliContext, opts: DaemonCommandOptions): Promise<number> {
  const config = await readConfig(ctx);
  if (config.targets.length === 0) {
    throw new ConfigError('no target is configured', {
      hint: 'set DATASAVER_DATABASE_URL and DATASAVER_STORAGE_PATH (or DATASAVER_S3_BUCKET), or pass --config FILE',
    });
  }
  for (const t of config.targets) await assertIdentityOpensRecipients(t.name, t.encryption);
  const log = createLogger({
    level: config.daemon.logLevel,
    format: config.daemon.logFormat,
    out: ctx.stdout,
  });
  const metrics = new DaemonMetrics();
  const notifier = new Notifier({
    log,
    onFailure: (channel) => metrics.notificationFailures.inc({ channel }),
  });
  const runTarget: RunTarget = async (target, destinations, signal, onStarted) => {
    // What a run killed with the container before this daemon started left (and whose heartbeat has
    // stopped since) goes now: a long-lived daemon does not wait for its next start.
    await sweepLeftovers(ctx.stderr);
    return runCycle(
      { target, labels: [SCHEDULED_LABEL], verify: false, prune: true },
      // A second daemon (or a CronJob) on the same target holds its lease: this run is skipped, not waited.
      { engine: createEngine(target), destinations, signal, lease: { waitMs: 0 }, onLeased: onStarted },
    );
  };
  const runDrill: RunDrill = async (target, destinations, signal) => {
    await sweepLeftovers(ctx.stderr);
    let newest: StoredBackup | undefined;
    try {
      newest = (await trustedBackups(destinations, target.name, { signal, trust: target.signing }))[0];
    } catch (err) {
      if (err instanceof UsageError) return undefined; // no backup yet
      throw err;
    }
    if (!newest) return undefined;
    const tlog = log.child({ target: target.name });
    return drillBackup(newest.manifest, {
      storage: newest.storage,
      openPlace: placesFor(target, target.drill, { onNote: (text) => tlog.warn(text) }),
      signal,
      // Configuration refuses a drill schedule for encrypted backups without this key.
      decrypt: target.encryption.decrypt,
    });
  };
  const openDestinations = (target: TargetConfig) => openObserved(target, log, metrics);

  const daemon = new Daemon({
    targets: config.targets,
    log,
    metrics,
    notifier,
    openDestinations,
    runTarget,
    runDrill,
    readUsage: readStorageUsage,
    healthDetails: config.daemon.healthDetails,
  });
  const server = await listen(config.daemon, daemon, metrics);
  log.info(
    {
      version: DATASAVER_VERSION,
      targets: config.targets.map((t) => t.name),
      port: config.daemon.metricsPort,
      host: config.daemon.metricsHost,
      config: config.file ?? 'environment',
    },
    'datasaver daemon starting',
  );
  for (const w of config.warnings) log.warn(w);

  if (!ctx.signal.aborted) await daemon.start({ runNow: opts.runNow ?? false });
  if (!ctx.signal.aborted)
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));

  const bound = config.daemon.shutdownTimeoutSeconds;
  log.info({ timeoutSeconds: bound }, 'stopping: no new runs; aborting running backups');
  const clean = await daemon.stop(bound * 1000);
  await close(server);
  if (clean) {
    log.info('stopped');
    return ExitCode.ok;
  }
  // Still a clean exit for the orchestrator: the manifest is written last, so a backup cut off here is
  // never committed, and its leftovers are collected by a later prune.
  log.error(
    { timeoutSeconds: bound },
    'running backups did not stop in time; exiting anyway (nothing partial is committed)',
  );
  return ExitCode.ok;
}

/** A target's destinations, each storage retry counted in the metrics and logged, each warning logged. */
function openObserved(target: TargetConfig, log: Logger, metrics: DaemonMetrics): Promise<StorageBackend[]> {
  return Promise.all(
    target.destinations.map(async (d) => {
      let description = '';
      const storage = await openStorage(d, {
        onRetry: (r) => {
          metrics.storageRetries.inc({
            target: target.name,
            destination: description,
            // The verb only (put, get, list, upload...): keys in a label would grow without bound.
            operation: r.operation.split(' ')[0] ?? 'other',
          });
          log.warn(
            {
              target: target.name,
              destination: description,
              operation: r.operation,
              attempt: r.attempt + 1,
              delayMs: r.delayMs,
              error: r.error.message,
            },
            'storage operation failed; retrying',
          );
        },
        onWarning: (message) => log.warn({ target: target.name, destination: description }, message),
      });
      description = storage.description;
      return storage;
    }),
  );
}

/** The daemon's one port (/health, /ready, /metrics); a port that cannot be had is a config error. */
async function listen(settings: DaemonConfig, daemon: Daemon, metrics: DaemonMetrics): Promise<Server> {
  try {
    return await serve(
      { health: () => daemon.health(), ready: () => daemon.ready, metrics: () => metrics.render() },
      settings.metricsPort,
      settings.metricsHost,
      () => metrics.httpDropped.inc(),
    );
  } catch (err) {
    throw new ConfigError(
      `cannot listen on port ${settings.metricsPort} of ${settings.metricsHost}: ${errorMessage(err)}`,
      {
        hint: 'set DATASAVER_METRICS_PORT to a free port, and DATASAVER_METRICS_HOST to an address of this host',
        cause: err,
      },
    );
  }
}
