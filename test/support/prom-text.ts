/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: no parser of the
 * format is among datasaver's dependencies, so this one checks the rules node_exporter's textfile
 * collector and the Pushgateway enforce, and throws on the first line that breaks one:
 *
 *   - the text ends with a newline, and every line is `# HELP name text`, `# TYPE name type`, a sample
 *     `name{label="value",...} value`, another `#` comment, or empty (the format ignores those);
 *   - metric and label names match their grammars; label values escape only `\\`, `\"` and `\n`;
 *   - values are Go floats (`1`, `-0.5`, `1e+06`, `+Inf`, `-Inf`, `NaN`);
 *   - each family has at most one HELP and one TYPE, the TYPE before its samples, and its samples are
 *     contiguous (a family never appears twice); a histogram's samples are `_bucket` (with `le`), `_sum`
 *     and `_count`;
 *   - no series (name and labels) appears twice.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Family name -> TYPE. */
  types: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/;

export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  const samples: Sample[] = [];
  let current: string | undefined;
  const enter = (family: string, n: number) => {
    if (family === current) return;
    if (closed.has(family)) throw new Error(`line ${n}: family ${family} appears twice`);
    if (current !== undefined) closed.add(current);
    current = family;
  };
  lines.forEach((line, i) => {
    const n = i + 1;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
      enter(name, n);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`line ${n}: second HELP for ${name}`);
        helps.add(name);
      } else {
        if (types.has(name)) throw new Error(`line ${n}: second TYPE for ${name}`);
        if (samples.some((s) => familyOf(s.name, types) === name))
          throw new Error(`line ${n}: TYPE of ${name} after its samples`);
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type ${rest}`);
        types.set(name, rest);
      }
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${n}: not a sample: ${line}`);
    const [, name, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
    if (!VALUE.test(rawValue)) throw new Error(`line ${n}: bad value ${rawValue}`);
    const labels = parseLabels(rawLabels ?? '', n);
    const family = familyOf(name, types);
    enter(family, n);
    if (types.get(family) === 'histogram' && name.endsWith('_bucket') && labels.le === undefined)
      throw new Error(`line ${n}: histogram bucket without le`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`line ${n}: series ${key} twice`);
    seen.add(key);
    samples.push({ name, labels, value: Number(rawValue.replace('Inf', 'Infinity')) });
  });
  return { samples, types };
}

/** The value of the one sample named `name` whose labels include `labels`; throws when not exactly one. */
export function sampleValue(exp: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = exp.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}

function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && ['histogram', 'summary'].includes(types.get(base) ?? '')) return base;
  }
  return name;
}

function parseLabels(raw: string, n: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = raw;
  while (rest.length > 0) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`line ${n}: bad labels {${raw}}`);
    const [whole, name, value] = m as unknown as [string, string, string];
    if (!LABEL_NAME.test(name) || name in labels) throw new Error(`line ${n}: bad or repeated label ${name}`);
    labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(whole.length);
  }
  return labels;
}
