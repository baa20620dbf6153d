/**
 * Builders for deterministic pseudo-random SQL expressions.
 *
 * Every value is a pure function of (seed, stream, row id): `hashint8extended(id, key)` where the key
 * combines the seed with a hash of the stream name (e.g. 'customers.city'). Nothing depends on
 * evaluation order, session state or parallel workers, so the same seed always yields the same rows,
 * and a column of one table can be recomputed elsewhere (orders recompute their customer's sign-up date
 * from the customer id instead of joining).
 */

const MASK_52 = '4503599627370495'; // 2^52 - 1: mantissa-sized, so the float conversion is exact
const TWO_52 = '4503599627370496.0';
const MASK_31 = '2147483647';

export const MAX_SEED = 2 ** 31 - 1;

/** FNV-1a, 32 bit: a stable number for a stream name. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export function sqlTextArray(values: readonly string[]): string {
  return `ARRAY[${values.map(sqlString).join(',')}]::text[]`;
}

export interface SqlRandom {
  /** Uniform int8 (may be negative). */
  hash(stream: string, id: string): string;
  /** Uniform float8 in [0, 1). */
  unit(stream: string, id: string): string;
  /** Uniform integer in [min, max]. */
  int(stream: string, id: string, min: number, max: number): string;
  /** True with probability p. */
  chance(stream: string, id: string, p: number): string;
  /** One element of `list`; skew > 1 favours the first entries (Zipf-like word frequencies). */
  pick(list: readonly string[], stream: string, id: string, skew?: number): string;
  /** numeric(…, 2) in [min, max); skew > 1 favours small amounts. */
  money(stream: string, id: string, min: number, max: number, skew?: number): string;
  /** timestamptz uniformly between two timestamptz expressions. */
  timeBetween(stream: string, id: string, from: string, to: string): string;
  /** `chars` lowercase hex characters of noise (md5-like tokens, hashes, references). */
  hex(stream: string, id: string, chars: number): string;
  uuid(stream: string, id: string): string;
  /** A sentence of minWords..maxWords words drawn from `vocabulary`, ending with a period. */
  sentence(
    vocabulary: readonly string[],
    stream: string,
    id: string,
    minWords: number,
    maxWords: number,
  ): string;
}

export function sqlRandom(seed: number): SqlRandom {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new Error(`seed must be an integer in [0, ${MAX_SEED}], got ${seed}`);
  }
  const key = (stream: string) => ((BigInt(seed) << 32n) | BigInt(fnv1a(stream))).toString();

  const hash = (stream: string, id: string) => `hashint8extended((${id})::int8, ${key(stream)})`;
  const unit = (stream: string, id: string) => `((${hash(stream, id)} & ${MASK_52})::float8 / ${TWO_52})`;
  const int = (stream: string, id: string, min: number, max: number) =>
    `(${min} + (${hash(stream, id)} & ${MASK_31}) % ${max - min + 1})`;

  const pick = (list: readonly string[], stream: string, id: string, skew = 1) => {
    const index =
      skew === 1
        ? int(stream, id, 1, list.length)
        : `(1 + floor(${list.length} * power(${unit(stream, id)}, ${skew}))::int)`;
    return `(${sqlTextArray(list)})[${index}]`;
  };

  const hex = (stream: string, id: string, chars: number) => {
    const blocks = Math.ceil(chars / 32);
    const parts = Array.from({ length: blocks }, (_, i) => `md5(${hash(`${stream}#${i}`, id)}::text)`);
    return `left(${parts.join(' || ')}, ${chars})`;
  };

  const sentence = (
    vocabulary: readonly string[],
    stream: string,
    id: string,
    minWords: number,
    maxWords: number,
  ) => {
    const length = int(`${stream}#len`, id, minWords, maxWords);
    const words = Array.from({ length: maxWords }, (_, i) => {
      const word = pick(vocabulary, `${stream}#${i}`, id, 2);
      return i < minWords ? word : `CASE WHEN ${length} > ${i} THEN ${word} END`;
    });
    return `(concat_ws(' ', ${words.join(', ')}) || '.')`;
  };

  return {
    hash,
    unit,
    int,
    chance: (stream, id, p) => `(${unit(stream, id)} < ${p})`,
    pick,
    money: (stream, id, min, max, skew = 1) =>
      `round((${min} + ${max - min} * power(${unit(stream, id)}, ${skew}))::numeric, 2)`,
    timeBetween: (stream, id, from, to) => `((${from}) + ${unit(stream, id)} * ((${to}) - (${from})))`,
    hex,
    uuid: (stream, id) => `md5(${hash(stream, id)}::text)::uuid`,
    sentence,
  };
}
