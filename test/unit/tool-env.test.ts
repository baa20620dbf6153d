import { describe, expect, it } from 'vitest';
import { LIBPQ_ENV, MYSQL_ENV, toolEnv } from '../../src/util/tool-env.ts';

const PARENT = {
  PATH: '/usr/bin',
  HOME: '/home/d',
  TZ: 'Europe/Paris',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  TMPDIR: '/scratch',
  PGHOST: 'db.internal',
  PGSSLROOTCERT: '/etc/ca.pem',
  PGDATABASE: 'elsewhere',
  PSQLRC: '/home/d/.psqlrc',
  MYSQL_HOST: 'mysql.internal',
  MYSQL_PWD: 'parent-mysql-password',
  REDISCLI_AUTH: 'parent-redis-password',
  AWS_SECRET_ACCESS_KEY: 'aws-secret',
  DATASAVER_S3_SECRET_KEY: 's3-secret',
  DATASAVER_WEBHOOK_URL: 'https://hooks.example/T0/B0/token',
  SECRET_X: 'x',
  UNSET: undefined,
};

describe('toolEnv', () => {
  it('keeps only lookup, locale and time zone variables by default', () => {
    expect(toolEnv(PARENT)).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/d',
      TZ: 'Europe/Paris',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TMPDIR: '/scratch',
    });
  });

  it("passes a tool's own connection variables, minus those datasaver decides", () => {
    const env = toolEnv(PARENT, { pass: LIBPQ_ENV, set: { PGPASSWORD: 'target', PGUSER: undefined } });
    expect(env.PGHOST).toBe('db.internal');
    expect(env.PGSSLROOTCERT).toBe('/etc/ca.pem');
    expect(env.PGPASSWORD).toBe('target');
    expect(env).not.toHaveProperty('PGUSER');
    expect(env).not.toHaveProperty('PGDATABASE');
    expect(env).not.toHaveProperty('PSQLRC');
    expect(env).not.toHaveProperty('MYSQL_PWD');
  });

  it('never passes datasaver settings, cloud keys or unrelated secrets, whatever the tool', () => {
    for (const pass of [undefined, LIBPQ_ENV, MYSQL_ENV]) {
      const names = Object.keys(toolEnv(PARENT, { pass }));
      expect(names.filter((n) => /^(DATASAVER_|AWS_|SECRET_|REDISCLI_AUTH)/.test(n))).toEqual([]);
    }
  });
});
