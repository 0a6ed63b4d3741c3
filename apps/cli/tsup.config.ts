import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { bvllm: 'src/bvllm.ts' },
  format: 'esm',
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: true,
  // The bin runs directly (`npx bvllm`, `node_modules/.bin/bvllm`), so it needs the interpreter line.
  banner: { js: '#!/usr/bin/env node' },
});
