// Times the row-cosine temporal merge (spec §1.1 (b)) at the real frame size, N = 576 patches × Cv = 1408, and the
// ToMe budget merge at the paper's L* = 32 (spec §1.1 (d), D12). Prints figures only; run `pnpm bench` after build.
// Usage: node bench/row-cosine.mjs [N] (a smaller N if memory is tight).
import { Rng, initBackend, tf } from '@bvllm/core';
import { multiLayerMerge, planRowCosineMerge, tokenMergeRegistry } from '../dist/index.js';

const N = Number(process.argv[2] ?? 576);
const Cv = 1408;
const repeats = 3;
const info = await initBackend();
console.log(`backend ${info.tfjsBackend} (${info.choice}, ${info.threads} thread(s), simd ${info.simd}), N = ${N}, Cv = ${Cv}`);

/**
 * Median wall and process-CPU (user + system) time of `fn` in ms over `repeats` runs after one warm-up; `fn` returns
 * tensors to dispose. CPU time is printed because a shared machine stretches wall time. One element of each output
 * is read back so that asynchronous backends finish, without timing a full download.
 */
function time(fn) {
  tf.dispose(fn());
  const wall = [];
  const cpu = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    const usage = process.cpuUsage();
    const out = fn();
    for (const t of out) tf.tidy(() => tf.slice(t, t.shape.map(() => 0), t.shape.map(() => 1)).dataSync());
    const used = process.cpuUsage(usage);
    wall.push(performance.now() - start);
    cpu.push((used.user + used.system) / 1000);
    tf.dispose(out);
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(repeats / 2)];
  return { wall: median(wall), cpu: median(cpu) };
}
const ms = (t) => `${t.wall.toFixed(1)}/${t.cpu.toFixed(1)}`;

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

console.log(`\nrow-cosine merge, selected [K, N, Cv] → merged [K', N, Cv] (median of ${repeats})`);
console.log('times are wall/CPU ms. plan: read frameWeights back and decide; merge: the whole stage (time order);');
console.log('query: the stage with the official order; pass: one elementwise pass over selected (x + 1), for scale');
console.log("K   T     K'  plan          merge            query            pass          merge/pass (CPU)");
for (const K of [16, 32]) {
  const selected = tf.randomNormal([K, N, Cv]);
  for (const T of [60, 600, 3600]) {
    const weights = frameWeights(K, T, rng);
    const argmax = tf.argMax(weights, 1);
    const frameIndices = Int32Array.from(argmax.dataSync());
    argmax.dispose();
    const selection = { frameWeights: weights, selected, frameIndices, timestampsSec: Array.from(frameIndices) };
    const kept = planRowCosineMerge(weights.dataSync(), K, T, 0.75).kept;
    const plan = time(() => {
      planRowCosineMerge(weights.dataSync(), K, T, 0.75);
      return [];
    });
    const merged = time(() => [merge.apply(selection, context).merged]);
    const query = time(() => [official.apply(selection, context).merged]);
    const pass = time(() => [tf.add(selected, 1)]);
    console.log(
      `${String(K).padEnd(4)}${String(T).padEnd(6)}${String(kept.length).padEnd(4)}${ms(plan).padEnd(14)}${ms(merged).padEnd(17)}` +
        `${ms(query).padEnd(17)}${ms(pass).padEnd(14)}${(merged.cpu / pass.cpu).toFixed(1)}`,
    );
    weights.dispose();
  }
  selected.dispose();
}

console.log(`\nToMe budget merge, spatial tokens [K', R = 32, Cq = 768] → [K', N', 768] (median of ${repeats})`);
for (const [frames, target] of [
  [32, 18],
  [20, 28],
  [32, 4],
]) {
  const tokens = tf.randomNormal([frames, 32, 768]);
  const took = time(() => [multiLayerMerge(tokens, target)]);
  console.log(`K' = ${frames}, N' = ${target}: ${ms(took)} ms (wall/CPU)`);
  tokens.dispose();
}
console.log(`\ntensors alive at exit: ${tf.memory().numTensors}`);
