/**
 * The optional features of an S3-compatible service, found out once per process and destination.
 *
 * Conditional writes (`If-None-Match: *`): probed before the first `ifAbsent` put by writing a probe
 * object under a reserved name twice and deleting it; an unmodified s3rver accepts the header and
 * overwrites. Where the service does not enforce it, `ifAbsent` puts check with a HEAD just before
 * publishing instead. A probe refused for good (an access policy forbidding its key) leaves the answer
 * unknown: puts then do both, header and HEAD.
 *
 * ListMultipartUploads: a service that answers it with NotImplemented (s3rver) or MethodNotAllowed makes
 * `listTemporary` fail with StorageUnsupportedError from then on.
 *
 * Each missing feature is reported once through `onWarning`.
 */
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { StorageError } from '../../util/errors.ts';
import { StorageUnsupportedError } from '../backend.ts';
import { retryOperation } from '../retry.ts';
import type { S3Bucket } from './client.ts';
import { isPreconditionFailed, isUnsupportedAnswer } from './errors.ts';

/** Name of the conditional-write probe object: its leading `.` keeps it out of `list` (see isValidKey). */
export const PROBE_NAME = '.datasaver-probe-';

/**
 * `unknown`: the probe itself was refused (an access policy that forbids writing its key): puts send
 * If-None-Match anyway and also check with a HEAD first, so that neither kind of service is trusted blindly.
 */
export type ConditionalWrites = 'enforced' | 'ignored' | 'unknown';

/**
 * What is known of each destination's optional features, for the whole process (several targets may
 * share one destination; the daemon runs for days): found once, warned about once.
 */
interface Known {
  conditionalWrites?: Promise<ConditionalWrites> | undefined;
  listTemporary?: boolean | undefined;
}
const KNOWN = new Map<string, Known>();

/** What this process knows of one destination's optional features, shared by every backend on it. */
export class S3Capabilities {
  readonly #bucket: S3Bucket;
  readonly #onWarning: (message: string) => void;

  constructor(bucket: S3Bucket, onWarning: (message: string) => void) {
    this.#bucket = bucket;
    this.#onWarning = onWarning;
  }

  /** Whether ListMultipartUploads works: undefined until it was asked. */
  get uploadListing(): boolean | undefined {
    return this.#known().listTemporary;
  }

  /** ListMultipartUploads answered. */
  uploadListingWorks(): void {
    this.#known().listTemporary = true;
  }

  /**
   * The service lacks ListMultipartUploads: recorded, and warned about once per process and destination.
   * Returns the error for `listTemporary` to throw.
   */
  lacksUploadListing(): StorageUnsupportedError {
    const err = new StorageUnsupportedError(
      `${this.#bucket.description} cannot list unfinished multipart uploads (ListMultipartUploads): prune cannot remove uploads that a crash left behind`,
      {
        hint: 'add a lifecycle rule AbortIncompleteMultipartUpload (e.g. after 7 days) to the bucket, so that the service removes them',
      },
    );
    const known = this.#known();
    if (known.listTemporary !== false) {
      known.listTemporary = false;
      this.#onWarning(`${err.message}; ${err.hint}`);
    }
    return err;
  }

  /**
   * Whether the service enforces `If-None-Match: *`: probed once per process and destination, the probe
   * retried under the backend's policy. A probe that could not finish (service down, interrupted) rejects
   * with its error and is tried again next time; one refused for good answers `unknown`.
   */
  conditionalWrites(signal: AbortSignal | undefined): Promise<ConditionalWrites> {
    const known = this.#known();
    if (!known.conditionalWrites) {
      const { description, retry } = this.#bucket;
      const probe = retryOperation('probe conditional writes', retry, signal, () =>
        this.#probeConditionalWrites(signal),
      ).then(
        (ok): ConditionalWrites => (ok ? 'enforced' : 'ignored'),
        (err: unknown): ConditionalWrites => {
          // Refused for good (access denied to the probe's key): not a reason to refuse every write.
          if (signal?.aborted || !(err instanceof StorageError) || err.transient) throw err;
          this.#onWarning(
            `${description}: could not probe whether the service enforces conditional writes (If-None-Match: *): ${err.message}; datasaver sends the header and also checks that a backup's files and the target's lease do not exist just before writing them`,
          );
          return 'unknown';
        },
      );
      known.conditionalWrites = probe;
      probe.then(
        (answer) => {
          if (answer !== 'ignored') return;
          this.#onWarning(
            `${description} does not enforce conditional writes (If-None-Match: *): datasaver checks that a backup's files and the target's lease do not exist just before writing them, and reads the lease back after writing it; two writers starting at the same moment could both pass (best effort)`,
          );
        },
        () => {
          if (known.conditionalWrites === probe) known.conditionalWrites = undefined;
        },
      );
    }
    return known.conditionalWrites;
  }

  #known(): Known {
    const { description } = this.#bucket;
    let known = KNOWN.get(description);
    if (!known) {
      known = {};
      KNOWN.set(description, known);
    }
    return known;
  }

  /**
   * Writes a probe object under a reserved name with `If-None-Match: *`, then again: a service that
   * enforces the header refuses the second write (412). The probe is deleted either way.
   */
  async #probeConditionalWrites(signal: AbortSignal | undefined): Promise<boolean> {
    const bucket = this.#bucket;
    const key = `${bucket.base()}${PROBE_NAME}${randomBytes(8).toString('hex')}`;
    const write = async (body: string): Promise<'written' | 'refused' | 'unsupported'> => {
      try {
        await bucket.client.send(
          new PutObjectCommand({
            Bucket: bucket.config.bucket,
            Key: key,
            Body: body,
            IfNoneMatch: '*',
            ...bucket.writeParams(false),
          }),
          { abortSignal: signal },
        );
        return 'written';
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (isPreconditionFailed(err)) return 'refused';
        if (isUnsupportedAnswer(err)) return 'unsupported';
        throw bucket.wrap(err, 'write', 'a probe object');
      }
    };
    try {
      const first = await write('1');
      if (first !== 'written') return first === 'refused';
      return (await write('2')) === 'refused';
    } finally {
      // Best effort: a probe left behind is one byte under a name `list` never shows.
      await retryOperation('delete the probe object', bucket.retry, undefined, () =>
        bucket.send('delete', 'a probe object', undefined, () =>
          bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.config.bucket, Key: key })),
        ),
      ).catch(() => {});
    }
  }
}
