/**
 * `restore --force` over a database that already holds the backup's objects, for the schemas real
 * applications use: partitioned tables with keys (two levels deep), table inheritance with an inherited
 * CHECK constraint, foreign keys to and from partitioned tables, and views and a materialized view
 * stacked on a partitioned table.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { comparableDump, createDatabase, query, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let source: string;
let env: Record<string, string>;

const SCHEMA = `
CREATE SCHEMA sales;
CREATE TABLE sales.payment (payment_id int, payment_date date, amount numeric(5,2), note text,
  PRIMARY KEY (payment_id, payment_date)) PARTITION BY RANGE (payment_date);
CREATE TABLE sales.payment_2020 PARTITION OF sales.payment
  FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') PARTITION BY HASH (payment_id);
CREATE TABLE sales.payment_2020_a PARTITION OF sales.payment_2020 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE sales.payment_2020_b PARTITION OF sales.payment_2020 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE sales.payment_2021 PARTITION OF sales.payment FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE INDEX payment_note_idx ON sales.payment (note);
CREATE TABLE sales.refund (refund_id int PRIMARY KEY, payment_id int, payment_date date,
  FOREIGN KEY (payment_id, payment_date) REFERENCES sales.payment (payment_id, payment_date));
CREATE TABLE sales.audit (audit_id int, at date, refund_id int REFERENCES sales.refund,
  PRIMARY KEY (audit_id, at)) PARTITION BY RANGE (at);
CREATE TABLE sales.audit_2020 PARTITION OF sales.audit FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE public.film (film_id int PRIMARY KEY, length int CHECK (length > 0));
CREATE TABLE public.film_extra (bonus text) INHERITS (public.film);
CREATE VIEW sales.big_payment AS SELECT payment_id, amount FROM sales.payment WHERE amount > 5;
CREATE MATERIALIZED VIEW sales.daily AS SELECT payment_date, sum(amount) AS total FROM sales.payment GROUP BY 1;
CREATE VIEW sales.daily_top AS SELECT * FROM sales.daily WHERE total > 1;
INSERT INTO sales.payment SELECT g, DATE '2020-01-01' + g, g % 10, 'n' || g FROM generate_series(1, 600) g;
INSERT INTO sales.refund VALUES (1, 3, DATE '2020-01-04');
INSERT INTO sales.audit VALUES (1, '2020-06-01', 1);
INSERT INTO public.film VALUES (1, 90);
INSERT INTO public.film_extra VALUES (2, 100, 'commentary');
REFRESH MATERIALIZED VIEW sales.daily;
`;

beforeAll(async () => {
  source = uniqueName('parts');
  await createDatabase(source);
  await query(source, SCHEMA);
  env = targetEnv(source, await tempDir());
  const res = await runCli(['backup'], env);
  expect(res.code, res.output).toBe(0);
});

async function restoredCopy(): Promise<string> {
  const copy = uniqueName('parts_copy');
  const res = await runCli(['restore', 'latest', '--target-db', copy], env);
  expect(res.code, res.output).toBe(0);
  return copy;
}

describe('restore --force over partitioned tables, inheritance and dependent views', () => {
  it('replaces every object the backup holds and leaves the others alone', async () => {
    const copy = await restoredCopy();
    await query(
      copy,
      `UPDATE sales.payment SET amount = 0 WHERE payment_id < 100;
       DELETE FROM sales.payment WHERE payment_id > 500;
       INSERT INTO public.film_extra VALUES (3, 1, 'x');
       REFRESH MATERIALIZED VIEW sales.daily;
       CREATE TABLE public.local_notes (n text); INSERT INTO public.local_notes VALUES ('kept')`,
    );
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--force'], env);
    expect(res.code, res.output).toBe(0);
    // Objects outside the backup stay; everything else compares equal to the source.
    expect(await query(copy, 'SELECT n FROM public.local_notes')).toEqual([{ n: 'kept' }]);
    await query(copy, 'DROP TABLE public.local_notes');
    expect(await comparableDump(copy)).toBe(await comparableDump(source));
    // The partitions' keys are attached to their parents' again: no index is left invalid.
    expect(await query(copy, 'SELECT count(*)::int AS n FROM pg_index WHERE NOT indisvalid')).toEqual([
      { n: 0 },
    ]);
  });

  it('a parallel --force restore (--jobs 2) replaces them too', async () => {
    const copy = await restoredCopy();
    await query(
      copy,
      'DELETE FROM sales.payment WHERE payment_id > 500; REFRESH MATERIALIZED VIEW sales.daily',
    );
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--force', '--jobs', '2'], env);
    expect(res.code, res.output).toBe(0);
    expect(await comparableDump(copy)).toBe(await comparableDump(source));
  });

  it('a --force restore that fails leaves the database as it was', async () => {
    const copy = await restoredCopy();
    await query(
      copy,
      'DELETE FROM sales.payment WHERE payment_id > 500; REFRESH MATERIALIZED VIEW sales.daily',
    );
    // A table outside the backup whose foreign key needs a key the restore would drop and recreate.
    await query(
      copy,
      `CREATE TABLE public.pins (payment_id int, payment_date date,
         FOREIGN KEY (payment_id, payment_date) REFERENCES sales.payment (payment_id, payment_date))`,
    );
    const before = await comparableDump(copy);
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--force'], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/pins/);
    expect(res.stderr).toMatch(/single transaction: .* was left as it was/);
    expect(await comparableDump(copy)).toBe(before);
  });
});
