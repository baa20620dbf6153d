/** The MySQL engine's pure parts: tool versions, options, option files, and reading dump scripts. */
import { describe, expect, it } from 'vitest';
import { connectionArgs, dumpArgs, optionFileText } from '../../src/engines/mysql/args.ts';
import { clientMessage, mysqlErrorCode } from '../../src/engines/mysql/errors.ts';
import { inspectMysqlDump } from '../../src/engines/mysql/inspect.ts';
import { eachLine } from '../../src/engines/mysql/lines.ts';
import { dumpKindOfLine, unnameAlterDatabase } from '../../src/engines/mysql/script.ts';
import { parseBatchOutput } from '../../src/engines/mysql/sql.ts';
import { parseToolVersion } from '../../src/engines/mysql/tools.ts';
import { BackupError } from '../../src/util/errors.ts';

const MARIADB = { flavour: 'mariadb', version: 'mariadb-dump 10.19 (MariaDB 10.11.19)', major: 10 } as const;
const MYSQL8 = { flavour: 'mysql', version: 'mysqldump 8.0.36 (MySQL)', major: 8 } as const;

/** A trimmed-down mariadb-dump --databases script with one of everything. */
const MULTI_DUMP = `/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: shop
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1

/*!40101 SET NAMES utf8mb4 */;

--
-- Current Database: \`shop\`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`shop\` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

USE \`shop\`;

--
-- Table structure for table \`or\`\`ders\`
--

DROP TABLE IF EXISTS \`or\`\`ders\`;
CREATE TABLE \`or\`\`ders\` (
  \`id\` int(11) NOT NULL
) ENGINE=InnoDB;

--
-- Dumping data for table \`or\`\`ders\`
--

INSERT INTO \`or\`\`ders\` VALUES
(1),
(2);
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=\`root\`@\`localhost\`*/ /*!50003 TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.id = 1
*/;;
DELIMITER ;

--
-- Dumping events for database 'shop'
--
/*!50106 CREATE*/ /*!50117 DEFINER=\`root\`@\`localhost\`*/ /*!50106 EVENT \`nightly\` ON SCHEDULE EVERY 1 DAY DO SELECT 1
*/ ;;

--
-- Dumping routines for database 'shop'
--
CREATE DEFINER=\`odd user\`@\`%\` PROCEDURE \`p\`(IN x INT)
BEGIN SELECT x; END
;;
CREATE DEFINER=\`root\`@\`localhost\` FUNCTION \`f\`(x INT) RETURNS int(11)
RETURN x*2
;;

--
-- Current Database: \`billing\`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`billing\`;

USE \`billing\`;

--
-- Temporary table structure for view \`v\`
--

--
-- Current Database: \`shop\`
--

USE \`shop\`;

--
-- Final view structure for view \`v\`
--

-- Dump completed on 2026-11-22 11:30:46
`;

async function* chunked(text: string | Buffer, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(c);
  return Buffer.concat(out);
}

describe('parseToolVersion', () => {
  it.each([
    [
      'mariadb-dump',
      'mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)',
      { flavour: 'mariadb', version: 'mariadb-dump 10.19 (MariaDB 10.11.19)', major: 10 },
    ],
    [
      'mariadb',
      'mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper',
      { flavour: 'mariadb', version: 'mariadb 15.1 (MariaDB 10.11.19)', major: 10 },
    ],
    [
      'mariadb-dump',
      'mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)',
      { flavour: 'mariadb', version: 'mariadb-dump 10.19 (MariaDB 11.4.2)', major: 11 },
    ],
    [
      'mysqldump',
      'mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)',
      { flavour: 'mysql', version: 'mysqldump 10.13 (MySQL 5.7.44)', major: 5 },
    ],
    [
      'mysqldump',
      'mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)',
      { flavour: 'mysql', version: 'mysqldump 8.0.36 (MySQL)', major: 8 },
    ],
    [
      'mysqldump',
      "mysqldump  Ver 8.0.35-27 for Linux on x86_64 (Percona Server (GPL), Release '27')",
      { flavour: 'mysql', version: 'mysqldump 8.0.35 (Percona Server)', major: 8 },
    ],
  ])('%s: %s', (name, output, expected) => {
    expect(parseToolVersion(name, `${output}\n`)).toEqual(expected);
  });

  it('is undefined for anything else', () => {
    expect(parseToolVersion('mysqldump', 'usage: mysqldump [OPTIONS]')).toBeUndefined();
  });
});

describe('options', () => {
  it('dumps one database without --databases, several with it, none as --all-databases', () => {
    const common = [
      '--single-transaction',
      '--routines',
      '--triggers',
      '--events',
      '--hex-blob',
      '--extended-insert',
      '--quote-names',
      '--default-character-set=utf8mb4',
      '--max-allowed-packet=1G',
      '--no-data-med',
    ];
    expect(dumpArgs(MARIADB, ['shop'], false)).toEqual([...common, '--', 'shop']);
    expect(dumpArgs(MARIADB, ['shop', '-odd'], false)).toEqual([
      ...common,
      '--databases',
      '--',
      'shop',
      '-odd',
    ]);
    expect(dumpArgs(MARIADB, undefined, true)).toEqual([...common, '--no-data', '--all-databases']);
  });

  it("adds MySQL's own options for MySQL's mysqldump", () => {
    expect(dumpArgs(MYSQL8, ['shop'], false)).toEqual(
      expect.arrayContaining(['--set-gtid-purged=OFF', '--column-statistics=0']),
    );
    expect(dumpArgs(MARIADB, ['shop'], false).join(' ')).not.toMatch(/gtid|column-statistics/);
  });

  it('connects with host, port, user and TLS as arguments; never the password', () => {
    const c = {
      host: 'db.internal',
      port: 3307,
      database: 'shop',
      user: 'backup',
      password: undefined,
      sslmode: undefined,
      tls: true,
      tlsCa: undefined,
    };
    expect(connectionArgs(c, 'mariadb')).toEqual([
      '--host=db.internal',
      '--port=3307',
      '--user=backup',
      '--ssl',
    ]);
    expect(connectionArgs(c, 'mysql').at(-1)).toBe('--ssl-mode=REQUIRED');
    expect(
      connectionArgs({ ...c, host: undefined, port: undefined, user: undefined, tls: false }, 'mysql'),
    ).toEqual([]);
    // A CA means the certificate and host name are verified.
    const ca = { ...c, tlsCa: '/etc/ssl/db-ca.pem' };
    expect(connectionArgs(ca, 'mariadb').slice(-2)).toEqual([
      '--ssl-ca=/etc/ssl/db-ca.pem',
      '--ssl-verify-server-cert',
    ]);
    expect(connectionArgs(ca, 'mysql').slice(-2)).toEqual([
      '--ssl-ca=/etc/ssl/db-ca.pem',
      '--ssl-mode=VERIFY_IDENTITY',
    ]);
  });

  it('quotes and escapes the password in the option file', () => {
    expect(optionFileText('plain')).toBe('[client]\npassword="plain"\n');
    expect(optionFileText('a"b\\c #d;e\nf\tg')).toBe('[client]\npassword="a\\"b\\\\c #d;e\\nf\\tg"\n');
  });
});

describe('client output', () => {
  it('reads batch rows with their escapes', () => {
    expect(parseBatchOutput('a\tb\\tc\nx\\\\y\tline\\nbreak\n')).toEqual([
      ['a', 'b\tc'],
      ['x\\y', 'line\nbreak'],
    ]);
    expect(parseBatchOutput('')).toEqual([]);
  });

  it('finds error numbers and keeps the error lines, not the echoed statement', () => {
    expect(mysqlErrorCode("ERROR 1045 (28000): Access denied for user 'x'@'h' (using password: YES)")).toBe(
      1045,
    );
    expect(mysqlErrorCode('mariadb-dump: Got error: 2002: "Can\'t connect" when trying to connect')).toBe(
      2002,
    );
    expect(mysqlErrorCode('mysqldump: Error 2013: Lost connection to server during query')).toBe(2013);
    expect(mysqlErrorCode("mysqldump: Couldn't execute 'SELECT 1': Unknown table (1109)")).toBe(1109);
    const echoed = `--------------\nINSERT INTO t VALUES ${'(1),'.repeat(1000)}(1)\n--------------\n\nERROR 1146 (42S02) at line 9: Table 'db.t' doesn't exist\n`;
    expect(clientMessage(echoed)).toBe("ERROR 1146 (42S02) at line 9: Table 'db.t' doesn't exist");
  });
});

describe('dump scripts', () => {
  it('tells a one-database script from one that selects its databases', () => {
    expect(dumpKindOfLine('-- Current Database: `shop`')).toBe('databases');
    expect(dumpKindOfLine('USE `shop`;')).toBe('databases');
    expect(dumpKindOfLine('-- Table structure for table `t`')).toBe('database');
    expect(dumpKindOfLine('ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;')).toBe(
      'database',
    );
    expect(dumpKindOfLine('-- Dump completed on 2026-01-01')).toBe('database');
    expect(dumpKindOfLine('/*!40101 SET NAMES utf8mb4 */;')).toBeUndefined();
    expect(dumpKindOfLine('-- MariaDB dump 10.19')).toBeUndefined();
  });

  it('lists what a script creates, however it is cut into chunks', async () => {
    const expected = [
      { type: 'DATABASE', schema: '', name: 'shop' },
      { type: 'TABLE', schema: 'shop', name: 'or`ders' },
      { type: 'TABLE DATA', schema: 'shop', name: 'or`ders' },
      { type: 'TRIGGER', schema: 'shop', name: 'trg' },
      { type: 'EVENT', schema: 'shop', name: 'nightly' },
      { type: 'PROCEDURE', schema: 'shop', name: 'p' },
      { type: 'FUNCTION', schema: 'shop', name: 'f' },
      { type: 'DATABASE', schema: '', name: 'billing' },
      { type: 'VIEW', schema: 'shop', name: 'v' },
    ];
    for (const size of [1, 3, 7, 64, 1000, 1 << 20]) {
      expect((await inspectMysqlDump(chunked(MULTI_DUMP, size))).entries, `chunks of ${size}`).toEqual(
        expected,
      );
    }
  });

  it('fails a script cut anywhere before its last line', async () => {
    const cut = MULTI_DUMP.indexOf('-- Dump completed');
    for (const at of [cut, Math.floor(cut / 2), MULTI_DUMP.length - 12]) {
      await expect(inspectMysqlDump(chunked(MULTI_DUMP.slice(0, at), 64))).rejects.toThrow(
        /does not end with the dump tool's "-- Dump completed" line/,
      );
    }
    // Text after the trailer is not a dump's either.
    await expect(inspectMysqlDump(chunked(`${MULTI_DUMP}DROP TABLE x;\n`, 64))).rejects.toBeInstanceOf(
      BackupError,
    );
    // Trailing blank lines are fine.
    await expect(inspectMysqlDump(chunked(`${MULTI_DUMP}\n\n`, 64))).resolves.toBeDefined();
  });

  it('fails something that is not a dump at all', async () => {
    await expect(
      inspectMysqlDump(chunked('CREATE TABLE t (id int);\n-- Dump completed on 2026-01-01\n', 16)),
    ).rejects.toThrow(/does not start like a mysqldump\/mariadb-dump script/);
    await expect(inspectMysqlDump(chunked('PGDMP\u0000\u0001binary', 16))).rejects.toBeInstanceOf(
      BackupError,
    );
  });

  it('passes a stream through unchanged, inserting text before chosen lines, across chunks and long lines', async () => {
    const long = `INSERT INTO t VALUES ${'(1),'.repeat(2000)}(1);`; // longer than the 1 KiB a line is looked at
    const text = `a\nMARK one\n${long}\nMARK two\nb\n\nMARK three`;
    const seen: string[] = [];
    const insert = (head: string) => {
      seen.push(head.slice(0, 10));
      return head.startsWith('MARK') ? '>>' : undefined;
    };
    for (const size of [1, 2, 5, 100, 1024, 5000, 1 << 20]) {
      seen.length = 0;
      const out = (await collect(eachLine(chunked(text, size), insert))).toString();
      expect(out, `chunks of ${size}`).toBe(`a\n>>MARK one\n${long}\n>>MARK two\nb\n\n>>MARK three`);
      expect(seen).toEqual(['a', 'MARK one', 'INSERT INT', 'MARK two', 'b', '', 'MARK three']);
    }
  });

  it('replaces short lines whole, across chunks; a line too long to be seen whole is kept', async () => {
    const long = `REPLACE ${'x'.repeat(2000)}`;
    const text = `a\nREPLACE me\n${long}\nb\nREPLACE last`;
    const edit = (head: string) => (head.startsWith('REPLACE') ? { replace: 'new' } : undefined);
    for (const size of [1, 3, 7, 100, 1024, 5000]) {
      const out = (await collect(eachLine(chunked(text, size), edit))).toString();
      expect(out, `chunks of ${size}`).toBe(`a\nnew\n${long}\nb\nnew`);
    }
  });

  it('a one-database restore drops the source name from the ALTER DATABASE lines around routines', () => {
    expect(
      unnameAlterDatabase('ALTER DATABASE `src` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;'),
    ).toEqual({
      replace: 'ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci ;',
    });
    expect(
      unnameAlterDatabase('ALTER DATABASE `we``ird` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ;'),
    ).toEqual({
      replace: 'ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ;',
    });
    // datasaver's own first line has no name; other statements are left alone.
    expect(
      unnameAlterDatabase('ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci;'),
    ).toBeUndefined();
    expect(unnameAlterDatabase('ALTER TABLE `src` ADD KEY (a);')).toBeUndefined();
    expect(
      unnameAlterDatabase("INSERT INTO t VALUES ('ALTER DATABASE `src` CHARACTER SET x COLLATE y ;');"),
    ).toBeUndefined();
  });

  it('keeps multi-byte characters whole', async () => {
    const text = 'ü😀\n-- Table structure for table `😀`\nß';
    const heads: string[] = [];
    await collect(
      eachLine(chunked(text, 1), (h) => {
        heads.push(h);
        return undefined;
      }),
    );
    expect(heads).toEqual(['ü😀', '-- Table structure for table `😀`', 'ß']);
  });
});
