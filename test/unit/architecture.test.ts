/**
 * The shape of src/, as docs/architecture.md draws it: every top-level folder has a layer, an import only
 * runs to the same folder or a lower layer (so no folder-level cycle is possible), no engine's name is
 * spelled outside src/engines/, and no source file grows past the size one reader can hold.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Bottom to top; a folder may import its own files and the folders listed before it. */
const LAYERS = [
  'util',
  'pipeline',
  'engines',
  'storage',
  'catalog',
  'retention',
  'schedule',
  'config',
  'lease',
  'jobs',
  'notify',
  'server',
  'daemon',
  'cli',
  'main.ts',
] as const;

const MAX_LINES = 500;

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

function layerOf(file: string): string {
  return file.includes('/') ? file.slice(0, file.indexOf('/')) : file;
}

function imports(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  return [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
    normalize(join(dirname(file), m[1] ?? '')),
  );
}

/** Source text with block and line comments blanked (good enough for datasaver's own code). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

const FILES = sourceFiles();

describe('src/ layering', () => {
  it('puts every top-level folder and file in a layer', () => {
    const unknown = [...new Set(FILES.map(layerOf))].filter(
      (l) => !(LAYERS as readonly string[]).includes(l),
    );
    expect(unknown).toEqual([]);
  });

  it('imports only from the same folder or a lower layer', () => {
    const rank = (f: string) => (LAYERS as readonly string[]).indexOf(layerOf(f));
    const upward = FILES.flatMap((file) =>
      imports(file)
        .filter((target) => layerOf(target) !== layerOf(file) && rank(target) > rank(file))
        .map((target) => `${file} -> ${target}`),
    );
    expect(upward).toEqual([]);
  });

  it('resolves every relative import to a source file', () => {
    const known = new Set(FILES);
    const missing = FILES.flatMap((file) =>
      imports(file)
        .filter((target) => !known.has(target))
        .map((target) => `${file} -> ${target}`),
    );
    expect(missing).toEqual([]);
  });
});

describe('src/ files', () => {
  it(`stay under ${MAX_LINES} lines`, () => {
    const lines = (f: string) => readFileSync(join(SRC, f), 'utf8').split('\n').length;
    const over = FILES.filter((f) => lines(f) > MAX_LINES);
    expect(over).toEqual([]);
  });

  it('spell engine names only under src/engines/', () => {
    const literal = /['"`](postgres|postgresql|mysql|mariadb|redis|rediss|sqlite)(:?)['"`]/;
    const spelled = FILES.filter(
      (f) => !f.startsWith('engines/') && literal.test(withoutComments(readFileSync(join(SRC, f), 'utf8'))),
    );
    expect(spelled).toEqual([]);
  });
});
