/** Database engines datasaver knows (`mysql` covers MySQL and MariaDB). */
export const ENGINE_NAMES = ['postgres', 'mysql', 'redis', 'sqlite'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** Dump formats per engine; the first is the default. */
export const ENGINE_FORMATS: Readonly<Record<EngineName, readonly string[]>> = {
  postgres: ['custom', 'plain'],
  mysql: ['sql'],
  redis: ['rdb'],
  sqlite: ['sqlite'],
};
