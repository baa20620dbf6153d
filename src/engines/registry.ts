/**
 * The engines datasaver knows, as pure descriptors (descriptor.ts), and the lookups the rest of the code
 * uses instead of naming an engine. Adding an engine: a folder under engines/ with its descriptor and
 * implementation, a line in DESCRIPTORS, and its constructor in index.ts (which the compiler asks for).
 * This module loads no engine implementation, so config and `--help` stay cheap.
 */

import type { EngineDescriptor } from './descriptor.ts';
import { mysqlDescriptor } from './mysql/descriptor.ts';
import { postgresDescriptor } from './postgres/descriptor.ts';
import { redisDescriptor } from './redis/descriptor.ts';
import { sqliteDescriptor } from './sqlite/descriptor.ts';

/** In the order messages list them. */
const DESCRIPTORS = [postgresDescriptor, mysqlDescriptor, redisDescriptor, sqliteDescriptor] as const;

export type EngineName = (typeof DESCRIPTORS)[number]['name'];

/** Every engine's descriptor, in the order messages list them. */
export const ENGINES: readonly EngineDescriptor<EngineName>[] = DESCRIPTORS;

/** Database engines datasaver knows (`mysql` covers MySQL and MariaDB). */
export const ENGINE_NAMES: readonly EngineName[] = ENGINES.map((d) => d.name);

/** The engine of a target that names none (neither `engine` nor a database URL). */
export const DEFAULT_ENGINE: EngineName = postgresDescriptor.name;

/** Whether `name` is an engine this datasaver knows (a manifest's `engine` field is only a string). */
export function isEngineName(name: string): name is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(name);
}

/** The descriptor of a known engine. */
export function engineDescriptor(name: EngineName): EngineDescriptor<EngineName> {
  return ENGINES.find((d) => d.name === name)!;
}

/** The engine a database URL's scheme (`URL.protocol`: `postgresql:`) names, or undefined. */
export function engineForScheme(scheme: string): EngineDescriptor<EngineName> | undefined {
  return ENGINES.find((d) => d.schemes.some((s) => s.scheme === scheme));
}

/** Every engine's binaries that run on files in datasaver's private temp dirs (EngineFacts.tempDirTools). */
export const TEMP_DIR_TOOLS: ReadonlySet<string> = new Set(ENGINES.flatMap((d) => d.tempDirTools));

/** Every engine's in-use side files (EngineFacts.inUseSideFiles), each once. */
export const IN_USE_SIDE_FILES: readonly string[] = [...new Set(ENGINES.flatMap((d) => d.inUseSideFiles))];

/** The extension of every engine's every format (DumpFormat.extension). */
export const DUMP_EXTENSIONS: readonly string[] = ENGINES.flatMap((d) => d.formats.map((f) => f.extension));
