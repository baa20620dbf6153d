/**
 * Database URLs, `scheme://user:password@host:port/db?sslmode=x`: the scheme names the engine, and the
 * engine's descriptor says what the rest may hold.
 */
import type { EngineDescriptor } from '../engines/descriptor.ts';
import { ENGINES, type EngineName, engineForScheme } from '../engines/registry.ts';
import { redact, Secret } from '../util/secret.ts';
import type { Problems, Sourced } from './raw.ts';

/** libpq's sslmode values. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** What a database URL says; only what it holds is set. */
export interface UrlParts {
  /** The engine the scheme names. */
  engine?: EngineName;
  /** True when the scheme asks for TLS (`rediss:`). */
  tls?: boolean;
  host?: string;
  port?: number;
  /** The database (or file) the path names; never set for an engine of a whole server. */
  database?: string;
  user?: string;
  password?: Secret;
  /** The `sslmode` parameter, where the engine takes it. */
  sslmode?: string;
}

const URL_EXAMPLES = ENGINES.map((d) => d.urlExample).join(', ');

/** The database file that messages about a file engine's settings show. */
export const EXAMPLE_FILE = '/var/lib/app/app.db';

/** A file engine's URL for EXAMPLE_FILE: `sqlite:///var/lib/app/app.db`. */
export function exampleFileUrl(descriptor: EngineDescriptor): string {
  return `${descriptor.schemes[0]!.scheme}//${EXAMPLE_FILE}`;
}

/**
 * Splits `scheme://user:pass@host:port/db?sslmode=x`; the password becomes a Secret. The scheme names the
 * engine (its descriptor's `schemes`; one may turn TLS on, as `rediss:` does), and the engine's database
 * kind says what the path is: a database name after the host, or a file (`sqlite:///absolute/path.db`).
 */
export function parseDatabaseUrl(source: Sourced, problems: Problems): UrlParts {
  const text = String(source.value);
  const shown = redact(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.add(source.origin, `'${shown}' is not a URL; expected one of ${URL_EXAMPLES}`);
    return {};
  }
  const descriptor = engineForScheme(url.protocol);
  if (!descriptor) {
    problems.add(
      source.origin,
      `'${shown}': unknown scheme ${url.protocol}; expected one of ${URL_EXAMPLES}`,
    );
    return {};
  }
  const engine = descriptor.name;
  const parts: UrlParts = { engine };
  if (descriptor.schemes.some((s) => s.scheme === url.protocol && s.tls)) parts.tls = true;
  if (url.hash) {
    problems.add(source.origin, `'${shown}' has a '#' part; encode '#' in a path or password as %23`);
    return {};
  }
  try {
    if (url.hostname) parts.host = decodeURIComponent(url.hostname.replace(/^\[(.*)\]$/, '$1'));
    if (url.username) parts.user = decodeURIComponent(url.username);
    if (url.password) parts.password = new Secret(decodeURIComponent(url.password));
    const path = decodeURIComponent(url.pathname);
    // sqlite:///var/lib/app.db names a file; the others name a database after the host.
    const db = descriptor.database === 'file' ? path : path.replace(/^\//, '');
    const problem = urlPathProblem(descriptor, db);
    if (problem) {
      problems.add(source.origin, `'${shown}': ${problem}`);
      return {};
    }
    if (db && descriptor.database !== 'server') parts.database = db;
  } catch {
    problems.add(source.origin, `'${shown}' has a malformed %-escape; encode special characters as %XX`);
    return {};
  }
  if (descriptor.database === 'file' && parts.host) {
    problems.add(
      source.origin,
      `'${shown}': a ${descriptor.label} URL has no host; write ${descriptor.schemes[0]!.scheme}///absolute/path.db (three slashes)`,
    );
    return {};
  }
  if (url.port) parts.port = Number(url.port);
  for (const [key, value] of url.searchParams) {
    if (!descriptor.settings.sslmode) {
      problems.add(source.origin, `URL parameter ${key} is not supported for ${engine}`);
      continue;
    }
    // Only the key is shown: a libpq URL may carry `password=` as a parameter.
    if (key !== 'sslmode')
      problems.add(source.origin, `URL parameter ${key} is not supported; supported: sslmode`);
    else if ((SSL_MODES as readonly string[]).includes(value)) parts.sslmode = value;
    else
      problems.add(
        source.origin,
        `sslmode '${value}' in the URL is not valid; expected one of ${SSL_MODES.join(', ')}`,
      );
  }
  return parts;
}

/** Why a database URL's (decoded) path cannot be what the engine's database kind needs. */
function urlPathProblem(descriptor: EngineDescriptor, db: string): string | undefined {
  const scheme = descriptor.schemes[0]!.scheme;
  // redis://host/0 picks a database number for clients; a backup holds every database anyway.
  if (descriptor.database === 'server' && db && !/^\d+$/.test(db))
    return `a ${descriptor.label} URL is ${scheme}//user:password@host:port (optionally /N); unix socket paths are not supported`;
  if (descriptor.database === 'file' && (db === '' || db.endsWith('/')))
    return `name the database file, e.g. ${exampleFileUrl(descriptor)}`;
  return undefined;
}
