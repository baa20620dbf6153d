import { describe, expect, it } from 'vitest';
import { offlineTarget } from '../../src/config/target.ts';
import { PostgresEngine, parseRestoreList } from '../../src/engines/postgres/engine.ts';
import { BackupError } from '../../src/util/errors.ts';

describe('pg_restore --list parsing', () => {
  it('reads types (multi-word included), schemas and names', () => {
    const listing = `;
; Archive created at 2026-11-22 08:16:27 UTC
;     dbname: d
214; 1259 16385 TABLE public t postgres
3339; 2613 16390 BLOB - 16390 postgres
3338; 0 16385 TABLE DATA public t postgres
220; 1259 16400 MATERIALIZED VIEW sales daily postgres
3350; 0 16400 MATERIALIZED VIEW DATA sales daily postgres
3001; 0 0 COMMENT sales TABLE customers postgres
3340; 0 0 BLOBS - BLOBS 
`;
    expect(parseRestoreList(listing)).toEqual([
      { type: 'TABLE', schema: 'public', name: 't' },
      { type: 'BLOB', schema: '', name: '16390' },
      { type: 'TABLE DATA', schema: 'public', name: 't' },
      { type: 'MATERIALIZED VIEW', schema: 'sales', name: 'daily' },
      { type: 'MATERIALIZED VIEW DATA', schema: 'sales', name: 'daily' },
      { type: 'COMMENT', schema: 'sales', name: 'TABLE customers' },
      { type: 'BLOBS', schema: '', name: 'BLOBS' },
    ]);
  });
});

describe('plain SQL structure check', () => {
  const engine = new PostgresEngine(offlineTarget('t', undefined));
  const complete = [
    '--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n',
    '--\n-- Name: t; Type: TABLE; Schema: public; Owner: postgres\n--\n\nCREATE TABLE public.t (a int);\n\n',
    '--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY public.t (a) FROM stdin;\n1\n\\.\n\n',
    '--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n',
  ].join('');

  async function* chunked(text: string, size: number) {
    for (let i = 0; i < text.length; i += size) yield Buffer.from(text.slice(i, i + size));
  }

  it('finds the entries and accepts the completion marker, whatever the chunking', async () => {
    for (const size of [1, 7, 64, 100_000]) {
      const res = await engine.inspect(chunked(complete, size), 'plain');
      expect(res.entries, `chunk ${size}`).toEqual([
        { type: 'TABLE', schema: 'public', name: 't' },
        { type: 'TABLE DATA', schema: 'public', name: 't' },
      ]);
    }
  });

  it('rejects a dump cut before its completion marker, or with SQL after it', async () => {
    const cut = complete.slice(0, complete.indexOf('-- PostgreSQL database dump complete'));
    await expect(engine.inspect(chunked(cut, 50), 'plain')).rejects.toBeInstanceOf(BackupError);
    await expect(engine.inspect(chunked(`${complete}DROP TABLE t;\n`, 50), 'plain')).rejects.toThrow(
      /completion marker/,
    );
  });
});
