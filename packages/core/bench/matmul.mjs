// Matmul throughput of the backend initBackend picks (BVLLM_BACKEND forces one). Prints figures; asserts nothing.
// Run after `pnpm --filter @bvllm/core build`: `pnpm --filter @bvllm/core bench`.
import { initBackend, measureMatmul } from '../dist/index.js';

const info = await initBackend();
console.log(`backend ${info.choice} (tfjs ${info.tfjsVersion}, ${info.threads} thread(s), SIMD ${info.simd ? 'on' : 'off'})`);
for (const s of info.skipped) console.log(`  skipped ${s.choice}: ${s.reason}`);

const results = [];
for (const [size, reps] of [
  [256, 20],
  [1024, 5],
]) {
  const r = await measureMatmul(size, { warmup: 2, reps });
  results.push(r);
  console.log(`matmul ${size}³ float32: ${r.gflops.toFixed(2)} GFLOP/s (${(r.secondsPerRep * 1000).toFixed(2)} ms per product, ${reps} reps)`);
}
console.log(`ratio 1024³ / 256³ throughput: ${(results[1].gflops / results[0].gflops).toFixed(2)}×`);
