// Times the row-cosine temporal merge (spec §1.1 (b)) at the real frame size, N = 576 patches × Cv = 1408, and the
// ToMe budget merge at the paper's L* = 32 (spec §1.1 (d), D12). Prints figures only; run `pnpm bench` after build.
// Usage: node bench/row-cosine.mjs [N] (a smaller N if memory is tight).
import { Rng, initBackend, tf } from '@bvllm/core';
import { multiLayerMerge, tokenMergeRegistry } from '../dist/index.js';

const N = Number(process.argv[2] ?? 576);
const Cv = 1408;
const repeats = 5;
const info = await initBackend();
console.log(`backend ${info.tfjsBackend} (${info.choice}, ${info.threads} thread(s), simd ${info.simd}), N = ${N}, Cv = ${Cv}`);

/** Median wall time of `fn` in ms over `repeats` runs after one warm-up; `fn` returns tensors to dispose. */
function time(fn) {
  tf.dispose(fn());
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    const out = fn();
    for (const t of out) t.dataSync();
    times.push(performance.now() - start);
    tf.dispose(out);
  }
  return times.sort((a, b) => a - b)[Math.floor(repeats / 2)];
}

/** Near one-hot Gumbel-softmax rows, as the selector makes them (τ = 0.5, spec §1.1 (a)). */
function frameWeights(K, T, rng) {
  const scores = rng.normalArray(K * T);
  const noise = rng.gumbelArray(K * T);
  const logits = scores.map((s, i) => (s + noise[i]) / 0.5);
  return tf.tidy(() => tf.softmax(tf.tensor2d(logits, [K, T])));
}

const rng = Rng.fromSeed(0);
const context = { training: false, rng };
const deps = { rng, dims: {} };
const merge = tokenMergeRegistry.create({ kind: 'row-cosine' }, deps);
const official = tokenMergeRegistry.create({ kind: 'row-cosine', order: 'query' }, deps);

console.log('\nrow-cosine merge, selected [K, N, Cv] → merged [K\', N, Cv] (median of 5)');
console.log('K   T     K\'  merge ms  (query order ms)  gather-copy ms  ratio merge/copy');
for (const K of [16, 32]) {
  const selected = tf.randomNormal([K, N, Cv]);
  for (const T of [60, 600, 3600]) {
    const weights = frameWeights(K, T, rng);
    const argmax = tf.argMax(weights, 1);
    const frameIndices = Int32Array.from(argmax.dataSync());
    argmax.dispose();
    const selection = { frameWeights: weights, selected, frameIndices, timestampsSec: Array.from(frameIndices) };
    const probe = merge.apply(selection, context);
    const kept = probe.groups.map((g) => g[0]);
    tf.dispose(probe.merged);
    const ms = time(() => [merge.apply(selection, context).merged]);
    const msQuery = time(() => [official.apply(selection, context).merged]);
    const copy = time(() => [tf.gather(selected, kept)]);
    console.log(
      `${String(K).padEnd(4)}${String(T).padEnd(6)}${String(kept.length).padEnd(4)}${ms.toFixed(1).padStart(8)}  ` +
        `${msQuery.toFixed(1).padStart(14)}  ${copy.toFixed(1).padStart(14)}  ${(ms / copy).toFixed(2).padStart(16)}`,
    );
    weights.dispose();
  }
  selected.dispose();
}

console.log('\nToMe budget merge, spatial tokens [K\', R = 32, Cq = 768] → [K\', N\', 768] (median of 5)');
for (const [frames, target] of [
  [32, 18],
  [20, 28],
  [32, 4],
]) {
  const tokens = tf.randomNormal([frames, 32, 768]);
  const ms = time(() => [multiLayerMerge(tokens, target)]);
  console.log(`K' = ${frames}, N' = ${target}: ${ms.toFixed(2)} ms`);
  tokens.dispose();
}
console.log(`\ntensors alive at exit: ${tf.memory().numTensors}`);
