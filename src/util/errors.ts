/**
 * datasaver's error types and exit codes. Only the entry point (main.ts) turns an error into an exit code;
 * everything else throws one of these with a message that says what failed and on what, and a hint that
 * says what to do next.
 */

/** Exit codes, stable for cron, Kubernetes CronJobs and monitoring. */
export const ExitCode = {
  ok: 0,
  general: 1,
  config: 2,
  connection: 3,
  backup: 4,
  verify: 5,
  storage: 6,
  cleanup: 7,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  /** What the user can do about it, printed as `Try: ...`. */
  hint?: string;
  cause?: unknown;
}

export class DatasaverError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(exitCode: ExitCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = details.hint;
  }
}

/** Invalid or missing configuration (exit 2). */
export class ConfigError extends DatasaverError {
  constructor(message: string, details?: ErrorDetails) {
    super(ExitCode.config, message, details);
  }
}

/** The database server cannot be reached or refuses us (exit 3). */
export class ConnectionError extends DatasaverError {
  /**
   * The server may answer on a later try (refused, timed out, starting up, connection lost). Wrong
   * credentials, a missing database or an unknown host are not, and the daemon does not retry them.
   */
  readonly transient: boolean;

  constructor(message: string, details?: ErrorDetails & { transient?: boolean }) {
    super(ExitCode.connection, message, details);
    this.transient = details?.transient ?? true;
  }
}

/** The dump failed, was killed, produced nothing, or its tool is unusable (exit 4). */
export class BackupError extends DatasaverError {
  constructor(message: string, details?: ErrorDetails) {
    super(ExitCode.backup, message, details);
  }
}

/** A client tool (pg_dump, pg_restore...) is not installed (exit 4). */
export class ToolMissingError extends BackupError {}

/** Reasons `verify` (and restore's checksum pass) can give. */
export type VerifyReason =
  | 'checksum'
  | 'size'
  | 'missing'
  | 'decompress'
  | 'decrypt'
  | 'structure'
  | 'manifest';

/** A stored backup is damaged or incomplete (exit 5). */
export class VerifyError extends DatasaverError {
  readonly backupId: string;
  readonly reason: VerifyReason;
  /** What was found, without the backup and reason around it. */
  readonly detail: string;

  constructor(backupId: string, reason: VerifyReason, message: string, details?: ErrorDetails) {
    super(ExitCode.verify, `backup ${backupId} failed verification (${reason}): ${message}`, details);
    this.backupId = backupId;
    this.reason = reason;
    this.detail = message;
  }
}

/** Reading or writing storage failed (exit 6). */
export class StorageError extends DatasaverError {
  /**
   * Worth retrying: a 5xx or 429 answer, a dropped connection, a timeout. Permanent failures (access
   * denied, no such bucket, a full disk) are not, and fail at once.
   */
  readonly transient: boolean;

  constructor(message: string, details?: ErrorDetails & { transient?: boolean }) {
    super(ExitCode.storage, message, details);
    this.transient = details?.transient ?? false;
  }
}

/** Prune could not remove what retention decided to remove (exit 7); nothing kept was touched. */
export class CleanupError extends DatasaverError {
  constructor(message: string, details?: ErrorDetails) {
    super(ExitCode.cleanup, message, details);
  }
}

/** A restore failed while writing into the database (exit 1; nothing in the backup is at fault). */
export class RestoreError extends DatasaverError {
  constructor(message: string, details?: ErrorDetails) {
    super(ExitCode.general, message, details);
  }
}

/**
 * A restore failed because of the place restored into, not the backup (exit 1): the server lacks
 * something the dump needs and a restore cannot create (an extension's files), or refuses what a restore
 * does before it reads the dump (creating or dropping the database: the user lacks the right).
 */
export class DestinationError extends RestoreError {
  /** What the server lacks, when it is something it could be asked about (an extension's name). */
  readonly lacks: string | undefined;

  constructor(message: string, details?: ErrorDetails & { lacks?: string | undefined }) {
    super(message, details);
    this.lacks = details?.lacks;
  }
}

/** Something the user asked for cannot be done as asked (exit 1): unknown backup id, refused overwrite. */
export class UsageError extends DatasaverError {
  constructor(message: string, details?: ErrorDetails) {
    super(ExitCode.general, message, details);
  }
}

/** An operation cancelled through an AbortSignal (SIGINT/SIGTERM reach jobs that way). */
export function isAbortError(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR')
  );
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
