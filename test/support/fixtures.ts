/** Test databases. */
import { createDatabase, query } from './pg.ts';
import { RICH_DATA_SQL, RICH_SCHEMA_SQL } from './sample-data.ts';

export async function createRichDatabase(name: string): Promise<void> {
  await createDatabase(name);
  await query(name, RICH_SCHEMA_SQL);
  await query(name, RICH_DATA_SQL);
  await query(name, 'ANALYZE');
}

/** A database of ~`mb` megabytes of poorly compressible rows, so a backup takes long enough to interrupt. */
export async function createBulkDatabase(name: string, mb: number): Promise<void> {
  await createDatabase(name);
  const rows = Math.round((mb * 1024 * 1024) / 140);
  await query(
    name,
    `CREATE TABLE bulk (id int PRIMARY KEY, a text, b text, c text, d text);
     INSERT INTO bulk SELECT g, md5(random()::text), md5(random()::text), md5(random()::text), md5(random()::text)
       FROM generate_series(1, ${rows}) g;`,
  );
}
