import { describeEncryption } from '../config/encryption-settings.ts';
import { isWholeServerTarget } from '../config/server-set-settings.ts';
import type { Config } from '../config/types.ts';
import { engineDescriptor } from '../engines/registry.ts';
import type { StorageCapabilities } from '../storage/backend.ts';
import type { StorageConfig } from '../storage/config.ts';
import { errorMessage } from '../util/errors.ts';
import { type CliContext, open, readConfig } from './context.ts';
import { printJson } from './output.ts';

/** What one destination's service can do, or why that could not be found out. */
type StorageCheck = { destination: string } & (StorageCapabilities | { error: string });

/**
 * `datasaver config check`: validates the config and prints it as datasaver sees it, secrets redacted;
 * then asks each S3 destination which optional features its service has (a missing one is also a warning
 * on stderr). A destination that cannot be reached is reported, not an error: the config itself is valid.
 */
export async function configCheckCommand(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  const config = await readConfig(ctx);
  // JSON round trip: Secret values turn into "***" (Secret.toJSON), undefined fields disappear.
  // Encryption is shown as what is set (recipients shortened, the identity file by its path); a target
  // that backs up every database of its server says so.
  const shown = {
    ...config,
    targets: config.targets.map((t) => ({
      ...t,
      wholeServer: isWholeServerTarget({ descriptor: engineDescriptor(t.engine), connection: t.connection }),
      encryption: describeEncryption(t.encryption),
    })),
    defaultEncryption: describeEncryption(config.defaultEncryption),
  };
  const view = JSON.parse(JSON.stringify(shown)) as Record<string, unknown>;
  const storage = await checkStorage(ctx, config);
  if (opts.json) printJson(ctx.stdout, { ...view, storage });
  else {
    const { stringify } = await import('yaml');
    ctx.stdout.write(`# configuration is valid\n${stringify(view)}`);
    for (const s of storage) ctx.stdout.write(`# ${describe(s)}\n`);
  }
  return 0;
}

async function checkStorage(ctx: CliContext, config: Config): Promise<StorageCheck[]> {
  const configs: StorageConfig[] = [
    ...config.targets.flatMap((t) => t.destinations),
    ...config.defaultDestinations,
  ];
  const checks = new Map<string, StorageCheck>();
  for (const c of configs.filter((x) => x.backend === 's3')) {
    const storage = await open(ctx, c);
    if (checks.has(storage.description) || !storage.capabilities) continue;
    try {
      checks.set(storage.description, {
        destination: storage.description,
        ...(await storage.capabilities({ signal: ctx.signal })),
      });
    } catch (err) {
      ctx.signal.throwIfAborted();
      const error = errorMessage(err);
      ctx.stderr.write(`warning: cannot check ${storage.description}: ${error}\n`);
      checks.set(storage.description, { destination: storage.description, error });
    }
  }
  return [...checks.values()];
}

function describe(s: StorageCheck): string {
  if ('error' in s) return `${s.destination}: not reachable: ${s.error}`;
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  return `${s.destination}: conditional writes ${yes(s.conditionalWrites)}, lists unfinished uploads ${yes(s.listTemporary)}`;
}
