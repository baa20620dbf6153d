/** Settings of the daemon process itself: its HTTP port, shutdown and log. */
import { LOG_FORMATS, LOG_LEVELS } from '../util/log.ts';
import type { Problems, RawDaemon } from './raw.ts';
import type { DaemonConfig } from './types.ts';
import { BOOLEAN, check, intIn, oneOf } from './values.ts';

/** The daemon's settings, defaults where unset. */
export function buildDaemon(raw: RawDaemon, problems: Problems): DaemonConfig {
  return {
    metricsPort: check(raw.metricsPort, intIn(1, 65535, 'a port number 1-65535'), problems) ?? 9090,
    metricsHost: raw.metricsHost ? String(raw.metricsHost.value) : DEFAULT_METRICS_HOST,
    shutdownTimeoutSeconds:
      check(raw.shutdownTimeoutSeconds, intIn(1, 3600, 'a number of seconds, 1-3600'), problems) ?? 30,
    logLevel: check(raw.logLevel, oneOf(LOG_LEVELS), problems) ?? 'info',
    logFormat: check(raw.logFormat, oneOf(LOG_FORMATS), problems) ?? 'auto',
    healthDetails: check(raw.healthDetails, BOOLEAN, problems) ?? false,
  };
}

/** Loopback: the port serves health and metrics to the host's own probes unless told otherwise. */
const DEFAULT_METRICS_HOST = '127.0.0.1';
