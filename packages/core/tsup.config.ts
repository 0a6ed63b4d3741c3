import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: 'esm',
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  // tfjs-core ships its gradient registrations only as extensionless ESM files, which Node cannot import. Bundling
  // them works: they register into tfjs's global gradient registry and run ops through the global engine, both
  // shared with the CommonJS tfjs-core that `tf` is, so there is still one engine.
  noExternal: [/^@tensorflow\/tfjs-core\/dist\/register_all_gradients/],
});
