import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Test files share two cores with the server processes they start; one file at a time keeps timings sane.
    fileParallelism: false,
    // Answers run on ONNX by default: keep the tests' exports out of the user's ~/.cache (servers inherit it).
    env: { BVLLM_ONNX_CACHE: join(tmpdir(), 'bvllm-test-onnx-cache') },
  },
});
