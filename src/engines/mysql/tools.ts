/**
 * The MySQL/MariaDB client tools: mariadb-dump (or mysqldump) and the mariadb (or mysql) client, found in
 * the target's tool directory or on PATH, with their flavour and version.
 */
import type { Tool } from '../../util/process.ts';
import { findTool } from '../tools.ts';

const PACKAGE = 'mariadb-client';
const DUMP_TOOLS = ['mariadb-dump', 'mysqldump'];
const CLIENT_TOOLS = ['mariadb', 'mysql'];

/** MariaDB's tools and Oracle MySQL's differ in a few options (TLS, GTIDs, column statistics). */
export type Flavour = 'mariadb' | 'mysql';

export interface ToolInfo {
  flavour: Flavour;
  /** For the manifest: `mariadb-dump 10.19 (MariaDB 10.11.19)`, `mysqldump 8.0.36 (MySQL)`. */
  version: string;
  /** Major version of the product the tool comes with (10 for MariaDB 10.11, 8 for MySQL 8.0). */
  major: number;
}

export interface ResolvedTool extends Tool, ToolInfo {}

/**
 * A target's dump tool and client, each looked up once and remembered (a failed lookup is tried again
 * next time). Both throw ToolMissingError when no alternative is installed, BackupError when its version
 * cannot be read.
 */
export class MysqlTools {
  readonly #toolDir: string | undefined;
  #dumpTool: Promise<ResolvedTool> | undefined;
  #clientTool: Promise<ResolvedTool> | undefined;

  constructor(toolDir: string | undefined) {
    this.#toolDir = toolDir;
  }

  /** Both backup tools, dump tool first, shared by preflight and facts so both fail alike when one is missing. */
  async backupTools(): Promise<{ dump: ResolvedTool; client: ResolvedTool }> {
    const dump = await this.dump();
    return { dump, client: await this.client() };
  }

  dump(): Promise<ResolvedTool> {
    this.#dumpTool ??= this.#find(DUMP_TOOLS).catch((err) => {
      this.#dumpTool = undefined;
      throw err;
    });
    return this.#dumpTool;
  }

  client(): Promise<ResolvedTool> {
    this.#clientTool ??= this.#find(CLIENT_TOOLS).catch((err) => {
      this.#clientTool = undefined;
      throw err;
    });
    return this.#clientTool;
  }

  #find(names: string[]): Promise<ResolvedTool> {
    return findTool(names, this.#toolDir, PACKAGE, parseToolVersion);
  }
}

/**
 * Reads `--version` output:
 *   mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
 *   mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)
 *   mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)
 *   mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)
 */
export function parseToolVersion(name: string, output: string): ToolInfo | undefined {
  const line = output.trim().split('\n')[0] ?? '';
  const major = (v: string) => Number(v.split('.')[0]);
  let m = /\bfrom\s+(\d+\.\d+(?:\.\d+)?)-MariaDB,?\s+client\s+(\d+(?:\.\d+)*)/i.exec(line);
  if (m) return { flavour: 'mariadb', version: `${name} ${m[2]} (MariaDB ${m[1]})`, major: major(m[1]!) };
  m = /\bVer\s+(\d+(?:\.\d+)*)\S*\s+Distrib\s+(\d+\.\d+(?:\.\d+)?)(\S*)/.exec(line);
  if (m) {
    const maria = /mariadb/i.test(m[3]!);
    return {
      flavour: maria ? 'mariadb' : 'mysql',
      version: `${name} ${m[1]} (${maria ? 'MariaDB' : 'MySQL'} ${m[2]})`,
      major: major(m[2]!),
    };
  }
  m = /\bVer\s+(\d+\.\d+(?:\.\d+)?)\S*\s+for\s/.exec(line);
  if (m) {
    const product = /percona/i.test(line) ? 'Percona Server' : 'MySQL';
    return { flavour: 'mysql', version: `${name} ${m[1]} (${product})`, major: major(m[1]!) };
  }
  return undefined;
}
