/** What every benchmark script runs its commands with, and reads back from them. */
import type { PostgresServer } from '../../test/support/postgres-server.ts';
import type { Measurement } from './measure.ts';
import type { Sample } from './report.ts';

/** The caller's environment without libpq or datasaver settings, which would change what is measured. */
export function cleanEnv(server: PostgresServer): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('PG') && !key.startsWith('DATASAVER_')),
  );
  return { ...env, PATH: `${server.binDir}:${process.env.PATH ?? ''}` };
}

export function pgEnv(server: PostgresServer): NodeJS.ProcessEnv {
  return {
    ...cleanEnv(server),
    PGHOST: server.host,
    PGPORT: String(server.port),
    PGUSER: server.user,
    PGPASSWORD: server.password,
  };
}

export function toSample(m: Measurement, outputBytes: number | null, rowsMatch?: boolean): Sample {
  return {
    wallSeconds: m.wallSeconds,
    outputBytes,
    peakRssKb: m.peakRssKb,
    processes: m.processes,
    gnuTimeMaxRssKb: m.gnuTimeMaxRssKb,
    ...(rowsMatch === undefined ? {} : { rowsMatch }),
  };
}

/** `storedBytes` anywhere in the CLI's --json output (the whole output, or its last JSON line). */
export function storedBytesFromJson(stdout: string): number | null {
  const find = (value: unknown): number | null => {
    if (!value || typeof value !== 'object') return null;
    const record = value as Record<string, unknown>;
    if (typeof record.storedBytes === 'number') return record.storedBytes;
    for (const child of Object.values(record)) {
      const found = find(child);
      if (found !== null) return found;
    }
    return null;
  };
  const candidates = [stdout, ...stdout.trim().split('\n').reverse()];
  for (const text of candidates) {
    try {
      return find(JSON.parse(text));
    } catch {
      // not JSON; try the next candidate
    }
  }
  return null;
}
