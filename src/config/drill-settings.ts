/**
 * A target's restore drill settings: where drills restore (a throwaway server datasaver starts, or a
 * scratch database on a drill server the user names with DATASAVER_DRILL_URL) and when the daemon runs
 * them (DATASAVER_DRILL_SCHEDULE; off unless set).
 */
import type { ConnectionConfig } from '../engines/engine.ts';
import { type EngineName, engineDescriptor } from '../engines/registry.ts';
import { parseSchedule } from '../schedule/cron.ts';
import { redact } from '../util/secret.ts';
import { parseDatabaseUrl } from './database-url.ts';
import { FIELDS } from './fields.ts';
import type { Problems, RawTarget } from './raw.ts';

export interface DrillConfig {
  /**
   * A drill server (DATASAVER_DRILL_URL) of the target's engine: each drill creates a scratch database
   * there with a unique name and drops it afterwards. Undefined: each drill starts a throwaway server.
   */
  server: { engine: EngineName; connection: ConnectionConfig } | undefined;
  /** When the daemon drills the target's newest backup (cron, in the target's time zone); undefined: never. */
  schedule: string | undefined;
}

/**
 * The drill settings of a target of `engine` (undefined for the shared settings, whose URL's scheme
 * names the engine). Problems are recorded; what could be read is returned.
 */
export function buildDrill(
  raw: RawTarget,
  engine: EngineName | undefined,
  timeZone: string,
  problems: Problems,
): DrillConfig {
  return { server: drillServer(raw, engine, problems), schedule: drillSchedule(raw, timeZone, problems) };
}

function drillServer(
  raw: RawTarget,
  engine: EngineName | undefined,
  problems: Problems,
): DrillConfig['server'] {
  const source = raw.drillUrl;
  if (!source || String(source.value).trim() === '') return undefined;
  const shown = redact(String(source.value));
  const parts = parseDatabaseUrl(source, problems);
  if (!parts.engine) return undefined;
  const descriptor = engineDescriptor(parts.engine);
  if (engine !== undefined && parts.engine !== engine) {
    problems.add(
      source.origin,
      `'${shown}' is a ${descriptor.label} server, and this target is ${engineDescriptor(engine).label}; a drill server runs the target's engine`,
    );
    return undefined;
  }
  if (!['name', 'name-or-server', 'names'].includes(descriptor.database)) {
    problems.add(
      source.origin,
      `a ${descriptor.label} drill restores into a throwaway server datasaver starts itself, never into a server named here (it has no databases by name); remove this setting`,
    );
    return undefined;
  }
  if (parts.database !== undefined) {
    problems.add(
      source.origin,
      `'${shown}' names database ${parts.database}; a drill server URL names a server only (each drill creates and drops a scratch database of its own): remove the path`,
    );
    return undefined;
  }
  return {
    engine: parts.engine,
    connection: {
      host: parts.host,
      port: parts.port,
      database: undefined,
      user: parts.user,
      password: parts.password,
      sslmode: parts.sslmode,
      tls: parts.tls ?? false,
      tlsCa: undefined,
    },
  };
}

function drillSchedule(raw: RawTarget, timeZone: string, problems: Problems): string | undefined {
  const text = raw.drillSchedule ? String(raw.drillSchedule.value).trim() : '';
  if (text === '' || text === 'off') return undefined;
  const parsed = parseSchedule(text, timeZone);
  if ('problem' in parsed) {
    problems.add(
      raw.drillSchedule?.origin ?? FIELDS.drillSchedule.env,
      `'${text}' is not a valid schedule (${parsed.problem}); expected a cron expression such as '0 4 * * 0' (Sundays at 04:00), or off`,
    );
    return undefined;
  }
  return text;
}
