import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { main: 'src/main.ts', index: 'src/index.ts' },
  format: 'esm',
  target: 'node20',
  platform: 'node',
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
  sourcemap: true,
  // main.js is the start command (`node dist/main.js`, or the `bvllm-server` bin), so it needs the interpreter line.
  banner: { js: '#!/usr/bin/env node' },
});
