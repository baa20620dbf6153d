/**
 * Exact facts of a mysqldump/mariadb-dump script, counted as it streams past: rows per table from its
 * INSERT statements, and databases, tables, views, routines, triggers and events from its CREATE
 * statements. What a restore of the script holds, so a restored copy can be compared item by item.
 *
 * The script is read a line at a time, looking only at the first 1 KiB of a line that starts a statement
 * (a line after one that ended with the current delimiter, `;` or `;;` inside `DELIMITER` blocks): a
 * routine's body may hold lines starting `INSERT INTO` or `CREATE TABLE` that are not statements of the
 * script. INSERT statements are handed to a byte scanner (insert-rows.ts) that never holds them.
 *
 * Views are counted once: the tool first writes a placeholder for each view (`/*!50001 CREATE VIEW v AS
 * SELECT 1 AS c`, or `/*!50001 CREATE TABLE v (...)` from older tools), so that views using views can be
 * created, then the view itself (`/*!50001 CREATE ALGORITHM=...`), which is the one counted.
 */
import type { DatabaseFacts } from '../engine.ts';
import { InsertRows } from './insert-rows.ts';
import { ROUTINE, readName, VERSIONED_CREATE } from './inspect.ts';

/** How much of a line is looked at: every statement head the tool writes fits. */
const HEAD = 1024;
/** How much of a line's end is kept, to see whether it ends with the delimiter. */
const TAIL = 16;
const NEWLINE = 0x0a;
/** An INSERT statement's keywords, also as `--insert-ignore` and `--replace` (an option file may set them) write them. */
const INSERT_INTO = /^(?:INSERT (?:IGNORE )?|REPLACE )INTO /;
/** Bytes enough to tell whether a line starts with those keywords. */
const INSERT_INTO_MAX = 'INSERT IGNORE INTO '.length;

/** Object kinds in the order the facts list them. */
export const OBJECT_KINDS = ['databases', 'tables', 'views', 'routines', 'triggers', 'events'] as const;
type ObjectKind = (typeof OBJECT_KINDS)[number];

/** Tables `database.table` with their rows, sorted by name in code-unit order (never a server's collation). */
export function tableFacts(rows: Iterable<[string, number]>): DatabaseFacts['tables'] {
  return [...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, rows]) => ({ name, rows }));
}

/** What a statement head creates or selects, when it is one the facts count. */
export type StatementHead =
  | { create: Exclude<ObjectKind, 'databases' | 'tables'> }
  | { create: 'databases' | 'tables'; name: string }
  | { use: string }
  | { delimiter: string };

const CREATE_DATABASE = /^CREATE DATABASE (?:\/\*!\d+ IF NOT EXISTS\s*\*\/ |IF NOT EXISTS )?(.*)$/;
const CREATE_TABLE = /^CREATE TABLE (?:IF NOT EXISTS )?(.*)$/;
const USE = /^USE (.*)$/;
const DELIMITER = /^DELIMITER\s+(\S+)\s*$/;
/** The view itself (its placeholder is a plain `CREATE VIEW` or `CREATE TABLE`). */
const FINAL_VIEW = /^\/\*!\d+ CREATE ALGORITHM=/;
/** MariaDB's first line, a client command inside a comment (`/*M!999999\- enable the sandbox mode`). */
const SANDBOX_LINE = /^\/\*M!\d+\\-.*\*\/\s*$/;

/** Reads what a statement's first line creates, selects or sets, for the kinds counted. */
export function statementHead(line: string): StatementHead | undefined {
  let m = CREATE_TABLE.exec(line);
  if (m) {
    const name = readName(m[1]!);
    return name ? { create: 'tables', name: name.name } : undefined;
  }
  if (FINAL_VIEW.test(line)) return { create: 'views' };
  m = VERSIONED_CREATE.exec(line) ?? ROUTINE.exec(line);
  if (m) {
    const kind = m[1]!;
    if (kind === 'TRIGGER') return { create: 'triggers' };
    if (kind === 'EVENT') return { create: 'events' };
    return kind === 'PROCEDURE' || kind === 'FUNCTION' ? { create: 'routines' } : undefined;
  }
  m = USE.exec(line);
  if (m) {
    const name = readName(m[1]!);
    return name ? { use: name.name } : undefined;
  }
  m = CREATE_DATABASE.exec(line);
  if (m) {
    const name = readName(m[1]!);
    return name ? { create: 'databases', name: name.name } : undefined;
  }
  m = DELIMITER.exec(line);
  return m ? { delimiter: m[1]! } : undefined;
}

/**
 * Counts a dump script fed chunk by chunk (`write`), then reports (`facts`). Memory stays at a few KiB
 * plus one entry per table, whatever the lengths of lines and statements.
 */
export class MysqlDumpCounter {
  readonly #tables = new Map<string, number>();
  readonly #databases = new Set<string>();
  readonly #objects = new Map<ObjectKind, number>(OBJECT_KINDS.map((k) => [k, 0]));
  #database: string | undefined;
  #delimiter = ';';
  #atStatement = true;
  readonly #head = Buffer.alloc(HEAD);
  #headLength = 0;
  #lineLength = 0;
  #tail = Buffer.alloc(0);
  #insert: InsertRows | undefined;
  /** After an INSERT's `;`: the rest of its line is not a statement. */
  #skipLine = false;

  /**
   * @param database the database a one-database script (which names none) is restored into; undefined
   *   for scripts that create and select their databases (`--databases`, `--all-databases`).
   */
  constructor(database?: string) {
    this.#database = database;
    if (database !== undefined) this.#databases.add(database);
  }

  /** Counts the next chunk of the script. */
  write(chunk: Buffer): void {
    let p = 0;
    while (p < chunk.length) {
      if (this.#insert) {
        const end = this.#insert.scan(chunk, p);
        if (end === -1) return;
        this.#endInsert();
        p = end;
        continue;
      }
      const nl = chunk.indexOf(NEWLINE, p);
      if (this.#skipLine) {
        if (nl === -1) return;
        this.#skipLine = false;
        this.#atStatement = true;
        p = nl + 1;
        continue;
      }
      const next = this.#readLine(chunk, p, nl === -1 ? chunk.length : nl);
      if (this.#insert || this.#skipLine || nl === -1) {
        p = next;
        continue;
      }
      this.#endLine();
      p = nl + 1;
    }
  }

  /**
   * The facts of the script read so far: tables named `database.table` as the live facts name them,
   * sorted by name, with their rows; objects by kind. Only meaningful once the whole script was written
   * and the dump tool succeeded.
   */
  facts(): DatabaseFacts {
    const objects = OBJECT_KINDS.map((kind) => ({
      kind,
      count: kind === 'databases' ? this.#databases.size : this.#objects.get(kind)!,
    }));
    return { exact: true, tables: tableFacts(this.#tables), objects };
  }

  /** Takes bytes `from`..`end` of the current line; returns where to go on (an INSERT may take over). */
  #readLine(chunk: Buffer, from: number, end: number): number {
    const take = Math.min(HEAD - this.#headLength, end - from);
    if (take > 0) {
      chunk.copy(this.#head, this.#headLength, from, from + take);
      this.#headLength += take;
    }
    const before = this.#lineLength;
    this.#lineLength += end - from;
    if (this.#lineLength > HEAD) {
      // The line's last bytes: from the head when it has just outgrown it, then from what follows.
      const base = before <= HEAD ? this.#head.subarray(HEAD - TAIL) : this.#tail;
      const rest = chunk.subarray(Math.max(from + take, end - TAIL), end);
      this.#tail = Buffer.concat([base, rest]).subarray(-TAIL);
    }
    const lineEnded = end < chunk.length;
    if (this.#atStatement && (this.#headLength >= INSERT_INTO_MAX || lineEnded)) {
      const keywords = INSERT_INTO.exec(
        this.#head.toString('latin1', 0, Math.min(this.#headLength, INSERT_INTO_MAX)),
      );
      if (keywords) return this.#startInsert(keywords[0].length, from + take);
    }
    return end;
  }

  /** Hands the line read so far, after its first `skip` bytes, to an INSERT scanner, which goes on from `next`. */
  #startInsert(skip: number, next: number): number {
    const insert = new InsertRows();
    this.#insert = insert;
    const end = insert.scan(this.#head.subarray(0, this.#headLength), skip);
    this.#resetLine();
    if (end !== -1) this.#endInsert();
    return next;
  }

  #endInsert(): void {
    const insert = this.#insert!;
    this.#insert = undefined;
    const key = this.#tableKey(insert.table);
    this.#tables.set(key, (this.#tables.get(key) ?? 0) + insert.rows);
    this.#skipLine = true;
  }

  #endLine(): void {
    const endsStatement = this.#endsWithDelimiter();
    // Inside a statement (a table's columns, a routine's body) only the line's end matters.
    const text = this.#atStatement ? this.#head.toString('utf8', 0, this.#headLength) : '';
    this.#resetLine();
    if (!this.#atStatement) {
      this.#atStatement = endsStatement;
      return;
    }
    // Blank lines, comments and MariaDB's sandbox command come between statements.
    if (text.trim() === '' || text.startsWith('--') || SANDBOX_LINE.test(text)) return;
    const head = statementHead(text);
    if (head && 'delimiter' in head) {
      this.#delimiter = head.delimiter;
      return;
    }
    if (head) this.#count(head);
    this.#atStatement = endsStatement;
  }

  /** Whether the current line ends (trailing whitespace aside) with the delimiter. */
  #endsWithDelimiter(): boolean {
    const last =
      this.#lineLength > HEAD
        ? this.#tail
        : this.#head.subarray(Math.max(0, this.#headLength - TAIL), this.#headLength);
    return last.toString('latin1').trimEnd().endsWith(this.#delimiter);
  }

  #count(head: Exclude<StatementHead, { delimiter: string }>): void {
    if ('use' in head) {
      this.#database = head.use;
      return;
    }
    this.#objects.set(head.create, this.#objects.get(head.create)! + 1);
    if (head.create === 'databases') this.#databases.add(head.name);
    if (head.create === 'tables') {
      const key = this.#tableKey(head.name);
      if (!this.#tables.has(key)) this.#tables.set(key, 0);
    }
  }

  #tableKey(table: string): string {
    return `${this.#database ?? ''}.${table}`;
  }

  #resetLine(): void {
    this.#headLength = 0;
    this.#lineLength = 0;
    this.#tail = Buffer.alloc(0);
  }
}
