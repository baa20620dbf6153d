import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` needs no server (pure logic, in-memory and local storage, fake tools) and runs in
 * seconds (`npx vitest run --project unit`); `integration` starts one PostgreSQL and the S3 servers
 * (test/support/global-setup.ts), and each engine's file its own MariaDB or Redis. `npx vitest run` runs both.
 */
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          globalSetup: ['test/support/scratch-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
