import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const core = fileURLToPath(new URL('./packages/core/src/index.ts', import.meta.url));
const sdk = fileURLToPath(new URL('./packages/sdk/src/index.ts', import.meta.url));

export default defineConfig({
  resolve: {
    // tests run against the sources, not the last build
    alias: { '@runlog/core': core, '@runlog/sdk': sdk },
  },
  test: {
    include: ['packages/*/src/**/*.test.{ts,tsx}', 'packages/*/test/**/*.test.{ts,tsx}'],
    globalSetup: ['./packages/server/test/global-setup.ts'],
    testTimeout: 30_000,
    // a condition polled for (a page showing a live update, a server reaching a state) gets
    // 5 s, not 1: on a loaded two-core CI machine a browser's update can take longer than 1 s
    expect: { poll: { timeout: 5_000 } },
    hookTimeout: 60_000,
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['packages/core/src/**', 'packages/server/src/**', 'packages/sdk/src/**'],
      exclude: ['**/*.test.ts'],
      reporter: ['text-summary', 'text'],
    },
  },
});
