/**
 * Stand-ins for client tools, for failures a real pg_dump cannot be made to show on demand (too old,
 * failing half-way, printing nothing). Each is a tiny script in a directory used as DATASAVER_TOOL_DIR.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './pg.ts';

export async function fakeToolDir(scripts: Record<string, string>): Promise<string> {
  const dir = await tempDir('datasaver-tools-');
  for (const [name, body] of Object.entries(scripts)) {
    const file = join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
  }
  return dir;
}

/** A pg_dump that answers `--version` like the real one of `binDir`, then runs `body` instead of dumping. */
export function fakePgDump(binDir: string, body: string): string {
  return `if [ "$1" = "--version" ]; then exec "${binDir}/pg_dump" --version; fi\n${body}`;
}
