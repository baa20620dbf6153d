/**
 * A target's manifest signing settings: the private key its backups are signed with
 * (DATASAVER_SIGNING_KEY, on the sidecar) and the public keys readers believe (DATASAVER_VERIFY_KEYS, on
 * every machine that lists, restores or prunes). Anything set but unusable is a configuration problem:
 * datasaver never falls back to unsigned writing or to believing every manifest when keys were meant.
 */
import { parseSigningKey, parseVerifyKeys, type SigningKey, type VerifyKey } from '../catalog/signature.ts';
import { ConfigError } from '../util/errors.ts';
import type { Problems, RawTarget, Sourced } from './raw.ts';

export interface SigningConfig {
  /** Every manifest this target's backups write is signed with it; undefined: manifests are unsigned. */
  signingKey: SigningKey | undefined;
  /**
   * Readers believe only manifests signed by one of these (several during a key rotation); unsigned or
   * badly signed ones are ignored and reported. Empty: every readable manifest is believed, signed or not.
   */
  verifyKeys: VerifyKey[];
}

/** Neither signing nor verifying: what a target without signing settings gets. */
export const NO_SIGNING: SigningConfig = { signingKey: undefined, verifyKeys: [] };

/** The signing settings of one layer of settings (a target's, or the shared ones); problems are recorded. */
export function buildSigning(raw: RawTarget, problems: Problems): SigningConfig {
  const signingKey = parsed(raw.signingKey, parseSigningKey, problems);
  const verifyKeys = parsed(raw.verifyKeys, parseVerifyKeys, problems) ?? [];
  // A sidecar that verifies must believe its own backups, or prune, health and restore would ignore
  // every one it writes.
  if (signingKey && verifyKeys.length > 0 && !verifyKeys.some((k) => k.keyId === signingKey.keyId)) {
    problems.add(
      raw.verifyKeys!.origin,
      `does not hold the public key of the signing key (key id ${signingKey.keyId}), so every backup signed here would be ignored; add ${signingKey.verifyKey.text}`,
    );
  }
  return { signingKey, verifyKeys };
}

function parsed<T>(
  source: Sourced | undefined,
  parse: (text: string) => T,
  problems: Problems,
): T | undefined {
  if (!source) return undefined;
  try {
    return parse(String(source.value));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.add(source.origin, err.hint ? `${err.message}; ${err.hint}` : err.message);
    return undefined;
  }
}
