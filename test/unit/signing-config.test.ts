import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/catalog/signature.ts';
import { parseConfig } from '../../src/config/parse.ts';
import { parseYamlText } from '../../src/config/yaml.ts';
import { ConfigError } from '../../src/util/errors.ts';

const key = generateSigningKey();
const oldKey = generateSigningKey();
const pemBody = key.pem().split('\n')[1]!;

const files: Record<string, string> = {
  '/run/secrets/signing.pem': key.pem(),
  '/etc/datasaver/verify-keys': `# rotation\n${key.verifyKey.text}\n${oldKey.verifyKey.text}\n`,
};

function parse(env: Record<string, string>, yaml?: string) {
  const path = '/etc/datasaver.yaml';
  return parseConfig({
    env,
    yaml: yaml === undefined ? undefined : { data: parseYamlText(yaml, path), path },
    readFile: (p) => {
      const v = files[p];
      if (v === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return v;
    },
  });
}

const DB = { DATASAVER_DATABASE_URL: 'postgres://app@db/shop', DATASAVER_STORAGE_PATH: '/b' };

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('signing settings', () => {
  it('none set: no signing key and no verify keys, for targets and the shared defaults', () => {
    const cfg = parse(DB);
    expect(cfg.targets[0]!.signing).toEqual({ signingKey: undefined, verifyKeys: [] });
    expect(cfg.defaultSigning).toEqual({ signingKey: undefined, verifyKeys: [] });
  });

  it('environment: the signing key from _FILE, verify keys inline; the view shows key ids only', () => {
    const cfg = parse({
      ...DB,
      DATASAVER_SIGNING_KEY_FILE: '/run/secrets/signing.pem',
      DATASAVER_VERIFY_KEYS: `${oldKey.verifyKey.text}, ${key.verifyKey.text}`,
    });
    const { signing } = cfg.targets[0]!;
    expect(signing.signingKey?.keyId).toBe(key.keyId);
    expect(signing.verifyKeys.map((k) => k.keyId)).toEqual([oldKey.keyId, key.keyId]);
    expect(cfg.defaultSigning.verifyKeys).toHaveLength(2);
    const view = JSON.stringify(cfg);
    expect(view).not.toContain(pemBody);
    expect(JSON.parse(view).targets[0].signing).toEqual({
      signingKey: { keyId: key.keyId },
      verifyKeys: [{ keyId: oldKey.keyId }, { keyId: key.keyId }],
    });
  });

  it('YAML: signing.key_file and signing.verify_keys_file, per target or in defaults', () => {
    const cfg = parse(
      {},
      `
defaults:
  storage: { path: /b }
  signing:
    verify_keys_file: /etc/datasaver/verify-keys
targets:
  shop:
    url: postgres://app@db/shop
    signing:
      key_file: /run/secrets/signing.pem
  other:
    url: postgres://app@db/other
`,
    );
    expect(cfg.targets.map((t) => t.signing.signingKey?.keyId)).toEqual([key.keyId, undefined]);
    expect(cfg.targets[1]!.signing.verifyKeys.map((k) => k.keyId)).toEqual([key.keyId, oldKey.keyId]);
    expect(cfg.defaultSigning.verifyKeys.map((k) => k.keyId)).toEqual([key.keyId, oldKey.keyId]);
  });

  it('a malformed signing key is a problem naming the setting, never showing the key', () => {
    const message = problem(() => parse({ ...DB, DATASAVER_SIGNING_KEY: `${pemBody}x` }));
    expect(message).toMatch(/DATASAVER_SIGNING_KEY: the signing key is not an Ed25519 private key/);
    expect(message).not.toContain(pemBody);
  });

  it('malformed, empty or unreadable verify keys are problems', () => {
    expect(problem(() => parse({ ...DB, DATASAVER_VERIFY_KEYS: `${key.verifyKey.text},no-pe` }))).toMatch(
      /DATASAVER_VERIFY_KEYS: verify key entry 2 of 2 is not base64/,
    );
    expect(problem(() => parse({ ...DB, DATASAVER_VERIFY_KEYS: ' , ' }))).toMatch(/no verify key given/);
    expect(problem(() => parse({ ...DB, DATASAVER_VERIFY_KEYS_FILE: '/nope' }))).toMatch(
      /DATASAVER_VERIFY_KEYS_FILE: cannot read secret file \/nope/,
    );
    // Shared settings are checked even with no target configured (restore on a fresh machine).
    expect(problem(() => parse({ DATASAVER_STORAGE_PATH: '/b', DATASAVER_VERIFY_KEYS: 'AAAA' }))).toMatch(
      /DATASAVER_VERIFY_KEYS: verify key entry 1 of 1 is not a public key/,
    );
  });

  it('verify keys that do not include the signing key are a problem: its own backups would be ignored', () => {
    const message = problem(() =>
      parse({ ...DB, DATASAVER_SIGNING_KEY: key.pem(), DATASAVER_VERIFY_KEYS: oldKey.verifyKey.text }),
    );
    expect(message).toContain(`does not hold the public key of the signing key (key id ${key.keyId})`);
    expect(message).toContain(key.verifyKey.text);
  });

  it('a verify keys file holds several keys, one a line, with comments', () => {
    const cfg = parse({ ...DB, DATASAVER_VERIFY_KEYS_FILE: '/etc/datasaver/verify-keys' });
    expect(cfg.targets[0]!.signing.verifyKeys).toHaveLength(2);
  });
});
