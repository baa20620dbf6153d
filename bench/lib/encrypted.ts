/**
 * The encrypted backup row: the same backup as `datasaver backup`, with the data and the manifest's
 * contents encrypted to one age recipient (X25519), judged against the clear backup. Encryption runs in
 * datasaver's own process, so its memory is datasaver's `node` process, not the dump tool's.
 */
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { ownPeakRssKb } from './drill.ts';
import { type Check, check, type Summary } from './report.ts';

/** A fresh age recipient for the run; its identity is never written anywhere, nothing is decrypted. */
export async function benchRecipient(): Promise<string> {
  return identityToRecipient(await generateIdentity());
}

/** Wall time at most 10% over the clear backup's, and datasaver's own peak RSS within 10 MB of it. */
export function encryptedChecks(encrypted: Summary | undefined, clear: Summary | undefined): Check[] {
  const own = (s: Summary | undefined) => (s ? ownPeakRssKb(s) : null);
  const [rssEncrypted, rssClear] = [own(encrypted), own(clear)];
  return [
    check(
      'encrypted backup wall: encrypted / clear',
      encrypted && clear ? encrypted.wallSeconds / clear.wallSeconds : null,
      '<=',
      1.1,
    ),
    check(
      'encrypted backup peak RSS, node only: encrypted - clear (MB)',
      rssEncrypted !== null && rssClear !== null ? (rssEncrypted - rssClear) / 1024 : null,
      '<=',
      10,
    ),
  ];
}
