/**
 * What `datasaver backup` prints. On stdout, a line per committed backup, upload and prune (none with
 * --json: one JSON document at the end instead); on stderr, whatever the output mode, errors (`Error:`,
 * `Try:`), warnings, notes and the progress line (on a terminal, not with --json).
 */
import type { ServerMembers } from '../engines/engine.ts';
import type { BackupResult } from '../jobs/backup.ts';
import { setWarnings } from '../jobs/backup-set.ts';
import type { CycleProblem, CycleResult } from '../jobs/cycle.ts';
import type { PruneResult } from '../jobs/prune.ts';
import type { CopyResult } from '../jobs/resume.ts';
import { describeSizeChange, type SizeAssessment } from '../jobs/size-change.ts';
import { waitingMessage } from '../lease/lease.ts';
import type { LeaseRecord } from '../lease/record.ts';
import type { NotifierLog } from '../notify/channels.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ExitCode } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { redact, type Secret } from '../util/secret.ts';
import { formatBytes, formatDuration, type Out, Progress, printJson } from './output.ts';

/** A target's failure, as --json lists it. */
export interface Failure {
  target: string;
  /** What the command exits with when this is its first failure. */
  exitCode: number;
  /** Redacted, and escaped where it would move a terminal's cursor. */
  message: string;
  /** What to try next, shown as `Try:`. */
  hint?: string | undefined;
}

/** A committed backup, as --json lists it. */
type CommittedBackup = BackupResult['manifest'] & {
  verified: boolean;
  /** What `--verify` did not check (an encrypted backup without its key here). */
  verifyNote?: string;
  destinations: string[];
  sizeChange: SizeAssessment | null;
  /** Of a whole-server set: what it holds, in clear even when the manifest is sealed. */
  members?: ServerMembers;
};

/** The output of one `datasaver backup`, and what it gathers for --json and the exit code. */
export class BackupOutput {
  readonly #stdout: Out;
  readonly #stderr: Out;
  readonly #json: boolean;
  readonly #passwords: (Secret | undefined)[];
  readonly #backups: CommittedBackup[] = [];
  readonly #failures: Failure[] = [];
  readonly #copies: CopyResult[] = [];
  readonly #pruned: PruneResult[] = [];

  /** `passwords` are removed from every error shown, should a tool have printed one in some other form. */
  constructor(out: { stdout: Out; stderr: Out }, json: boolean, passwords: (Secret | undefined)[]) {
    this.#stdout = out.stdout;
    this.#stderr = out.stderr;
    this.#json = json;
    this.#passwords = passwords;
  }

  /** The first failure's exit code, or 0. */
  get exitCode(): number {
    return this.#failures[0]?.exitCode ?? ExitCode.ok;
  }

  /** A failure of `target`: shown at once, listed with --json, and it sets the exit code. */
  fail(target: string, problem: Omit<Failure, 'target'>): void {
    // Storage's and tools' own words can carry terminal escapes: shown escaped.
    const message = printable(redact(problem.message, this.#passwords), { multiline: true });
    this.#failures.push({ target, ...problem, message });
    this.#stderr.write(`Error: ${target}: ${message}\n`);
    if (problem.hint) this.#stderr.write(`Try: ${problem.hint}\n`);
  }

  warn(text: string): void {
    this.#stderr.write(`warning: ${text}\n`);
  }

  /** Where the notifier's warnings go: a channel that fails is a warning, never an error. */
  notifierLog(): NotifierLog {
    return {
      warn: (fields, message) =>
        this.#stderr.write(`warning: ${message}${fields.error ? `: ${String(fields.error)}` : ''}\n`),
      debug: () => {},
    };
  }

  /** Another run holds the target's lease in `storage`: this one waits. */
  waiting(storage: StorageBackend, lease: LeaseRecord): void {
    this.#stderr.write(`${waitingMessage(storage, lease)}\n`);
  }

  /** The progress line of a backup of `target`; `done` clears it. */
  progress(target: string): { update(raw: number, stored: number): void; done(): void } {
    const progress = new Progress(this.#stderr, !this.#json);
    return {
      update: (raw, stored) =>
        progress.update(`backup ${target}: ${formatBytes(raw)} dumped, ${formatBytes(stored)} stored`, raw),
      done: () => progress.done(),
    };
  }

  /** Before resuming uploads of `target`: with one destination there is nothing to resume. */
  resuming(target: string, destinations: number): void {
    if (destinations < 2 && !this.#json)
      this.#stdout.write(`${target} has one destination; nothing to resume\n`);
  }

  /** Copies made and problems met by resuming or backing up `target`. */
  copied(target: string, copies: CopyResult[], problems: CycleProblem[]): void {
    this.#copies.push(...copies);
    if (!this.#json) {
      for (const c of copies.filter((x) => !x.error))
        this.#stdout.write(`uploaded ${c.id} to ${c.to} (${formatBytes(c.bytes)}) from ${c.from}\n`);
    }
    for (const p of problems) this.fail(target, p);
  }

  /** Resuming found every destination of `target` complete. */
  nothingToResume(target: string, destinations: number): void {
    if (destinations > 1 && !this.#json) {
      this.#stdout.write(`${target}: every destination holds every backup retention keeps\n`);
    }
  }

  /** A backup of `target` was committed: the backup, its uploads, prune, and what went wrong after it. */
  committed(target: string, destinations: number, cycle: CycleResult): void {
    if (cycle.size?.alert) this.warn(`${target}: ${describeSizeChange(cycle.size)}`);
    for (const p of cycle.prunedFirst ?? []) {
      this.#stderr.write(
        `note: ${p.storage} was full: pruned ${p.removed} item(s) (${formatBytes(p.removedBytes)}) that retention removes, then backed up again\n`,
      );
    }
    const { backup } = cycle;
    const where = backup.committed.map((d) => d.description);
    this.#backups.push({
      ...backup.manifest,
      verified: backup.verified,
      ...(backup.verifyNote ? { verifyNote: backup.verifyNote } : {}),
      destinations: where,
      sizeChange: cycle.size ?? null,
      ...(backup.members ? { members: backup.members } : {}),
    });
    if (!this.#json) {
      const m = backup.manifest;
      this.#stdout.write(
        `backup ${m.id} committed${destinations > 1 ? ` to ${where.join(', ')}` : ''}: ${formatBytes(m.sizeBytes)} dumped, ${formatBytes(m.storedBytes)} stored (${m.format}, ${m.compression}) in ${formatDuration(m.durationMs)}${backup.verified ? `, verified${backup.verifyNote ? ` (${backup.verifyNote})` : ''}` : ''}\n`,
      );
      if (backup.members) this.#stdout.write(`  ${setSummary(backup.members)}\n`);
    }
    // What the backup user could not read is a warning in every output mode: the set is short of it.
    for (const w of setWarnings(backup.members)) this.warn(`${target}: ${w}`);
    const uploads = cycle.problems.filter((p) => p.stage === 'upload');
    this.copied(target, [], uploads);
    if (uploads.length > 0) {
      this.#stderr.write(
        `note: ${backup.manifest.id} is kept in ${where.join(', ')}; the next backup, or \`datasaver backup --resume-uploads\`, uploads it to the rest\n`,
      );
    }
    this.copied(
      target,
      cycle.copies,
      cycle.problems.filter((p) => p.stage !== 'upload' && p.stage !== 'prune'),
    );
    for (const w of cycle.warnings) this.warn(w);
    this.copied(
      target,
      [],
      cycle.problems.filter((p) => p.stage === 'prune'),
    );
    this.#pruned.push(...(cycle.prunedFirst ?? []), ...cycle.pruned);
    if (!this.#json) {
      for (const result of cycle.pruned.filter((r) => r.removed > 0)) {
        this.#stdout.write(
          `pruned ${result.removed} old item(s) of ${target} from ${result.storage} (${formatBytes(result.removedBytes)}); \`datasaver prune --dry-run\` shows why\n`,
        );
      }
    }
  }

  /** With --json, the document of everything gathered; nothing otherwise. */
  finish(): void {
    if (this.#json) {
      printJson(this.#stdout, {
        backups: this.#backups,
        copies: this.#copies,
        pruned: this.#pruned,
        failures: this.#failures,
      });
    }
  }
}

/** One line on what a whole-server set holds: `whole server: 2 databases (app, shop); excluded: tmp`. */
export function setSummary(members: ServerMembers): string {
  const names = members.databases.map((d) => printable(d));
  const count = `${names.length} database${names.length === 1 ? '' : 's'}`;
  const excluded =
    members.excluded.length > 0 ? `; excluded: ${members.excluded.map((d) => printable(d)).join(', ')}` : '';
  return `whole server: ${count}${names.length > 0 ? ` (${names.join(', ')})` : ''}${excluded}`;
}
