// Prefill and decode throughput of the Qwen2 decoder on a Qwen2-0.5B-shaped model with random weights, against
// the backend's own matmul rate measured in the same run. Prints figures; asserts nothing.
//   BENCH_LAYERS (default 24), BENCH_PROMPT (128 tokens), BENCH_DECODE (32 tokens), BVLLM_BACKEND as in core.
import { initBackend, tf } from '@bvllm/core';
import { disposeKvCache } from '../dist/index.js';
import { randomQwen2 } from './random-qwen2.mjs';

const layers = Number(process.env.BENCH_LAYERS ?? 24);
const promptLength = Number(process.env.BENCH_PROMPT ?? 128);
const decodeSteps = Number(process.env.BENCH_DECODE ?? 32);
// Qwen/Qwen2-0.5B config.json.
const config = {
  vocabSize: 151936,
  hiddenSize: 896,
  intermediateSize: 4864,
  numLayers: layers,
  numHeads: 14,
  numKvHeads: 2,
  maxPositionEmbeddings: 32768,
  tieWordEmbeddings: true,
};

const info = await initBackend();
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;
const seconds = (start) => (performance.now() - start) / 1000;

async function matmulGflops(m, k, n, reps = 3) {
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  const once = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  await once();
  const start = performance.now();
  for (let i = 0; i < reps; i++) await once();
  tf.dispose([a, b]);
  return (2 * m * k * n * reps) / seconds(start) / 1e9;
}

const d = config.hiddenSize;
const kvWidth = (config.numKvHeads * d) / config.numHeads;
const layerParams = d * d * 2 + d * kvWidth * 2 + 3 * d * config.intermediateSize;
// FLOPs of one forward over `l` new positions after `p` cached ones: the projections, the two attention
// products over all p + l keys (the decoder computes the full score matrix), and the head at one position.
const forwardFlops = (l, p) => 2 * l * layerParams * layers + 4 * l * (p + l) * d * layers + 2 * config.vocabSize * d;

console.log(`backend ${info.tfjsBackend} (threads ${info.threads}, simd ${info.simd}), tfjs ${info.tfjsVersion}`);
console.log(`model: Qwen2-0.5B shape with ${layers} of 24 layers, hidden ${d}, heads 14/2, intermediate 4864, vocab 151936, tied`);

let start = performance.now();
const model = randomQwen2(config);
const params = model.store.count();
console.log(`random init: ${(params / 1e6).toFixed(1)} M parameters in ${seconds(start).toFixed(1)} s, RSS ${rssMb().toFixed(0)} MB`);

const baseline = await matmulGflops(promptLength, d, config.intermediateSize);
const square = await matmulGflops(1024, 1024, 1024);
const decodeBaseline = await matmulGflops(1, d, config.intermediateSize, 20);

const ids = [Array.from({ length: promptLength }, (_, i) => (i * 7919) % config.vocabSize)];
const embeds = model.embed(ids);
// Warm-up: the first call pays for kernel setup and heap growth.
const warm = model.forward({ inputsEmbeds: embeds, useCache: true, logitsFor: 'last' });
await warm.logits.data();
disposeKvCache(warm.cache);
warm.logits.dispose();

start = performance.now();
let { logits, cache } = model.forward({ inputsEmbeds: embeds, useCache: true, logitsFor: 'last' });
let next = (await tf.argMax(logits, -1).data())[0];
const prefillSec = seconds(start);
logits.dispose();

let decodeFlops = 0;
start = performance.now();
for (let step = 0; step < decodeSteps; step++) {
  const e = model.embed([[next]]);
  const out = model.forward({ inputsEmbeds: e, cache, useCache: true, logitsFor: 'last' });
  decodeFlops += forwardFlops(1, promptLength + step);
  const argmax = tf.argMax(out.logits, -1);
  next = (await argmax.data())[0];
  tf.dispose([e, out.logits, argmax]);
  disposeKvCache(cache);
  cache = out.cache;
}
const decodeSec = seconds(start);
disposeKvCache(cache);
embeds.dispose();

const prefillGflops = forwardFlops(promptLength, 0) / prefillSec / 1e9;
const decodeGflops = decodeFlops / decodeSec / 1e9;
const mem = tf.memory();
console.log(`matmul baseline: [${promptLength}x${d}]·[${d}x4864] ${baseline.toFixed(1)} GFLOP/s, 1024³ ${square.toFixed(1)} GFLOP/s, [1x${d}]·[${d}x4864] ${decodeBaseline.toFixed(1)} GFLOP/s`);
console.log(`prefill: ${promptLength} tokens in ${prefillSec.toFixed(2)} s = ${(promptLength / prefillSec).toFixed(1)} tokens/s, ${prefillGflops.toFixed(1)} GFLOP/s = ${((100 * prefillGflops) / baseline).toFixed(0)}% of the same-shape matmul`);
console.log(`decode: ${decodeSteps} tokens in ${decodeSec.toFixed(2)} s = ${(decodeSteps / decodeSec).toFixed(1)} tokens/s, ${decodeGflops.toFixed(1)} GFLOP/s = ${((100 * decodeGflops) / decodeBaseline).toFixed(0)}% of the matrix-vector matmul`);
console.log(`memory: peak RSS ${peakRssMb().toFixed(0)} MB, tf.memory ${(mem.numBytes / 2 ** 20).toFixed(0)} MB in ${mem.numTensors} tensors (weights ${((params * 4) / 2 ** 20).toFixed(0)} MB)`);
if (layers < 24) console.log(`note: measured with ${layers} layers; a full 24-layer model needs about ${((24 * layerParams + config.vocabSize * d) * 4 / 2 ** 20).toFixed(0)} MB of weights`);
model.dispose();
