/**
 * Where a target's database is and how to reach it: its engine, database URL, host, credentials, TLS and
 * database, checked against what the engine's descriptor says it takes.
 */
import type { EngineDescriptor, EngineSettings } from '../engines/descriptor.ts';
import type { ConnectionConfig } from '../engines/engine.ts';
import {
  DEFAULT_ENGINE,
  ENGINE_NAMES,
  ENGINES,
  type EngineName,
  engineDescriptor,
} from '../engines/registry.ts';
import { Secret } from '../util/secret.ts';
import { EXAMPLE_FILE, exampleFileUrl, parseDatabaseUrl, SSL_MODES } from './database-url.ts';
import { FIELDS } from './fields.ts';
import { type Problems, type RawTarget, rawText } from './raw.ts';
import { BOOLEAN, check, intIn, matching, oneOf } from './values.ts';

/** A target's engine, with its descriptor, and how to reach its database. */
export interface TargetConnection {
  engine: EngineName;
  descriptor: EngineDescriptor<EngineName>;
  connection: ConnectionConfig;
}

/**
 * The engine and connection of a target, from its settings and its database URL (a setting wins over
 * the URL's part). Problems are recorded; what could be read is returned all the same.
 */
export function buildConnection(raw: RawTarget, problems: Problems): TargetConnection {
  const fromUrl = raw.url ? parseDatabaseUrl(raw.url, problems) : {};
  const declared = check(raw.engine, oneOf(ENGINE_NAMES), problems);
  if (declared && fromUrl.engine && declared !== fromUrl.engine) {
    problems.add(raw.engine!.origin, `says ${declared} but the database URL is for ${fromUrl.engine}`);
  }
  const engine = declared ?? fromUrl.engine ?? DEFAULT_ENGINE;
  const descriptor = engineDescriptor(engine);
  const port = raw.port ? check(raw.port, intIn(1, 65535, 'a port number 1-65535'), problems) : fromUrl.port;
  const sslmode = raw.sslmode ? check(raw.sslmode, oneOf(SSL_MODES), problems) : fromUrl.sslmode;
  if (raw.sslmode && !descriptor.settings.sslmode)
    problems.add(
      raw.sslmode.origin,
      `applies to ${enginesTaking('sslmode')} only; for ${engine} use ${FIELDS.tls.env}`,
    );
  const tlsCa = raw.tlsCa ? check(raw.tlsCa, TLS_CA_FILE, problems) : undefined;
  // A CA to verify against only makes sense over TLS: it turns TLS on.
  const tls = (raw.tls ? check(raw.tls, BOOLEAN, problems) : fromUrl.tls) || tlsCa !== undefined;
  if (tls && !descriptor.settings.tls)
    problems.add(
      raw.tls?.origin ?? raw.tlsCa?.origin ?? 'database URL',
      `TLS applies to ${enginesTaking('tls')}; ${enginesTaking('sslmode')} uses ${FIELDS.sslmode.env} (verify-full checks the server's certificate against libpq's root.crt)`,
    );
  const password = raw.password ? new Secret(String(raw.password.value)) : fromUrl.password;
  const database = rawText(raw, 'database') ?? fromUrl.database;
  checkDatabase(raw, descriptor, database, problems);
  return {
    engine,
    descriptor,
    connection: {
      host: rawText(raw, 'host') ?? fromUrl.host,
      port,
      database,
      user: rawText(raw, 'user') ?? fromUrl.user,
      password,
      sslmode,
      tls,
      tlsCa,
    },
  };
}

/** Records a problem when `database` is not what the engine's database kind needs. */
function checkDatabase(
  raw: RawTarget,
  descriptor: EngineDescriptor,
  database: string | undefined,
  problems: Problems,
): void {
  const databaseOrigin = raw.database?.origin ?? raw.url?.origin ?? FIELDS.database.env;
  if (descriptor.database === 'file' && !database?.startsWith('/')) {
    problems.add(
      databaseOrigin,
      `a ${descriptor.label} target needs the absolute path of its database file: ${exampleFileUrl(descriptor)}, or ${FIELDS.database.env}=${EXAMPLE_FILE}`,
    );
  }
  if (descriptor.database === 'server' && raw.database) {
    problems.add(
      raw.database.origin,
      `a ${descriptor.label} backup holds every database of the server; remove this setting`,
    );
  }
}

/** The engines that take a setting, for messages: `mysql and redis`. */
function enginesTaking(setting: keyof EngineSettings): string {
  return ENGINES.filter((d) => d.settings[setting])
    .map((d) => d.name)
    .join(' and ');
}

const TLS_CA_FILE = matching(/^\/[^\n]*[^/\n]$/, 'the absolute path of a PEM file with CA certificates');
