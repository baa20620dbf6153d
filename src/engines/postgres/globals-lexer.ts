/**
 * Splits a globals script (`pg_dumpall --globals-only`, from storage: untrusted) into its statements the
 * way the server's own lexer would: quoted strings (`''` doubled, `E''` with backslash escapes), quoted
 * identifiers, dollar-quoted bodies and comments (block comments nest) never end a statement. psql
 * meta-commands are lines starting with a backslash; a globals script holds only `\restrict KEY` and
 * `\unrestrict KEY`, and anything else (`\! cmd`, `\connect`, a backslash inside a statement) is refused,
 * since datasaver never runs psql on it. Pure: text in, statements out.
 */

/** pg_dumpall's last comment: a script without it was cut short. */
export const GLOBALS_COMPLETE = '-- PostgreSQL database cluster dump complete';

/** Why a globals script is not restored: what it holds, and where. */
export class RefusedGlobals extends Error {}

/** One lexical token: its kind, its text and where it is in its statement's `sql`. */
export interface Token {
  kind: 'word' | 'ident' | 'string' | 'number' | 'symbol';
  /** The token as written. */
  text: string;
  /** Words folded to lower case, quoted identifiers without their quotes; otherwise `text`. */
  value: string;
  start: number;
  end: number;
}

/**
 * The tokens kept of one statement: more than any statement a globals dump writes needs to be told
 * apart, and few enough that a forged statement of a million words costs no memory.
 */
export const MAX_STATEMENT_TOKENS = 64;

/** One SQL statement, without its `;`, and the line it begins on. */
export interface Statement {
  sql: string;
  /** Its first MAX_STATEMENT_TOKENS tokens. */
  tokens: Token[];
  /** How many tokens it has in all. */
  tokenCount: number;
  line: number;
}

export interface LexedScript<T> {
  /** Each statement as `each` made it, in order; undefined results are left out. */
  statements: T[];
  /** `\restrict` / `\unrestrict` keys seen (checked, then ignored: no psql runs the script). */
  restrictKeys: string[];
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const META = /^\\(restrict|unrestrict)[ \t]+([A-Za-z0-9]+)[ \t]*$/;

/**
 * The statements of `text`. Throws RefusedGlobals on a meta-command other than `\restrict`/`\unrestrict`,
 * a backslash inside a statement, a script that ends inside a quote, a comment or a statement, or one
 * without pg_dumpall's completion marker after its last statement (a truncated script).
 */
export function lexGlobals<T>(text: string, each: (statement: Statement) => T | undefined): LexedScript<T> {
  const lines = lineStarts(text);
  const lineAt = (offset: number) => lineOf(lines, offset);
  const statements: T[] = [];
  const restrictKeys: string[] = [];
  let tokens: Token[] = [];
  let tokenCount = 0;
  // The marker must come after the last statement: counted over every statement, kept or not.
  let seen = 0;
  let start = 0;
  let markerAfter: number | undefined;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') {
      i++;
    } else if (text.startsWith('--', i)) {
      const end = lineEnd(text, i);
      if (tokenCount === 0 && text.slice(i, end).trimEnd() === GLOBALS_COMPLETE) {
        markerAfter = seen;
      }
      i = end;
    } else if (text.startsWith('/*', i)) {
      i = blockCommentEnd(text, i, lineAt);
    } else if (c === '\\') {
      if (tokenCount > 0) {
        throw new RefusedGlobals(`line ${lineAt(i)}: a backslash command inside a statement`);
      }
      const end = lineEnd(text, i);
      const m = META.exec(text.slice(i, end).trimEnd());
      if (!m) {
        const command = /^\\\S*/.exec(text.slice(i, end))![0];
        throw new RefusedGlobals(`line ${lineAt(i)}: the psql command ${command}`);
      }
      restrictKeys.push(m[2]!);
      i = end;
    } else if (c === ';') {
      if (tokenCount > 0) {
        // Judged at once, so a refused statement stops the read there and only the verdicts are kept.
        const made = each({ sql: text.slice(start, i), tokens, tokenCount, line: lineAt(start) });
        if (made !== undefined) statements.push(made);
        seen++;
        tokens = [];
        tokenCount = 0;
      }
      i++;
    } else {
      if (tokenCount === 0) start = i;
      const token = readToken(text, i, lineAt);
      if (tokenCount < MAX_STATEMENT_TOKENS) {
        tokens.push({ ...token, start: token.start - start, end: token.end - start });
      }
      tokenCount++;
      i = token.end;
    }
  }
  if (tokenCount > 0) {
    throw new RefusedGlobals(`line ${lineAt(start)}: the script ends inside a statement: it is truncated`);
  }
  if (markerAfter !== seen) {
    throw new RefusedGlobals(
      `the script does not end with pg_dumpall's completion marker ("${GLOBALS_COMPLETE}"): it is truncated`,
    );
  }
  return { statements, restrictKeys };
}

/** The token that begins at `i` (not whitespace, a comment, `;` or a backslash). */
function readToken(text: string, i: number, lineAt: (offset: number) => number): Token {
  const c = text[i]!;
  const token = (kind: Token['kind'], end: number, value?: string): Token => {
    const t = text.slice(i, end);
    return { kind, text: t, value: value ?? t, start: i, end };
  };
  if (c === "'") return token('string', quotedEnd(text, i, "'", false, lineAt));
  if (c === '"') {
    const end = quotedEnd(text, i, '"', false, lineAt);
    return token('ident', end, text.slice(i + 1, end - 1).replaceAll('""', '"'));
  }
  if (c === '$') {
    DOLLAR_TAG.lastIndex = i;
    const tag = DOLLAR_TAG.exec(text)?.[0];
    if (tag !== undefined) {
      const close = text.indexOf(tag, i + tag.length);
      if (close === -1) throw new RefusedGlobals(`line ${lineAt(i)}: the script ends inside a ${tag} quote`);
      return token('string', close + tag.length);
    }
    return token('symbol', i + 1);
  }
  if (WORD_START.test(c)) {
    let end = i + 1;
    while (end < text.length && WORD_PART.test(text[end]!)) end++;
    // E'…' takes backslash escapes; N'…', B'…', X'…' are ordinary quotes after a letter.
    if (text[end] === "'" && end - i === 1 && /[EeNnBbXx]/.test(c)) {
      return token('string', quotedEnd(text, end, "'", c === 'E' || c === 'e', lineAt));
    }
    return token(
      'word',
      end,
      text.slice(i, end).replace(/[A-Z]+/g, (s) => s.toLowerCase()),
    );
  }
  if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
    let end = i + 1;
    while (end < text.length && /[0-9A-Za-z_.]/.test(text[end]!)) end++;
    return token('number', end);
  }
  return token('symbol', i + 1);
}

/** The offset after the quote opened at `open`; a doubled quote stays inside, so does `\'` in E''. */
function quotedEnd(
  text: string,
  open: number,
  quote: string,
  backslashEscapes: boolean,
  lineAt: (offset: number) => number,
): number {
  let j = open + 1;
  while (j < text.length) {
    const ch = text[j]!;
    if (backslashEscapes && ch === '\\') j += 2;
    else if (ch === quote && text[j + 1] === quote) j += 2;
    else if (ch === quote) return j + 1;
    else j++;
  }
  throw new RefusedGlobals(
    `line ${lineAt(open)}: the script ends inside a quoted ${quote === '"' ? 'name' : 'string'}`,
  );
}

/** The offset after the block comment opened at `open`; block comments nest, as the server's do. */
function blockCommentEnd(text: string, open: number, lineAt: (offset: number) => number): number {
  let depth = 0;
  let j = open;
  while (j < text.length) {
    if (text.startsWith('/*', j)) {
      depth++;
      j += 2;
    } else if (text.startsWith('*/', j)) {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else j++;
  }
  throw new RefusedGlobals(`line ${lineAt(open)}: the script ends inside a comment`);
}

function lineEnd(text: string, i: number): number {
  const nl = text.indexOf('\n', i);
  return nl === -1 ? text.length : nl;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/** The 1-based line of `offset`. */
function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
