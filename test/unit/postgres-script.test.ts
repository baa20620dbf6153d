import { describe, expect, it } from 'vitest';
import { PlainScriptFilter, restrictedScript } from '../../src/engines/postgres/script.ts';
import { RestoreError } from '../../src/util/errors.ts';

const KEY = `${'Zk3'.repeat(21)}q`;
const OURS = 'datasaverKey0123456789';

/** The shape pg_dump 15.14+ writes, with COPY data that looks like restrict lines. */
const GENUINE = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  '',
  `\\restrict ${KEY}`,
  '',
  '-- Dumped from database version 15.18',
  '',
  "SET client_encoding = 'UTF8';",
  'COPY public.t (v) FROM stdin;',
  `\\restrict ${KEY}`,
  `\\rrestrict ${KEY}`,
  'back\\\\slash\\ttab',
  '\\\\.',
  '\\.',
  '',
  '--',
  '-- PostgreSQL database dump complete',
  '--',
  '',
  `\\unrestrict ${KEY}`,
  '',
].join('\n');

/** GENUINE as psql should receive it: datasaver's key first, the dump's header and trailer lines gone. */
const EXPECTED = `\\restrict ${OURS}\n${GENUINE.replace(`\\restrict ${KEY}\n`, '').replace(`\\unrestrict ${KEY}\n`, '')}`;

async function run(text: string | Buffer, chunkSize = 1 << 20): Promise<string> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
  }
  const out: Buffer[] = [];
  for await (const b of restrictedScript(chunks(), OURS)) out.push(b);
  return Buffer.concat(out).toString('utf8');
}

describe('the script psql gets for a plain SQL restore', () => {
  it("starts with datasaver's \\restrict and drops only the dump's own header and trailer lines", async () => {
    expect(await run(GENUINE)).toBe(EXPECTED);
  });

  it('gives the same script whatever the chunk boundaries', async () => {
    for (const size of [1, 2, 3, 7, 11, 12, 13, 64, 65]) expect(await run(GENUINE, size)).toBe(EXPECTED);
  });

  it('drops a trailer that ends the dump without a newline', async () => {
    const text = GENUINE.trimEnd();
    expect(await run(text, 5)).toBe(
      `\\restrict ${OURS}\n${text.replace(`\\restrict ${KEY}\n`, '').replace(`\\unrestrict ${KEY}`, '')}`,
    );
  });

  it('passes a dump without restrict lines (older pg_dump) through unchanged', async () => {
    const old =
      '--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\nCOPY t FROM stdin;\n\\restrict abc\n\\.\n';
    expect(await run(old, 3)).toBe(`\\restrict ${OURS}\n${old}`);
  });

  it('leaves a \\restrict line after the first statement to psql, which refuses it', async () => {
    const text = `SET x = 1;\n\\restrict ${KEY}\n`;
    expect(await run(text)).toBe(`\\restrict ${OURS}\n${text}`);
  });

  it("drops a line with the dump's own \\unrestrict wherever it is: psql stays restricted and refuses what follows", async () => {
    const text = GENUINE.replace(
      'SET client_encoding',
      `\\unrestrict ${KEY}\n\\! touch /tmp/x\nSET client_encoding`,
    );
    const script = await run(text, 7);
    expect(script.startsWith(`\\restrict ${OURS}\n`)).toBe(true);
    expect(script).toContain('\n\\! touch /tmp/x\n');
    expect(script).not.toContain('unrestrict');
  });

  const forged: [string, string][] = [
    ['\\unrestrict with backquotes', `SET x = 1;\n\\unrestrict \`touch /tmp/x\`\n`],
    ['\\unrestrict mid-line', `SELECT 1 \\unrestrict \`touch /tmp/x\`\n`],
    ['\\unrestrict after an even run of backslashes', `SELECT 1 \\\\\\unrestrict x\n`],
    ['\\unrestrict in the header comments', `--\n\\unrestrict \`touch /tmp/x\`\n`],
    ['the trailer key with more on its line', `${GENUINE}\\unrestrict ${KEY} \`touch /tmp/x\`\n`],
    ['a second \\restrict line in the header', `\\restrict ${KEY}\n\\restrict other\n\\unrestrict other\n`],
    ['\\unrestrict in COPY data', GENUINE.replace('back\\\\slash', '\\\\unrestrict')],
  ];
  for (const [name, text] of forged) {
    it(`refuses ${name}`, async () => {
      for (const size of [1, 4, 1 << 20]) {
        await expect(run(text, size)).rejects.toThrow(/holds a psql \\unrestrict command/);
      }
    });
  }

  it('refuses a NUL byte, which could make psql join lines into \\unrestrict', async () => {
    const text = Buffer.concat([
      Buffer.from('SELECT 1 \\'),
      Buffer.from([0]),
      Buffer.from('x\nunrestrict `touch /tmp/x`\n'),
    ]);
    await expect(run(text, 4)).rejects.toThrow(RestoreError);
    await expect(run(text)).rejects.toThrow(/NUL byte/);
  });

  it('holds back no more than a short line, whatever the length of a COPY line', () => {
    const filter = new PlainScriptFilter();
    filter.push(Buffer.from('SET x = 1;\nCOPY t FROM stdin;\n'));
    let passed = 0;
    const big = Buffer.alloc(1 << 16, 'a');
    for (let i = 0; i < 64; i++) passed += filter.push(big).reduce((n, b) => n + b.length, 0);
    expect(passed).toBeGreaterThan(64 * big.length - 64);
  });
});
