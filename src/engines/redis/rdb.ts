/**
 * A streaming reader of Redis RDB files, needing no Redis: it checks the header, walks every record to
 * the EOF opcode (skipping values by their length prefixes, so memory stays flat whatever the value
 * sizes), counts keys per logical database and by type (apart: keys already expired when the file was
 * written), and checks the CRC-64 Redis writes in the last 8 bytes.
 *
 * The checksum is the authority: it covers every byte before it, so a truncated or altered file cannot
 * match it. The walk adds the table of contents, and is the only check of a file written with
 * `rdbchecksum no` (a zero checksum), which is reported as not checked. Record types newer than this
 * reader (RDB 12+, Redis 7.4+) end the walk early; the checksum still covers the whole file then.
 *
 * Format reference: Redis's src/rdb.h and rdb.c (rdbLoadRio, rdbLoadObject).
 */

import { Crc64 } from './crc64.ts';
import { lzfDecompress } from './lzf.ts';
import {
  KNOWN_VERSION,
  keyType,
  MAX_READ,
  OP,
  type RdbDatabase,
  RdbError,
  type RdbSummary,
} from './rdb-format.ts';

/** Thrown inside the walk for record types this reader does not know (newer Redis). */
class Unknown extends Error {}

type Walk = Generator<void, void, void>;

/**
 * Push-based RDB checker: feed it every chunk with `push`, then `finish()` returns the summary or
 * throws RdbError. The walk is a generator that pauses (yields) whenever it needs more bytes.
 */
export class RdbChecker {
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** Offset in the file of #buf[0]. */
  #base = 0;
  #total = 0;
  readonly #crc = new Crc64();
  /** The last up to 8 bytes seen, not yet in the CRC (they may be the stored checksum). */
  #held: Buffer = Buffer.alloc(0);

  #walk: Walk;
  #state: 'running' | 'done' | 'failed' | 'stopped' = 'running';
  #failure: string | undefined;
  /** File offset just after the checksum (or EOF opcode for RDB < 5), once the walk got there. */
  #end = -1;

  #version = 0;
  readonly #aux: Record<string, string> = {};
  readonly #dbs = new Map<number, RdbDatabase>();
  #db: RdbDatabase | undefined;
  readonly #functions: string[] = [];
  readonly #types: Record<string, number> = {};
  /** When the file was written (its `ctime`), in ms: keys expiring before it are expired in the file. */
  #savedAt = Number.NEGATIVE_INFINITY;
  /** File offset of the record being read (its type byte). */
  #record = 0;

  constructor() {
    this.#walk = this.#file();
    this.#step();
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#total += chunk.length;
    this.#hold(chunk);
    if (this.#state !== 'running') return;
    if (this.#pos >= this.#buf.length) {
      this.#base += this.#buf.length;
      this.#buf = chunk;
    } else {
      const rest = this.#buf.subarray(this.#pos);
      this.#base += this.#pos;
      this.#buf = Buffer.concat([rest, chunk]);
    }
    this.#pos = 0;
    this.#step();
  }

  finish(): RdbSummary {
    const at = (n: number) => `byte ${n.toLocaleString('en-US')}`;
    if (this.#version === 0) {
      if (this.#state === 'failed') throw new RdbError(this.#failure!);
      throw new RdbError(`not an RDB file: it holds ${this.#total} bytes, fewer than the 9-byte header`);
    }
    let walkProblem: string | undefined;
    if (this.#state === 'running') walkProblem = `the file ends at ${at(this.#total)}, inside a record`;
    else if (this.#state === 'failed') walkProblem = this.#failure;
    else if (this.#state === 'done' && this.#end !== this.#total) {
      walkProblem = `the RDB ends at ${at(this.#end)} but the file goes on to ${at(this.#total)}`;
    }
    const summary = (checksum: RdbSummary['checksum'], partial?: string): RdbSummary => ({
      version: this.#version,
      aux: this.#aux,
      databases: [...this.#dbs.values()].filter((d) => d.keys > 0),
      functions: this.#functions,
      types: this.#types,
      checksum,
      partial,
      bytes: this.#total,
    });

    if (this.#version < 5) {
      if (walkProblem) throw new RdbError(walkProblem);
      if (this.#state === 'stopped') throw new RdbError(this.#failure!);
      return summary('absent');
    }
    const stored = this.#total >= 17 && this.#held.length === 8 ? this.#held : undefined;
    if (stored?.every((b) => b === 0)) {
      // Written with `rdbchecksum no`: only the walk can tell.
      if (walkProblem) throw new RdbError(`${walkProblem} (the file has no checksum)`);
      return summary('disabled', this.#state === 'stopped' ? this.#failure : undefined);
    }
    const computed = this.#crc.value();
    if (!stored || stored.readBigUInt64LE(0) !== computed) {
      const crc = `its CRC-64 does not match the checksum in its last 8 bytes`;
      throw new RdbError(
        walkProblem ? `${walkProblem}; ${crc}` : `${crc}: the file was altered after Redis wrote it`,
      );
    }
    // The checksum vouches for every byte; a walk that could not finish is this reader's limit.
    const partial =
      this.#state === 'stopped'
        ? this.#failure
        : walkProblem
          ? `records not read: ${walkProblem}`
          : undefined;
    return summary('verified', partial);
  }

  #hold(chunk: Buffer): void {
    if (chunk.length >= 8) {
      if (this.#held.length) this.#crc.update(this.#held);
      this.#crc.update(chunk.subarray(0, chunk.length - 8));
      this.#held = chunk.subarray(chunk.length - 8);
      return;
    }
    const all = Buffer.concat([this.#held, chunk]);
    if (all.length > 8) this.#crc.update(all.subarray(0, all.length - 8));
    this.#held = all.subarray(Math.max(0, all.length - 8));
  }

  #step(): void {
    try {
      const r = this.#walk.next();
      if (r.done && this.#state === 'running') this.#state = 'done';
    } catch (err) {
      if (err instanceof Unknown) {
        this.#state = 'stopped';
        this.#failure = err.message;
      } else {
        this.#state = 'failed';
        this.#failure = err instanceof Error ? err.message : String(err);
      }
    }
  }

  // ---- the walk ----------------------------------------------------------------------------------

  get #offset(): number {
    return this.#base + this.#pos;
  }

  #corrupt(what: string, at = this.#offset): RdbError {
    return new RdbError(`${what} at byte ${at.toLocaleString('en-US')}`);
  }

  *#need(n: number): Walk {
    while (this.#buf.length - this.#pos < n) yield;
  }

  *#bytes(n: number): Generator<void, Buffer, void> {
    yield* this.#need(n);
    const b = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }

  *#byte(): Generator<void, number, void> {
    yield* this.#need(1);
    return this.#buf[this.#pos++]!;
  }

  *#skip(n: number): Walk {
    let left = n;
    while (left > 0) {
      if (this.#pos >= this.#buf.length) yield;
      const k = Math.min(left, this.#buf.length - this.#pos);
      this.#pos += k;
      left -= k;
    }
  }

  /** rdbLoadLen; `encoded` is the special-encoding number (11xxxxxx) for strings, else undefined. */
  *#length(): Generator<void, { len: number; encoded?: number }, void> {
    const b = yield* this.#byte();
    switch (b >> 6) {
      case 0:
        return { len: b & 0x3f };
      case 1:
        return { len: ((b & 0x3f) << 8) | (yield* this.#byte()) };
      case 2: {
        if (b === 0x80) return { len: (yield* this.#bytes(4)).readUInt32BE(0) };
        if (b === 0x81) {
          const v = (yield* this.#bytes(8)).readBigUInt64BE(0);
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#corrupt(`length ${v} out of range`);
          return { len: Number(v) };
        }
        throw this.#corrupt(`unknown length encoding 0x${b.toString(16)}`);
      }
      default:
        return { len: 0, encoded: b & 0x3f };
    }
  }

  *#len(): Generator<void, number, void> {
    const l = yield* this.#length();
    if (l.encoded !== undefined) throw this.#corrupt('an encoded string where a length belongs');
    return l.len;
  }

  /** Skips a string (rdbGenericLoadStringObject), or reads it when `read` and it is short enough. */
  *#string(read = false): Generator<void, Buffer | undefined, void> {
    const l = yield* this.#length();
    if (l.encoded === undefined) {
      if (read && l.len <= MAX_READ) return Buffer.from(yield* this.#bytes(l.len));
      yield* this.#skip(l.len);
      return undefined;
    }
    switch (l.encoded) {
      case 0:
        return Buffer.from(String((yield* this.#bytes(1)).readInt8(0)));
      case 1:
        return Buffer.from(String((yield* this.#bytes(2)).readInt16LE(0)));
      case 2:
        return Buffer.from(String((yield* this.#bytes(4)).readInt32LE(0)));
      case 3: {
        const clen = yield* this.#len();
        const len = yield* this.#len();
        if (read && clen <= MAX_READ && len <= MAX_READ) {
          return lzfDecompress(Buffer.from(yield* this.#bytes(clen)), len);
        }
        yield* this.#skip(clen);
        return undefined;
      }
      default:
        throw this.#corrupt(`unknown string encoding ${l.encoded}`);
    }
  }

  *#file(): Walk {
    const header = yield* this.#bytes(9);
    const magic = header.subarray(0, 5).toString('latin1');
    const digits = header.subarray(5, 9).toString('latin1');
    if (magic !== 'REDIS' || !/^\d{4}$/.test(digits)) {
      throw new RdbError(
        `not an RDB file: it starts with ${JSON.stringify(header.toString('latin1'))}, not REDIS and a 4-digit version`,
      );
    }
    this.#version = Number(digits);
    if (this.#version < 1) throw new RdbError(`not an RDB file: version ${digits}`);
    /** The next key's expiry in ms (the same clock as `#savedAt`), when it has one. */
    let expiresAt: number | undefined;
    for (;;) {
      const type = yield* this.#byte();
      this.#record = this.#offset - 1;
      switch (type) {
        case OP.EXPIRETIME:
          expiresAt = (yield* this.#bytes(4)).readInt32LE(0) * 1000;
          continue;
        case OP.EXPIRETIME_MS:
          expiresAt = Number((yield* this.#bytes(8)).readBigInt64LE(0));
          continue;
        case OP.FREQ:
          yield* this.#skip(1);
          continue;
        case OP.IDLE:
          yield* this.#len();
          continue;
        case OP.SELECTDB: {
          const db = yield* this.#len();
          this.#db = this.#dbs.get(db) ?? { db, keys: 0, expires: 0, expired: 0 };
          this.#dbs.set(db, this.#db);
          continue;
        }
        case OP.RESIZEDB:
          yield* this.#len();
          yield* this.#len();
          continue;
        case OP.SLOT_INFO:
          if (this.#version < 12) break;
          yield* this.#len();
          yield* this.#len();
          yield* this.#len();
          continue;
        case OP.AUX: {
          const key = yield* this.#string(true);
          const value = yield* this.#string(true);
          const name = key?.toString('utf8');
          if (name && value) this.#aux[name] = value.toString('utf8');
          if (name === 'ctime') this.#savedAt = Number(this.#aux.ctime) * 1000 || this.#savedAt;
          continue;
        }
        case OP.MODULE_AUX:
          yield* this.#moduleId();
          yield* this.#len(); // when_opcode
          yield* this.#len(); // when
          yield* this.#moduleValue();
          continue;
        case OP.FUNCTION2: {
          const code = yield* this.#string(true);
          const name = code ? /^#!\S+\s+(?:.*\s)?name=(\S+)/.exec(code.toString('utf8'))?.[1] : undefined;
          this.#functions.push(name ?? '(unnamed)');
          continue;
        }
        case OP.EOF: {
          if (this.#version >= 5) yield* this.#skip(8);
          this.#end = this.#offset;
          return;
        }
      }
      if (type >= 244) {
        if (this.#version > KNOWN_VERSION)
          throw new Unknown(`opcode ${type} of RDB ${this.#version} not read`);
        throw this.#corrupt(`unknown opcode ${type}`, this.#record);
      }
      // A key and its value.
      if (!this.#db) {
        // Files without SELECTDB load into db 0.
        this.#db = { db: 0, keys: 0, expires: 0, expired: 0 };
        this.#dbs.set(0, this.#db);
      }
      yield* this.#string(); // key
      yield* this.#value(type);
      this.#db.keys++;
      if (expiresAt !== undefined) this.#db.expires++;
      // A server loading the file drops keys already expired: they are counted apart from the types.
      if (expiresAt !== undefined && expiresAt < this.#savedAt) this.#db.expired++;
      else this.#types[keyType(type)] = (this.#types[keyType(type)] ?? 0) + 1;
      expiresAt = undefined;
    }
  }

  /** Skips one value of `type` (rdbLoadObject). */
  *#value(type: number): Walk {
    switch (type) {
      case 0: // string
        yield* this.#string();
        return;
      case 1: // list
      case 2: // set
      case 14: {
        // quicklist of ziplists
        let n = yield* this.#len();
        while (n--) yield* this.#string();
        return;
      }
      case 18: {
        // quicklist of listpacks: container kind + node
        let n = yield* this.#len();
        while (n--) {
          yield* this.#len();
          yield* this.#string();
        }
        return;
      }
      case 3: {
        // zset with scores as text
        let n = yield* this.#len();
        while (n--) {
          yield* this.#string();
          const len = yield* this.#byte();
          if (len < 253) yield* this.#skip(len); // 253-255: nan, +inf, -inf
        }
        return;
      }
      case 5: {
        // zset with binary double scores
        let n = yield* this.#len();
        while (n--) {
          yield* this.#string();
          yield* this.#skip(8);
        }
        return;
      }
      case 4: {
        // hash
        let n = yield* this.#len();
        while (n--) {
          yield* this.#string();
          yield* this.#string();
        }
        return;
      }
      case 9: // zipmap
      case 10: // ziplist
      case 11: // intset
      case 12: // zset ziplist
      case 13: // hash ziplist
      case 16: // hash listpack
      case 17: // zset listpack
        yield* this.#string();
        return;
      case 20: // set listpack (RDB 11)
        if (this.#version < 11) break;
        yield* this.#string();
        return;
      case 15:
      case 19:
      case 21:
        if (type === 21 && this.#version < 11) break;
        yield* this.#stream(type);
        return;
      case 7: // module value, opcode format
        yield* this.#moduleId();
        yield* this.#moduleValue();
        return;
      case 6:
        // Module values of the first format can only be read by their module.
        throw new Unknown(`a module value (type 6) at byte ${this.#record} can only be read by its module`);
    }
    if (this.#version > KNOWN_VERSION)
      throw new Unknown(`value type ${type} of RDB ${this.#version} not read`);
    throw this.#corrupt(`unknown value type ${type}`, this.#record);
  }

  *#stream(type: number): Walk {
    let listpacks = yield* this.#len();
    while (listpacks--) {
      yield* this.#string(); // node key (master ID)
      yield* this.#string(); // listpack
    }
    yield* this.#len(); // length
    yield* this.#len(); // last id ms
    yield* this.#len(); // last id seq
    if (type >= 19) {
      for (let i = 0; i < 5; i++) yield* this.#len(); // first id, max deleted id, entries added
    }
    let groups = yield* this.#len();
    while (groups--) {
      yield* this.#string(); // name
      yield* this.#len(); // last delivered id ms
      yield* this.#len(); // seq
      if (type >= 19) yield* this.#len(); // entries read
      let pel = yield* this.#len();
      while (pel--) {
        yield* this.#skip(16); // raw id
        yield* this.#skip(8); // delivery time
        yield* this.#len(); // delivery count
      }
      let consumers = yield* this.#len();
      while (consumers--) {
        yield* this.#string(); // name
        yield* this.#skip(8); // seen time
        if (type >= 21) yield* this.#skip(8); // active time
        let owned = yield* this.#len();
        while (owned--) yield* this.#skip(16);
      }
    }
  }

  /** A module id (a length): its 64 bits hold the module's name, more than a number holds exactly. */
  *#moduleId(): Walk {
    yield* this.#need(1);
    if (this.#buf[this.#pos] === 0x81) yield* this.#skip(9);
    else yield* this.#len();
  }

  /** A module value in the opcode format, up to its EOF opcode (rdbLoadCheckModuleValue). */
  *#moduleValue(): Walk {
    for (;;) {
      const op = yield* this.#len();
      switch (op) {
        case 0:
          return;
        case 1: // signed int
        case 2: // unsigned int
          yield* this.#len();
          continue;
        case 3: // float
          yield* this.#skip(4);
          continue;
        case 4: // double
          yield* this.#skip(8);
          continue;
        case 5:
          yield* this.#string();
          continue;
        default:
          throw this.#corrupt(`unknown module opcode ${op}`);
      }
    }
  }
}
