/** The in-process RDB reader: CRC-64/Jones, the record walk, and what it accepts and refuses. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Crc64, crc64 } from '../../src/engines/redis/crc64.ts';
import { parseKeyspace, rdbEntries, rdbFacts } from '../../src/engines/redis/info.ts';
import { lzfDecompress } from '../../src/engines/redis/lzf.ts';
import { RdbChecker } from '../../src/engines/redis/rdb.ts';
import { RdbError, type RdbSummary } from '../../src/engines/redis/rdb-format.ts';
import { checkAsItPasses, rdbLength } from '../../src/engines/redis/rdb-stream.ts';

/** Bit-at-a-time CRC-64/Jones (reflected 0xad93d23594c935a9), the textbook definition. */
function referenceCrc64(data: Uint8Array): bigint {
  const poly = 0x95ac9329ac4bc9b5n;
  let crc = 0n;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc;
}

describe('crc64', () => {
  it('matches the CRC-64/Jones check value Redis tests against', () => {
    expect(crc64(Buffer.from('123456789'))).toBe(0xe9c6d914c4b8d9can);
    expect(crc64(Buffer.alloc(0))).toBe(0n);
  });

  it('agrees with the bit-at-a-time definition, in one call or in pieces', () => {
    for (let n = 0; n < 70; n++) {
      const data = randomBytes(n * 7);
      const expected = referenceCrc64(data);
      expect(crc64(data)).toBe(expected);
      const crc = new Crc64();
      for (let i = 0; i < data.length; i += 5) crc.update(data.subarray(i, i + 5));
      expect(crc.value()).toBe(expected);
    }
  });
});

// ---- building RDB files by hand ----

function len(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x80;
  b.writeUInt32BE(n, 1);
  return b;
}
function str(s: string | Buffer): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([len(b.length), b]);
}
const bytes = (...b: number[]) => Buffer.from(b);
function u64le(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

function rdb(version: number, body: Buffer[], checksum: 'crc' | 'zero' = 'crc'): Buffer {
  const data = Buffer.concat([Buffer.from(`REDIS${String(version).padStart(4, '0')}`), ...body, bytes(0xff)]);
  return Buffer.concat([data, u64le(checksum === 'crc' ? crc64(data) : 0n)]);
}

const BODY = [
  bytes(0xfa),
  str('redis-ver'),
  str('7.0.15'),
  bytes(0xfa),
  str('ctime'),
  bytes(0xc2, 0x19, 0xd2, 0x02, 0x6b), // int32-encoded aux value
  bytes(0xf5),
  str("#!lua name=mylib\nredis.register_function('f', function() return 1 end)"),
  bytes(0xfe, 0x00, 0xfb, 0x03, 0x01), // SELECTDB 0, RESIZEDB 3 1
  bytes(0xfc),
  u64le(1_900_000_000_000n), // expire, ms
  bytes(0x00),
  str('with-ttl'),
  str('value'),
  bytes(0x00, 0xc0, 0x7b), // string with an int8-encoded key (123)
  str('x'.repeat(100)),
  bytes(0xf8, 0x05, 0xf9, 0x03), // IDLE 5, FREQ 3 before the next key
  bytes(0x12),
  str('list'),
  bytes(0x01, 0x02), // quicklist 2: one packed node
  str(Buffer.alloc(30, 1)),
  bytes(0xfe, 0x02), // SELECTDB 2
  bytes(0x04),
  str('hash'),
  bytes(0x02),
  str('f1'),
  str('v1'),
  str('f2'),
  str('v2'),
  bytes(0x03),
  str('zset-text'),
  bytes(0x02),
  str('a'),
  bytes(0x03),
  Buffer.from('1.5'),
  str('b'),
  bytes(254), // +inf
  bytes(0x0f),
  str('stream'),
  bytes(0x01),
  str(Buffer.alloc(16)),
  str(Buffer.alloc(40, 7)),
  bytes(0x01, 0x05, 0x00), // length, last id
  bytes(0x01),
  str('group'),
  bytes(0x05, 0x00), // last delivered id
  bytes(0x01),
  Buffer.alloc(16, 2), // pending entry id
  u64le(1n), // delivery time
  bytes(0x01), // delivery count
  bytes(0x01),
  str('consumer'),
  u64le(2n), // seen time
  bytes(0x01),
  Buffer.alloc(16, 2),
  bytes(0x07),
  str('module-key'),
  len(12345), // module id
  bytes(0x02, 0x05, 0x05),
  str('payload'),
  bytes(0x04),
  u64le(3n), // double
  bytes(0x00), // module EOF
];

const EXPECTED: Partial<RdbSummary> = {
  version: 10,
  aux: { 'redis-ver': '7.0.15', ctime: String(0x6b02d219) },
  databases: [
    { db: 0, keys: 3, expires: 1, expired: 0 },
    { db: 2, keys: 4, expires: 0, expired: 0 },
  ],
  types: { string: 2, list: 1, hash: 1, zset: 1, stream: 1, module: 1 },
  functions: ['mylib'],
  checksum: 'verified',
  partial: undefined,
};

function check(...chunks: Buffer[]): RdbSummary {
  const c = new RdbChecker();
  for (const chunk of chunks) c.push(chunk);
  return c.finish();
}

describe('RdbChecker', () => {
  const file = rdb(10, BODY);

  it('walks every record type, counting keys and TTLs per database', () => {
    expect(check(file)).toMatchObject({ ...EXPECTED, bytes: file.length });
  });

  it('reads the same fed one byte at a time', () => {
    const c = new RdbChecker();
    for (const b of file) c.push(Buffer.from([b]));
    expect(c.finish()).toMatchObject(EXPECTED);
  });

  it('refuses the file cut at any byte', () => {
    for (let n = 0; n < file.length; n++) {
      expect(() => check(file.subarray(0, n)), `cut at ${n}`).toThrow(RdbError);
    }
  });

  it('refuses any single flipped bit', () => {
    for (let i = 0; i < file.length; i++) {
      const bad = Buffer.from(file);
      bad[i]! ^= 0x10;
      expect(() => check(bad), `bit flipped at ${i}`).toThrow(RdbError);
    }
  });

  it('names what is wrong', () => {
    const bad = Buffer.from(file);
    bad[file.indexOf('value') + 1]! ^= 1;
    expect(() => check(bad)).toThrow(/CRC-64 does not match .*altered/);
    expect(() => check(file.subarray(0, 60))).toThrow(/ends at byte 60, inside a record/);
    expect(() => check(Buffer.from('PGDMP0123456789'))).toThrow(/not an RDB file/);
    // redis-cli --rdb - writes the 40-byte EOF mark of a diskless transfer after the RDB
    const marked = Buffer.concat([file, Buffer.from('0123456789abcdef0123456789abcdef01234567')]);
    expect(() => check(marked)).toThrow(/the file goes on/);
  });

  it('accepts a zero checksum (rdbchecksum no) as not checked, and still walks the file', () => {
    const unchecked = rdb(10, BODY, 'zero');
    expect(check(unchecked)).toMatchObject({ ...EXPECTED, checksum: 'disabled' });
    const broken = Buffer.from(unchecked);
    broken[file.indexOf('hash') - 2] = 0x63; // an unknown value type
    expect(() => check(broken)).toThrow(/unknown value type 99 .*no checksum/);
  });

  it('leaves record types of newer Redis to the checksum', () => {
    const newer = [bytes(0xfe, 0x00), bytes(0x19), str('hash-with-field-ttls'), str('opaque')];
    expect(check(rdb(12, newer))).toMatchObject({
      version: 12,
      checksum: 'verified',
      partial: 'value type 25 of RDB 12 not read',
    });
    // In an RDB 10 file the type is unknown: the file is damaged, or this reader is wrong. A matching
    // checksum says Redis wrote these very bytes, so the reader notes its limit instead of failing.
    expect(check(rdb(10, newer))).toMatchObject({
      checksum: 'verified',
      partial: expect.stringMatching(/^records not read: unknown value type 25 at byte 11$/),
    });
    expect(() => check(rdb(10, newer, 'zero'))).toThrow(/unknown value type 25/);
  });

  it('reads a module id of 64 bits (the module name fills its top bits)', () => {
    const id = Buffer.alloc(8);
    id.writeBigUInt64BE(0x4a_53_4f_4e_2d_52_4c_00n); // past Number.MAX_SAFE_INTEGER
    const body = [
      bytes(0xfe, 0x00, 0x07),
      str('json-key'),
      bytes(0x81),
      id,
      bytes(0x05),
      str('{}'),
      bytes(0x00),
    ];
    expect(check(rdb(10, body))).toMatchObject({ partial: undefined, types: { module: 1 } });
  });

  it('has no checksum to check before RDB 5', () => {
    const old = Buffer.concat([
      Buffer.from('REDIS0004'),
      bytes(0xfe, 0x00, 0x00),
      str('k'),
      str('v'),
      bytes(0xff),
    ]);
    expect(check(old)).toMatchObject({
      version: 4,
      checksum: 'absent',
      databases: [{ db: 0, keys: 1, expires: 0, expired: 0 }],
    });
  });
});

describe('redis helpers', () => {
  it('decompresses LZF (literal run, then a back reference)', () => {
    const input = Buffer.from([2, 0x61, 0x62, 0x63, 0x20, 2]);
    expect(lzfDecompress(input, 6).toString()).toBe('abcabc');
    expect(() => lzfDecompress(input, 7)).toThrow(RdbError);
  });

  it('reads the RDB length redis-cli reports in either transfer mode', () => {
    expect(
      rdbLength(
        "SYNC sent to master, writing bytes of bulk transfer until EOF marker to '-'\nTransfer finished with success after 182 bytes",
      ),
    ).toBe(182);
    expect(rdbLength("SYNC sent to master, writing 4096 bytes to '-'\nTransfer finished with success.")).toBe(
      4096,
    );
    expect(rdbLength('SYNC with master failed: -NOPERM')).toBeUndefined();
  });

  it('parses INFO keyspace', () => {
    expect(
      parseKeyspace('# Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=100\r\ndb15:keys=1,expires=0,avg_ttl=0\r\n'),
    ).toEqual([
      { db: 0, keys: 12, expires: 3 },
      { db: 15, keys: 1, expires: 0 },
    ]);
  });
});

describe('facts of an RDB', () => {
  /** Facts' `objects`, in the order given. */
  const kinds = (counts: Record<string, number>) =>
    Object.entries(counts).map(([kind, count]) => ({ kind, count }));
  const CTIME = 1_800_000_000; // seconds: when the file was written
  const seconds = (s: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(s);
    return b;
  };
  /** db0: a live string, a hash expiring later, a set already expired (ms); db5: an expired list (s). */
  const file = rdb(10, [
    bytes(0xfa),
    str('ctime'),
    str(String(CTIME)),
    bytes(0xf5),
    str("#!lua name=lib\nredis.register_function('f', function() return 1 end)"),
    bytes(0xfe, 0x00, 0x00),
    str('live'),
    str('v'),
    bytes(0xfc),
    u64le(BigInt(CTIME * 1000 + 60_000)),
    bytes(0x04),
    str('later'),
    bytes(0x01),
    str('f'),
    str('v'),
    bytes(0xfc),
    u64le(BigInt(CTIME * 1000 - 1)),
    bytes(0x02),
    str('gone'),
    bytes(0x01),
    str('m'),
    bytes(0xfe, 0x05, 0xfd),
    seconds(CTIME - 10),
    bytes(0x01),
    str('gone-too'),
    bytes(0x01),
    str('a'),
  ]);

  it('counts keys per database and type as a restore loads them: expired ones are left out', () => {
    const summary = check(file);
    expect(summary.databases).toEqual([
      { db: 0, keys: 3, expires: 2, expired: 1 },
      { db: 5, keys: 1, expires: 1, expired: 1 },
    ]);
    expect(rdbEntries(summary)).toContainEqual({
      type: 'DATABASE',
      schema: '',
      name: 'db0: 3 keys, 2 with a TTL, 1 expired when saved',
    });
    expect(rdbFacts(summary)).toEqual({
      exact: true,
      tables: [{ name: 'db0', rows: 2 }],
      objects: kinds({ hash: 1, string: 1, 'expiring keys': 1, 'function libraries': 1 }),
    });
  });

  it('the crafted file with every record type: keys by type', () => {
    expect(rdbFacts(check(rdb(10, BODY)))).toEqual({
      exact: true,
      tables: [
        { name: 'db0', rows: 3 },
        { name: 'db2', rows: 4 },
      ],
      objects: kinds({
        hash: 1,
        list: 1,
        module: 1,
        stream: 1,
        string: 2,
        zset: 1,
        'expiring keys': 1,
        'function libraries': 1,
      }),
    });
  });

  it('none when the reader could not walk every record', () => {
    const newer = [bytes(0xfe, 0x00), bytes(0x19), str('hash-with-field-ttls'), str('opaque')];
    expect(rdbFacts(check(rdb(12, newer)))).toBeUndefined();
  });

  async function pass(chunks: AsyncIterable<Buffer>) {
    const checked: RdbSummary[] = [];
    const out: Buffer[] = [];
    const damaged = (err: RdbError) => new Error(`damaged: ${err.message}`);
    try {
      for await (const c of checkAsItPasses(chunks, (s) => checked.push(s), damaged)) out.push(c);
      return { out: Buffer.concat(out), checked };
    } catch (err) {
      return { out: Buffer.concat(out), checked, err };
    }
  }
  async function* pieces(data: Buffer, fail?: Error) {
    for (let i = 0; i < data.length; i += 7) yield data.subarray(i, i + 7);
    if (fail) throw fail;
  }

  it('checked as it passes: the bytes unchanged, the summary once the stream ended clean', async () => {
    const clean = await pass(pieces(file));
    expect(clean.out.equals(file)).toBe(true);
    expect(clean.checked).toHaveLength(1);
    expect(clean.checked[0]).toMatchObject({ checksum: 'verified', types: { string: 1, hash: 1 } });

    const bad = Buffer.from(file);
    bad[bad.indexOf('later')]! ^= 1;
    const damaged = await pass(pieces(bad));
    expect(damaged.err).toMatchObject({
      message: expect.stringMatching(/^damaged: .*CRC-64 does not match/),
    });
    expect(damaged.checked).toEqual([]);

    const broken = await pass(pieces(file, new Error('redis-cli died')));
    expect(broken.err).toMatchObject({ message: 'redis-cli died' });
    expect(broken.checked).toEqual([]);
  });
});
