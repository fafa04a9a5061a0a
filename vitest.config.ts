import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native ops already use every core; parallel test files would only fight over them.
    fileParallelism: false,
  },
});
