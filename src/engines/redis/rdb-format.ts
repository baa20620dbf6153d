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

/**
 * A key's type as Redis's TYPE command names it, by the RDB value type that encodes it (rdb.h's
 * RDB_TYPE_*: every encoding a type had over the versions). Module values are `module` whatever module.
 */
const KEY_TYPES: Readonly<Record<number, string>> = {
  0: 'string',
  ...Object.fromEntries([1, 10, 14, 18].map((t) => [t, 'list'])),
  ...Object.fromEntries([2, 11, 20].map((t) => [t, 'set'])),
  ...Object.fromEntries([3, 5, 12, 17].map((t) => [t, 'zset'])),
  ...Object.fromEntries([4, 9, 13, 16].map((t) => [t, 'hash'])),
  ...Object.fromEntries([15, 19, 21].map((t) => [t, 'stream'])),
  6: 'module',
  7: 'module',
};

/** The type of a key stored with RDB value type `valueType`, one the reader walked (so a known one). */
export function keyType(valueType: number): string {
  return KEY_TYPES[valueType] ?? `type ${valueType}`;
}

export interface RdbDatabase {
  /** Logical database number (SELECT n). */
  db: number;
  /** Keys in the file, expired ones included. */
  keys: number;
  /** Keys that carry a TTL, expired ones included. */
  expires: number;
  /**
   * Keys whose expiry had passed when the RDB was written (its `ctime` aux field, in whole seconds of
   * the server's clock): in the file, but a server loading it drops them. 0 when the file has no `ctime`.
   */
  expired: number;
}

export interface RdbSummary {
  /** RDB format version from the header (10 for Redis 7.0, 11 for 7.2). */
  version: number;
  /** Auxiliary fields (redis-ver, redis-bits, ctime...). */
  aux: Record<string, string>;
  /** Databases that hold keys, in file order. */
  databases: RdbDatabase[];
  /**
   * Keys by type (`keyType`: string, list, set, zset, hash, stream, module), expired ones left out: the
   * keys a server loading the file has. Incomplete when `partial` is set.
   */
  types: Record<string, number>;
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
