/**
 * Sequence values read from a custom-format pg_dump archive as it streams past. Written to a pipe,
 * pg_dump puts the archive's header and its whole table of contents (TOC) first, then the table data;
 * each sequence's value is the definition of its `SEQUENCE SET` TOC entry, the same
 * `SELECT pg_catalog.setval(...)` statement a plain dump writes (setval.ts). So only the first bytes are
 * read, up to the TOC's last entry; the data that follows costs nothing.
 *
 * The layout, as pg_dump writes it: `PGDMP`, the archive version (major, minor, revision bytes), the
 * sizes of an integer and of a file offset, the format (1: custom), then (1.15 on) the compression
 * algorithm byte or (before) the compression level as an integer, the creation time as 7 integers, and
 * the database name, server version and pg_dump version as strings. An integer is a sign byte then
 * its bytes, least significant first; a string is its length as an integer (-1: none) then its bytes.
 * The TOC is a count, then per entry: dump id, whether it has data, table oid, oid, tag, type (`desc`),
 * section, definition, drop statement, copy statement, schema, tablespace, table access method, (1.16
 * on) relkind as an integer, owner, a `false` once meant for tables with OIDs, the dependencies' ids as
 * strings ended by a null string, and (custom format) a data offset: a flag byte and the offset's bytes.
 *
 * Archive versions 1.14 to 1.16 are read (pg_dump 12 to 17 and later releases that keep 1.16). Another
 * version records no sequence values: the layout may have changed, and a guess could read wrong ones.
 * The backup itself is not failed for that; its row counts and object counts are exact all the same.
 * A TOC that does not read as pg_dump writes it (lengths out of range, an unreadable `SEQUENCE SET`, a
 * sequence twice, a stream that ends inside it) records none either, never a guess; pg_restore checks
 * the archive itself when the backup is verified.
 *
 * Memory is bounded: only short strings (tags, types, schemas and the few definitions read) are held,
 * at most 4 KiB each; everything else is skipped as it passes.
 */
import {
  clientEncoding,
  type NameDecoder,
  nameDecoder,
  parseSetval,
  SETVAL_MAX,
  type SequenceValue,
  SequenceValues,
} from './setval.ts';

type Step = { read: number } | { skip: number };
/** A reading of the archive: asks for bytes (to read, or to skip unread) until the TOC has been read. */
type Reading = Generator<Step, void, Buffer>;

const archiveVersion = (major: number, minor: number, rev: number) => (major * 256 + minor) * 256 + rev;
const K_VERS_1_14 = archiveVersion(1, 14, 0);
const K_VERS_1_15 = archiveVersion(1, 15, 0);
const K_VERS_1_16 = archiveVersion(1, 16, 0);
const NEWEST = archiveVersion(1, 16, 255);
const FORMAT_CUSTOM = 1;
/** Longest string held: the tags, types and schemas read are names, far shorter. */
const HELD = 4096;
const TOO_LONG = Symbol('too long');

class MalformedArchive extends Error {}

export class ArchiveSequenceReader {
  readonly #values = new SequenceValues();
  readonly #reading: Reading;
  #step: Step | undefined;
  /** Bytes of the current `read` step received so far. */
  #held: Buffer[] = [];
  #heldLength = 0;

  constructor() {
    this.#reading = readArchive(this.#values);
    this.#advance(Buffer.alloc(0));
  }

  /** Reads the next bytes of the archive. Never throws: an archive it cannot read yields no values. */
  push(chunk: Buffer): void {
    try {
      let p = 0;
      while (this.#step && p < chunk.length) {
        const step = this.#step;
        if ('skip' in step) {
          const n = Math.min(step.skip, chunk.length - p);
          step.skip -= n;
          p += n;
          if (step.skip === 0) this.#advance(Buffer.alloc(0));
          continue;
        }
        const n = Math.min(step.read - this.#heldLength, chunk.length - p);
        this.#held.push(Buffer.from(chunk.subarray(p, p + n))); // a copy: the chunk passes on downstream
        this.#heldLength += n;
        p += n;
        if (this.#heldLength === step.read) {
          const bytes = Buffer.concat(this.#held);
          this.#held = [];
          this.#heldLength = 0;
          this.#advance(bytes);
        }
      }
    } catch {
      this.#step = undefined;
      this.#values.fail();
    }
  }

  /** After the last chunk: the values the archive holds, or undefined when it could not be read for them. */
  values(): SequenceValue[] | undefined {
    if (this.#step) this.#values.fail(); // the stream ended inside the TOC
    return this.#values.result();
  }

  #advance(bytes: Buffer): void {
    const next = this.#reading.next(bytes);
    this.#step = next.done ? undefined : next.value;
    // A step of nothing is done at once (an empty string is a `read` of 0 bytes).
    while (this.#step && ('skip' in this.#step ? this.#step.skip : this.#step.read) === 0) {
      const again = this.#reading.next(Buffer.alloc(0));
      this.#step = again.done ? undefined : again.value;
    }
  }
}

/** Reads the header and the TOC, adding each `SEQUENCE SET` entry's value to `out`. */
function* readArchive(out: SequenceValues): Reading {
  const head = yield { read: 11 };
  if (head.toString('latin1', 0, 5) !== 'PGDMP') throw new MalformedArchive('no PGDMP magic');
  const version = archiveVersion(head[5]!, head[6]!, head[7]!);
  if (version < K_VERS_1_14 || version > NEWEST) {
    out.fail(); // a layout this reader does not know: no values rather than guessed ones
    return;
  }
  const archive = { intSize: head[8]!, version };
  const offSize = head[9]!;
  if (archive.intSize < 1 || archive.intSize > 8 || offSize < 1 || offSize > 16) {
    throw new MalformedArchive('integer or offset size out of range');
  }
  if (head[10] !== FORMAT_CUSTOM) throw new MalformedArchive('not the custom format');
  if (version >= K_VERS_1_15) yield { skip: 1 };
  else yield* readInt(archive);
  for (let i = 0; i < 7; i++) yield* readInt(archive); // creation time
  for (let i = 0; i < 3; i++) yield* readStr(archive, 0); // database name, server and pg_dump versions

  let decode = nameDecoder('UTF8');
  const count = yield* readInt(archive);
  if (count < 0) throw new MalformedArchive('negative TOC size');
  for (let i = 0; i < count; i++) {
    const entry = yield* readEntry(archive, offSize);
    if (entry.desc === 'ENCODING') {
      const encoding =
        entry.defn instanceof Buffer ? clientEncoding(entry.defn.toString('latin1')) : undefined;
      if (!encoding) throw new MalformedArchive('unreadable ENCODING entry');
      decode = nameDecoder(encoding);
    } else if (entry.desc === 'SEQUENCE SET') {
      out.add(sequenceSet(entry, decode));
    }
  }
}

interface Entry {
  desc: string | undefined;
  tag: Buffer | null | typeof TOO_LONG;
  namespace: Buffer | null | typeof TOO_LONG;
  /** Read only for the entries whose definition is needed. */
  defn: Buffer | null | typeof TOO_LONG;
}

/** One TOC entry, holding only what the sequence values need. */
function* readEntry(archive: Archive, offSize: number): Generator<Step, Entry, Buffer> {
  yield* readInt(archive); // dump id
  yield* readInt(archive); // has data
  yield* readStr(archive, 0); // table oid
  yield* readStr(archive, 0); // oid
  const tag = yield* readStr(archive, HELD);
  const descBytes = yield* readStr(archive, HELD);
  const desc = descBytes instanceof Buffer ? descBytes.toString('latin1') : undefined;
  yield* readInt(archive); // section
  const wanted = desc === 'SEQUENCE SET' || desc === 'ENCODING';
  const defn = yield* readStr(archive, wanted ? SETVAL_MAX : 0);
  yield* readStr(archive, 0); // drop statement
  yield* readStr(archive, 0); // copy statement
  const namespace = yield* readStr(archive, HELD);
  yield* readStr(archive, 0); // tablespace
  yield* readStr(archive, 0); // table access method (1.14 on)
  if (archive.version >= K_VERS_1_16) yield* readInt(archive); // relkind
  yield* readStr(archive, 0); // owner
  yield* readStr(archive, 0); // with OIDs
  while ((yield* readStr(archive, 0)) !== null); // dependencies, ended by a null string
  yield { skip: 1 + offSize }; // data offset: flag and bytes
  return { desc, tag, namespace, defn };
}

/** A `SEQUENCE SET` entry's value; undefined when it does not read as pg_dump writes one. */
function sequenceSet(entry: Entry, decode: NameDecoder): SequenceValue | undefined {
  if (!(entry.defn instanceof Buffer && entry.tag instanceof Buffer && entry.namespace instanceof Buffer)) {
    return undefined;
  }
  const value = parseSetval(entry.defn, decode);
  // The statement names the sequence quoted; the entry names it plain: both must agree.
  const schema = decode(entry.namespace);
  const name = decode(entry.tag);
  if (!value || schema === undefined || name === undefined || value.name !== `${schema}.${name}`) {
    return undefined;
  }
  return value;
}

interface Archive {
  intSize: number;
  version: number;
}

function* readInt(archive: Archive): Generator<Step, number, Buffer> {
  const bytes = yield { read: 1 + archive.intSize };
  const sign = bytes[0]!;
  if (sign > 1) throw new MalformedArchive('bad integer sign byte');
  let value = 0;
  for (let i = archive.intSize; i >= 1; i--) value = value * 256 + bytes[i]!;
  if (!Number.isSafeInteger(value)) throw new MalformedArchive('integer out of range');
  return sign ? -value : value;
}

/**
 * A string: its bytes when at most `hold` long, TOO_LONG (skipped) when longer, null when the archive
 * says none (length -1).
 */
function* readStr(archive: Archive, hold: number): Generator<Step, Buffer | null | typeof TOO_LONG, Buffer> {
  const length = yield* readInt(archive);
  if (length === -1) return null;
  if (length < 0) throw new MalformedArchive('negative string length');
  if (length > hold) {
    yield { skip: length };
    return TOO_LONG;
  }
  return yield { read: length };
}
