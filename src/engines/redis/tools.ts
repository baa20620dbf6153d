/** Redis's local tools: redis-cli (redis-tools) takes backups, redis-server loads one for a restore. */
import type { Tool } from '../../util/process.ts';
import { atLeast, type ToolVersion, toolVersion } from '../tool-version.ts';
import { readToolVersion, toolIn } from '../tools.ts';

export function redisCli(toolDir: string | undefined): Tool {
  return toolIn(toolDir, 'redis-cli', 'redis-tools');
}

export function redisServer(toolDir: string | undefined): Tool {
  return toolIn(toolDir, 'redis-server', 'redis-server');
}

/** `redis-cli 7.0.15` or `Redis server v=7.0.15 sha=...`, as `7.0.15`. */
export function parseRedisVersion(stdout: string): ToolVersion | undefined {
  const m = /(?:redis-cli|v=)\s*(\d+\.\d+(?:\.\d+)?)/.exec(stdout);
  return m ? toolVersion(m[1]!) : undefined;
}

/** The version of redis-cli or redis-server; throws ToolMissingError or BackupError (see readToolVersion). */
export function redisToolVersion(tool: Tool): Promise<ToolVersion> {
  return readToolVersion(tool, parseRedisVersion);
}

/** Whether a redis-server can check every value of a file it loads (`sanitize-dump-payload`, 6.2+). */
export function sanitizesPayloads(server: ToolVersion): boolean {
  return atLeast(server, 6, 2);
}
