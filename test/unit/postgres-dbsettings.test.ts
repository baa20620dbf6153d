import { describe, expect, it } from 'vitest';
import { type Manifest, serializeManifest } from '../../src/catalog/manifest.ts';
import { parseManifest } from '../../src/catalog/manifest-read.ts';
import type { DatabaseSettings } from '../../src/engines/engine.ts';
import {
  quoteLiteral,
  rolesNamed,
  settingsPlan,
  toDatabaseSettings,
} from '../../src/engines/postgres/dbsettings.ts';

const SHOP: DatabaseSettings = {
  owner: 'app',
  settings: [
    { role: null, name: 'search_path', value: 'billing, public' },
    { role: 'reporting', name: 'work_mem', value: '8MB' },
  ],
  grants: [
    { grantee: null, privilege: 'TEMPORARY', grantable: false },
    { grantee: 'app', privilege: 'CONNECT', grantable: false },
  ],
  comment: 'shop',
};

describe('settingsPlan', () => {
  it('a role setting is a quoted literal, never set_config, which would switch the role running the rest', () => {
    const withRole: DatabaseSettings = {
      ...SHOP,
      settings: [
        { role: 'app_login', name: 'role', value: "app_owner'; DROP TABLE x; --" },
        { role: null, name: 'work_mem', value: '8MB' },
      ],
    };
    const sql = settingsPlan('c', withRole, new Set()).steps.map((s) => s.sql);
    expect(sql).toContain(
      `ALTER ROLE "app_login" IN DATABASE "c" SET "role" = ${quoteLiteral("app_owner'; DROP TABLE x; --")}`,
    );
    expect(sql.filter((q) => q.includes('set_config'))).toHaveLength(1);
  });

  it('targets the new database name, values only as parameters', () => {
    const plan = settingsPlan('shop copy', SHOP, new Set());
    expect(plan.steps.map((s) => s.sql)).toEqual([
      'ALTER DATABASE "shop copy" OWNER TO "app"',
      'SELECT pg_catalog.set_config($1, $2, true)',
      'ALTER DATABASE "shop copy" SET "search_path" FROM CURRENT',
      'SELECT pg_catalog.set_config($1, $2, true)',
      'ALTER ROLE "reporting" IN DATABASE "shop copy" SET "work_mem" FROM CURRENT',
      'REVOKE ALL ON DATABASE "shop copy" FROM PUBLIC',
      'REVOKE ALL ON DATABASE "shop copy" FROM "app"',
      'GRANT TEMPORARY ON DATABASE "shop copy" TO PUBLIC',
      'GRANT CONNECT ON DATABASE "shop copy" TO "app"',
      'COMMENT ON DATABASE "shop copy" IS \'shop\'',
    ]);
    expect(plan.steps[1]!.params).toEqual(['search_path', 'billing, public']);
    expect(plan.skipped).toEqual([]);
  });

  it('leaves out what names a missing role, and lists it', () => {
    const plan = settingsPlan('c', SHOP, new Set(['app', 'reporting']));
    expect(plan.skipped).toEqual([
      'owner app',
      'setting role reporting: work_mem = 8MB',
      'grant CONNECT to app',
    ]);
    expect(plan.steps.map((s) => s.sql).join('\n')).not.toMatch(/"app"|"reporting"/);
  });

  it('quotes hostile names and comments so they stay one identifier or literal', () => {
    const hostile: DatabaseSettings = {
      owner: 'x"; DROP ROLE postgres; --',
      settings: [{ role: null, name: 'app.tenant', value: "'; DROP TABLE t; --" }],
      grants: null,
      comment: "it's \\'; DROP DATABASE x; --",
    };
    const plan = settingsPlan('d"b', hostile, new Set());
    expect(plan.steps.map((s) => s.sql)).toEqual([
      'ALTER DATABASE "d""b" OWNER TO "x""; DROP ROLE postgres; --"',
      'SELECT pg_catalog.set_config($1, $2, true)',
      'ALTER DATABASE "d""b" SET "app"."tenant" FROM CURRENT',
      "COMMENT ON DATABASE \"d\"\"b\" IS E'it''s \\\\''; DROP DATABASE x; --'",
    ]);
    expect(plan.steps[1]!.params).toEqual(['app.tenant', "'; DROP TABLE t; --"]);
  });

  it('refuses a setting name that is not a parameter name', () => {
    const forged = { ...SHOP, settings: [{ role: null, name: 'x = 1; DROP ROLE postgres', value: 'v' }] };
    expect(() => settingsPlan('d', forged, new Set())).toThrow(/not a configuration parameter name/);
  });

  it('refuses a privilege that is not a database privilege', () => {
    const forged = {
      ...SHOP,
      grants: [{ grantee: null, privilege: 'ALL; DROP ROLE x' as 'CONNECT', grantable: false }],
    };
    expect(() => settingsPlan('d', forged, new Set())).toThrow(/not a database privilege/);
  });
});

function manifestFor(databaseSettings: DatabaseSettings): Manifest {
  return {
    version: 1,
    id: 'shop-20260101T000000Z',
    target: 'shop',
    engine: 'postgres',
    status: 'success',
    createdAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    durationMs: 1000,
    labels: [],
    format: 'custom',
    schemaOnly: false,
    compression: 'none',
    compressionLevel: null,
    encryption: null,
    sizeBytes: 1,
    storedBytes: 1,
    sha256: '0'.repeat(64),
    object: 'shop/shop-20260101T000000Z.dump',
    database: 'shop',
    databaseSettings,
    serverVersion: '15',
    toolVersion: 'pg_dump 15',
    datasaverVersion: 'test',
    facts: { exact: false, tables: [] },
  };
}

describe('manifest validation', () => {
  it('refuses recorded settings whose names or roles could not be applied safely', () => {
    const base = JSON.parse(serializeManifest(manifestFor(SHOP)).toString());
    expect(parseManifest(JSON.stringify(base))).toHaveProperty('manifest');
    const badName = structuredClone(base);
    badName.databaseSettings.settings[0].name = 'search_path = x; DROP ROLE postgres; --';
    expect(parseManifest(JSON.stringify(badName))).toEqual({
      error: 'field databaseSettings.settings.0.name: is not a configuration parameter name',
    });
    const badGrant = structuredClone(base);
    badGrant.databaseSettings.grants[0].privilege = 'ALL';
    expect(parseManifest(JSON.stringify(badGrant))).toHaveProperty('error');
    const badRole = structuredClone(base);
    badRole.databaseSettings.owner = 'app\u001b[2J';
    expect(parseManifest(JSON.stringify(badRole))).toHaveProperty('error');
    // A value is only ever a query parameter: any text the server stored reads back (a tab, a newline).
    const tabbed = structuredClone(base);
    tabbed.databaseSettings.settings[0].value = 'a\tb\nc';
    expect(parseManifest(JSON.stringify(tabbed))).toHaveProperty('manifest');
  });
});

describe('quoteLiteral', () => {
  it('doubles quotes, and escapes backslashes in an E literal', () => {
    expect(quoteLiteral("a'b")).toBe("'a''b'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
  });
});

describe('toDatabaseSettings', () => {
  it('splits name=value at the first = and names every role once', () => {
    const s = toDatabaseSettings({
      owner: 'app',
      comment: null,
      settings: [{ role: 'r', config: ['search_path=a, "b=c"'] }],
      grants: [{ grantee: 'g', privilege: 'CONNECT', grantable: true }],
    });
    expect(s.settings).toEqual([{ role: 'r', name: 'search_path', value: 'a, "b=c"' }]);
    expect(rolesNamed(s)).toEqual(['app', 'g', 'r']);
  });
});
