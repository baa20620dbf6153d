import { createRequire } from 'node:module';

/** datasaver's own version, from package.json (two levels above both src/util/ and dist/util/). */
export const DATASAVER_VERSION: string = (
  createRequire(import.meta.url)('../../package.json') as { version: string }
).version;
