// Times each spatial-sample kind at EVA-ViT-g sizes (Cv 1408, N 576, bert-base Q-Former: Cq 768, 12 layers) with
// random weights. Run `pnpm --filter @bvllm/spatial-sample build` first.
// The official path sees K' ≤ K kept frames whatever the video length T, so it is timed against K'; the baselines
// after `all` selection see K' = T, so they are timed for T = 60, 600 and 3600 (N reduced where T·N·Cv floats would
// not fit: 3600 × 576 × 1408 float32 is 11.7 GB).
import { Rng, initBackend, tf } from '@bvllm/core';
import { multiLayerMerge } from '@bvllm/token-merge';
import { spatialSampleRegistry } from '../dist/index.js';

const Cv = 1408;
const backend = await initBackend();
console.log(`backend ${backend.tfjsBackend}; Cv ${Cv}, R 32, Cq 768 × 12 layers (random weights)`);
const question = { inputIds: tf.tensor2d([Array.from({ length: 24 }, (_, i) => 1000 + i)], undefined, 'int32'), attentionMask: tf.ones([1, 24], 'int32') };
const context = { training: false, rng: Rng.fromSeed(0) };
// N 576 inputs are 3.2 MB per frame; the Q-Former weights take 0.75 GB of the WASM heap (about 2 GB usable).
const merged = (frames, N) => ({ merged: tf.randomNormal([frames, N, Cv], 0, 1, 'float32', frames), groups: [], frameIndices: new Int32Array(frames), timestampsSec: [] });

/** Wall time in ms of one call of `fn` (these calls take seconds; one is enough to see the scaling). */
function once(fn) {
  const t0 = performance.now();
  const out = fn();
  out.dataSync();
  const ms = performance.now() - t0;
  const shape = out.shape;
  out.dispose();
  return { ms, shape };
}
/** One warm-up, then one timed call of a stage. */
function time(stage, input) {
  stage.apply(input, context).spatialTokens.dispose();
  return once(() => stage.apply(input, context).spatialTokens);
}

const t0 = performance.now();
const qformer = spatialSampleRegistry.create({ kind: 'qformer' }, { rng: Rng.fromSeed(0), dims: { Cv } });
console.log(`built the spatial Q-Former in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

console.log("\nqformer (official), N 576: ms per call; the budget merge (θ 576) fires only when K' > 18");
const perFrame = [];
const warm = merged(1, 576);
once(() => qformer.queryOutput({ merged: warm, question })); // warm-up: first-call kernel setup
warm.merged.dispose();
for (const frames of [4, 16, 32]) {
  const input = { merged: merged(frames, 576), question };
  const q = once(() => qformer.queryOutput(input));
  perFrame.push(q.ms / frames);
  const target = qformer.tokensPerFrame(frames);
  let merge = 'no merge';
  if (target < 32) {
    const z = tf.randomNormal([frames, 32, 768]);
    const m = once(() => multiLayerMerge(z, target));
    merge = `ToMe merge to ${target} per frame ${m.ms.toFixed(0)} ms → [${m.shape}]`;
    z.dispose();
  }
  console.log(`  K' ${String(frames).padStart(3)}: Q-Former ${q.ms.toFixed(0).padStart(6)} ms → [${q.shape}]; ${merge}`);
  input.merged.merged.dispose();
}
console.log(`  Q-Former per frame: ${perFrame.map((m) => m.toFixed(0)).join(', ')} ms (grows with K', independent of T)`);

const pool = spatialSampleRegistry.create({ kind: 'pool' }, { rng: Rng.fromSeed(0), dims: { Cv } });
// A 4 × 4 patch grid (N 16) cannot pool to 4 × 8 cells; the reduced runs pool to 2 × 4.
const poolSmall = spatialSampleRegistry.create({ kind: 'pool', outputGrid: [2, 4] }, { rng: Rng.fromSeed(0), dims: { Cv } });
const none = spatialSampleRegistry.create({ kind: 'none' }, { rng: Rng.fromSeed(0), dims: { Cv } });
console.log("\npool / none after `all` selection (K' = T): ms per call");
const rows = [];
for (const [T, N] of [[60, 576], [60, 16], [600, 16], [3600, 16]]) {
  const input = { merged: merged(T, N), question };
  const p = time(N === 576 ? pool : poolSmall, input);
  const n = time(none, input);
  rows.push({ T, N, p: p.ms, n: n.ms });
  console.log(`  T ${String(T).padStart(5)}, N ${String(N).padStart(3)}: pool ${p.ms.toFixed(0).padStart(6)} ms → [${p.shape}], none ${n.ms.toFixed(0).padStart(6)} ms → [${n.shape}]`);
  input.merged.merged.dispose();
}
const base = rows.find((r) => r.T === 60 && r.N === 16);
console.log('  ratios against T 60 (N 16): ' + rows.filter((r) => r.N === 16).map((r) => `T ${r.T}: pool ×${(r.p / base.p).toFixed(1)}, none ×${(r.n / base.n).toFixed(1)}`).join('; '));
for (const s of [qformer, pool, poolSmall, none]) s.dispose();
