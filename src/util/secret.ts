import { inspect } from 'node:util';

/**
 * A secret value (password, key, URL with credentials). It prints as `***` through every path that turns
 * objects into text (template strings, JSON, util.inspect, console.log), so a secret cannot leak into logs,
 * errors, manifests or `config check` by accident; `reveal()` is the one deliberate way out.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '***';
  }

  toJSON(): string {
    return '***';
  }

  [inspect.custom](): string {
    return 'Secret(***)';
  }
}

// `scheme://user:password@`: the password runs to the last `@` of the word, so passwords holding `/`,
// `:` or an unencoded `@` are hidden whole (hiding too much beats showing any of a secret).
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):(\S*)@/gi;

/**
 * Removes secrets from text that came from elsewhere (a child process's stderr, a driver's error message):
 * every known secret value, and the password part of any `scheme://user:password@` URL.
 */
export function redact(text: string, secrets: Iterable<Secret | string | undefined> = []): string {
  let out = text.replace(URL_CREDENTIALS, '$1:***@').replace(/([?&]password=)[^&\s]*/gi, '$1***');
  for (const s of secrets) {
    const value = s instanceof Secret ? s.reveal() : s;
    // Very short values would redact unrelated text and say little; they are still never printed by us.
    if (value && value.length >= 3) out = out.split(value).join('***');
  }
  return out;
}
