import { type CliContext, readConfig } from './context.ts';
import { printJson } from './output.ts';

/** `datasaver config check`: validates the config and prints it as datasaver sees it, secrets redacted. */
export async function configCheckCommand(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  const config = await readConfig(ctx);
  // JSON round trip: Secret values turn into "***" (Secret.toJSON), undefined fields disappear.
  const view = JSON.parse(JSON.stringify(config)) as unknown;
  if (opts.json) printJson(ctx.stdout, view);
  else {
    const { stringify } = await import('yaml');
    ctx.stdout.write(`# configuration is valid\n${stringify(view)}`);
  }
  return 0;
}
