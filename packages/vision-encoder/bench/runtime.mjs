// Vision-tower throughput, tfjs vs onnxruntime (f32, dynamic int8 GEMM, int8/int4 weight-only MatMulNBits) on the same random weights:
// frames/s for a ViT-B/16 at 224 px and an EVA-ViT-g-shaped tower at 336 px (width 1408, 39 blocks, 16 heads,
// MLP 6144), peak RSS, and each as a fraction of the ORT MatMul 1024³ roofline measured in this run. Every runtime
// runs in its own child process, so each peak RSS is its own. Prints a table; asserts nothing. Run after build.
// EVA-ViT-g in float32 is 4 GB: it does not fit tfjs' 4 GB WASM heap next to its activations, so tfjs runs
// BENCH_EVA_TFJS_LAYERS (default 2) full-width blocks and its per-frame time is scaled by FLOPs to all 39 blocks
// (every block has the same shapes). onnxruntime runs the full depth; its weights are streamed from a seeded
// generator into the export, so the parent never holds a second copy.
//   BENCH_SHAPES=vit-b16,eva-g   BENCH_VARIANTS=tfjs,onnx-f32,onnx-dynamic-int8,onnx-int8,onnx-int4   BENCH_EVA_LAYERS=39
//   BENCH_THREADS (onnxruntime intra-op threads; default all cores)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, initBackend, measureMatmul, tf } from '@bvllm/core';
import { GraphBuilder, createSession, encodeModel, lazyWeight, ort, quantizeGraph, writeModel } from '@bvllm/onnx';
import { VisionTransformer, buildVisionGraph, vitConfigSchema } from '../dist/index.js';

const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
const evaTfjsLayers = Number(process.env.BENCH_EVA_TFJS_LAYERS ?? 2);
const SHAPES = {
  'vit-b16': { config: { family: 'clip', hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, imageSize: 224, patchSize: 16, hiddenAct: 'quick_gelu', layerNormEps: 1e-5 }, batch: 8, reps: 2 },
  'eva-g': { config: { family: 'instructblip', hiddenSize: 1408, intermediateSize: 6144, numLayers: Number(process.env.BENCH_EVA_LAYERS ?? 39), numHeads: 16, imageSize: 336, patchSize: 14, hiddenAct: 'gelu', layerNormEps: 1e-6 }, batch: 2, reps: 1 },
};

/** FLOPs of one frame: patch embedding, then per block the four projections, the MLP and the two attention products. */
function frameFlops(c) {
  const n = (c.imageSize / c.patchSize) ** 2;
  const l = n + (c.family === 'siglip' ? 0 : 1);
  const d = c.hiddenSize;
  return 2 * n * 3 * c.patchSize ** 2 * d + c.numLayers * (2 * l * (4 * d * d + 2 * d * c.intermediateSize) + 4 * l * l * d);
}

/** Every parameter's key and HF shape for the CLIP and InstructBLIP layouts. */
function weightShapes(c) {
  const d = c.hiddenSize;
  const p = c.patchSize;
  const tokens = (c.imageSize / p) ** 2 + 1;
  const s = new Map([['embeddings.patch_embedding.weight', [d, 3, p, p]], ['post_layernorm.weight', [d]], ['post_layernorm.bias', [d]]]);
  if (c.family === 'clip') for (const [k, v] of [['embeddings.class_embedding', [d]], ['embeddings.position_embedding.weight', [tokens, d]], ['pre_layrnorm.weight', [d]], ['pre_layrnorm.bias', [d]]]) s.set(k, v);
  else for (const [k, v] of [['embeddings.class_embedding', [1, 1, d]], ['embeddings.position_embedding', [1, tokens, d]], ['embeddings.patch_embedding.bias', [d]]]) s.set(k, v);
  for (let i = 0; i < c.numLayers; i++) {
    const l = `encoder.layers.${i}`;
    for (const n of ['layer_norm1', 'layer_norm2']) s.set(`${l}.${n}.weight`, [d]).set(`${l}.${n}.bias`, [d]);
    if (c.family === 'clip') for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) s.set(`${l}.self_attn.${n}.weight`, [d, d]).set(`${l}.self_attn.${n}.bias`, [d]);
    else s.set(`${l}.self_attn.qkv.weight`, [3 * d, d]).set(`${l}.self_attn.qkv.bias`, [3 * d]).set(`${l}.self_attn.projection.weight`, [d, d]).set(`${l}.self_attn.projection.bias`, [d]);
    s.set(`${l}.mlp.fc1.weight`, [c.intermediateSize, d]).set(`${l}.mlp.fc1.bias`, [c.intermediateSize]);
    s.set(`${l}.mlp.fc2.weight`, [d, c.intermediateSize]).set(`${l}.mlp.fc2.bias`, [d]);
  }
  return s;
}

/** The same values for a key in every process: xorshift seeded by the key, uniform with std 0.02; norms 1, biases 0. */
function weightValues(key, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  if (/norm\d?\.weight$/.test(key)) return new Float32Array(n).fill(1);
  if (key.endsWith('.bias')) return new Float32Array(n);
  let x = 2166136261;
  for (const ch of key) x = Math.imul(x ^ ch.charCodeAt(0), 16777619) >>> 0;
  x ||= 1;
  const out = new Float32Array(n);
  const scale = (0.02 * Math.sqrt(3)) / 2 ** 31;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) * scale;
  }
  return out;
}

function weightSource(config) {
  const shapes = weightShapes(config);
  // Lazy, as an export from a checkpoint reads them: one tensor in memory at a time while the graph is written.
  return { config: vitConfigSchema.parse(config), has: (k) => shapes.has(k), get: (k) => lazyWeight(shapes.get(k), () => weightValues(k, shapes.get(k))) };
}

const pixelsOf = (c, batch) => Float32Array.from({ length: batch * c.imageSize * c.imageSize * 3 }, (_, i) => Math.sin(i * 0.001));

async function timeCalls(run, reps) {
  await run();
  const start = performance.now();
  for (let i = 0; i < reps; i++) await run();
  return (performance.now() - start) / 1000 / reps;
}

/** One runtime in this process; prints one JSON line. */
async function child(shapeName, variant, file, outFile) {
  const { config, batch, reps } = SHAPES[shapeName];
  // Measured right before this runtime's timing, so a busy moment on a shared machine shows in both.
  const roofline = await ortRoofline();
  let secPerCall;
  let output;
  let ranConfig = config;
  if (variant === 'tfjs') {
    const info = await initBackend();
    ranConfig = shapeName === 'eva-g' ? { ...config, numLayers: Math.min(evaTfjsLayers, config.numLayers) } : config;
    const vit = new VisionTransformer(vitConfigSchema.parse(ranConfig), Rng.fromSeed(0), { init: 'zeros', trainable: false });
    const shapes = weightShapes(ranConfig);
    for (const [key, v] of vit.store.entries()) tf.tidy(() => v.assign(tf.tensor(weightValues(key, shapes.get(key)), v.shape)));
    const pixels = tf.tensor4d(pixelsOf(config, batch), [batch, config.imageSize, config.imageSize, 3]);
    secPerCall = await timeCalls(async () => {
      const { lastBlock } = vit.forward(pixels);
      output = (await lastBlock.data()).slice(0, lastBlock.size / batch);
      lastBlock.dispose();
    }, reps);
    console.error(`tfjs backend ${info.tfjsBackend}, ${info.threads} thread(s)`);
  } else {
    const session = await createSession(file, { threads });
    const feeds = { pixel_values: new ort.Tensor('float32', pixelsOf(config, batch), [batch, config.imageSize, config.imageSize, 3]) };
    secPerCall = await timeCalls(async () => {
      const out = await session.run(feeds, ['last_block']);
      output = out.last_block.data.slice(0, out.last_block.size / batch);
      for (const t of Object.values(out)) t.dispose();
    }, reps);
  }
  // The first frame's last block, for the parent to compare with the f32 export (skipped when fewer blocks ran).
  if (ranConfig.numLayers === config.numLayers) writeFileSync(outFile, new Uint8Array(output.buffer, output.byteOffset, output.byteLength));
  // tfjs on EVA-g ran fewer blocks: scale by FLOPs to the full depth.
  const secPerFrame = (secPerCall / batch) * (frameFlops(config) / frameFlops(ranConfig));
  console.log(JSON.stringify({ roofline, secPerFrame, scaledFromLayers: ranConfig.numLayers !== config.numLayers ? ranConfig.numLayers : null, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
}

/**
 * onnxruntime MatMul [1024, 1024] × [1024, 1024], the roofline every figure is compared with: the best of 12 timed
 * products, since other work on a shared machine only ever slows a product down.
 */
async function ortRoofline() {
  const g = new GraphBuilder('matmul');
  const a = g.input('a', 'float32', [1024, 1024]);
  const b = g.input('b', 'float32', [1024, 1024]);
  g.output('c', 'float32', [1024, 1024], g.op.matMul(a, b));
  const session = await createSession(encodeModel(g), { threads });
  const value = () => new ort.Tensor('float32', Float32Array.from({ length: 1024 * 1024 }, (_, i) => Math.cos(i)), [1024, 1024]);
  const feeds = { a: value(), b: value() };
  let best = Infinity;
  await session.run(feeds);
  for (let i = 0; i < 12; i++) {
    const start = performance.now();
    await session.run(feeds);
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  await session.release();
  return (2 * 1024 ** 3) / best / 1e9;
}

async function parent() {
  const variants = (process.env.BENCH_VARIANTS ?? 'tfjs,onnx-f32,onnx-dynamic-int8,onnx-int8,onnx-int4').split(',');
  const shapes = (process.env.BENCH_SHAPES ?? 'vit-b16,eva-g').split(',');
  const info = await initBackend();
  const rooflines = [await ortRoofline()];
  const tfjsMatmul = (await measureMatmul(1024, { reps: 3 })).gflops;
  const dir = mkdtempSync(join(tmpdir(), 'bvllm-vision-bench-'));
  const self = fileURLToPath(import.meta.url);
  const results = [];
  try {
    for (const name of shapes) {
      const { config } = SHAPES[name];
      for (const variant of variants) {
        let file = '';
        let dataFile;
        let exportNote = '';
        if (variant !== 'tfjs') {
          const start = performance.now();
          const g = buildVisionGraph(weightSource(config));
          const quant = variant.replace('onnx-', '');
          if (quant !== 'f32') quantizeGraph(g, quant);
          const written = writeModel(g, join(dir, `${name}-${variant}.onnx`));
          file = written.path;
          dataFile = written.dataPath;
          const bytes = statSync(written.path).size + (dataFile ? statSync(dataFile).size : 0);
          exportNote = `${((performance.now() - start) / 1000).toFixed(0)} s, ${(bytes / 2 ** 20).toFixed(0)} MB`;
        }
        const outFile = join(dir, `${name}-${variant}.out`);
        const run = spawnSync(process.execPath, [self, 'child', name, variant, file, outFile], { encoding: 'utf8', maxBuffer: 1 << 24 });
        const line = run.stdout.trim().split('\n').pop();
        for (const f of [file, dataFile]) if (f) rmSync(f, { force: true });
        if (run.status !== 0 || !line) {
          results.push({ name, variant, error: (run.stderr || '').trim().split('\n').slice(-3).join(' | ') });
          continue;
        }
        const r = JSON.parse(line);
        rooflines.push(r.roofline);
        results.push({ name, variant, exportNote, outFile, ...r });
        console.error(`${name} ${variant}: ${(1 / r.secPerFrame).toFixed(3)} frames/s (roofline in that process ${r.roofline.toFixed(0)} GFLOP/s)`);
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const roofline = Math.max(...rooflines);
  console.log(`machine: ${availableParallelism()} cores; onnxruntime-node ${ort.env.versions?.common ?? ''} with ${threads} intra-op thread(s); tfjs ${info.tfjsBackend} (${info.threads} thread(s))`);
  console.log(`roofline: ORT MatMul 1024³ f32, best of ${rooflines.length} measurements in this run: ${roofline.toFixed(0)} GFLOP/s (lowest ${Math.min(...rooflines).toFixed(0)}); tfjs matMul 1024³: ${tfjsMatmul.toFixed(0)} GFLOP/s\n`);
  for (const name of shapes) {
    const { config, batch } = SHAPES[name];
    const gflop = frameFlops(config) / 1e9;
    console.log(`${name}: ${config.imageSize} px, width ${config.hiddenSize}, ${config.numLayers} blocks, MLP ${config.intermediateSize}, ${gflop.toFixed(1)} GFLOP/frame, batch ${batch}`);
    console.log('  runtime      frames/s   ms/frame   GFLOP/s  of roofline  peak RSS  err vs f32  export (s, MB)');
    const rows = results.filter((x) => x.name === name);
    const reference = rows.find((x) => x.variant === 'onnx-f32' && existsSync(x.outFile));
    const ref = reference ? new Float32Array(readFileSync(reference.outFile).buffer.slice(0)) : undefined;
    for (const r of rows) {
      if (r.error) {
        console.log(`  ${r.variant.padEnd(11)}  failed: ${r.error}`);
        continue;
      }
      const achieved = gflop / r.secPerFrame;
      const scaled = r.scaledFromLayers ? `  (${r.scaledFromLayers} blocks timed, scaled by FLOPs)` : '';
      console.log(
        `  ${r.variant.padEnd(11)} ${(1 / r.secPerFrame).toFixed(3).padStart(9)} ${(r.secPerFrame * 1000).toFixed(0).padStart(10)} ${achieved.toFixed(0).padStart(9)} ${((100 * achieved) / roofline).toFixed(0).padStart(11)}% ${r.maxRssMB.toFixed(0).padStart(7)} MB ${relativeError(ref, r).padStart(10)}   ${r.exportNote}${scaled}`,
      );
    }
    console.log('');
  }
  console.log('err vs f32: max |x - f32| / max |f32| over the first frame\'s last block (tfjs: the same weights, so float rounding only).');
  rmSync(dir, { recursive: true, force: true });
}

/** max |x − ref| / max |ref| of a run's saved first-frame tokens, or '-' when either is missing. */
function relativeError(ref, r) {
  if (!ref || !existsSync(r.outFile)) return '-';
  const x = new Float32Array(readFileSync(r.outFile).buffer.slice(0));
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return (diff / scale).toExponential(1);
}

if (process.argv[2] === 'child') await child(process.argv[3], process.argv[4], process.argv[5], process.argv[6]);
else await parent();
