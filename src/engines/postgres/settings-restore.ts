/**
 * Carrying a backup's database settings (dbsettings.ts) to the database a restore creates: planned
 * against the roles this server has before anything is created, applied after the restore in one
 * transaction.
 */
import { errorMessage, RestoreError, UsageError } from '../../util/errors.ts';
import { redact } from '../../util/secret.ts';
import type { ConnectionConfig, DatabaseSettings, RestoreOptions } from '../engine.ts';
import { postgresWhere, withMaintenanceClient } from './client.ts';
import { rolesNamed, type SettingsPlan, type Step, settingsPlan } from './dbsettings.ts';

/**
 * The statements that carry the backup's database settings to `database`. Roles they name that do not
 * exist here fail the restore (UsageError) before anything is created, unless `skipMissingRoles` leaves
 * them out; a recorded setting that cannot be a setting (an altered manifest) is a RestoreError.
 */
export async function planSettings(
  connection: ConnectionConfig,
  database: string,
  recorded: DatabaseSettings,
  options: RestoreOptions,
): Promise<SettingsPlan> {
  const named = rolesNamed(recorded);
  const present = await withMaintenanceClient(
    connection,
    options.signal,
    async (c) => {
      const res = await c.query<{ rolname: string }>(
        'SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)',
        [named],
      );
      return new Set(res.rows.map((r) => r.rolname));
    },
    RestoreError,
  );
  const missing = new Set(named.filter((r) => !present.has(r)));
  if (missing.size > 0 && !options.skipMissingRoles) {
    const several = missing.size > 1;
    throw new UsageError(
      `the backed-up database's owner, grants or settings name role${several ? 's' : ''} ${[...missing].join(', ')}, which ${several ? 'do' : 'does'} not exist on ${postgresWhere(connection)}; nothing was restored`,
      {
        hint: `create ${several ? 'them' : 'it'} first (CREATE ROLE), or pass --skip-missing-roles to restore without what names ${several ? 'them' : 'it'} (a missing owner leaves the database owned by the user restoring)`,
      },
    );
  }
  try {
    return settingsPlan(database, recorded, missing);
  } catch (err) {
    throw new RestoreError(`the backup's database settings cannot be applied: ${errorMessage(err)}`, {
      hint: 'the manifest was altered or is damaged; nothing was restored',
    });
  }
}

/** Applies the settings in one transaction: all of them or none (RestoreError when one fails). */
export async function applySettings(
  connection: ConnectionConfig,
  steps: Step[],
  database: string,
  options: RestoreOptions,
): Promise<void> {
  await withMaintenanceClient(
    connection,
    options.signal,
    async (c) => {
      try {
        await c.query('BEGIN');
        for (const step of steps) await c.query(step.sql, step.params);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw new RestoreError(
          `${database} was restored, but its database settings could not be applied: ${redact(errorMessage(err), [connection.password])}`,
          {
            hint: `none of them were applied; fix the cause and restore again, or set them by hand (ALTER DATABASE ${database} ...)`,
          },
        );
      }
    },
    RestoreError,
  );
}
