/**
 * Cost of reading a PostgreSQL dump's sequence values as it streams (the `sequences` of a backup's exact
 * facts), on a real dump piped in:
 *
 *   pg_dump -Fc -Z0 bench | node bench/postgres-sequences.ts
 *   pg_dump -Fp bench | node bench/postgres-sequences.ts --format plain
 *
 * Prints the bytes read, the time spent in the reader and its throughput; compare with pg_dump's own rate.
 */
import { parseArgs } from 'node:util';
import { sequenceReader } from '../src/engines/postgres/facts.ts';

const { values } = parseArgs({ options: { format: { type: 'string', default: 'custom' } } });
const reader = sequenceReader(values.format);
let bytes = 0;
let inReader = 0;
const started = performance.now();
for await (const chunk of process.stdin) {
  const before = performance.now();
  reader.push(chunk as Buffer);
  inReader += performance.now() - before;
  bytes += (chunk as Buffer).length;
}
const wall = (performance.now() - started) / 1000;
const read = reader.values();
const mb = bytes / 1024 / 1024;
console.log(
  `${values.format}: ${mb.toFixed(0)} MB in ${wall.toFixed(2)} s; reader ${(inReader / 1000).toFixed(3)} s ` +
    `(${(mb / (inReader / 1000)).toFixed(0)} MB/s), ${read === undefined ? 'no values' : `${read.length} sequences`}`,
);
