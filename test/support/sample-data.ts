/** Sample data shared by the test suite and the demo (no test-runner imports here). */

/**
 * A small database that exercises what dumps get wrong: several schemas, quoted and unicode identifiers,
 * jsonb, bytea, arrays, numeric, timestamptz, sequences, views, a materialized view, functions, triggers,
 * comments and a large object.
 */
export const RICH_SCHEMA_SQL = `
CREATE SCHEMA sales;
CREATE SCHEMA "Ünïcödé Schema";
CREATE TYPE sales.status AS ENUM ('new', 'paid', 'shipped');
CREATE SEQUENCE sales.invoice_no START 1000 INCREMENT 7;

CREATE TABLE sales.customers (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  email text UNIQUE,
  tags text[] NOT NULL DEFAULT '{}',
  profile jsonb,
  balance numeric(14, 4) NOT NULL DEFAULT 0,
  created timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
CREATE TABLE sales.orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES sales.customers(id),
  invoice bigint NOT NULL DEFAULT nextval('sales.invoice_no'),
  status sales.status NOT NULL DEFAULT 'new',
  amounts numeric[] NOT NULL,
  placed timestamptz NOT NULL,
  updated_at timestamptz
);
CREATE INDEX orders_placed_idx ON sales.orders (placed);
CREATE TABLE "Ünïcödé Schema"."Mixed ""Quoted"" Table" ("Column With Space" int, "ключ" text, blob bytea);
CREATE TABLE public.audit (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), what text NOT NULL);

COMMENT ON TABLE sales.customers IS 'People who buy things — with ünïcödé';
COMMENT ON COLUMN sales.orders.amounts IS 'line amounts';

CREATE FUNCTION sales.order_total(o sales.orders) RETURNS numeric LANGUAGE sql IMMUTABLE
  AS $$ SELECT coalesce(sum(a), 0) FROM unnest(o.amounts) a $$;
CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := '2026-02-02 02:02:02+00';
  RETURN NEW;
END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON sales.orders FOR EACH ROW EXECUTE FUNCTION sales.touch();

CREATE VIEW sales.customer_totals AS
  SELECT c.id, c.name, sum(sales.order_total(o)) AS total
    FROM sales.customers c LEFT JOIN sales.orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE MATERIALIZED VIEW sales.daily AS
  SELECT date_trunc('day', placed) AS day, count(*) AS n FROM sales.orders GROUP BY 1;
`;

export const RICH_DATA_SQL = `
INSERT INTO sales.customers (name, email, tags, profile, balance)
  SELECT 'Customer ' || g || ' — Ünï', 'c' || g || '@example.test', ARRAY['t' || (g % 3), 'vip'],
         jsonb_build_object('n', g, 'nested', jsonb_build_object('ok', g % 2 = 0), 'list', jsonb_build_array(g, 'x')),
         (g * 3.1415)::numeric(14, 4)
    FROM generate_series(1, 200) g;
INSERT INTO sales.orders (customer_id, amounts, placed, status)
  SELECT 1 + (g % 200), ARRAY[(g % 97)::numeric / 7, 1.5], '2026-01-01 00:00:00+00'::timestamptz + g * interval '37 minutes',
         (ARRAY['new', 'paid', 'shipped']::sales.status[])[1 + g % 3]
    FROM generate_series(1, 2000) g;
UPDATE sales.orders SET amounts = amounts || 2.25::numeric WHERE id % 10 = 0;
INSERT INTO "Ünïcödé Schema"."Mixed ""Quoted"" Table" VALUES (1, 'значение', '\\x00ff10'), (2, NULL, decode(repeat('ab', 500), 'hex'));
INSERT INTO public.audit (at, what) SELECT '2026-03-03 03:03:03+00', 'event ' || g FROM generate_series(1, 50) g;
REFRESH MATERIALIZED VIEW sales.daily;
SELECT lo_from_bytea(0, convert_to('a large object — with ünïcödé', 'UTF8'));
`;
