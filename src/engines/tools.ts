/**
 * An engine's client tools (pg_dump, mariadb, redis-cli...): where they are and which version they are.
 * A target's `toolDir`, when set, is the only place looked in; otherwise the tools on PATH are used.
 * Reading a version runs `<tool> --version` with no connection setting and no secret in its environment.
 *
 * The pure half, comparing versions, is in tool-version.ts; the version checks themselves (which tool
 * may dump or read what) belong to each engine, whose messages name its own packages.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { BackupError } from '../util/errors.ts';
import { describeExit, runTool, type Tool, toolMissing } from '../util/process.ts';
import { toolEnv } from '../util/tool-env.ts';

/**
 * The tool `name` in `toolDir` when one is set, else the bare name, which the system looks up on PATH when
 * it runs (a missing tool fails then, with a ToolMissingError naming `packageName`).
 */
export function toolIn(toolDir: string | undefined, name: string, packageName: string): Tool {
  return { command: toolDir ? join(toolDir, name) : name, packageName };
}

/**
 * Runs `tool --version` and parses what it prints on stdout. Throws ToolMissingError when the tool is
 * not installed, BackupError (`cannot tell the version of ...`) when it fails or prints no version
 * `parse` recognises.
 */
export async function readToolVersion<V>(tool: Tool, parse: (stdout: string) => V | undefined): Promise<V> {
  const res = await runTool(tool, ['--version'], toolEnv(process.env)); // no connection, no secret
  const version = res.code === 0 ? parse(res.stdout) : undefined;
  if (version === undefined) {
    throw new BackupError(
      `cannot tell the version of ${tool.command}: ${res.stderr || res.stdout || describeExit(res)}`,
    );
  }
  return version;
}

/**
 * The first of `names` (alternatives, preferred first) that is an executable file in `toolDir`, or when
 * none is set in a directory of PATH, with what `parse` reads from its `--version` (given the name found
 * and the output).
 * Throws ToolMissingError, naming the first of `names`, when none is found; BackupError when the one
 * found prints no version `parse` recognises.
 */
export async function findTool<V extends object>(
  names: readonly string[],
  toolDir: string | undefined,
  packageName: string,
  parse: (name: string, stdout: string) => V | undefined,
): Promise<Tool & V> {
  const dirs = toolDir ? [toolDir] : (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const command = join(dir, name);
      if (!(await isExecutable(command))) continue;
      const tool = { command, packageName };
      return { ...tool, ...(await readToolVersion(tool, (out) => parse(name, out))) };
    }
  }
  throw toolMissing(toolIn(toolDir, names[0]!, packageName), undefined);
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
