/**
 * The daemon's log: pino, one JSON object per line (for log collectors), or readable lines on a terminal.
 * Every message is passed through `redact` on the way out, so a URL with a password that reached an error
 * message from elsewhere is still hidden.
 */
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';
import { redact } from './secret.ts';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A stream text is written to (stdout, stderr); `isTTY` says whether a person is reading it. */
export interface Out {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
}

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go (stdout); `isTTY` decides the `auto` format. */
  out: Out;
}

export function createLogger(options: LogOptions): Logger {
  const pretty = options.format === 'pretty' || (options.format === 'auto' && options.out.isTTY === true);
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = redact(chunk.toString('utf8'));
      options.out.write(pretty ? prettyLine(line) : line);
      done();
    },
  });
  return pino(
    {
      level: options.level,
      base: { service: 'datasaver' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

const HIDDEN = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

/** `2026-11-22T02:00:01.123Z INFO  backup committed target=shop id=...` from one JSON line. */
function prettyLine(jsonLine: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const fields = Object.entries(entry)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  const level = String(entry.level ?? '')
    .toUpperCase()
    .padEnd(5);
  return `${String(entry.time ?? '')} ${level} ${String(entry.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}
