import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One redis-server for the package's tests; each test isolates itself with its own key prefix.
    globalSetup: ['test/redis-global-setup.ts'],
    // The workers (child processes) inherit this: the tests' ONNX exports stay out of the user's ~/.cache.
    env: { BVLLM_ONNX_CACHE: join(tmpdir(), 'bvllm-test-onnx-cache') },
  },
});
