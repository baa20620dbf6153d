/**
 * Validators for single settings, and `check`, which applies one and records a problem under the
 * setting's origin. Validators of one concern's settings live with that concern (storage, notify...).
 */
import { redact } from '../util/secret.ts';
import type { Problems, Sourced } from './raw.ts';

/** Turns a raw setting into a typed value, or undefined when it is not valid. */
export interface Validator<T> {
  parse(value: unknown): T | undefined;
  /** What a valid value looks like, for the error message. */
  expected: string;
}

/** One of `values`, exactly. */
export function oneOf<T extends string>(
  values: readonly T[],
  expected = `one of ${values.join(', ')}`,
): Validator<T> {
  return { parse: (v) => values.find((x) => x === String(v)), expected };
}

/** A whole number from `min` to `max`. */
export function intIn(min: number, max: number, expected: string): Validator<number> {
  return {
    parse: (v) => {
      const text = String(v).trim();
      const n = Number(text);
      return /^-?\d+$/.test(text) && n >= min && n <= max ? n : undefined;
    },
    expected,
  };
}

/** Text that matches `pattern`. */
export function matching(pattern: RegExp, expected: string): Validator<string> {
  return { parse: (v) => (typeof v === 'string' && pattern.test(v) ? v : undefined), expected };
}

/** An endpoint: an http(s) URL without credentials, any trailing `/` removed. */
export const HTTP_URL: Validator<string> = {
  parse: (v) => {
    try {
      const u = new URL(String(v));
      // Credentials belong in the key settings, where they are treated as secrets.
      if (u.username || u.password) return undefined;
      return u.protocol === 'http:' || u.protocol === 'https:' ? String(v).replace(/\/+$/, '') : undefined;
    } catch {
      return undefined;
    }
  },
  expected:
    'an http:// or https:// URL without credentials, such as https://s3.eu-central-1.amazonaws.com or http://minio:9000 (keys go in DATASAVER_S3_ACCESS_KEY / DATASAVER_S3_SECRET_KEY)',
};

/** A number of `unit` greater than 0. */
export const POSITIVE_NUMBER = (unit: string): Validator<number> => ({
  parse: (v) => {
    const text = String(v).trim();
    return /^\d+(\.\d+)?$/.test(text) && Number(text) > 0 ? Number(text) : undefined;
  },
  expected: `a number of ${unit} greater than 0 (fractions allowed)`,
});

/** A YAML boolean, or true/false, 1/0, yes/no, on/off in any case. */
export const BOOLEAN: Validator<boolean> = {
  parse: (v) => {
    if (typeof v === 'boolean') return v;
    const s = String(v).toLowerCase();
    return ['true', '1', 'yes', 'on'].includes(s)
      ? true
      : ['false', '0', 'no', 'off'].includes(s)
        ? false
        : undefined;
  },
  expected: 'true or false',
};

/** The setting's value by `validator`; a problem naming its origin when it is not valid. */
export function check<T>(
  source: Sourced | undefined,
  validator: Validator<T>,
  problems: Problems,
): T | undefined {
  if (!source) return undefined;
  const value = validator.parse(source.value);
  if (value === undefined)
    problems.add(source.origin, `${show(source)} is not valid; expected ${validator.expected}`);
  return value;
}

/** The value as a message quotes it, secrets and credentials hidden. */
function show(source: Sourced): string {
  if (source.secret) return "'***'";
  // `user:password@host` in a value that should not hold one (an endpoint) is still hidden.
  return `'${redact(String(source.value)).replace(/[^\s/@:]+:[^\s/@]+@/g, '***@')}'`;
}
