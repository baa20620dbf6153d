/** Exact facts counted from a mysqldump/mariadb-dump script as it streams: rows per table, objects by kind. */
import { describe, expect, it } from 'vitest';
import type { DatabaseFacts } from '../../src/engines/engine.ts';
import { MysqlDumpCounter, statementHead } from '../../src/engines/mysql/dump-facts.ts';
import { InsertRows } from '../../src/engines/mysql/insert-rows.ts';

/** Counts `script` fed in chunks of `size` bytes. */
function countChunked(script: string | Buffer, size: number, database?: string): DatabaseFacts {
  const buf = Buffer.from(script);
  const counter = new MysqlDumpCounter(database);
  for (let i = 0; i < buf.length; i += size) counter.write(buf.subarray(i, i + size));
  return counter.facts();
}

/** Counts `script` fed as two chunks cut at every byte position, and in chunks of a few sizes: always `expected`. */
function expectEverywhere(script: string, expected: DatabaseFacts, database?: string): void {
  const buf = Buffer.from(script);
  for (let cut = 0; cut <= buf.length; cut++) {
    const counter = new MysqlDumpCounter(database);
    counter.write(buf.subarray(0, cut));
    counter.write(buf.subarray(cut));
    expect(counter.facts(), `cut at byte ${cut}`).toEqual(expected);
  }
  for (const size of [1, 2, 3, 7, 64]) {
    expect(countChunked(buf, size, database), `chunks of ${size}`).toEqual(expected);
  }
}

function objects(counts: Partial<Record<string, number>>) {
  return ['databases', 'tables', 'views', 'routines', 'triggers', 'events'].map((kind) => ({
    kind,
    count: counts[kind] ?? 0,
  }));
}

/** A mariadb-dump --databases script (trimmed) with one of every kind of object, and the traps around them. */
const SCRIPT = `/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: shop
-- ------------------------------------------------------
/*!40101 SET NAMES utf8mb4 */;

--
-- Current Database: \`shop\`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`shop\` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

USE \`shop\`;

--
-- Sequence structure for \`seq1\`
--

DROP SEQUENCE IF EXISTS \`seq1\`;
CREATE SEQUENCE \`seq1\` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB;
DO SETVAL(\`seq1\`, 1, 0);

--
-- Table structure for table \`empty\`
--

DROP TABLE IF EXISTS \`empty\`;
CREATE TABLE \`empty\` (
  \`id\` int(11) DEFAULT NULL COMMENT 'not the end;'
) ENGINE=InnoDB;

LOCK TABLES \`empty\` WRITE;
/*!40000 ALTER TABLE \`empty\` DISABLE KEYS */;
/*!40000 ALTER TABLE \`empty\` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table \`t\`
--

DROP TABLE IF EXISTS \`t\`;
CREATE TABLE \`t\` (
  \`id\` int(11) NOT NULL,
  \`s\` text DEFAULT NULL,
  \`b\` blob DEFAULT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB;

LOCK TABLES \`t\` WRITE;
INSERT INTO \`t\` VALUES
(1,'),(\\'x\\\\',0x00FF),
(2,NULL,''),
(3,'a\\nb;\\nINSERT INTO \`t\` VALUES (9);',NULL);
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=\`root\`@\`localhost\`*/ /*!50003 TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.s = 'x' 
*/;;
DELIMITER ;

--
-- Temporary table structure for view \`v\`
--

DROP TABLE IF EXISTS \`v\`;
/*!50001 DROP VIEW IF EXISTS \`v\`*/;
/*!50001 CREATE VIEW \`v\` AS SELECT
 NULL AS \`id\` */;

--
-- Temporary table structure for view \`old_style\`
--

/*!50001 CREATE TABLE \`old_style\` (
  \`id\` tinyint NOT NULL
) ENGINE=MyISAM */;

--
-- Dumping events for database 'shop'
--
DELIMITER ;;
/*!50003 SET time_zone             = 'SYSTEM' */ ;;
/*!50106 CREATE*/ /*!50117 DEFINER=\`root\`@\`localhost\`*/ /*!50106 EVENT \`ev\` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO SELECT 1 
*/ ;;
DELIMITER ;

--
-- Dumping routines for database 'shop'
--
DELIMITER ;;
CREATE DEFINER=\`root\`@\`localhost\` FUNCTION \`f\`(x INT) RETURNS int(11)
    DETERMINISTIC
RETURN x
;;
DELIMITER ;
DELIMITER ;;
CREATE DEFINER=\`root\`@\`localhost\` PROCEDURE \`p\`()
BEGIN
INSERT INTO t VALUES (10, 'from the procedure', NULL);
CREATE TABLE made_by_p (id INT);
USE other;
END
;;
DELIMITER ;

--
-- Current Database: \`second db\`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`second db\`;

USE \`second db\`;
CREATE TABLE \`t\` (\`id\` int);
INSERT INTO \`t\` VALUES (1),(2);
INSERT INTO \`t\` VALUES (3);

--
-- Current Database: \`shop\`
--

USE \`shop\`;

--
-- Final view structure for view \`v\`
--

/*!50001 DROP VIEW IF EXISTS \`v\`*/;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=\`root\`@\`localhost\` SQL SECURITY DEFINER */
/*!50001 VIEW \`v\` AS select \`t\`.\`id\` AS \`id\` from \`t\` */;

/*!50001 DROP VIEW IF EXISTS \`old_style\`*/;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=\`root\`@\`localhost\` SQL SECURITY DEFINER */
/*!50001 VIEW \`old_style\` AS select 1 AS \`id\` */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;

-- Dump completed on 2026-12-07 20:17:11
`;

const SCRIPT_FACTS: DatabaseFacts = {
  exact: true,
  tables: [
    { name: 'second db.t', rows: 3 },
    { name: 'shop.empty', rows: 0 },
    { name: 'shop.t', rows: 3 },
  ],
  objects: objects({ databases: 2, tables: 3, views: 2, routines: 2, triggers: 1, events: 1 }),
};

/** Rows of one INSERT statement, fed whole. */
function rowsOf(statement: string): { table: string; rows: number; end: number } {
  const insert = new InsertRows();
  const buf = Buffer.from(statement);
  const end = insert.scan(buf, statement.indexOf(' INTO ') + ' INTO '.length);
  return { table: insert.table, rows: insert.rows, end };
}

describe('rows of an INSERT statement', () => {
  it('counts rows, not what strings hold: quotes, escapes, doubled quotes, backslashes, parentheses', () => {
    const values = [
      "(1,'),(')", // the row separator inside a string
      "(2,'it\\'s','')", // an escaped quote, an empty string
      "(3,'say ''hi''),(','x')", // doubled quotes
      "(4,'\\\\','\\\\\\'),(')", // backslashes before the closing quote, then an escaped one
      '(5,NULL,0x00FF28292C27)', // hex binary data holding ( ) , '
      "(6,_binary '\\0\\'()\\\\',b'0101')", // a binary string, a bit value
      "(7,'a\\nb\\r\\Zc','tab\\there')", // escaped newlines and control characters
      '(8,"double ), quoted",-1.5e10)',
      "(9,ST_GeomFromText('POINT(1 1)'),(1))", // parentheses in a row
    ];
    const statement = `INSERT INTO \`t\` VALUES ${values.join(',')};`;
    expect(rowsOf(statement)).toEqual({ table: 't', rows: values.length, end: statement.length });
    // mariadb-dump's form: a row a line.
    expect(rowsOf(`INSERT INTO \`t\` VALUES\n${values.join(',\n')};\n`).rows).toBe(values.length);
  });

  it('reads the table name (backticks doubled, qualified, bare) and skips a column list', () => {
    expect(rowsOf('INSERT INTO `we``ird (x)` VALUES (1),(2);')).toMatchObject({
      table: 'we`ird (x)',
      rows: 2,
    });
    expect(rowsOf('INSERT INTO `db`.`t` VALUES (1);')).toMatchObject({ table: 't', rows: 1 });
    expect(rowsOf('INSERT INTO plain VALUES (1);')).toMatchObject({ table: 'plain', rows: 1 });
    expect(rowsOf('INSERT INTO plain(a) VALUES (1);')).toMatchObject({ table: 'plain', rows: 1 });
    expect(rowsOf('INSERT INTO `t` (`a`, `b``)`, `(c`) VALUES (1,2,3),(4,5,6);')).toMatchObject({
      table: 't',
      rows: 2,
    });
    expect(rowsOf('INSERT INTO `😀` VALUES (1);')).toMatchObject({ table: '😀', rows: 1 });
  });

  it("ends at the statement's semicolon, not at one inside a string", () => {
    const statement = "INSERT INTO `t` VALUES (1,';'),(2,'\\';');SELECT 1;";
    expect(rowsOf(statement)).toMatchObject({ rows: 2, end: statement.indexOf('SELECT') });
    expect(rowsOf('INSERT INTO `t` VALUES (1)').end).toBe(-1);
  });
});

describe('facts of a dump script', () => {
  it('counts rows per table and objects by kind, each once, however the script is cut', () => {
    expectEverywhere(SCRIPT, SCRIPT_FACTS);
  });

  it("names a one-database script's tables after the database it was dumped from", () => {
    const script = `-- MariaDB dump 10.19
CREATE TABLE \`a\` (\`id\` int);
INSERT INTO \`a\` VALUES (1),(2),(3);
CREATE TABLE \`b\` (\`id\` int);
-- Dump completed
`;
    expectEverywhere(
      script,
      {
        exact: true,
        tables: [
          { name: 'shop.a', rows: 3 },
          { name: 'shop.b', rows: 0 },
        ],
        objects: objects({ databases: 1, tables: 2 }),
      },
      'shop',
    );
  });

  it('adds up several INSERTs of a table, and the forms option files may ask for', () => {
    const script = `CREATE TABLE \`t\` (\`id\` int, \`s\` text);
INSERT INTO \`t\` VALUES (1,'a');
INSERT INTO \`t\` VALUES (2,'b');
INSERT IGNORE INTO \`t\` VALUES (3,'c'),(4,'d');
REPLACE INTO \`t\` (\`id\`, \`s\`) VALUES (5,'e');
`;
    expectEverywhere(
      script,
      {
        exact: true,
        tables: [{ name: 'db.t', rows: 5 }],
        objects: objects({ databases: 1, tables: 1 }),
      },
      'db',
    );
  });

  it('reads lines of megabytes without losing the statement that follows', () => {
    const rows = 200_000;
    const longInsert = `INSERT INTO \`big\` VALUES ${Array.from({ length: rows }, (_, i) => `(${i},'r\\'ow),(${i}')`).join(',')};`;
    const longView = `/*!50001 VIEW \`v\` AS select ${'1 AS x, '.repeat(500)}2 AS \`y\` */;`;
    const script = `CREATE TABLE \`big\` (\`id\` int, \`s\` text);
${longInsert}
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=\`root\`@\`localhost\` SQL SECURITY DEFINER */
${longView} \r
CREATE TABLE \`after\` (\`id\` int);
INSERT INTO \`after\` VALUES (1);
`;
    const expected = {
      exact: true,
      tables: [
        { name: 'db.after', rows: 1 },
        { name: 'db.big', rows },
      ],
      objects: objects({ databases: 1, tables: 2, views: 1 }),
    };
    for (const size of [1000, 4096, 65_536, 1 << 20]) {
      expect(countChunked(script, size, 'db'), `chunks of ${size}`).toEqual(expected);
    }
  });

  it('reads statement heads', () => {
    expect(statementHead('CREATE TABLE `a``b` (')).toEqual({ create: 'tables', name: 'a`b' });
    expect(statementHead('/*!50001 CREATE TABLE `v` (')).toBeUndefined(); // a view's placeholder
    expect(statementHead('/*!50001 CREATE VIEW `v` AS SELECT')).toBeUndefined(); // a view's placeholder
    expect(statementHead('/*!50001 CREATE ALGORITHM=MERGE */')).toEqual({ create: 'views' });
    expect(statementHead('CREATE DEFINER=`a b`@`%` AGGREGATE FUNCTION `f`(x INT) RETURNS int')).toEqual({
      create: 'routines',
    });
    expect(statementHead('/*!50003 CREATE*/ /*!50020 DEFINER=`r`@`h`*/ /*!50003 PROCEDURE `p`()')).toEqual({
      create: 'routines',
    });
    expect(statementHead('USE `x`;')).toEqual({ use: 'x' });
    expect(
      statementHead(
        'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;',
      ),
    ).toEqual({
      create: 'databases',
      name: 'd',
    });
    expect(statementHead('DELIMITER ;;')).toEqual({ delimiter: ';;' });
    expect(statementHead('CREATE SEQUENCE `s` start with 1')).toBeUndefined();
  });
});
