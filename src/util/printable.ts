/**
 * Text from storage (keys, manifest fields, a backend's error messages) is untrusted: printed as is, an
 * escape sequence could rewrite the terminal and a newline could fake a row of `list`. Everything such
 * text holds that a terminal would act on is shown as a visible escape instead.
 */

/**
 * C0 controls and DEL, C1 controls (U+0080-U+009F: 8-bit CSI and friends), and the Unicode format
 * characters that reorder or hide text (zero-width marks, line and paragraph separators, bidi
 * embeddings, overrides and isolates, the byte order mark).
 */
function unsafe(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) ||
    code === 0xfeff
  );
}

/** True when `text` holds nothing a terminal would act on; for validating fields. */
export function isPrintable(text: string): boolean {
  for (const c of text) if (unsafe(c.codePointAt(0)!)) return false;
  return true;
}

/**
 * `text` with every unsafe character as a visible escape (`\x1b`, `\u202e`). With `multiline`, newlines
 * and tabs stay (a tool's multi-line message); otherwise they are escaped too, so the text stays one line
 * (a table cell, a warning).
 */
export function printable(text: string, options: { multiline?: boolean } = {}): string {
  if (isPrintable(text)) return text;
  let out = '';
  for (const c of text) {
    const code = c.codePointAt(0)!;
    if (!unsafe(code) || ((code === 0x0a || code === 0x09) && options.multiline)) out += c;
    else if (code <= 0xff) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return out;
}
