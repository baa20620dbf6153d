/**
 * Throughput of the MySQL dump counter (the exact facts of a MySQL backup), on generated INSERT data:
 *
 *   node bench/mysql-counter.ts [--mb 400]
 *
 * Prints MB/s; compare with the dump tool's own rate (mariadb-dump is typically 50 MB/s here).
 */
import { parseArgs } from 'node:util';
import { MysqlDumpCounter } from '../src/engines/mysql/dump-facts.ts';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '400' } } });
const row = (i: number) =>
  `(${i},'customer ${i} it\\'s a \\\\ name),(',${i * 1.5},'2024-02-29 23:59:59.123456',0x${'0a1b2c3d'.repeat(8)},NULL)`;
const statement = `INSERT INTO \`customers\` VALUES ${Array.from({ length: 5000 }, (_, i) => row(i)).join(',')};\n`;
const block = Buffer.from(statement.repeat(20));
const rounds = Math.ceil((Number(values.mb) * 1024 * 1024) / block.length);
const counter = new MysqlDumpCounter('db');
counter.write(Buffer.from('CREATE TABLE `customers` (`id` int);\n'));
const started = performance.now();
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < block.length; i += 65_536) counter.write(block.subarray(i, i + 65_536));
}
const seconds = (performance.now() - started) / 1000;
const mb = (rounds * block.length) / 1024 / 1024;
const rows = counter.facts().tables[0]?.rows;
if (rows !== rounds * 20 * 5000) throw new Error(`counted ${rows} rows, expected ${rounds * 20 * 5000}`);
console.log(
  `counted ${mb.toFixed(0)} MB (${rows} rows) in ${seconds.toFixed(2)} s: ${(mb / seconds).toFixed(0)} MB/s`,
);
