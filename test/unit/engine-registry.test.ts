/**
 * The engine registry's invariants: what config, the catalog and the temp-dir sweep rely on when they
 * read engine facts from it instead of naming engines.
 */
import { describe, expect, it } from 'vitest';
import { parseKey } from '../../src/catalog/layout.ts';
import {
  DEFAULT_ENGINE,
  DUMP_EXTENSIONS,
  ENGINE_NAMES,
  ENGINES,
  engineDescriptor,
  engineForScheme,
  IN_USE_SIDE_FILES,
  isEngineName,
  TEMP_DIR_TOOLS,
} from '../../src/engines/registry.ts';
import { UsageError } from '../../src/util/errors.ts';

describe('engine registry', () => {
  it('names every engine once, and knows the default', () => {
    expect(new Set(ENGINE_NAMES).size).toBe(ENGINES.length);
    expect(ENGINE_NAMES).toContain(DEFAULT_ENGINE);
    for (const name of ENGINE_NAMES) {
      expect(isEngineName(name)).toBe(true);
      expect(engineDescriptor(name).name).toBe(name);
    }
    expect(isEngineName('oracle')).toBe(false);
  });

  it('has unique lowercase URL schemes ending in `:`, each leading to its engine', () => {
    const schemes = ENGINES.flatMap((d) => d.schemes.map((s) => s.scheme));
    expect(new Set(schemes).size).toBe(schemes.length);
    for (const d of ENGINES) {
      expect(d.schemes.length).toBeGreaterThan(0);
      for (const { scheme } of d.schemes) {
        expect(scheme).toMatch(/^[a-z][a-z0-9+.-]*:$/);
        expect(engineForScheme(scheme)).toBe(d);
      }
      expect(new URL(d.urlExample).protocol).toBe(d.schemes[0]!.scheme);
    }
    expect(engineForScheme('http:')).toBeUndefined();
  });

  it('gives every engine a format, and every format an extension no other has', () => {
    for (const d of ENGINES) {
      expect(d.formats.length).toBeGreaterThan(0);
      expect(d.formatNames).toEqual(d.formats.map((f) => f.name));
      for (const f of d.formats) expect(d.extension(f.name)).toBe(f.extension);
      expect(() => d.extension('nonesuch')).toThrow(UsageError);
      expect(() => d.restoreCapabilities('nonesuch', null)).toThrow(UsageError);
    }
    expect(DUMP_EXTENSIONS.every((e) => /^[a-z0-9]+(\.[a-z0-9]+)*$/.test(e))).toBe(true);
    expect(new Set(DUMP_EXTENSIONS).size).toBe(DUMP_EXTENSIONS.length);
  });

  it('names tools and side files by non-empty names', () => {
    for (const d of ENGINES) {
      for (const tool of d.tempDirTools) expect(tool).toMatch(/^[A-Za-z0-9._-]+$/);
      // A process's command name (`comm`) holds at most 15 bytes: a longer name would never match.
      for (const tool of d.tempDirTools) expect(Buffer.byteLength(tool)).toBeLessThanOrEqual(15);
      for (const side of d.inUseSideFiles) expect(side).toMatch(/^-[a-z]+$/);
    }
    expect([...TEMP_DIR_TOOLS].sort()).toEqual([...new Set(ENGINES.flatMap((d) => d.tempDirTools))].sort());
    expect(IN_USE_SIDE_FILES.length).toBeGreaterThan(0);
  });

  it('derives a default target name only where the engine has one without a database', () => {
    for (const d of ENGINES) {
      const withoutDatabase = d.defaultTargetName(undefined);
      expect(withoutDatabase === undefined).toBe(d.database === 'name' || d.database === 'file');
    }
  });
});

describe('storage layout and the registry', () => {
  const key = (extension: string) => `shop/shop-20260111T020015Z.${extension}`;

  it("accepts exactly the engines' extensions, bare or compressed with zstd or gzip", () => {
    for (const ext of DUMP_EXTENSIONS) {
      for (const compressed of [ext, `${ext}.zst`, `${ext}.gz`]) {
        expect(parseKey(key(compressed))).toMatchObject({ kind: 'data', extension: compressed });
      }
      for (const other of [`${ext}.xz`, `${ext}.zst.gz`, `x${ext}`, `${ext}.sha256`]) {
        expect(parseKey(key(other))).toBeUndefined();
      }
    }
    for (const other of ['txt', 'zst', 'gz', 'tar.gz', 'sql.bak'])
      expect(parseKey(key(other))).toBeUndefined();
  });
});
