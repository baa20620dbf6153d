/**
 * Child tools never see secrets that are not theirs: pg_dump, pg_restore and
 * psql, wrapped by scripts that record the environment they were started with, run a backup and a
 * restore of each format under a parent environment full of secrets. None reach them; the database
 * password reaches them in PGPASSWORD alone; the round trip still works.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import {
  comparableDump,
  createDatabase,
  query,
  server,
  targetEnv,
  tempDir,
  uniqueName,
} from '../support/pg.ts';

let source: string;

beforeAll(async () => {
  source = uniqueName('childenv');
  await createDatabase(source);
  await query(source, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')");
});

const SECRETS = {
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEKEYID0001',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-value-0001',
  DATASAVER_WEBHOOK_URL: 'http://127.0.0.1:9/hooks/webhook-token-0001',
  DATASAVER_TELEGRAM_BOT_TOKEN: '123456:telegram-token-0001',
  DATASAVER_TELEGRAM_CHAT_ID: '42',
  SECRET_X: 'unrelated-secret-0001',
  // The target's own password wins over one the parent has for libpq.
  PGPASSWORD: 'parent-pgpassword-0001',
};

/** pg_dump, pg_restore and psql that record the environment they were given, then run the real tool. */
async function recordingTools(logDir: string): Promise<string> {
  const bin = server().binDir;
  const wrap = (tool: string) =>
    `tr '\\0' '\\n' < /proc/$$/environ > "${logDir}/${tool}.$$.$(date +%s%N)"\nexec "${bin}/${tool}" "$@"`;
  return fakeToolDir({ pg_dump: wrap('pg_dump'), pg_restore: wrap('pg_restore'), psql: wrap('psql') });
}

async function environments(logDir: string): Promise<Map<string, Map<string, string>[]>> {
  const byTool = new Map<string, Map<string, string>[]>();
  for (const file of await readdir(logDir)) {
    const lines = (await readFile(join(logDir, file), 'utf8')).split('\n').filter(Boolean);
    const env = new Map(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const tool = file.split('.')[0]!;
    byTool.set(tool, [...(byTool.get(tool) ?? []), env]);
  }
  return byTool;
}

describe('the environment of child tools', () => {
  it('backup and restore of both formats: no secret reaches a tool, the password only in PGPASSWORD', async () => {
    const logDir = await tempDir('child-env-');
    const tools = await recordingTools(logDir);
    const password = server().password;
    for (const format of ['custom', 'plain']) {
      const storage = await tempDir();
      const env = {
        ...SECRETS,
        ...targetEnv(source, storage, { DATASAVER_FORMAT: format, DATASAVER_TOOL_DIR: tools }),
      };
      const backup = await runCli(['backup'], env);
      expect(backup.code, backup.output).toBe(0);
      const copy = uniqueName(`childenv_${format}`);
      const restore = await runCli(['restore', 'latest', '--target-db', copy], env);
      expect(restore.code, restore.output).toBe(0);
      expect(await comparableDump(copy)).toBe(await comparableDump(source));
    }

    const byTool = await environments(logDir);
    expect([...byTool.keys()].sort()).toEqual(['pg_dump', 'pg_restore', 'psql']);
    const secretValues = Object.entries(SECRETS)
      .filter(([name]) => name !== 'DATASAVER_TELEGRAM_CHAT_ID')
      .map(([, value]) => value);
    for (const [tool, runs] of byTool) {
      for (const env of runs) {
        const names = [...env.keys()];
        expect(
          names.filter((n) => /^(AWS_|DATASAVER_|SECRET_)/.test(n)),
          tool,
        ).toEqual([]);
        for (const [name, value] of env) {
          for (const secret of secretValues) expect(value, `${tool} ${name}`).not.toContain(secret);
          if (name !== 'PGPASSWORD') expect(value, `${tool} ${name}`).not.toContain(password);
        }
        // Only the tools that connect get the password; then it is the target's, not the parent's.
        if (env.has('PGPASSWORD')) expect(env.get('PGPASSWORD'), tool).toBe(password);
        expect(
          names.every((n) => /^(PATH|HOME|LANG|TZ|TMPDIR|LC_\w+|PG[A-Z_]+)$/.test(n)),
          names.join(' '),
        ).toBe(true);
      }
    }
    expect(byTool.get('pg_dump')!.some((env) => env.get('PGPASSWORD') === password)).toBe(true);
    expect(byTool.get('psql')!.some((env) => env.get('PGPASSWORD') === password)).toBe(true);
  });

  it('libpq variables of the parent still reach the tools where the target leaves them open', async () => {
    const s = server();
    const storage = await tempDir();
    const env = {
      DATASAVER_DB_NAME: source,
      DATASAVER_STORAGE_PATH: storage,
      PGHOST: s.host,
      PGPORT: String(s.port),
      PGUSER: s.user,
      PGPASSWORD: s.password,
      AWS_SECRET_ACCESS_KEY: SECRETS.AWS_SECRET_ACCESS_KEY,
    };
    const backup = await runCli(['backup'], env);
    expect(backup.code, backup.output).toBe(0);
    const copy = uniqueName('childenv_libpq');
    const restore = await runCli(['restore', 'latest', '--target-db', copy], env);
    expect(restore.code, restore.output).toBe(0);
    expect(await comparableDump(copy)).toBe(await comparableDump(source));
  });
});
