/**
 * The parts of the RDB format the reader needs (Redis's src/rdb.h): its opcodes and the versions this
 * reader knows; and what reading a file yields: its summary, or an RdbError.
 */

/** The RDB versions this reader knows every record type of (RDB 11 is Redis 7.2). */
export const KNOWN_VERSION = 11;
/** Strings read into memory (aux fields, function code); longer ones are skipped. */
export const MAX_READ = 1 << 20;

/** Opcodes (rdb.h): the record types that are not a key and its value. */
export const OP = {
  SLOT_INFO: 244,
  FUNCTION2: 245,
  MODULE_AUX: 247,
  IDLE: 248,
  FREQ: 249,
  AUX: 250,
  RESIZEDB: 251,
  EXPIRETIME_MS: 252,
  EXPIRETIME: 253,
  SELECTDB: 254,
  EOF: 255,
} as const;

export interface RdbDatabase {
  /** Logical database number (SELECT n). */
  db: number;
  keys: number;
  /** Keys that carry a TTL. */
  expires: number;
}

export interface RdbSummary {
  /** RDB format version from the header (10 for Redis 7.0, 11 for 7.2). */
  version: number;
  /** Auxiliary fields (redis-ver, redis-bits, ctime...). */
  aux: Record<string, string>;
  /** Databases that hold keys, in file order. */
  databases: RdbDatabase[];
  /** Redis 7 function libraries. */
  functions: string[];
  /** `verified`: CRC-64 matched; `disabled`: written with rdbchecksum no; `absent`: RDB < 5 has none. */
  checksum: 'verified' | 'disabled' | 'absent';
  /** Set when the records could not all be walked; the checksum vouches for the file then. */
  partial?: string | undefined;
  /** Bytes read. */
  bytes: number;
}

/** The file is not a complete, intact RDB file. */
export class RdbError extends Error {
  override name = 'RdbError';
}
