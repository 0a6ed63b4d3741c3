// Times each frame-select kind at EVA-ViT-g sizes (Cv 1408, N 576, bert-base Q-Former: Cq 768, 12 layers) with
// random weights, for T = 60, 600 and 3600 frames. Run `pnpm --filter @bvllm/frame-select build` first.
// The full patch tensor is T·N·Cv float32 (11.7 GB at T = 3600). The WASM heap (where tfjs-wasm keeps every
// tensor) fails past about 2 GB, and it already holds the 0.75 GB of Q-Former weights plus the LayerNorm's
// full-size intermediates, so the T sweep holds N at 8 and a second run takes N = 576 at T = 60.
import { Rng, initBackend, layerNorm, tf } from '@bvllm/core';
import { frameSelectRegistry } from '../dist/index.js';

const Cv = 1408;
const K = 32;
const backend = await initBackend();
console.log(`backend ${backend.tfjsBackend}; Cv ${Cv}, K ${K}, Cq 768 × 12 layers (random weights)`);

const question = { inputIds: tf.tensor2d([Array.from({ length: 24 }, (_, i) => 1000 + i)], undefined, 'int32'), attentionMask: tf.ones([1, 24], 'int32') };
const context = { training: false, rng: Rng.fromSeed(0) };

function features(T, N) {
  return {
    cls: tf.randomNormal([T, Cv], 0, 1, 'float32', 1),
    patches: tf.randomNormal([T, N, Cv], 0, 1, 'float32', 2),
    timestampsSec: Array.from({ length: T }, (_, i) => i),
  };
}

/** Median wall time in ms of `runs` calls after one warm-up; `fn` returns tensors to dispose. */
function time(fn, runs) {
  tf.dispose(fn());
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = fn();
    // Reading a value waits for the backend, so the time includes the work.
    (Array.isArray(out) ? out[0] : out).dataSync();
    ms.push(performance.now() - t0);
    tf.dispose(out);
  }
  return ms.sort((a, b) => a - b)[ms.length >> 1];
}

const t0 = performance.now();
const selector = frameSelectRegistry.create({ kind: 'qformer-gumbel', numQueries: K }, { rng: Rng.fromSeed(0), dims: { Cv } });
console.log(`built qformer-gumbel (${[...selector.variables().values()].reduce((n, v) => n + v.size, 0).toLocaleString()} parameters) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const uniform = frameSelectRegistry.create({ kind: 'uniform', numFrames: K }, { rng: Rng.fromSeed(0), dims: { Cv } });
const all = frameSelectRegistry.create({ kind: 'all' }, { rng: Rng.fromSeed(0), dims: { Cv } });

const rows = [];
const series = [
  ...[60, 600, 3600].map((T) => ({ T, N: 8 })),
  { T: 60, N: 576 },
];
console.log('\nms per call (median); "Q-Former+S" = temporal Q-Former over T [CLS] tokens, projection and scores S [K, T];');
console.log('"LN+W·P" = LN_t over [T, N, Cv] and the [K, T]·[T, N·Cv] mix (the part that grows with T·N)\n');
console.log('    T    N  Q-Former+S   LN+W·P  qformer-gumbel  uniform      all');
for (const { T, N } of series) {
  const f = features(T, N);
  const input = { features: f, question };
  const runs = T * N > 100_000 ? 1 : 3;
  const scores = time(() => selector.scores(input), runs);
  const select = time(() => { const o = selector.apply(input, context); return [o.selected, o.frameWeights]; }, runs);
  // The stage's second half on its own (a difference of two medians drowns in noise on a shared machine):
  // X = W · LN_t(P) with soft weights W [K, T], exactly the stage's ops.
  const w = tf.softmax(tf.randomNormal([K, T]));
  const ln = selector.variables();
  const mix = time(() => tf.tidy(() => tf.matMul(w, tf.reshape(layerNorm(f.patches, ln.get('vlm_att_ln_temporal.weight'), ln.get('vlm_att_ln_temporal.bias'), 1e-5), [T, N * Cv]))), runs);
  w.dispose();
  const uni = time(() => { const o = uniform.apply(input, context); return [o.selected, o.frameWeights]; }, runs);
  const everything = time(() => { const o = all.apply(input, context); return [o.selected, o.frameWeights]; }, runs);
  const r = { T, N, scores, mix, select, uni, everything };
  rows.push(r);
  console.log(`${String(r.T).padStart(5)} ${String(r.N).padStart(4)} ${r.scores.toFixed(0).padStart(11)} ${r.mix.toFixed(0).padStart(8)} ${r.select.toFixed(0).padStart(15)} ${r.uni.toFixed(0).padStart(8)} ${r.everything.toFixed(0).padStart(8)}`);
  tf.dispose([f.cls, f.patches]);
}

const small = rows.filter((r) => r.N === 8);
console.log('\nQ-Former+S against T = 60 (N 8): ' + small.map((r) => `T ${r.T} ×${(r.scores / small[0].scores).toFixed(1)}`).join(', '));
console.log('LN+W·P per frame (N 8): ' + small.map((r) => `T ${r.T}: ${(r.mix / r.T).toFixed(2)} ms`).join(', '));
const full = rows.find((r) => r.N === 576 && r.T === 60);
if (full) {
  const perFrame = full.mix / full.T;
  console.log(`LN+W·P at N 576: ${perFrame.toFixed(1)} ms per frame → about ${((perFrame * 3600) / 1000).toFixed(0)} s at T 3600 (extrapolated; 11.7 GB of patches is not measured here)`);
}
selector.dispose();
uniform.dispose();
all.dispose();
