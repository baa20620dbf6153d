import { parseDocument } from 'yaml';
import { ConfigError } from '../util/errors.ts';

/**
 * Parses a config file's YAML text to plain data. Kept apart from parse.ts so that the YAML library is
 * loaded only when a config file is used (it is a sizeable part of a small process's memory).
 */
export function parseYamlText(text: string, path: string): unknown {
  // prettyErrors off: pretty messages quote the offending source line, which may hold a password.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const before = text.slice(0, error.pos[0]);
    const at = ` at line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}`;
    throw new ConfigError(`${path} is not valid YAML${at}: ${error.message.split('\n')[0]}`, {
      hint: 'check indentation and quoting on that line',
    });
  }
  try {
    // Aliases that expand to millions of nodes (a "billion laughs" file) are refused, not expanded.
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new ConfigError(`${path} cannot be read as configuration: ${(err as Error).message}`, {
      hint: 'a config file needs few YAML aliases (&name / *name), if any; write the settings out',
      cause: err,
    });
  }
}

/** How far aliases may multiply the document (the yaml package's measure); a real config needs little. */
const MAX_ALIAS_COUNT = 100;
