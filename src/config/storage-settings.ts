/** Where backups go: the local and S3 destinations of a target, or of the shared defaults. */
import {
  S3_SSE_MODES,
  S3_VERIFY_MODES,
  type S3StorageConfig,
  type S3VerifyMode,
  type StorageConfig,
} from '../storage/config.ts';
import { Secret } from '../util/secret.ts';
import { FIELDS } from './fields.ts';
import type { Problems, RawTarget } from './raw.ts';
import { BOOLEAN, check, HTTP_URL, intIn, matching, oneOf, type Validator } from './values.ts';

const BACKENDS = ['local', 's3'] as const;

/**
 * Where backups go: `storage.backend` lists the destinations (`local`, `s3`, or both); without it they
 * follow from what is set (a storage path means local, a bucket means S3). Local comes first: it is the
 * fastest copy to restore from.
 */
export function buildDestinations(
  raw: RawTarget,
  problems: Problems,
  required: boolean,
  defaultRegion: string,
): StorageConfig[] | undefined {
  let backends: ('local' | 's3')[] = [];
  if (raw.storageBackend) {
    const value = raw.storageBackend.value;
    const names = (Array.isArray(value) ? value.map(String) : String(value).split(','))
      .map((n) => n.trim())
      .filter(Boolean);
    for (const n of names) {
      const b = BACKENDS.find((x) => x === n);
      if (b) backends.push(b);
      else
        problems.add(raw.storageBackend.origin, `'${n}' is not valid; expected local, s3, or both: local,s3`);
    }
  } else {
    if (raw.storagePath) backends.push('local');
    if (raw.s3Bucket) backends.push('s3');
  }
  backends = BACKENDS.filter((b) => backends.includes(b));
  if (backends.length === 0) {
    if (required) {
      problems.add(
        FIELDS.storagePath.env,
        `no storage is set; set ${FIELDS.storagePath.env} (a directory) and/or ${FIELDS.s3Bucket.env} (an S3 bucket), or storage.path / s3.bucket in the config file`,
      );
    }
    return required ? undefined : [];
  }
  const out: StorageConfig[] = [];
  for (const backend of backends) {
    if (backend === 'local') {
      if (!raw.storagePath) {
        problems.add(
          FIELDS.storagePath.env,
          `not set, but the local backend is selected; set it (or ${FIELDS.storagePath.yaml})`,
        );
        continue;
      }
      const path = check(raw.storagePath, ABSOLUTE_PATH, problems);
      if (path !== undefined) out.push({ backend: 'local', path: path.replace(/(.)\/+$/, '$1') });
    } else {
      const s3 = buildS3(raw, problems, defaultRegion);
      if (s3) out.push(s3);
    }
  }
  return out.length === backends.length ? out : undefined;
}

function buildS3(raw: RawTarget, problems: Problems, defaultRegion: string): S3StorageConfig | undefined {
  const before = problems.list.length;
  if (!raw.s3Bucket) {
    problems.add(
      FIELDS.s3Bucket.env,
      `not set, but the s3 backend is selected; set it (or ${FIELDS.s3Bucket.yaml})`,
    );
  }
  const bucket = check(raw.s3Bucket, S3_BUCKET, problems);
  const endpoint = check(raw.s3Endpoint, HTTP_URL, problems);
  const sse = check(raw.s3Sse, oneOf(S3_SSE_MODES), problems);
  // S3 allows 5 MiB parts, but 8 MiB is the least with which 10,000 growing parts reach 5 TiB.
  const partSizeMb = check(raw.s3PartSizeMb, intIn(8, 5120, 'a part size in MiB, 8-5120'), problems) ?? 8;
  const uploadConcurrency =
    check(raw.s3UploadConcurrency, intIn(1, 64, 'a number of parallel part uploads, 1-64'), problems) ?? 4;
  const accessKey = raw.s3AccessKey ? new Secret(String(raw.s3AccessKey.value)) : undefined;
  const secretKey = raw.s3SecretKey ? new Secret(String(raw.s3SecretKey.value)) : undefined;
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    const given = raw.s3AccessKey ?? raw.s3SecretKey;
    problems.add(
      given!.origin,
      `set both ${FIELDS.s3AccessKey.env} and ${FIELDS.s3SecretKey.env}, or neither (to use the AWS default credential chain)`,
    );
  }
  if (raw.s3SseKmsKeyId && sse !== 'aws:kms') {
    problems.add(raw.s3SseKmsKeyId.origin, `a KMS key id needs ${FIELDS.s3Sse.env}=aws:kms`);
  }
  const prefix = raw.s3Prefix ? String(raw.s3Prefix.value).replace(/^\/+|\/+$/g, '') : '';
  if (prefix.split('/').some((s) => s === '.' || s === '..' || (prefix !== '' && s === ''))) {
    problems.add(
      raw.s3Prefix!.origin,
      `'${prefix}' is not valid; expected a key prefix such as backups/prod`,
    );
  }
  if (problems.list.length > before || !bucket) return undefined;
  return {
    backend: 's3',
    bucket,
    prefix,
    endpoint,
    region: raw.s3Region ? String(raw.s3Region.value) : defaultRegion,
    // Self-hosted S3 (MinIO and most others) needs path-style addressing; AWS prefers virtual hosts.
    forcePathStyle: check(raw.s3ForcePathStyle, BOOLEAN, problems) ?? endpoint !== undefined,
    accessKey,
    secretKey,
    sse,
    sseKmsKeyId: raw.s3SseKmsKeyId ? String(raw.s3SseKmsKeyId.value) : undefined,
    storageClass: check(raw.s3StorageClass, STORAGE_CLASS, problems),
    partSizeMb,
    uploadConcurrency,
    verifyUpload: check(raw.s3VerifyUpload, VERIFY_UPLOAD, problems) ?? 'etag',
  };
}

const ABSOLUTE_PATH = matching(/^\//, 'an absolute directory path');

const S3_BUCKET = matching(
  /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  'an S3 bucket name: 3-63 lowercase letters, digits, `.` and `-`',
);

/** Classes whose objects can be read at once: archives would make list, verify and restore fail. */
const STORAGE_CLASS: Validator<string> = {
  parse: (v) => {
    const c = String(v).trim();
    return /^[A-Z][A-Z0-9_]*$/.test(c) && !['GLACIER', 'DEEP_ARCHIVE'].includes(c) ? c : undefined;
  },
  expected:
    'a storage class whose objects can be read at once, e.g. STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR (not GLACIER or DEEP_ARCHIVE)',
};

/** A verification mode; `true` and `false` (the older boolean form) mean read-back and size. */
const VERIFY_UPLOAD: Validator<S3VerifyMode> = {
  parse: (v) => {
    const mode = S3_VERIFY_MODES.find((m) => m === String(v).trim().toLowerCase());
    if (mode) return mode;
    const flag = BOOLEAN.parse(v);
    return flag === undefined ? undefined : flag ? 'read-back' : 'size';
  },
  expected: `one of ${S3_VERIFY_MODES.join(', ')} (true means read-back, false means size)`,
};
