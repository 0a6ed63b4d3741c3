// Vision-encoder throughput: ffmpeg decode + 1 fps sampling, CLIP preprocessing, and the ViT forward for a
// ViT-B/16-sized and an EVA-ViT-g-sized config (random weights), with the ViT's achieved GFLOP/s compared to the
// backend's own matmul GFLOP/s on the same shapes, measured in the same run. Prints figures only; run after build.
// EVA-ViT-g's 39 blocks (1.0 B parameters, 4 GB in float32) do not fit the 4 GB WASM heap next to activations, so
// its run uses BENCH_EVA_LAYERS blocks (default 2) of full width and scales the per-frame time to 39 blocks: every
// block has the same shapes, so per-block cost is what the figure measures.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, initBackend, tf } from '@bvllm/core';
import { VisionTransformer, decodeVideo, ffmpegPath, preprocessClip, probeVideo, vitConfigSchema } from '../dist/index.js';

const info = await initBackend();
console.log(`backend ${info.tfjsBackend} (${info.choice}, ${info.threads} thread(s), simd ${info.simd})`);

// ---- decode ----
const dir = mkdtempSync(join(tmpdir(), 'bvllm-bench-'));
const video = join(dir, 'bench.mp4');
execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=640x360:r=30:d=20', '-pix_fmt', 'yuv420p', video]);
const probe = await probeVideo(video);
let start = performance.now();
const fps1 = await decodeVideo(video);
let ms = performance.now() - start;
console.log(`decode 640x360 h264, ${probe.numFrames} frames: 1 fps sampling -> ${fps1.frames.length} frames in ${ms.toFixed(0)} ms ` +
  `(${((probe.numFrames / ms) * 1000).toFixed(0)} decoded frames/s, ${((fps1.frames.length / ms) * 1000).toFixed(1)} sampled frames/s)`);
start = performance.now();
const all = await decodeVideo(video, { mode: 'uniform', numFrames: probe.numFrames });
ms = performance.now() - start;
console.log(`decode every frame to RGB over the pipe: ${all.frames.length} frames in ${ms.toFixed(0)} ms (${((all.frames.length / ms) * 1000).toFixed(0)} frames/s)`);
start = performance.now();
for (const f of fps1.frames) preprocessClip(f, fps1.width, fps1.height, { shortestEdge: 336, cropSize: 336 });
ms = performance.now() - start;
console.log(`CLIP preprocess 640x360 -> 336 (Pillow-exact bicubic): ${((fps1.frames.length / ms) * 1000).toFixed(1)} frames/s`);
rmSync(dir, { recursive: true, force: true });

// ---- encoder ----
/** FLOPs (2 per multiply-add) of one frame through `layers` blocks, counting matmuls only (norms etc. are O(L·C)). */
function flopsPerFrame(c, layers) {
  const g = c.imageSize / c.patchSize;
  const n = g * g;
  const l = n + (c.family === 'siglip' ? 0 : 1);
  const patch = 2 * n * c.patchSize * c.patchSize * 3 * c.hiddenSize;
  const block = 2 * l * c.hiddenSize * (4 * c.hiddenSize + 2 * c.intermediateSize) + 4 * l * l * c.hiddenSize;
  return patch + layers * block;
}

/**
 * Fastest of `repeats` runs of each function, run in turns after a warm-up, so the figures compared share the same
 * machine load (the minimum is the run least disturbed by other processes). One element of each output is read
 * back, which waits for an asynchronous backend without timing a bulk download.
 */
function timeInTurns(fns, repeats) {
  const best = fns.map(() => Infinity);
  for (const fn of fns) tf.dispose(fn());
  for (let i = 0; i < repeats; i++)
    fns.forEach((fn, j) => {
      const t0 = performance.now();
      const out = fn();
      for (const t of out) tf.tidy(() => tf.slice(tf.reshape(t, [-1]), 0, 1).dataSync());
      best[j] = Math.min(best[j], performance.now() - t0);
      tf.dispose(out);
    });
  return best;
}

/** The same matmuls one forward pass does (patch embedding, then per block), on random inputs of the same shapes. */
function matmulPass(c, layers, batch) {
  const g = c.imageSize / c.patchSize;
  const l = g * g + (c.family === 'siglip' ? 0 : 1);
  const h = c.numHeads;
  const d = c.hiddenSize / h;
  const rows = batch * l;
  const r = (shape) => tf.randomNormal(shape);
  const t = {
    x: r([rows, c.hiddenSize]), wqkv: r([3 * c.hiddenSize, c.hiddenSize]), wo: r([c.hiddenSize, c.hiddenSize]),
    w1: r([c.intermediateSize, c.hiddenSize]), w2: r([c.hiddenSize, c.intermediateSize]), hidden: r([rows, c.intermediateSize]),
    q: r([batch, h, l, d]), scores: r([batch, h, l, l]), patches: r([batch * g * g, c.patchSize * c.patchSize * 3]),
    wp: r([c.hiddenSize, c.patchSize * c.patchSize * 3]),
  };
  // Each product in the layout tfjs runs fastest, inputs prepared outside the timing (for a Linear that is W·xᵀ,
  // as core's linear() computes it): this is the backend's own matmul speed, the ceiling for the ViT.
  const xT = tf.transpose(t.x);
  const hiddenT = tf.transpose(t.hidden);
  const patchesT = tf.transpose(t.patches);
  const kT = tf.transpose(t.q, [0, 1, 3, 2]);
  Object.assign(t, { xT, hiddenT, patchesT, kT });
  const run = () => {
    const out = [tf.matMul(t.wp, patchesT)];
    for (let i = 0; i < layers; i++)
      out.push(
        tf.matMul(t.wqkv, xT),
        tf.matMul(t.q, kT),
        tf.matMul(t.scores, t.q),
        tf.matMul(t.wo, xT),
        tf.matMul(t.w1, xT),
        tf.matMul(t.w2, hiddenT),
      );
    return out;
  };
  return { run, dispose: () => tf.dispose(Object.values(t)) };
}

async function benchEncoder(name, config, { layers = config.numLayers, scaleTo = layers, batch, repeats }) {
  const c = vitConfigSchema.parse({ ...config, numLayers: layers });
  const t0 = performance.now();
  // Random weights from tf's own generator: the Philox init of ParameterStore is exact but slow at 10^8 values,
  // and matmul speed does not depend on the values.
  const model = new VisionTransformer(c, Rng.fromSeed(0), { init: 'zeros', trainable: false });
  for (const [, v] of model.store.entries()) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.02)));
  const initMs = performance.now() - t0;
  const pixels = tf.randomNormal([batch, c.imageSize, c.imageSize, 3]);
  const matmuls = matmulPass(c, layers, batch);
  const [forwardMs, mmMs] = timeInTurns([() => [model.forward(pixels).lastBlock], matmuls.run], repeats);
  matmuls.dispose();
  pixels.dispose();
  model.dispose();
  const flops = flopsPerFrame(c, layers) * batch;
  const vitGflops = flops / forwardMs / 1e6;
  const mmGflops = flops / mmMs / 1e6;
  const perFrameMs = (forwardMs / batch) * (scaleTo / layers);
  const params = (c.hiddenSize * (4 * c.hiddenSize + 2 * c.intermediateSize) * scaleTo) / 1e6;
  console.log(
    `${name}: ${c.hiddenSize}d x ${scaleTo} blocks (${params.toFixed(0)}M block params), ${c.imageSize}px/${c.patchSize}, batch ${batch}` +
      (scaleTo !== layers ? ` [measured on ${layers} blocks, scaled]` : '') +
      `\n  init ${initMs.toFixed(0)} ms; ${(1000 / perFrameMs).toFixed(3)} frames/s (${perFrameMs.toFixed(0)} ms/frame); ` +
      `${(flopsPerFrame(c, scaleTo) / 1e9).toFixed(1)} GFLOP/frame` +
      `\n  ViT ${vitGflops.toFixed(1)} GFLOP/s vs backend matmul ${mmGflops.toFixed(1)} GFLOP/s on the same shapes: ratio ${(vitGflops / mmGflops).toFixed(2)}`,
  );
}

await benchEncoder('ViT-B/16', { family: 'clip', hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, imageSize: 224, patchSize: 16, hiddenAct: 'quick_gelu', layerNormEps: 1e-5 }, { batch: 1, repeats: 3 });
const evaLayers = Number(process.env.BENCH_EVA_LAYERS ?? 2);
await benchEncoder('EVA-ViT-g', { family: 'instructblip', hiddenSize: 1408, intermediateSize: 6144, numLayers: 39, numHeads: 16, imageSize: 224, patchSize: 14 }, { layers: evaLayers, scaleTo: 39, batch: 1, repeats: 3 });
