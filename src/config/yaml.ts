import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.ts';

/**
 * Parses a config file's YAML text to plain data. Kept apart from parse.ts so that the YAML library is
 * loaded only when a config file is used (it is a sizeable part of a small process's memory).
 */
export function parseYamlText(text: string, path: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${path} is not valid YAML: ${doc.errors[0]?.message}`, {
      hint: 'check indentation and quoting',
    });
  }
  return doc.toJS();
}
