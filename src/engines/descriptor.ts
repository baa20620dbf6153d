/**
 * What datasaver knows about an engine without running anything: its names, URL schemes, dump formats
 * and their extensions, the settings it takes, the name a target gets by default and what a restore can
 * do. Config, the catalog, jobs and the CLI read these facts through the registry (registry.ts) instead
 * of naming engines. Everything here is pure: no I/O, no tool, no connection.
 */

import { UsageError } from '../util/errors.ts';
import type { RestoreCapabilities } from './engine.ts';

/** One dump format of an engine. */
export interface DumpFormat {
  /** As config and manifests name it: `custom`, `plain`, `sql`. */
  readonly name: string;
  /**
   * Extension of a dump in this format before compression. Unique across every engine and format, so a
   * backup's kind shows in its name and the catalog can tell datasaver's objects from anything else.
   */
  readonly extension: string;
}

/** A URL scheme naming the engine in a database URL, as `URL.protocol` gives it: lowercase, with `:`. */
export interface UrlScheme {
  readonly scheme: string;
  /** The scheme asks for TLS (`rediss:`). */
  readonly tls?: boolean | undefined;
}

/**
 * What a target's `database` setting, and a database URL's path, mean for an engine:
 *   - `name`: one database, by name; a target without one has no name to derive.
 *   - `name-or-server`: one database by name; unset, or `*`, is the whole server, backed up as a set
 *     of one dump per database plus the server's globals (PostgreSQL: Engine.serverSet).
 *   - `names`: one database or a comma-separated list; none means every database of the server (MySQL).
 *   - `file`: the absolute path of a database file, required; in a URL `scheme:///path`, no host (SQLite).
 *   - `server`: unused, a backup holds the whole server; the setting is refused, and a URL's path may
 *     only be a database number, which is ignored (Redis).
 */
export type DatabaseKind = 'name' | 'name-or-server' | 'names' | 'file' | 'server';

/** The `database` setting that names every database of the server, for a `name-or-server` engine. */
export const WHOLE_SERVER = '*';

/**
 * A target of this engine with this `database` setting backs up the whole server as a set: the engine's
 * kind is `name-or-server` and the setting is unset, empty or `*`.
 */
export function namesWholeServer(kind: DatabaseKind, database: string | undefined): boolean {
  return (
    kind === 'name-or-server' && (database === undefined || database === '' || database === WHOLE_SERVER)
  );
}

/** Settings an engine takes beyond host, port, user, password and database. */
export interface EngineSettings {
  /** libpq's `sslmode`, as a setting and as the URL parameter (the only URL parameter datasaver reads). */
  readonly sslmode: boolean;
  /** `tls` and `tls_ca`. */
  readonly tls: boolean;
  /** `schema_only` dumps. */
  readonly schemaOnly: boolean;
}

/** An engine's facts; `describeEngine` adds the lookups derived from them. */
export interface EngineFacts<Name extends string = string> {
  /** As config and manifests name it (`mysql` covers MySQL and MariaDB). */
  readonly name: Name;
  /** For people, in messages: `PostgreSQL`, `MySQL/MariaDB`. */
  readonly label: string;
  /** Schemes of the database URLs that name this engine; the first is the canonical one. */
  readonly schemes: readonly UrlScheme[];
  /** A database URL for this engine, as messages show it when a URL cannot be read. */
  readonly urlExample: string;
  /** Dump formats; the first is the default. At least one. */
  readonly formats: readonly DumpFormat[];
  readonly database: DatabaseKind;
  readonly settings: EngineSettings;
  /**
   * Binaries this engine runs on files in its private temp dirs (spooled dumps, option files, sockets),
   * by command name: the ones a sweep of a crashed run's temp dir stops if they outlived it.
   */
  readonly tempDirTools: readonly string[];
  /**
   * Suffixes of files beside a database file that mean a program has the database open (a SQLite WAL
   * or rollback journal): a restore to a plain file refuses to replace a file that has one.
   */
  readonly inUseSideFiles: readonly string[];
  /**
   * Facts name tables `<database>.<table>` (MySQL): a copy restored under another name names them by
   * that name, and a restore drill reads them back under the backup's.
   */
  readonly tablesNamedByDatabase: boolean;
  /**
   * The base of a target's name when none is given, from its `database` setting (before the characters
   * a target name cannot hold are replaced); undefined when there is nothing to derive it from.
   */
  defaultTargetName(database: string | undefined): string | undefined;
}

export interface EngineDescriptor<Name extends string = string> extends EngineFacts<Name> {
  /** The names of `formats`, in order. */
  readonly formatNames: readonly string[];
  /**
   * The extension of a dump in `format` before compression (see DumpFormat). Throws UsageError when
   * the engine has no such format.
   */
  extension(format: string): string;
  /**
   * What restoring a backup of `format`, made of `database` (the manifest's), can do. Throws UsageError
   * when the engine has no such format.
   */
  restoreCapabilities(format: string, database: string | null): RestoreCapabilities;
}

/** An engine's facts, with what a restore of a dump in one of its formats can do. */
export interface EngineSpec<Name extends string> extends EngineFacts<Name> {
  /** `restoreCapabilities` for a format already known to be one of `formats`. */
  restore(format: string, database: string | null): RestoreCapabilities;
}

/** A descriptor from an engine's facts: format lookups that refuse formats the engine does not have. */
export function describeEngine<Name extends string>(spec: EngineSpec<Name>): EngineDescriptor<Name> {
  const { restore, ...facts } = spec;
  const formatNames = spec.formats.map((f) => f.name);
  const extension = (format: string): string => {
    const found = spec.formats.find((f) => f.name === format);
    if (!found) {
      const expected = formatNames.length > 1 ? `one of ${formatNames.join(', ')}` : formatNames.join('');
      throw new UsageError(`${spec.name} has no format '${format}'; expected ${expected}`);
    }
    return found.extension;
  };
  return {
    ...facts,
    formatNames,
    extension,
    restoreCapabilities: (format, database) => {
      extension(format);
      return restore(format, database);
    },
  };
}
