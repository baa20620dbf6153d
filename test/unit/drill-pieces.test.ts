/**
 * The pure pieces a restore drill stands on: a plain PostgreSQL dump without ownership and grants (any
 * chunking, COPY data untouched), the names of drill scratch databases and which of them a killed drill
 * left, and the drill settings (DATASAVER_DRILL_URL, DATASAVER_DRILL_SCHEDULE).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.ts';
import { OwnershipFilter } from '../../src/engines/postgres/ownership.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { abandonedScratchDatabases, scratchDatabaseName } from '../../src/util/private-temp.ts';

const SCRIPT = [
  "SET client_encoding = 'UTF8';",
  'CREATE TABLE public.orders (id integer, note text);',
  'ALTER TABLE public.orders OWNER TO app;',
  'ALTER SEQUENCE public.orders_id_seq OWNER TO app;',
  'COPY public.orders (id, note) FROM stdin;',
  '1\tGRANT ALL ON everything TO everyone;',
  '2\tALTER TABLE x OWNER TO y;',
  '\\.',
  'GRANT SELECT ON TABLE public.orders TO reader;',
  'REVOKE ALL ON SCHEMA public FROM PUBLIC;',
  'ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA public GRANT SELECT ON TABLES TO reader;',
  'CREATE VIEW public.v AS SELECT 1;',
  '',
].join('\n');

const EXPECTED = [
  "SET client_encoding = 'UTF8';",
  'CREATE TABLE public.orders (id integer, note text);',
  'COPY public.orders (id, note) FROM stdin;',
  '1\tGRANT ALL ON everything TO everyone;',
  '2\tALTER TABLE x OWNER TO y;',
  '\\.',
  'CREATE VIEW public.v AS SELECT 1;',
  '',
].join('\n');

function filtered(text: string, chunk: number): string {
  const filter = new OwnershipFilter();
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(filter.push(bytes.subarray(i, i + chunk)));
  out.push(filter.end());
  return Buffer.concat(out).toString();
}

describe('a plain dump without ownership', () => {
  it('drops ownership and privilege statements, never COPY rows, whatever the chunks', () => {
    for (const chunk of [1, 2, 3, 7, 64, 4096]) expect(filtered(SCRIPT, chunk)).toBe(EXPECTED);
  });

  it('passes long lines through whole: rows in COPY data, and a line too long to be a statement', () => {
    const row = `1\t${'x'.repeat(3_000_000)}`;
    const long = `GRANT ${'y'.repeat(2_000_000)};`;
    const text = `COPY public.t (a, b) FROM stdin;\n${row}\n\\.\n${long}\nGRANT SELECT ON t TO r;\n`;
    const expected = `COPY public.t (a, b) FROM stdin;\n${row}\n\\.\n${long}\n`;
    expect(filtered(text, 65_536)).toBe(expected);
  });

  it('passes a last line without a newline as it is', () => {
    expect(filtered('CREATE TABLE t (a int);\nSELECT 1;', 5)).toBe('CREATE TABLE t (a int);\nSELECT 1;');
  });
});

describe('scratch database names', () => {
  it('are unique, fit an identifier, and are never judged abandoned while their drill runs', async () => {
    const a = await scratchDatabaseName();
    const b = await scratchDatabaseName();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^datasaver_drill_[a-z0-9_]+$/);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(await abandonedScratchDatabases([a, b])).toEqual([]);
  });

  it("a name whose owner is gone is abandoned; another machine's and foreign names are not", async () => {
    const mine = await scratchDatabaseName();
    // The same pid with another start time: this process's pid, reused by a process that is gone.
    const parts = mine.split('_');
    parts[5] = (Number.parseInt(parts[5]!, 36) + 1).toString(36);
    const gone = parts.join('_');
    const elsewhere = ['datasaver', 'drill', '00000000', ...mine.split('_').slice(3)].join('_');
    const names = [gone, elsewhere, 'datasaver_drill_x', 'shop'];
    expect(await abandonedScratchDatabases(names)).toEqual([gone]);
  });
});

describe('drill settings', () => {
  const base = { DATASAVER_DATABASE_URL: 'postgres://u:p@db/shop', DATASAVER_STORAGE_PATH: '/backups' };
  const parse = (env: Record<string, string>) =>
    parseConfig({
      env: { ...base, ...env },
      readFile: (path) => {
        throw new Error(`no file ${path} here`);
      },
    });

  it('are off by default: a throwaway server, no schedule', () => {
    expect(parse({}).targets[0]!.drill).toEqual({ server: undefined, schedule: undefined });
  });

  it('take a drill server of the target engine and a cron schedule', () => {
    const drill = parse({
      DATASAVER_DRILL_URL: 'postgres://drill:secret@drill-db:5433',
      DATASAVER_DRILL_SCHEDULE: '0 4 * * 0',
    }).targets[0]!.drill;
    expect(drill.schedule).toBe('0 4 * * 0');
    expect(drill.server?.engine).toBe('postgres');
    expect(drill.server?.connection).toMatchObject({
      host: 'drill-db',
      port: 5433,
      user: 'drill',
      database: undefined,
    });
    expect(drill.server?.connection.password?.reveal()).toBe('secret');
  });

  const refused = (env: Record<string, string>, text: string) => {
    let error: unknown;
    try {
      parse(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toContain(text);
    expect(String((error as Error).message)).not.toContain('secret');
  };

  it('refuse a URL naming a database, another engine, an engine without named databases, a bad schedule', () => {
    refused({ DATASAVER_DRILL_URL: 'postgres://u:secret@h/other' }, 'names a server only');
    refused({ DATASAVER_DRILL_URL: 'mysql://u:secret@h' }, 'a drill server runs the target');
    refused(
      { DATASAVER_DATABASE_URL: 'redis://h', DATASAVER_DRILL_URL: 'redis://u:secret@h' },
      'throwaway server',
    );
    refused({ DATASAVER_DRILL_SCHEDULE: 'weekly' }, 'not a valid schedule');
  });
});
