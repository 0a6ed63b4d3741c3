import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    // Keep the tests' ONNX exports out of the user's ~/.cache (child processes inherit it).
    env: { BVLLM_ONNX_CACHE: join(tmpdir(), 'bvllm-test-onnx-cache') },
  },
});
