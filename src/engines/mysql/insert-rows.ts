/**
 * Counting the rows of one `INSERT INTO `t` [(`a`, ...)] VALUES (...),(...),...;` statement of a
 * mysqldump/mariadb-dump script as its bytes pass, chunk by chunk, without holding the statement: one
 * statement is up to the dump tool's net buffer length (1 MB by default) and a single row may reach the
 * 1 GB packet limit.
 *
 * A row is a parenthesis opened outside any string at depth 0 after the table name and its column list.
 * Strings are the dump tool's: single-quoted, backslash escapes (`\'`, `\\`, `\n`), a doubled quote read
 * as closing and reopening (the same count), binary data as `0x...` or `_binary '...'`. Raw newlines only
 * separate rows (the tool escapes them inside strings), so a statement may span lines.
 */

// Scanner states.
const NAME_START = 0; // before the table name
const NAME_QUOTED = 1; // inside `name`
const NAME_QUOTE_END = 2; // after a backtick inside `name`: the end, or a doubled backtick
const NAME_BARE = 3; // an unquoted name
const AFTER_NAME = 4; // before the column list or VALUES
const COLUMNS = 5; // inside the column list
const COLUMNS_QUOTED = 6; // inside a `column` of the column list
const VALUES = 7; // the VALUES keyword, up to the first row
const ROW = 8; // inside a row, outside strings
const STRING = 9; // inside a string
const ESCAPE = 10; // after a backslash inside a string
const BETWEEN_ROWS = 11; // after a row: a comma, whitespace, or the statement's end

const BACKTICK = 0x60;
const BACKSLASH = 0x5c;
const SINGLE_QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;
const DOT = 0x2e;

/** Table names longer than this (in bytes) are cut: identifiers are at most 64 characters. */
const NAME_MAX = 1024;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** One INSERT statement's table and row count, fed from just after its `INSERT INTO` keywords. */
export class InsertRows {
  #state = NAME_START;
  #name: number[] = [];
  #depth = 0;
  #quote = 0;
  #rows = 0;

  /** The table the statement inserts into, as named (a qualified name's last part). */
  get table(): string {
    return Buffer.from(this.#name).toString('utf8');
  }

  /** Rows counted so far. */
  get rows(): number {
    return this.#rows;
  }

  /**
   * Scans `buf` from `start`: returns the index just after the statement's closing `;`, or -1 when `buf`
   * ended inside the statement (the next chunk continues it).
   */
  scan(buf: Buffer, start: number): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.#state) {
        case ROW:
          i = this.#scanRow(buf, i);
          break;
        case STRING:
          i = this.#scanString(buf, i);
          break;
        case ESCAPE:
          this.#state = STRING;
          i++;
          break;
        case BETWEEN_ROWS: {
          const c = buf[i]!;
          if (c === SEMICOLON) return i + 1;
          if (c === OPEN) this.#openRow();
          i++;
          break;
        }
        default:
          if (this.#head(buf[i]!)) return i + 1;
          i++;
      }
    }
    return -1;
  }

  /** Inside a row, outside strings: the hot loop, a row's numbers and hex data. */
  #scanRow(buf: Buffer, from: number): number {
    const n = buf.length;
    let depth = this.#depth;
    for (let i = from; i < n; i++) {
      const c = buf[i]!;
      if (c === SINGLE_QUOTE || c === DOUBLE_QUOTE) {
        this.#depth = depth;
        this.#quote = c;
        this.#state = STRING;
        return i + 1;
      }
      if (c === OPEN) depth++;
      else if (c === CLOSE && --depth === 0) {
        this.#depth = 0;
        this.#state = BETWEEN_ROWS;
        return i + 1;
      }
    }
    this.#depth = depth;
    return n;
  }

  /** Inside a string: only its quote and backslashes matter. */
  #scanString(buf: Buffer, from: number): number {
    const n = buf.length;
    const quote = this.#quote;
    for (let i = from; i < n; i++) {
      const c = buf[i]!;
      if (c === BACKSLASH) {
        if (i + 1 < n) {
          i++;
          continue;
        }
        this.#state = ESCAPE;
        return n;
      }
      if (c === quote) {
        this.#state = ROW;
        return i + 1;
      }
    }
    return n;
  }

  #openRow(): void {
    this.#rows++;
    this.#depth = 1;
    this.#state = ROW;
  }

  /** The statement's head, byte by byte: name, column list, VALUES. True at a `;` ending a row-less statement. */
  #head(c: number): boolean {
    switch (this.#state) {
      case NAME_START:
        if (c === BACKTICK) this.#state = NAME_QUOTED;
        else if (!isSpace(c)) {
          this.#state = NAME_BARE;
          this.#pushName(c);
        }
        return false;
      case NAME_QUOTED:
        if (c === BACKTICK) this.#state = NAME_QUOTE_END;
        else this.#pushName(c);
        return false;
      case NAME_QUOTE_END:
        if (c === BACKTICK) {
          this.#pushName(c);
          this.#state = NAME_QUOTED;
          return false;
        }
        return this.#afterName(c);
      case NAME_BARE:
        if (isSpace(c) || c === OPEN || c === DOT) return this.#afterName(c);
        this.#pushName(c);
        return false;
      case AFTER_NAME:
        return this.#afterName(c);
      case COLUMNS:
        if (c === BACKTICK) this.#state = COLUMNS_QUOTED;
        else if (c === OPEN) this.#depth++;
        else if (c === CLOSE && --this.#depth === 0) this.#state = VALUES;
        return false;
      case COLUMNS_QUOTED:
        // A doubled backtick closes and reopens: the same for what is counted.
        if (c === BACKTICK) this.#state = COLUMNS;
        return false;
      default: // VALUES
        if (c === OPEN) this.#openRow();
        return c === SEMICOLON;
    }
  }

  #afterName(c: number): boolean {
    if (c === DOT) {
      // `db`.`table`: the table is the last part.
      this.#name = [];
      this.#state = NAME_START;
    } else if (c === OPEN) {
      this.#depth = 1;
      this.#state = COLUMNS;
    } else if (!isSpace(c)) {
      this.#state = VALUES;
      return c === SEMICOLON;
    } else {
      this.#state = AFTER_NAME;
    }
    return false;
  }

  #pushName(c: number): void {
    if (this.#name.length < NAME_MAX) this.#name.push(c);
  }
}
