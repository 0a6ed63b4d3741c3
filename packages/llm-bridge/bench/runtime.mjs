// tfjs vs onnxruntime (f32, int8, int4 weight-only) on the same random Qwen2 weights, through the one CausalDecoder
// interface generation uses: prefill tokens/s on a 128-token prompt, greedy decode tokens/s, peak RSS, and each as a
// fraction of the matmul roofline (onnxruntime MatMul 1024³ GFLOP/s, measured in each runtime's process right before
// its run). Every runtime runs in its own child process so its peak RSS is its own. Prints a table; asserts nothing.
//   BENCH_QUICK=1      a small shape (hidden 256, 4 layers, vocab 8192) for a quick look
//   BENCH_PROMPT=128   BENCH_DECODE=24 (32 quick)   BENCH_VARIANTS=tfjs,onnx-f32,onnx-int8,onnx-int4
// Also: decode tokens/s of a batch of four 32-token prompts (generateBatch's shape of work).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '@bvllm/core';
import { GraphBuilder, createSession, encodeModel, ort } from '@bvllm/onnx';
import { OrtDecoder, TfjsDecoder, exportQwen2Onnx, qwen2Weights } from '../dist/index.js';
import { randomQwen2 } from './random-qwen2.mjs';

const quick = process.env.BENCH_QUICK === '1';
const promptLength = Number(process.env.BENCH_PROMPT ?? 128);
const decodeSteps = Number(process.env.BENCH_DECODE ?? (quick ? 32 : 24));
const variants = (process.env.BENCH_VARIANTS ?? 'tfjs,onnx-f32,onnx-int8,onnx-int4').split(',');
// Qwen/Qwen2-0.5B config.json, or a small shape of the same proportions.
const config = quick
  ? { vocabSize: 8192, hiddenSize: 256, intermediateSize: 1024, numLayers: 4, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 4096, tieWordEmbeddings: true }
  : { vocabSize: 151936, hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14, numKvHeads: 2, maxPositionEmbeddings: 32768, tieWordEmbeddings: true };
const d = config.hiddenSize;
const kvWidth = (config.numKvHeads * d) / config.numHeads;
const layerParams = 2 * d * d + 2 * d * kvWidth + 3 * d * config.intermediateSize;
// FLOPs of one forward over `l` new positions after `p` cached ones: projections, the two attention products, and the
// head at the last position only (what every runtime here computes).
const forwardFlops = (l, p) => config.numLayers * (2 * l * layerParams + 4 * l * (p + l) * d) + 2 * config.vocabSize * d;
const seconds = (start) => (performance.now() - start) / 1000;

/** Prefill then greedy decode through a CausalDecoder; returns seconds for each. */
async function measure(decoder) {
  const ids = Array.from({ length: promptLength }, (_, i) => (i * 7919) % config.vocabSize);
  const argmax = (row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
  // Warm-up: the first calls pay for kernel setup, allocation and heap growth.
  const warm = await decoder.prefill({ inputsEmbeds: await decoder.embed([ids.slice(0, 16)]), batch: 1, length: 16 });
  decoder.disposeCache((await decoder.step(warm.cache, [1])).cache);
  let start = performance.now();
  let { logits, cache } = await decoder.prefill({ inputsEmbeds: await decoder.embed([ids]), batch: 1, length: promptLength });
  let next = argmax(logits);
  const prefillSec = seconds(start);
  start = performance.now();
  const tokens = [];
  for (let step = 0; step < decodeSteps; step++) {
    ({ logits, cache } = await decoder.step(cache, [next]));
    next = argmax(logits);
    tokens.push(next);
  }
  const decodeSec = seconds(start);
  decoder.disposeCache(cache);
  return { prefillSec, decodeSec, tokens };
}

/** Four 32-token prompts decoded together for 16 steps (what `bvllm eval --batch-size 4` does): tokens/s over all rows. */
async function measureBatch(decoder, batch = 4, length = 32, steps = 16) {
  const ids = Array.from({ length: batch }, (_, b) => Array.from({ length }, (_, i) => (i * 7919 + b * 131) % config.vocabSize));
  let { cache } = await decoder.prefill({ inputsEmbeds: await decoder.embed(ids), batch, length });
  const start = performance.now();
  for (let step = 0; step < steps; step++) ({ cache } = await decoder.step(cache, ids.map((row) => row[step])));
  const rate = (batch * steps) / seconds(start);
  decoder.disposeCache(cache);
  return rate;
}

async function child(variant, dir) {
  let decoder;
  const start = performance.now();
  if (variant === 'tfjs') {
    await initBackend();
    decoder = TfjsDecoder.of(randomQwen2(config));
  } else decoder = await OrtDecoder.load(dir);
  const loadSec = seconds(start);
  // The roofline next to the run it scales: other jobs on a shared machine move it between processes.
  const roofline = await ortMatmulGflops();
  const result = await measure(decoder);
  const batchDecodeTokS = await measureBatch(decoder);
  process.stdout.write(JSON.stringify({ ...result, batchDecodeTokS, roofline, loadSec, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
}

/** onnxruntime MatMul [1024, 1024]·[1024, 1024] GFLOP/s with both inputs fed (no constant folding). */
async function ortMatmulGflops(n = 1024, reps = 10) {
  const g = new GraphBuilder('matmul');
  g.input('a', 'float32', [n, n]);
  g.input('b', 'float32', [n, n]);
  g.node('MatMul', ['a', 'b'], ['c']);
  g.output('c', 'float32', [n, n]);
  const session = await createSession(encodeModel(g));
  const feeds = { a: new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]), b: new ort.Tensor('float32', new Float32Array(n * n).fill(0.25), [n, n]) };
  await session.run(feeds);
  const start = performance.now();
  for (let i = 0; i < reps; i++) await session.run(feeds);
  const rate = (2 * n ** 3 * reps) / seconds(start) / 1e9;
  await session.release();
  return rate;
}

async function tfjsMatmulGflops(n = 1024, reps = 3) {
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  await tf.matMul(a, b).data();
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  }
  tf.dispose([a, b]);
  return (2 * n ** 3 * reps) / seconds(start) / 1e9;
}

const folderMb = (dir) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0) / 2 ** 20;

async function parent() {
  const info = await initBackend();
  const ortRoof = await ortMatmulGflops();
  const tfjsRoof = await tfjsMatmulGflops();
  console.log(`shape: hidden ${d}, ${config.numLayers} layers, heads ${config.numHeads}/${config.numKvHeads}, intermediate ${config.intermediateSize}, vocab ${config.vocabSize}, tied${quick ? ' (quick)' : ' (Qwen2-0.5B)'}`);
  console.log(`prompt ${promptLength} tokens, ${decodeSteps} greedy decode steps; tfjs ${info.tfjsBackend} (threads ${info.threads}), onnxruntime ${ort.env.versions.node}`);
  console.log(`matmul 1024³ in this process: onnxruntime ${ortRoof.toFixed(1)} GFLOP/s, tfjs ${tfjsRoof.toFixed(1)} GFLOP/s`);

  const work = mkdtempSync(join(tmpdir(), 'bvllm-runtime-bench-'));
  try {
    const onnx = variants.filter((v) => v.startsWith('onnx-'));
    const exported = new Map();
    if (onnx.length) {
      let start = performance.now();
      const model = randomQwen2(config);
      console.log(`random weights: ${(model.store.count() / 1e6).toFixed(1)} M parameters in ${seconds(start).toFixed(1)} s`);
      for (const v of onnx) {
        const quantize = v.slice(5) === 'f32' ? undefined : v.slice(5);
        const dir = join(work, v);
        start = performance.now();
        // As the pipeline exports: logits at the last position only (generation reads nothing else).
        await exportQwen2Onnx(model.config, qwen2Weights(model), dir, { quantize, logitsFor: 'last' });
        exported.set(v, dir);
        console.log(`export ${v}: ${seconds(start).toFixed(1)} s, ${folderMb(dir).toFixed(0)} MB`);
      }
      model.dispose();
    }
    const script = fileURLToPath(import.meta.url);
    const rows = [];
    for (const v of variants) {
      const run = spawnSync(process.execPath, [script, '--child', v, exported.get(v) ?? ''], { encoding: 'utf8', env: process.env, maxBuffer: 1 << 24 });
      if (run.status !== 0) {
        console.log(`${v}: failed (${run.status})\n${run.stderr.slice(-2000)}`);
        continue;
      }
      rows.push({ variant: v, ...JSON.parse(run.stdout) });
    }
    const decodeFlops = Array.from({ length: decodeSteps }, (_, s) => forwardFlops(1, promptLength + s)).reduce((a, b) => a + b, 0);
    const header = ['runtime', 'roofline GFLOP/s', 'prefill tok/s', 'prefill GFLOP/s', '% roofline', 'decode tok/s', 'decode GFLOP/s', '% roofline', 'batch-4 decode tok/s', 'peak RSS MB', 'load s', 'greedy = tfjs'];
    const reference = rows.find((r) => r.variant === 'tfjs')?.tokens;
    const table = rows.map((r) => {
      const pre = forwardFlops(promptLength, 0) / r.prefillSec / 1e9;
      const dec = decodeFlops / r.decodeSec / 1e9;
      const agree = reference ? `${r.tokens.filter((t, i) => t === reference[i]).length}/${decodeSteps}` : '-';
      return [r.variant, r.roofline.toFixed(1), (promptLength / r.prefillSec).toFixed(1), pre.toFixed(1), ((100 * pre) / r.roofline).toFixed(0), (decodeSteps / r.decodeSec).toFixed(2), dec.toFixed(1), ((100 * dec) / r.roofline).toFixed(1), r.batchDecodeTokS.toFixed(2), r.peakRssMb.toFixed(0), r.loadSec.toFixed(1), agree];
    });
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const line = (cells) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
    console.log(['', line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.map(line)].join('\n'));
    console.log('issue #10 targets on the Qwen2-0.5B shape: prefill >= 167 tok/s, decode >= 18.6 tok/s (2x HF transformers eager f32, 2 threads)');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
else await parent();
