import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // The test CAs and keys, made once per run (test/helpers/pki.ts).
          globalSetup: ['test/helpers/pki-setup.ts'],
          // Most unit files wait on sockets and timers, not on the CPU: four side by side on two cores
          // (vitest's default here would be one, the cores less one).
          maxWorkers: 4,
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Pebble and dockerd are real and shared by the files of a run (its containers, its compose project).
          globalSetup: ['test/helpers/pki-setup.ts', 'test/integration/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
