import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { configError, configParser } from '../support/config.ts';

const files: Record<string, string> = {
  '/run/secrets/pw': 'from-file-secret\n',
  '/run/secrets/url': 'postgres://u:urlsecret@h/db\n',
};
const parse = configParser(files);

describe('environment: one target', () => {
  it('reads a database URL, with defaults for everything else', () => {
    const cfg = parse({
      DATASAVER_DATABASE_URL: 'postgresql://app:p%40ss@db.internal:6543/shop?sslmode=require',
      DATASAVER_STORAGE_PATH: '/backups/',
    });
    expect(cfg.targets).toHaveLength(1);
    const t = cfg.targets[0]!;
    expect(t).toMatchObject({
      name: 'shop',
      engine: 'postgres',
      format: 'custom',
      schemaOnly: false,
      compression: { algorithm: 'zstd', level: undefined },
      destinations: [{ backend: 'local', path: '/backups' }],
      connection: { host: 'db.internal', port: 6543, database: 'shop', user: 'app', sslmode: 'require' },
    });
    expect(t.connection.password?.reveal()).toBe('p@ss');
  });

  it('DB_* fields override parts of the URL, and *_FILE supplies secrets', () => {
    const cfg = parse({
      DATASAVER_DATABASE_URL: 'postgres://app@db/shop',
      DATASAVER_DB_PASSWORD_FILE: '/run/secrets/pw',
      DATASAVER_DB_PORT: '5433',
      DATASAVER_TARGET_NAME: 'shop-main',
      DATASAVER_STORAGE_PATH: '/b',
      DATASAVER_COMPRESSION: 'gzip',
      DATASAVER_COMPRESSION_LEVEL: '9',
      DATASAVER_SCHEMA_ONLY: 'yes',
      DATASAVER_FORMAT: 'plain',
    });
    const t = cfg.targets[0]!;
    expect(t.name).toBe('shop-main');
    expect(t.connection.port).toBe(5433);
    expect(t.connection.password?.reveal()).toBe('from-file-secret');
    expect(t).toMatchObject({
      format: 'plain',
      schemaOnly: true,
      compression: { algorithm: 'gzip', level: 9 },
    });
  });

  it('the URL itself can come from a file', () => {
    const cfg = parse({ DATASAVER_DATABASE_URL_FILE: '/run/secrets/url', DATASAVER_STORAGE_PATH: '/b' });
    expect(cfg.targets[0]!.connection.password?.reveal()).toBe('urlsecret');
  });

  it('storage settings alone configure no target but a default storage', () => {
    const cfg = parse({ DATASAVER_STORAGE_PATH: '/b' });
    expect(cfg.targets).toEqual([]);
    expect(cfg.defaultDestinations).toEqual([{ backend: 'local', path: '/b' }]);
  });

  it('secrets print as *** however the config is turned into text', () => {
    const cfg = parse({
      DATASAVER_DATABASE_URL: 'postgres://app:hunter22@db/shop',
      DATASAVER_STORAGE_PATH: '/b',
    });
    expect(JSON.stringify(cfg)).not.toContain('hunter22');
    expect(inspect(cfg, { depth: 10 })).not.toContain('hunter22');
    expect(`${cfg.targets[0]!.connection.password}`).toBe('***');
  });
});

describe('environment: errors name the variable, the value and what is expected', () => {
  it('collects every problem at once', () => {
    const err = configError(() =>
      parse({
        DATASAVER_DATABASE_URL: 'postgres://app:pw@db/shop',
        DATASAVER_DB_PORT: '70000',
        DATASAVER_COMPRESSION: 'lz4',
        DATASAVER_SCHEMA_ONLY: 'maybe',
        DATASAVER_STORAGE_PATH: 'relative/dir',
      }),
    );
    expect(err.message).toContain("DATASAVER_DB_PORT: '70000' is not valid; expected a port number 1-65535");
    expect(err.message).toContain(
      "DATASAVER_COMPRESSION: 'lz4' is not valid; expected one of zstd, gzip, none",
    );
    expect(err.message).toContain("DATASAVER_SCHEMA_ONLY: 'maybe' is not valid; expected true or false");
    expect(err.message).toContain(
      "DATASAVER_STORAGE_PATH: 'relative/dir' is not valid; expected an absolute directory path",
    );
    expect(err.hint).toMatch(/config check/);
  });

  it('compression level is checked against the algorithm', () => {
    const err = configError(() =>
      parse({
        DATASAVER_DATABASE_URL: 'postgres://db/shop',
        DATASAVER_STORAGE_PATH: '/b',
        DATASAVER_COMPRESSION_LEVEL: '12',
        DATASAVER_COMPRESSION: 'gzip',
      }),
    );
    expect(err.message).toContain(
      "DATASAVER_COMPRESSION_LEVEL: '12' is not valid; expected an integer 1-9 for gzip",
    );
  });

  it('a password is never shown, even in a bad URL', () => {
    const err = configError(() =>
      parse({ DATASAVER_DATABASE_URL: 'mongodb://root:t0psecret@db/x', DATASAVER_STORAGE_PATH: '/b' }),
    );
    expect(err.message).toMatch(
      /DATASAVER_DATABASE_URL: 'mongodb:\/\/root:\*\*\*@db\/x': unknown scheme mongodb:; expected one of postgres:/,
    );
    expect(err.message).not.toContain('t0psecret');
  });

  it('a password never shows, whatever makes the URL invalid', () => {
    const cases = [
      'postgres://app:ab/cd9Secret@db/x', // '/' in an unencoded password breaks URL parsing
      'postgres://app:9Secret@db/x?password=9Secret&sslmode=require',
      'postgres://app:50%zz9Secret@db/shop', // malformed %-escape
      'postgres://app:p@ss9Secret@db:notaport/x',
    ];
    for (const url of cases) {
      const err = configError(() => parse({ DATASAVER_DATABASE_URL: url, DATASAVER_STORAGE_PATH: '/b' }));
      expect(err.message, url).toMatch(/^invalid configuration:\n {2}- DATASAVER_DATABASE_URL: /);
      expect(err.message, url).not.toContain('9Secret');
    }
  });

  it('a YAML syntax error on a password line does not quote the password', () => {
    const err = configError(() => parse({}, 'targets:\n  shop:\n    password: "9Secret\n    url: x\n'));
    expect(err.message).toMatch(/is not valid YAML at line \d+, column \d+/);
    expect(err.message).not.toContain('9Secret');
  });

  it('an unreadable secret file names the variable and the path', () => {
    const err = configError(() =>
      parse({
        DATASAVER_DATABASE_URL: 'postgres://db/shop',
        DATASAVER_DB_PASSWORD_FILE: '/nope',
        DATASAVER_STORAGE_PATH: '/b',
      }),
    );
    expect(err.message).toMatch(/DATASAVER_DB_PASSWORD_FILE: cannot read secret file \/nope/);
  });

  it('a secret and its _FILE together are ambiguous', () => {
    const err = configError(() =>
      parse({
        DATASAVER_DATABASE_URL: 'postgres://db/shop',
        DATASAVER_DB_PASSWORD: 'x',
        DATASAVER_DB_PASSWORD_FILE: '/run/secrets/pw',
        DATASAVER_STORAGE_PATH: '/b',
      }),
    );
    expect(err.message).toContain('set only one');
  });
});

describe('YAML file: several targets', () => {
  const yaml = `
defaults:
  compression: zstd
  compression_level: 7
  storage:
    path: /srv/backups
targets:
  shop:
    url: postgres://shop:\${SHOP_PW}@db1:5432/shop
  blog:
    host: db2
    database: blog
    user: blog
    password_file: /run/secrets/pw
    format: plain
    storage:
      path: /srv/blog-backups
  legacy:
    host: db3
    database: legacy
    compression: none
`;

  it('merges defaults, per-target settings and variable expansion', () => {
    const cfg = parse({ SHOP_PW: 's3cr3t', DATASAVER_COMPRESSION: 'gzip' }, yaml);
    expect(cfg.file).toBe('/etc/datasaver.yaml');
    const byName = Object.fromEntries(cfg.targets.map((t) => [t.name, t]));
    expect(Object.keys(byName)).toEqual(['shop', 'blog', 'legacy']);
    expect(byName.shop!.connection.password?.reveal()).toBe('s3cr3t');
    expect(byName.shop!.compression).toEqual({ algorithm: 'zstd', level: 7 }); // file defaults beat env
    expect(byName.shop!.destinations).toEqual([{ backend: 'local', path: '/srv/backups' }]);
    expect(byName.blog!).toMatchObject({
      format: 'plain',
      destinations: [{ path: '/srv/blog-backups' }],
      connection: { host: 'db2', user: 'blog' },
    });
    expect(byName.blog!.connection.password?.reveal()).toBe('from-file-secret');
    expect(byName.legacy!.compression.algorithm).toBe('none');
  });

  it('a level is checked per target against its algorithm', () => {
    const err = configError(() =>
      parse(
        { SHOP_PW: 'x' },
        yaml.replace('compression: none', 'compression: gzip\n    compression_level: 12'),
      ),
    );
    expect(err.message).toContain(
      "targets.legacy.compression_level: '12' is not valid; expected an integer 1-9 for gzip",
    );
    expect(err.message).not.toContain('targets.shop');
  });

  it('errors name the YAML path; unknown keys and unset variables are caught', () => {
    const bad = `
targets:
  shop:
    url: postgres://db/shop
    pasword: x
    port: "http"
    storage:
      path: \${MISSING_VAR}
  "bad name!":
    url: postgres://db/x
    storage: { path: /b }
`;
    const err = configError(() => parse({}, bad));
    expect(err.message).toContain('in /etc/datasaver.yaml');
    expect(err.message).toMatch(/targets\.shop\.pasword: unknown setting; expected one of .*password/);
    expect(err.message).toContain("targets.shop.port: 'http' is not valid; expected a port number 1-65535");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal placeholder is what the message shows
    expect(err.message).toContain('targets.shop.storage.path: refers to ${MISSING_VAR}, which is not set');
    expect(err.message).toContain("targets.bad name!: 'bad name!' is not valid");
  });

  it('connection variables from the environment are ignored with a warning in file mode', () => {
    const cfg = parse({ SHOP_PW: 'x', DATASAVER_DATABASE_URL: 'postgres://other/db' }, yaml);
    expect(cfg.targets.map((t) => t.connection.host)).toEqual(['db1', 'db2', 'db3']);
    expect(cfg.warnings.join('\n')).toMatch(/DATASAVER_DATABASE_URL is ignored/);
  });

  it('rejects invalid YAML and a file without targets', () => {
    expect(configError(() => parse({}, 'targets: [unclosed')).message).toMatch(/is not valid YAML/);
    expect(configError(() => parse({}, 'defaults: {}')).message).toMatch(
      /targets: expected a mapping of target names/,
    );
  });
});

describe('hostile YAML: aliases, wrong shapes', () => {
  it('an alias bomb (billion laughs) is refused at once, naming the file', () => {
    const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      levels.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${prev}`).join(', ')}]`,
      );
    }
    const bomb = `${levels.join('\n')}\ntargets: {shop: {password: *i}}\n`;
    const err = configError(() => parse({}, bomb));
    expect(err.message).toMatch(/^\/etc\/datasaver\.yaml cannot be read as configuration: .*alias/);
  });

  it('a list, a mapping, a number or a boolean where text belongs names the file and the field', () => {
    const bad = `
daemon:
  metrics_host: [a]
targets:
  shop:
    url: postgres://db/shop
    password: [a]
    host: {x: 1}
    schedule: 5
    user: 0123
    storage:
      path: true
      backend: {local: 1}
  blog:
    database: blog
    password: 12345
    port: [5432]
    password_file: 7
    storage: { path: /b }
`;
    const err = configError(() => parse({}, bad));
    expect(err.message).toContain('in /etc/datasaver.yaml');
    for (const line of [
      'daemon.metrics_host: is a list; expected a single value',
      'targets.shop.password: is a list; expected a single value',
      'targets.shop.host: is a mapping; expected a single value',
      'targets.shop.schedule: is a number (5); expected text: put the value in quotes',
      // YAML has already read 0123 as the number 123: the user's text is gone, so it is refused.
      'targets.shop.user: is a number (123); expected text',
      'targets.shop.storage.path: is a boolean (true); expected text',
      'targets.shop.storage.backend: expected a name or a list of names, e.g. [local, s3]',
      // A secret's value is never shown, even when it has the wrong shape.
      'targets.blog.password: is a number; expected text',
      'targets.blog.port: is a list; expected a single value',
      'targets.blog.password_file: is a number (7); expected text',
    ]) {
      expect(err.message).toContain(line);
    }
    expect(err.message).not.toContain('12345');
  });

  it('numbers and booleans stay fine where they belong, and quoted text where text belongs', () => {
    const cfg = parse(
      {},
      `
targets:
  shop:
    host: db
    database: "2024"
    password: "0123"
    port: 5433
    schema_only: true
    schedule: "0 3 * * *"
    retention: { keep_last: 3 }
    storage: { path: /b, backend: [local] }
    notify: { telegram_bot_token: "t", telegram_chat_id: -1001234 }
`,
    );
    const t = cfg.targets[0]!;
    expect(t.connection).toMatchObject({ database: '2024', port: 5433 });
    expect(t.connection.password?.reveal()).toBe('0123');
    expect(t.schemaOnly).toBe(true);
    expect(t.notify.telegram?.chatId).toBe('-1001234');
  });

  it('a key without a value is refused rather than read as the text "null"', () => {
    const err = configError(() =>
      parse({}, 'targets:\n  shop:\n    host:\n    database: x\n    storage: {path: /b}\n'),
    );
    expect(err.message).toContain('targets.shop.host: has no value; give one, or remove the key');
  });
});

describe('size change alert', () => {
  const base = { DATASAVER_DATABASE_URL: 'postgres://db/shop', DATASAVER_STORAGE_PATH: '/b' };
  it('is 50% by default; takes a percentage, or off', () => {
    expect(parse(base).targets[0]!.sizeChangeAlert).toBe(0.5);
    expect(parse({ ...base, DATASAVER_SIZE_CHANGE_ALERT: '30%' }).targets[0]!.sizeChangeAlert).toBe(0.3);
    expect(parse({ ...base, DATASAVER_SIZE_CHANGE_ALERT: '150 %' }).targets[0]!.sizeChangeAlert).toBe(1.5);
    for (const off of ['off', '0', '0%'])
      expect(parse({ ...base, DATASAVER_SIZE_CHANGE_ALERT: off }).targets[0]!.sizeChangeAlert).toBe(0);
    const yaml = parse(
      {},
      'targets:\n  shop:\n    host: db\n    database: shop\n    size_change_alert: 80%\n    storage: {path: /b}\n',
    );
    expect(yaml.targets[0]!.sizeChangeAlert).toBe(0.8);
  });

  it('a bare number is refused: 50 could mean 50% or 5000%', () => {
    for (const bad of ['50', '0.5', 'half'])
      expect(configError(() => parse({ ...base, DATASAVER_SIZE_CHANGE_ALERT: bad })).message).toContain(
        `DATASAVER_SIZE_CHANGE_ALERT: '${bad}' is not valid; expected a percentage such as 50%, or off`,
      );
  });
});

describe('retention and time zone', () => {
  const base = { DATASAVER_DATABASE_URL: 'postgres://app@db/shop', DATASAVER_STORAGE_PATH: '/backups' };

  it('defaults to 7 daily, 4 weekly, 6 monthly, min-keep 3, a 24 h grace, in UTC', () => {
    const t = parse(base).targets[0]!;
    expect(t.timeZone).toBe('UTC');
    expect(t.retention).toEqual({
      keepLast: 0,
      keepDaily: 7,
      keepWeekly: 4,
      keepMonthly: 6,
      keepYearly: 0,
      maxAgeDays: 0,
      minKeep: 3,
      incompleteGraceHours: 24,
    });
  });

  it('reads every rule from the environment; 0 turns a rule off', () => {
    const t = parse({
      ...base,
      DATASAVER_KEEP_LAST: '2',
      DATASAVER_KEEP_DAILY: '0',
      DATASAVER_KEEP_WEEKLY: '8',
      DATASAVER_KEEP_MONTHLY: '12',
      DATASAVER_KEEP_YEARLY: '5',
      DATASAVER_MAX_AGE_DAYS: '400',
      DATASAVER_MIN_KEEP: '1',
      DATASAVER_INCOMPLETE_GRACE_HOURS: '1.5',
      DATASAVER_TIMEZONE: 'Europe/Berlin',
    }).targets[0]!;
    expect(t.timeZone).toBe('Europe/Berlin');
    expect(t.retention).toEqual({
      keepLast: 2,
      keepDaily: 0,
      keepWeekly: 8,
      keepMonthly: 12,
      keepYearly: 5,
      maxAgeDays: 400,
      minKeep: 1,
      incompleteGraceHours: 1.5,
    });
  });

  it('YAML: shared defaults and a per-target retention block', () => {
    const cfg = parse(
      { DATASAVER_KEEP_YEARLY: '2' },
      `
defaults:
  storage: { path: /backups }
  timezone: America/New_York
  retention: { keep_daily: 14 }
targets:
  shop:
    url: postgres://app@db/shop
    retention: { keep_last: 3, min_keep: 5 }
  blog:
    url: postgres://app@db/blog
    timezone: UTC
`,
    );
    const [shop, blog] = cfg.targets;
    expect(shop!.timeZone).toBe('America/New_York');
    expect(shop!.retention).toMatchObject({ keepLast: 3, keepDaily: 14, keepYearly: 2, minKeep: 5 });
    expect(blog!.timeZone).toBe('UTC');
    expect(blog!.retention).toMatchObject({ keepLast: 0, keepDaily: 14, keepYearly: 2, minKeep: 3 });
  });

  it('rejects bad values with the field and what is expected', () => {
    const err = configError(() =>
      parse({
        ...base,
        DATASAVER_KEEP_DAILY: '-1',
        DATASAVER_MIN_KEEP: 'three',
        DATASAVER_TIMEZONE: 'Mars/Olympus',
      }),
    );
    expect(err.message).toContain("DATASAVER_KEEP_DAILY: '-1' is not valid; expected a whole number");
    expect(err.message).toContain("DATASAVER_MIN_KEEP: 'three' is not valid");
    expect(err.message).toContain(
      "DATASAVER_TIMEZONE: 'Mars/Olympus' is not valid; expected an IANA time zone",
    );
    const yamlErr = configError(() =>
      parse(
        {},
        'targets:\n  shop:\n    url: postgres://a@b/c\n    storage: { path: /b }\n    retention: { keep_dayly: 3 }\n',
      ),
    );
    expect(yamlErr.message).toContain('targets.shop.retention.keep_dayly: unknown setting');
  });

  it('refuses a policy that would keep nothing (exit 2)', () => {
    const err = configError(() =>
      parse({
        ...base,
        DATASAVER_KEEP_DAILY: '0',
        DATASAVER_KEEP_WEEKLY: '0',
        DATASAVER_KEEP_MONTHLY: '0',
        DATASAVER_MIN_KEEP: '0',
      }),
    );
    expect(err.message).toMatch(
      /DATASAVER_KEEP_DAILY, DATASAVER_KEEP_WEEKLY, DATASAVER_KEEP_MONTHLY, DATASAVER_MIN_KEEP: .*would keep nothing/,
    );
    // min-keep alone is a policy: keep the N newest.
    expect(
      parse({ ...base, DATASAVER_KEEP_DAILY: '0', DATASAVER_KEEP_WEEKLY: '0', DATASAVER_KEEP_MONTHLY: '0' })
        .targets[0]!.retention.minKeep,
    ).toBe(3);
  });
});

describe('storage destinations and S3', () => {
  const db = { DATASAVER_DATABASE_URL: 'postgres://app@db/shop' };
  const s3 = {
    DATASAVER_S3_BUCKET: 'my-backups',
    DATASAVER_S3_ENDPOINT: 'http://minio:9000/',
    DATASAVER_S3_PREFIX: '/prod/db/',
    DATASAVER_S3_ACCESS_KEY: 'AKIAEXAMPLE',
    DATASAVER_S3_SECRET_KEY: 'wJalrXUtnFEMI-secret',
  };

  it('destinations follow from what is set: a path is local, a bucket is S3, both are both (local first)', () => {
    expect(parse({ ...db, DATASAVER_STORAGE_PATH: '/b' }).targets[0]!.destinations).toEqual([
      { backend: 'local', path: '/b' },
    ]);
    const both = parse({ ...db, ...s3, DATASAVER_STORAGE_PATH: '/b' }).targets[0]!.destinations;
    expect(both.map((d) => d.backend)).toEqual(['local', 's3']);
    expect(both[1]).toMatchObject({
      backend: 's3',
      bucket: 'my-backups',
      endpoint: 'http://minio:9000',
      prefix: 'prod/db',
      region: 'us-east-1',
      forcePathStyle: true, // a custom endpoint means path-style by default
      partSizeMb: 8,
      uploadConcurrency: 4,
      verifyUpload: 'etag',
    });
    const aws = parse({ ...db, DATASAVER_S3_BUCKET: 'b-1', DATASAVER_S3_REGION: 'eu-central-1' });
    expect(aws.targets[0]!.destinations).toEqual([
      expect.objectContaining({
        endpoint: undefined,
        region: 'eu-central-1',
        forcePathStyle: false,
        accessKey: undefined,
      }),
    ]);
  });

  it('DATASAVER_STORAGE_BACKEND picks destinations explicitly and requires their settings', () => {
    const only = parse({ ...db, ...s3, DATASAVER_STORAGE_PATH: '/b', DATASAVER_STORAGE_BACKEND: 's3' });
    expect(only.targets[0]!.destinations.map((d) => d.backend)).toEqual(['s3']);
    const err = configError(() => parse({ ...db, DATASAVER_STORAGE_BACKEND: 'local, s3' }));
    expect(err.message).toContain('DATASAVER_STORAGE_PATH: not set, but the local backend is selected');
    expect(err.message).toContain('DATASAVER_S3_BUCKET: not set, but the s3 backend is selected');
    const bad = configError(() => parse({ ...db, DATASAVER_STORAGE_BACKEND: 'ftp' }));
    expect(bad.message).toContain(
      "DATASAVER_STORAGE_BACKEND: 'ftp' is not valid; expected local, s3, or both: local,s3",
    );
  });

  it('S3 settings are validated field by field, secrets never shown', () => {
    const err = configError(() =>
      parse({
        ...db,
        DATASAVER_S3_BUCKET: 'Bad_Bucket',
        DATASAVER_S3_ENDPOINT: 'minio:9000',
        DATASAVER_S3_SSE: 'rot13',
        DATASAVER_S3_PART_SIZE_MB: '5',
        DATASAVER_S3_UPLOAD_CONCURRENCY: '0',
        DATASAVER_S3_SECRET_KEY: 'only-the-secret',
        DATASAVER_S3_SSE_KMS_KEY_ID: 'key-1',
      }),
    );
    expect(err.message).toContain(
      "DATASAVER_S3_BUCKET: 'Bad_Bucket' is not valid; expected an S3 bucket name",
    );
    expect(err.message).toContain(
      "DATASAVER_S3_ENDPOINT: 'minio:9000' is not valid; expected an http:// or https:// URL",
    );
    expect(err.message).toContain("DATASAVER_S3_SSE: 'rot13' is not valid; expected one of AES256, aws:kms");
    expect(err.message).toContain(
      "DATASAVER_S3_PART_SIZE_MB: '5' is not valid; expected a part size in MiB, 8-5120",
    );
    expect(err.message).toContain('DATASAVER_S3_UPLOAD_CONCURRENCY');
    expect(err.message).toContain('set both DATASAVER_S3_ACCESS_KEY and DATASAVER_S3_SECRET_KEY, or neither');
    expect(err.message).toContain('DATASAVER_S3_SSE_KMS_KEY_ID: a KMS key id needs DATASAVER_S3_SSE=aws:kms');
    expect(err.message).not.toContain('only-the-secret');
    const creds = configError(() =>
      parse({
        ...db,
        DATASAVER_S3_BUCKET: 'b-1',
        DATASAVER_S3_ENDPOINT: 'https://minioadmin:TopSecret99@minio:9000',
        DATASAVER_S3_STORAGE_CLASS: 'DEEP_ARCHIVE',
      }),
    );
    expect(creds.message).toMatch(
      /DATASAVER_S3_ENDPOINT: '\S*\*\*\*@minio:9000' is not valid; expected an http:\/\/ or https:\/\/ URL without credentials/,
    );
    expect(creds.message).toContain("DATASAVER_S3_STORAGE_CLASS: 'DEEP_ARCHIVE' is not valid");
    expect(creds.message).not.toContain('TopSecret99');
    const bare = configError(() =>
      parse({ ...db, DATASAVER_S3_BUCKET: 'b-1', DATASAVER_S3_ENDPOINT: 'admin:TopSecret99@minio:9000' }),
    );
    expect(bare.message).not.toContain('TopSecret99');
  });

  it('DATASAVER_S3_VERIFY_UPLOAD is etag, read-back or size; true and false mean read-back and size', () => {
    const mode = (value: string) =>
      (
        parse({ ...db, DATASAVER_S3_BUCKET: 'b-1', DATASAVER_S3_VERIFY_UPLOAD: value }).targets[0]!
          .destinations[0] as { verifyUpload: string }
      ).verifyUpload;
    expect(['etag', 'read-back', 'size', 'Read-Back', 'true', 'false', 'off'].map(mode)).toEqual([
      'etag',
      'read-back',
      'size',
      'read-back',
      'read-back',
      'size',
      'size',
    ]);
    expect(configError(() => mode('md5')).message).toContain(
      "DATASAVER_S3_VERIFY_UPLOAD: 'md5' is not valid; expected one of etag, read-back, size (true means read-back, false means size)",
    );
  });

  it('keys from files, SSE-KMS, storage class; secrets print as ***', () => {
    files['/run/secrets/s3key'] = 'AKIAFROMFILE\n';
    files['/run/secrets/s3secret'] = 'secret-from-file\n';
    const cfg = parse({
      ...db,
      DATASAVER_S3_BUCKET: 'b-1',
      DATASAVER_S3_ACCESS_KEY_FILE: '/run/secrets/s3key',
      DATASAVER_S3_SECRET_KEY_FILE: '/run/secrets/s3secret',
      DATASAVER_S3_SSE: 'aws:kms',
      DATASAVER_S3_SSE_KMS_KEY_ID: 'arn:aws:kms:eu-central-1:1:key/abc',
      DATASAVER_S3_STORAGE_CLASS: 'STANDARD_IA',
    });
    const d = cfg.targets[0]!.destinations[0]!;
    expect(d).toMatchObject({
      sse: 'aws:kms',
      sseKmsKeyId: 'arn:aws:kms:eu-central-1:1:key/abc',
      storageClass: 'STANDARD_IA',
    });
    if (d.backend !== 's3') throw new Error('expected s3');
    expect(d.accessKey?.reveal()).toBe('AKIAFROMFILE');
    expect(d.secretKey?.reveal()).toBe('secret-from-file');
    const text = JSON.stringify(cfg);
    expect(text).not.toContain('secret-from-file');
    expect(text).not.toContain('AKIAFROMFILE');
  });

  it('YAML: an s3 block, a list of backends, and S3 settings shared through defaults', () => {
    const cfg = parse(
      {},
      `
defaults:
  s3: { bucket: shared-bucket, endpoint: "https://s3.example.com", access_key: ak, secret_key: sk }
targets:
  shop:
    url: postgres://app@db/shop
    storage: { backend: [local, s3], path: /srv/backups }
    s3: { prefix: shop-prod, force_path_style: false }
`,
    );
    const [local, remote] = cfg.targets[0]!.destinations;
    expect(local).toEqual({ backend: 'local', path: '/srv/backups' });
    expect(remote).toMatchObject({ bucket: 'shared-bucket', prefix: 'shop-prod', forcePathStyle: false });
    expect(cfg.defaultDestinations.map((d) => d.backend)).toEqual(['s3']);
  });
  it('the region: DATASAVER_S3_REGION or s3.region, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1', () => {
    const region = (env: Record<string, string>, yaml?: string) =>
      (parse({ DATASAVER_S3_BUCKET: 'b-1', ...env }, yaml).defaultDestinations[0] as { region: string })
        .region;
    expect(region({})).toBe('us-east-1');
    expect(region({ AWS_DEFAULT_REGION: 'eu-west-3' })).toBe('eu-west-3');
    expect(region({ AWS_DEFAULT_REGION: 'eu-west-3', AWS_REGION: 'eu-central-1' })).toBe('eu-central-1');
    expect(region({ AWS_REGION: 'eu-central-1', DATASAVER_S3_REGION: 'ap-south-1' })).toBe('ap-south-1');
    const yaml = `
defaults:
  s3: { bucket: b-1, region: us-west-2 }
targets:
  shop: { url: postgres://app@db/shop, storage: { backend: s3 } }
`;
    const cfg = parse({ AWS_REGION: 'eu-central-1' }, yaml);
    expect((cfg.targets[0]!.destinations[0] as { region: string }).region).toBe('us-west-2');
  });
});

describe('daemon settings: schedules, alerts, notifications, the process', () => {
  const base = { DATASAVER_DATABASE_URL: 'postgres://u:p@h/shop', DATASAVER_STORAGE_PATH: '/b' };

  it('defaults: 02:00 daily, 3 tries, alert after 26 h, port 9090, 30 s shutdown, no notifications', () => {
    const cfg = parse(base);
    const t = cfg.targets[0]!;
    expect(t.schedule).toEqual({
      cron: '0 2 * * *',
      jitterSeconds: 0,
      retryAttempts: 3,
      retryDelaySeconds: 30,
    });
    expect(t.alertAfterHours).toBe(26);
    expect(t.notify.webhookUrl).toBeUndefined();
    expect(cfg.daemon).toEqual({
      metricsPort: 9090,
      metricsHost: '127.0.0.1',
      shutdownTimeoutSeconds: 30,
      logLevel: 'info',
      logFormat: 'auto',
      healthDetails: false,
    });
    expect(cfg.warnings).toEqual([]);
  });

  it('the lease TTL: 300 s by default, per target, a positive number of seconds up to a day', () => {
    expect(parse(base).targets[0]!.leaseTtlSeconds).toBe(300);
    expect(parse({ ...base, DATASAVER_LEASE_TTL_SECONDS: '2.5' }).targets[0]!.leaseTtlSeconds).toBe(2.5);
    const yaml =
      'targets:\n  shop:\n    url: postgres://u:p@h/shop\n    storage: { path: /b }\n    lease_ttl_seconds: 60\n';
    expect(parse({}, yaml).targets[0]!.leaseTtlSeconds).toBe(60);
    const err = configError(() => parse({ ...base, DATASAVER_LEASE_TTL_SECONDS: '0' }));
    expect(err.message).toMatch(/DATASAVER_LEASE_TTL_SECONDS.*a number of seconds greater than 0/);
    expect(parse({ ...base, DATASAVER_LEASE_TTL_SECONDS: '86400' }).targets[0]!.leaseTtlSeconds).toBe(86400);
    const long = configError(() => parse({ ...base, DATASAVER_LEASE_TTL_SECONDS: '86401' }));
    expect(long.message).toMatch(/DATASAVER_LEASE_TTL_SECONDS.*at most 86400 \(a day\)/);
  });

  it('reads every setting from the environment; notification URLs are secrets', () => {
    const cfg = parse({
      ...base,
      DATASAVER_SCHEDULE: '*/30 * * * * *',
      DATASAVER_TIMEZONE: 'Europe/Berlin',
      DATASAVER_SCHEDULE_JITTER_SECONDS: '5',
      DATASAVER_RETRY_ATTEMPTS: '1',
      DATASAVER_RETRY_DELAY_SECONDS: '0.5',
      DATASAVER_ALERT_AFTER_HOURS: '0.5',
      DATASAVER_WEBHOOK_URL: 'https://hooks.example/x?token=hooksecret',
      DATASAVER_NTFY_URL: 'https://ntfy.sh/topicsecret',
      DATASAVER_TELEGRAM_BOT_TOKEN: '1:tgsecret',
      DATASAVER_TELEGRAM_CHAT_ID: '-42',
      DATASAVER_HEALTHCHECKS_URL: 'https://hc-ping.com/uuidsecret',
      DATASAVER_NOTIFY_ON_SUCCESS: 'yes',
      DATASAVER_METRICS_PORT: '9191',
      DATASAVER_LOG_LEVEL: 'debug',
      DATASAVER_LOG_FORMAT: 'json',
      DATASAVER_SHUTDOWN_TIMEOUT_SECONDS: '10',
    });
    const t = cfg.targets[0]!;
    expect(t.schedule).toEqual({
      cron: '*/30 * * * * *',
      jitterSeconds: 5,
      retryAttempts: 1,
      retryDelaySeconds: 0.5,
    });
    expect(t.alertAfterHours).toBe(0.5);
    expect(t.notify.webhookUrl?.reveal()).toBe('https://hooks.example/x?token=hooksecret');
    expect(t.notify.telegram).toMatchObject({ chatId: '-42', apiUrl: 'https://api.telegram.org' });
    expect(t.notify.onSuccess).toBe(true);
    expect(cfg.daemon).toMatchObject({
      metricsPort: 9191,
      logLevel: 'debug',
      logFormat: 'json',
      shutdownTimeoutSeconds: 10,
    });
    const shown = JSON.stringify(cfg);
    for (const s of ['hooksecret', 'topicsecret', 'tgsecret', 'uuidsecret']) expect(shown).not.toContain(s);
  });

  it('rejects bad values with the field and what is expected', () => {
    const err = configError(() =>
      parse({
        ...base,
        DATASAVER_SCHEDULE: '0 25 * * *',
        DATASAVER_ALERT_AFTER_HOURS: '0',
        DATASAVER_RETRY_ATTEMPTS: '0',
        DATASAVER_WEBHOOK_URL: 'ftp://x/hooksecret',
        DATASAVER_TELEGRAM_CHAT_ID: '5',
        DATASAVER_METRICS_PORT: '99999',
        DATASAVER_LOG_LEVEL: 'loud',
      }),
    );
    expect(err.message).toMatch(
      /DATASAVER_SCHEDULE: '0 25 \* \* \*' is not a valid schedule \(.*hour.*\); expected a cron expression/,
    );
    expect(err.message).toMatch(
      /DATASAVER_ALERT_AFTER_HOURS: '0' is not valid; expected a number of hours greater than 0/,
    );
    expect(err.message).toMatch(/DATASAVER_RETRY_ATTEMPTS: '0' is not valid/);
    expect(err.message).toMatch(/DATASAVER_WEBHOOK_URL: '\*\*\*' is not valid; expected an http/);
    expect(err.message).toMatch(/DATASAVER_TELEGRAM_CHAT_ID: Telegram needs both/);
    expect(err.message).toMatch(/DATASAVER_METRICS_PORT: '99999' is not valid/);
    expect(err.message).toMatch(/DATASAVER_LOG_LEVEL: 'loud' is not valid; expected one of trace, debug/);
    expect(err.message).not.toMatch(/hooksecret/);
  });

  it('warns when the alert window is not longer than the gap between runs', () => {
    const cfg = parse({ ...base, DATASAVER_SCHEDULE: '0 2 * * 1', DATASAVER_ALERT_AFTER_HOURS: '26' });
    expect(cfg.warnings).toEqual([
      expect.stringMatching(
        /target shop: DATASAVER_ALERT_AFTER_HOURS \(26 h\) is not longer than the gap between scheduled runs \(168\.00 h\)/,
      ),
    ]);
  });

  it('YAML: per-target schedules and notify blocks, shared defaults, a daemon section, secret files', () => {
    files['/run/secrets/slack'] = 'https://hooks.slack.com/services/T/B/slacksecret\n';
    const cfg = parse(
      { DATASAVER_WEBHOOK_URL: 'https://hooks.example/all', DATASAVER_METRICS_PORT: '9300' },
      `
daemon:
  metrics_port: 9400
  log_format: pretty
defaults:
  storage: { path: /b }
  schedule: "0 3 * * *"
  notify:
    slack_webhook_url_file: /run/secrets/slack
targets:
  shop:
    url: postgres://u:p@h/shop
    alert_after_hours: 30
  blog:
    url: postgres://u:p@h/blog
    schedule: "*/15 * * * *"
    notify: { on_success: true }
`,
    );
    const [shop, blog] = cfg.targets;
    expect(shop!.schedule.cron).toBe('0 3 * * *');
    expect(shop!.alertAfterHours).toBe(30);
    expect(blog!.schedule.cron).toBe('*/15 * * * *');
    expect(blog!.notify.onSuccess).toBe(true);
    for (const t of [shop!, blog!]) {
      expect(t.notify.webhookUrl?.reveal()).toBe('https://hooks.example/all');
      expect(t.notify.slackWebhookUrl?.reveal()).toBe('https://hooks.slack.com/services/T/B/slacksecret');
    }
    expect(cfg.daemon).toMatchObject({ metricsPort: 9400, logFormat: 'pretty' });
    const err = configError(() =>
      parse({}, 'daemon: { port: 1 }\ntargets: { a: { url: "postgres://h/a", storage: { path: /b } } }'),
    );
    expect(err.message).toMatch(/daemon\.port: unknown setting; expected one of metrics_port/);
  });
});

describe('engines: the URL scheme or DATASAVER_ENGINE picks one', () => {
  const store = { DATASAVER_STORAGE_PATH: '/b' };

  it('mysql:// and mariadb:// are MySQL; one database, a list, or all', () => {
    const one = parse({ ...store, DATASAVER_DATABASE_URL: 'mariadb://app:pw@db:3307/shop' }).targets[0]!;
    expect(one).toMatchObject({
      name: 'shop',
      engine: 'mysql',
      format: 'sql',
      connection: { host: 'db', port: 3307, database: 'shop', user: 'app', tls: false },
    });
    const all = parse({ ...store, DATASAVER_DATABASE_URL: 'mysql://root:pw@db' }).targets[0]!;
    expect(all).toMatchObject({ name: 'mysql', connection: { database: undefined } });
    const list = parse({
      ...store,
      DATASAVER_ENGINE: 'mysql',
      DATASAVER_DB_HOST: 'db',
      DATASAVER_DB_NAME: 'a,b',
    });
    expect(list.targets[0]).toMatchObject({ name: 'a', engine: 'mysql', connection: { database: 'a,b' } });
  });

  it('redis:// and rediss:// (TLS) are Redis; the database number of a URL is ignored', () => {
    const r = parse({ ...store, DATASAVER_DATABASE_URL: 'rediss://backup:s3cret@cache:6380/2' }).targets[0]!;
    expect(r).toMatchObject({
      name: 'redis',
      engine: 'redis',
      format: 'rdb',
      connection: { host: 'cache', port: 6380, user: 'backup', tls: true, database: undefined },
    });
    expect(r.connection.password?.reveal()).toBe('s3cret');
  });

  it('sqlite:///path names a file; its base name is the target name', () => {
    const s = parse({ ...store, DATASAVER_DATABASE_URL: 'sqlite:///var/lib/app/app.db' }).targets[0]!;
    expect(s).toMatchObject({
      name: 'app',
      engine: 'sqlite',
      format: 'sqlite',
      connection: { database: '/var/lib/app/app.db' },
    });
    const e = parse({ ...store, DATASAVER_ENGINE: 'sqlite', DATASAVER_DB_NAME: '/data/notes.sqlite3' })
      .targets[0]!;
    expect(e).toMatchObject({ name: 'notes', connection: { database: '/data/notes.sqlite3' } });
  });

  it('DATASAVER_DB_TLS_CA: an absolute PEM path that turns TLS on, for mysql and redis only', () => {
    const c = (env: Record<string, string>) => parse({ ...store, ...env }).targets[0]!.connection;
    expect(
      c({ DATASAVER_DATABASE_URL: 'mysql://u@db/shop', DATASAVER_DB_TLS_CA: '/etc/ssl/ca.pem' }),
    ).toMatchObject({ tls: true, tlsCa: '/etc/ssl/ca.pem' });
    expect(c({ DATASAVER_DATABASE_URL: 'redis://cache' })).toMatchObject({ tls: false, tlsCa: undefined });
    expect(
      configError(() => c({ DATASAVER_DATABASE_URL: 'mysql://u@db/shop', DATASAVER_DB_TLS_CA: 'ca.pem' }))
        .message,
    ).toContain("DATASAVER_DB_TLS_CA: 'ca.pem' is not valid; expected the absolute path of a PEM file");
    expect(
      configError(() => c({ DATASAVER_DATABASE_URL: 'postgres://u@db/shop', DATASAVER_DB_TLS_CA: '/ca.pem' }))
        .message,
    ).toMatch(/DATASAVER_DB_TLS_CA: TLS applies to mysql and redis; postgres uses DATASAVER_DB_SSLMODE/);
  });

  it('field-level errors for settings that do not fit the engine', () => {
    const err = configError(() => parse({ ...store, DATASAVER_DATABASE_URL: 'sqlite://host/x.db' }));
    expect(err.message).toMatch(/a SQLite URL has no host; write sqlite:\/\/\/absolute\/path\.db/);
    const rel = configError(() =>
      parse({ ...store, DATASAVER_ENGINE: 'sqlite', DATASAVER_DB_NAME: 'app.db' }),
    );
    expect(rel.message).toMatch(/DATASAVER_DB_NAME: a SQLite target needs the absolute path/);
    const fmt = configError(() =>
      parse({
        ...store,
        DATASAVER_DATABASE_URL: 'redis://cache',
        DATASAVER_FORMAT: 'custom',
        DATASAVER_DB_SSLMODE: 'require',
      }),
    );
    expect(fmt.message).toMatch(/DATASAVER_FORMAT: 'custom' is not valid; expected one of rdb for redis/);
    expect(fmt.message).toMatch(
      /DATASAVER_DB_SSLMODE: applies to postgres only; for redis use DATASAVER_DB_TLS/,
    );
    for (const [url, why] of [
      ['sqlite:///data/a#b.db', /has a '#' part; encode '#'/],
      ['redis:///tmp/redis.sock', /unix socket paths are not supported/],
      ['redis://cache/foo', /a Redis URL is redis:\/\/user:password@host:port/],
      ['sqlite:///', /name the database file/],
    ] as const) {
      expect(configError(() => parse({ ...store, DATASAVER_DATABASE_URL: url })).message, url).toMatch(why);
    }
    const mismatch = configError(() =>
      parse({ ...store, DATASAVER_DATABASE_URL: 'redis://cache', DATASAVER_ENGINE: 'mysql' }),
    );
    expect(mismatch.message).toMatch(/DATASAVER_ENGINE: says mysql but the database URL is for redis/);
    const schema = configError(() =>
      parse({ ...store, DATASAVER_DATABASE_URL: 'redis://cache', DATASAVER_SCHEMA_ONLY: 'true' }),
    );
    expect(schema.message).toMatch(/redis backups have no schema-only mode/);
  });
});
