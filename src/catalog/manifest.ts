/**
 * The manifest: a small JSON document beside each data object that describes the backup completely, so
 * storage alone is enough to list, verify and restore. Writing it is the commit: a data object without
 * a manifest is an incomplete backup and is never listed, restored or counted by retention.
 *
 * Reading manifests back (validated) lives in manifest-read.ts, so writing a backup needs no validator.
 */

import type { DatabaseFacts, DatabaseSettings } from '../engines/engine.ts';
import type { CompressionAlgorithm } from '../pipeline/compression.ts';

export const MANIFEST_VERSION = 1;

/** What a backup label may be (`datasaver backup --label`; the daemon's `scheduled` is one). */
export const LABEL_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export interface Manifest {
  /** Manifest format version; readers keep fields they do not know. */
  version: number;
  /** `<target>-<UTC start>` (see catalog/layout.ts); sorts by time within a target. */
  id: string;
  target: string;
  /** Engine that wrote the dump (`postgres`). */
  engine: string;
  /** Always `success`: failed runs never get a manifest. */
  status: 'success';
  /** ISO 8601 UTC. */
  createdAt: string;
  finishedAt: string;
  durationMs: number;
  labels: string[];
  /** Engine dump format (`custom`, `plain`). */
  format: string;
  schemaOnly: boolean;
  compression: CompressionAlgorithm;
  compressionLevel: number | null;
  /**
   * Client-side encryption (catalog/sealed.ts): null for a backup stored in clear. When set, the data
   * object is an age file, `sha256` and `storedBytes` are of the ciphertext, and the fields that say what
   * the backup holds (`database`, `databaseSettings`, `facts`) are sealed in `contents`, leaving
   * placeholders in their place (SEALED_PLACEHOLDERS).
   */
  encryption: ManifestEncryption | null;
  /** Raw dump bytes, before compression. */
  sizeBytes: number;
  /** Bytes in storage. */
  storedBytes: number;
  /** Hex sha256 of the stored bytes. */
  sha256: string;
  /** Storage key of the data object. */
  object: string;
  /** Source database name (never credentials). */
  database: string | null;
  /**
   * PostgreSQL: what is set on the database itself (owner, settings, grants, comment), applied to the
   * database a restore creates. Absent in other engines' manifests and in older ones.
   */
  databaseSettings?: DatabaseSettings | undefined;
  serverVersion: string;
  toolVersion: string;
  datasaverVersion: string;
  /**
   * What the dump holds, in one place (a later encryption of the contents covers them whole): row counts
   * per table, objects by kind and sequence values where the engine records them; `exact: false` for
   * planner estimates and other counts taken from the live database.
   */
  facts: DatabaseFacts;
  /**
   * A whole-server backup set (PostgreSQL's every database and its globals): several data objects under
   * this one manifest, committed together. Absent for a backup of one dump. In a set, `object` and
   * `sha256` are the globals object's (its first part), `sizeBytes` and `storedBytes` the sums over every
   * part, `database` is null and `facts` hold no tables: what each database holds is in its part.
   * catalog/parts.ts gives every part as a one-dump manifest, for the jobs that handle one dump.
   */
  set?: BackupSet | undefined;
  /**
   * Ed25519 signature over every other field as stored (catalog/signature.ts), when the writer had a
   * signing key. Readers with verify keys ignore a manifest whose signature is missing or does not check.
   */
  signature?: ManifestSignature | undefined;
}

/** One stored object of a backup set: where it is, and what proves it. */
export interface SetObject {
  /** Storage key: `<target>/<id>.<part>.<ext>` (catalog/layout.ts partKey). */
  object: string;
  /** Raw bytes before compression. */
  sizeBytes: number;
  /** Bytes in storage. */
  storedBytes: number;
  /** Hex sha256 of the stored bytes. */
  sha256: string;
}

/** A whole-server backup set (Manifest.set). */
export interface BackupSet {
  /**
   * The server's globals (roles, memberships, role settings, tablespaces): a plain SQL script in the
   * format `globalsFormat` names (`pg_dumpall --globals-only`).
   */
  globals: SetObject & {
    /** The format of the globals script as the engine names it (`globals`). */
    format: string;
    /** Role passwords are in it; false when the backup user could not read them. */
    rolePasswords: boolean;
  };
  /** Every database dumped, in name order, each in the manifest's `format`. */
  databases: SetDatabase[];
  /** Databases left out because the target's exclude list (DATASAVER_DB_EXCLUDE) names them. */
  excluded: string[];
  /** Databases the backup user could not read, and why: they are not in the set. */
  unreadable: { database: string; reason: string }[];
}

/** One database of a backup set. */
export interface SetDatabase extends SetObject {
  /** Its name; null in a sealed manifest read without the key. */
  database: string | null;
  databaseSettings?: DatabaseSettings | undefined;
  facts: DatabaseFacts;
}

/** The manifest version of a backup set: readers that know only version 1 know no sets. */
export const SET_MANIFEST_VERSION = 2;

/** A manifest's signature: which key made it, and the signature itself. */
export interface ManifestSignature {
  algorithm: 'ed25519';
  /** First 16 hex digits of the sha256 of the signer's raw 32-byte public key. */
  keyId: string;
  /** The 64-byte signature, base64. */
  value: string;
}

/** How a backup is encrypted, and its sealed fields. Holds public keys only, never a secret. */
export interface ManifestEncryption {
  /** age-encryption.org/v1: the data object opens with the stock `age` tool. */
  format: 'age';
  /** The X25519 recipients (`age1…` public keys) it is encrypted to; empty with a passphrase. */
  recipients: string[];
  /** Encrypted with a passphrase (age's scrypt recipient) instead of recipients. */
  passphrase: boolean;
  /**
   * Base64 of an age file, to the same recipients or passphrase as the data, holding the JSON of the
   * sealed fields (`SealedFields`).
   */
  contents: string;
}

/**
 * The fields of a manifest that say what the backup holds: encrypted with the data when it is. Of a set,
 * each database's name, settings and facts (in the order of `set.databases`) and the names it left out.
 */
export type SealedFields = Pick<Manifest, 'database' | 'facts'> &
  Pick<Partial<Manifest>, 'databaseSettings'> & { set?: SealedSet | undefined };

/** What a sealed set manifest holds in its sealed part. */
export interface SealedSet {
  databases: Pick<SetDatabase, 'database' | 'databaseSettings' | 'facts'>[];
  excluded: string[];
  unreadable: BackupSet['unreadable'];
}

/**
 * What a sealed manifest holds in the place of its sealed fields, as stored and as read without the key:
 * no database name, no settings, no facts (`exact: false`, so nothing is ever compared with them).
 */
export const SEALED_PLACEHOLDERS: Pick<SealedFields, 'database' | 'facts'> = {
  database: null,
  facts: { exact: false, tables: [] },
};

export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}

/** Result of the last restore drill of a backup, stored as `<id>.drill.json` beside the manifest. */
export interface DrillRecord {
  id: string;
  ok: boolean;
  /** `drill` (the copy differs), `restore` (it did not restore), a verify reason; null when ok. */
  reason: string | null;
  message: string | null;
  drilledAt: string;
  /** The restore's wall time, checksum pass included; null when it did not get that far. */
  restoreMs: number | null;
  /** Items compared; 0 in the record of an encrypted backup (how many tables it has is sealed too). */
  compared: number;
  /** The first differences (jobs/drill.ts MAX_RECORDED_DIFFERENCES), by item. */
  differences: { item: string; expected: string; found: string }[];
  /** How many items differ in all. */
  differenceCount: number;
  /** Where it was restored: `throwaway PostgreSQL 15.18 server`. */
  place: string;
  datasaverVersion: string;
}

/** Result of one `verify`, stored as `<id>.verify.json` beside the manifest. */
export interface VerifyRecord {
  id: string;
  ok: boolean;
  reason: string | null;
  message: string | null;
  /** What was left unchecked (an encrypted backup verified without its key: the ciphertext only). */
  note?: string | undefined;
  checkedAt: string;
  datasaverVersion: string;
}
