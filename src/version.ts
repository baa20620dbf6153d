import { createRequire } from 'node:module';

/** datasaver's own version, from package.json (one level above both src/ and dist/). */
export const DATASAVER_VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version;
