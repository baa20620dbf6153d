import { describe, expect, it } from 'vitest';
import { encryptionFor } from '../../src/cli/context.ts';
import { assertIdentityOpensRecipients, describeEncryption } from '../../src/config/encryption-settings.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { configError, configParser } from '../support/config.ts';

// A key made for these tests alone (age-keygen): it protects nothing.
const IDENTITY = 'AGE-SECRET-KEY-143W8P60HFEAVRCTDYUFVX59HPH478QG0F3LKEETEU5PHMNE5GZFQCUCXUF';
const RECIPIENT = 'age1yztvv5c5dsvf6759qvy37tan2u35cxupk0d37t7s62nf35qj3ddqzl92sq';
const OTHER = 'age1h246y7g59px4vsllhwxfpf397c4maajft3xpywnh80zqnzg73dnq5ajwhr';

const parse = configParser({
  '/keys/identity.txt': `# created by age-keygen\n# public key: ${RECIPIENT}\n${IDENTITY}\n`,
  '/keys/recipients.txt': `# ops team\n${RECIPIENT}\n\n${OTHER} # the vault\n`,
  '/keys/empty.txt': '# nobody yet\n',
  '/keys/public.txt': `${RECIPIENT}\n`,
  '/keys/passphrase': 'correct horse battery staple\n',
});
const DB = { DATASAVER_DATABASE_URL: 'postgresql://app@db/shop', DATASAVER_STORAGE_PATH: '/backups' };

function problem(fn: () => unknown): string {
  return configError(fn).message;
}

describe('encryption settings', () => {
  it('is off unless set', () => {
    const cfg = parse(DB);
    expect(cfg.targets[0]!.encryption).toEqual({ encrypt: undefined, decrypt: undefined });
    expect(cfg.defaultEncryption).toEqual({ encrypt: undefined, decrypt: undefined });
  });

  it('reads recipients, comma or whitespace separated, and from a recipients file', () => {
    const direct = parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS: `${RECIPIENT}, ${OTHER}` });
    expect(direct.targets[0]!.encryption.encrypt).toEqual({ recipients: [RECIPIENT, OTHER] });
    expect(direct.targets[0]!.encryption.decrypt).toBeUndefined();
    const file = parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS_FILE: '/keys/recipients.txt' });
    expect(file.targets[0]!.encryption.encrypt).toEqual({ recipients: [RECIPIENT, OTHER] });
  });

  it('a passphrase (also from _FILE) both encrypts and decrypts, and stays secret', () => {
    const cfg = parse({ ...DB, DATASAVER_ENCRYPTION_PASSPHRASE_FILE: '/keys/passphrase' });
    const { encrypt, decrypt } = cfg.targets[0]!.encryption;
    expect(encrypt && 'passphrase' in encrypt && encrypt.passphrase.reveal()).toBe(
      'correct horse battery staple',
    );
    expect(decrypt && 'passphrase' in decrypt).toBe(true);
    expect(JSON.stringify(cfg)).not.toContain('horse');
  });

  it('reads the identity file at config time and holds its content as a secret', () => {
    const cfg = parse({
      ...DB,
      DATASAVER_ENCRYPTION_RECIPIENTS: RECIPIENT,
      DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/identity.txt',
    });
    const { decrypt, identityFile } = cfg.targets[0]!.encryption;
    expect(decrypt && 'identities' in decrypt && decrypt.identities).toBeInstanceOf(Secret);
    expect(identityFile).toBe('/keys/identity.txt');
    expect(JSON.stringify(cfg)).not.toContain(IDENTITY);
  });

  it('reads the YAML section, with recipients_file, and shared defaults for unconfigured targets', () => {
    const cfg = parse(
      {},
      `defaults:
  storage: { path: /backups }
  encryption:
    recipients_file: /keys/recipients.txt
    identity_file: /keys/identity.txt
targets:
  shop: { url: postgresql://app@db/shop }
`,
    );
    expect(cfg.targets[0]!.encryption.encrypt).toEqual({ recipients: [RECIPIENT, OTHER] });
    expect(cfg.targets[0]!.encryption.identityFile).toBe('/keys/identity.txt');
    expect(cfg.defaultEncryption.encrypt).toEqual({ recipients: [RECIPIENT, OTHER] });
    expect(cfg.defaultEncryption.decrypt).toBeDefined();
  });

  it('refuses what cannot work (exit 2), each problem named', () => {
    expect(
      problem(() =>
        parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS: RECIPIENT, DATASAVER_ENCRYPTION_PASSPHRASE: 'pw' }),
      ),
    ).toMatch(/DATASAVER_ENCRYPTION_RECIPIENTS and DATASAVER_ENCRYPTION_PASSPHRASE are set/);
    expect(problem(() => parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS: 'age1nope' }))).toMatch(
      /DATASAVER_ENCRYPTION_RECIPIENTS: encryption recipient 1 \("age1nope"\) is not an age X25519 recipient/,
    );
    expect(problem(() => parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS: ' , ' }))).toMatch(
      /no encryption recipient given/,
    );
    expect(problem(() => parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS_FILE: '/keys/empty.txt' }))).toMatch(
      /DATASAVER_ENCRYPTION_RECIPIENTS_FILE \(\/keys\/empty.txt\): no encryption recipient given/,
    );
    expect(
      problem(() => parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS_FILE: '/keys/missing.txt' })),
    ).toMatch(/cannot read .*\/keys\/missing.txt/);
    expect(problem(() => parse({ ...DB, DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/missing.txt' }))).toMatch(
      /DATASAVER_ENCRYPTION_IDENTITY_FILE: cannot read the identity file \/keys\/missing.txt/,
    );
    const malformed = problem(() => parse({ ...DB, DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/public.txt' }));
    expect(malformed).toMatch(/line 1 of the encryption identity is not an age X25519 identity/);
    expect(
      problem(() =>
        parse({
          ...DB,
          DATASAVER_ENCRYPTION_PASSPHRASE: 'pw',
          DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/identity.txt',
        }),
      ),
    ).toMatch(/a passphrase decrypts by itself/);
  });

  it('refuses a drill schedule for encrypted backups without a key to open them', () => {
    const env = { ...DB, DATASAVER_ENCRYPTION_RECIPIENTS: RECIPIENT, DATASAVER_DRILL_SCHEDULE: '0 4 * * 0' };
    expect(problem(() => parse(env))).toMatch(
      /DATASAVER_DRILL_SCHEDULE: scheduled drills of encrypted backups need the key.*DATASAVER_ENCRYPTION_IDENTITY_FILE/,
    );
    expect(
      parse({ ...env, DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/identity.txt' }).targets[0]!.drill.schedule,
    ).toBe('0 4 * * 0');
  });

  it('config check shows what is set, never a secret', () => {
    const cfg = parse({
      ...DB,
      DATASAVER_ENCRYPTION_RECIPIENTS: RECIPIENT,
      DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/identity.txt',
    });
    const shown = JSON.stringify(describeEncryption(cfg.targets[0]!.encryption));
    expect(shown).toContain('1 recipient: age1yztvv5c5');
    expect(shown).toContain('identity file /keys/identity.txt');
    expect(shown).not.toContain(IDENTITY);
    const pw = parse({ ...DB, DATASAVER_ENCRYPTION_PASSPHRASE: 'hunter2-words' });
    const pwShown = JSON.stringify(describeEncryption(pw.targets[0]!.encryption));
    expect(pwShown).toContain('passphrase: set');
    expect(pwShown).not.toContain('hunter2');
  });

  it('encryptionFor: the configured target, else the shared settings', () => {
    const cfg = parse(
      { DATASAVER_ENCRYPTION_RECIPIENTS: OTHER },
      `targets:
  shop:
    url: postgresql://app@db/shop
    storage: { path: /backups }
    encryption: { recipients: ${RECIPIENT} }
`,
    );
    expect(encryptionFor(cfg, 'shop').encrypt).toEqual({ recipients: [RECIPIENT] });
    expect(encryptionFor(cfg, 'gone').encrypt).toEqual({ recipients: [OTHER] });
  });
});

describe('an identity beside the recipients', () => {
  const withIdentity = (recipients: string) =>
    parse({
      ...DB,
      DATASAVER_ENCRYPTION_RECIPIENTS: recipients,
      DATASAVER_ENCRYPTION_IDENTITY_FILE: '/keys/identity.txt',
    }).targets[0]!;

  it('must open one of them, else the commands that write backups refuse to start', async () => {
    await expect(
      assertIdentityOpensRecipients('shop', withIdentity(`${OTHER},${RECIPIENT}`).encryption),
    ).resolves.toBeUndefined();
    const err = await assertIdentityOpensRecipients('shop', withIdentity(OTHER).encryption).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(
      /target shop: the identity in DATASAVER_ENCRYPTION_IDENTITY_FILE \(\/keys\/identity.txt\) opens none of the recipients/,
    );
    expect((err as ConfigError).message).not.toContain(IDENTITY);
  });

  it('has nothing to check without an identity, or with a passphrase', async () => {
    const recipientsOnly = parse({ ...DB, DATASAVER_ENCRYPTION_RECIPIENTS: OTHER }).targets[0]!;
    await expect(assertIdentityOpensRecipients('shop', recipientsOnly.encryption)).resolves.toBeUndefined();
    const passphrase = parse({ ...DB, DATASAVER_ENCRYPTION_PASSPHRASE: 'x y z' }).targets[0]!;
    await expect(assertIdentityOpensRecipients('shop', passphrase.encryption)).resolves.toBeUndefined();
  });
});
