// bvllm-ts against transformers.js and llama.cpp on the same random Qwen2 weights (issue #19's benchmark): each
// variant in its own child process with the same thread count, interleaved over rounds (the order reversed every
// other round), onnxruntime's MatMul 1024³ roofline measured in each child right before its run and the memory
// bandwidth (a large buffer copy) before each round. Prints prefill tokens/s (128-token prompt), greedy decode
// tokens/s, peak RSS, the ratio of each to the best peer at the same precision, and decode against the memory-bandwidth
// bound (weight bytes read per token ÷ bandwidth). Asserts nothing.
//   BENCH_QUICK=1      a small shape (hidden 256, 4 layers, vocab 8192) for a quick look
//   BENCH_PROMPT=128   BENCH_DECODE=24   BENCH_ROUNDS=2   BENCH_THREADS=2
//   BENCH_VARIANTS     comma-separated names (default: every variant not marked opt-in; see VARIANTS)
// bvllm-ts rows also report decode tokens/s of a batch of four 32-token prompts (generateBatch's shape of work).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@bvllm/core';
import { GraphBuilder, QUANTIZE_PRESET_NAMES, createSession, encodeModel, ort } from '@bvllm/onnx';
import { OrtDecoder, TfjsDecoder, exportQwen2Onnx, qwen2Weights } from '../dist/index.js';
import { randomQwen2 } from './random-qwen2.mjs';
import { runLlamaCpp, writeQwen2Gguf } from './peers/llama-cpp.mjs';
import { copyBandwidth } from './peers/memory-bandwidth.mjs';
import { runTransformersJs, writeTransformersJsModel } from './peers/transformers-js.mjs';

const quick = process.env.BENCH_QUICK === '1';
const promptLength = Number(process.env.BENCH_PROMPT ?? 128);
const decodeSteps = Number(process.env.BENCH_DECODE ?? 24);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const threads = Number(process.env.BENCH_THREADS ?? 2);
// Qwen/Qwen2-0.5B config.json, or a small shape of the same proportions.
const config = quick
  ? { vocabSize: 8192, hiddenSize: 256, intermediateSize: 1024, numLayers: 4, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 4096, tieWordEmbeddings: true }
  : { vocabSize: 151936, hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14, numKvHeads: 2, maxPositionEmbeddings: 32768, tieWordEmbeddings: true };

/**
 * bvllm-ts variants: a name, the precision its ratios are taken at, and the `exportQwen2Onnx` options (on top of
 * `logitsFor: 'last'`, as the pipeline exports). A new export preset is one line here; a `quantize` preset of
 * `@bvllm/onnx` that no line names is added below as `bvllm-<preset>`, so none is left out.
 */
const BVLLM_VARIANTS = [
  { name: 'bvllm-f32', precision: 'f32', options: {} },
  { name: 'bvllm-int8', precision: 'int8', options: { quantize: 'int8' } },
  { name: 'bvllm-dynamic-int8', precision: 'int8', options: { quantize: 'dynamic-int8' } },
  { name: 'bvllm-int4', precision: 'int4', options: { quantize: 'int4' } },
  // float16 storage; no peer runs at this precision here, so its ratios are blank.
  { name: 'bvllm-f16', precision: 'f16', options: { dtype: 'float16' } },
];
for (const preset of QUANTIZE_PRESET_NAMES)
  if (!BVLLM_VARIANTS.some((v) => v.options.quantize === preset))
    BVLLM_VARIANTS.push({ name: `bvllm-${preset}`, precision: /4/.test(preset) ? 'int4' : /8/.test(preset) ? 'int8' : preset, options: { quantize: preset } });

const VARIANTS = [
  ...BVLLM_VARIANTS.map((v) => ({ ...v, runtime: 'bvllm-ts', options: { logitsFor: 'last', ...v.options } })),
  { name: 'tjs-fp32', runtime: 'transformers.js', precision: 'f32', dtype: 'fp32' },
  { name: 'tjs-q8', runtime: 'transformers.js', precision: 'int8', dtype: 'q8' },
  { name: 'tjs-q4', runtime: 'transformers.js', precision: 'int4', dtype: 'q4' },
  { name: 'llama-F32', runtime: 'llama.cpp', precision: 'f32', ggml: 'F32' },
  { name: 'llama-Q8_0', runtime: 'llama.cpp', precision: 'int8', ggml: 'Q8_0' },
  { name: 'llama-Q4_0', runtime: 'llama.cpp', precision: 'int4', ggml: 'Q4_0' },
  // The tfjs decoder (WASM, one thread): slow, and its random weights are generated again in its process.
  { name: 'tfjs', runtime: 'tfjs', precision: 'f32', optIn: true },
];
const REFERENCE = 'bvllm-f32';

const d = config.hiddenSize;
const kvWidth = (config.numKvHeads * d) / config.numHeads;
const layerParams = 2 * d * d + 2 * d * kvWidth + 3 * d * config.intermediateSize;
// FLOPs of one forward over `l` new positions after `p` cached ones: projections, the two attention products, and the
// head at the last position only (transformers.js' layout computes the head at every prompt position, on top).
const forwardFlops = (l, p) => config.numLayers * (2 * l * layerParams + 4 * l * (p + l) * d) + 2 * config.vocabSize * d;
const seconds = (start) => (performance.now() - start) / 1000;
const promptIds = Array.from({ length: promptLength }, (_, i) => (i * 7919) % config.vocabSize);
const warmIds = promptIds.slice(0, 16);

/** Prefill then greedy decode through a CausalDecoder; returns seconds for each. */
async function measure(decoder) {
  const argmax = (row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
  // Warm-up: the first calls pay for kernel setup, allocation and heap growth.
  const warm = await decoder.prefill({ inputsEmbeds: await decoder.embed([warmIds]), batch: 1, length: warmIds.length });
  decoder.disposeCache((await decoder.step(warm.cache, [1])).cache);
  let start = performance.now();
  let { logits, cache } = await decoder.prefill({ inputsEmbeds: await decoder.embed([promptIds]), batch: 1, length: promptLength });
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

/** onnxruntime MatMul [1024, 1024]·[1024, 1024] GFLOP/s with both inputs fed (no constant folding). */
async function ortMatmulGflops(n = 1024, reps = 10) {
  const g = new GraphBuilder('matmul');
  g.input('a', 'float32', [n, n]);
  g.input('b', 'float32', [n, n]);
  g.node('MatMul', ['a', 'b'], ['c']);
  g.output('c', 'float32', [n, n]);
  const session = await createSession(encodeModel(g), { threads });
  const feeds = { a: new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]), b: new ort.Tensor('float32', new Float32Array(n * n).fill(0.25), [n, n]) };
  await session.run(feeds);
  const start = performance.now();
  for (let i = 0; i < reps; i++) await session.run(feeds);
  const rate = (2 * n ** 3 * reps) / seconds(start) / 1e9;
  await session.release();
  return rate;
}

async function child(variant, path) {
  // The roofline next to the run it scales: other jobs on a shared machine move it between processes.
  const roofline = await ortMatmulGflops();
  const run = { threads, promptIds, warmIds, decodeSteps };
  let result;
  if (variant.runtime === 'transformers.js') result = await runTransformersJs(path, variant.dtype, run);
  else if (variant.runtime === 'llama.cpp') result = await runLlamaCpp(path, run);
  else {
    const start = performance.now();
    let decoder;
    if (variant.runtime === 'tfjs') {
      await initBackend();
      decoder = TfjsDecoder.of(randomQwen2(config));
    } else decoder = await OrtDecoder.load(path, { threads });
    const loadSec = seconds(start);
    result = { loadSec, ...(await measure(decoder)), batchDecodeTokS: await measureBatch(decoder) };
  }
  // The last line of stdout; runtimes may print their own lines before it.
  process.stdout.write(`\nBENCH_RESULT ${JSON.stringify({ ...result, roofline, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
}

const fileBytes = (path) => statSync(path).size;
const folderBytes = (dir, skip = () => false) => readdirSync(dir).reduce((n, f) => (skip(f) ? n : n + fileBytes(join(dir, f))), 0);

/** Writes every selected variant's model from one set of random weights; returns path and weight bytes per token. */
function writeModels(selected, work) {
  const files = new Map();
  const needWeights = selected.filter((v) => v.runtime !== 'tfjs');
  if (!needWeights.length) return files;
  let start = performance.now();
  const model = randomQwen2(config);
  console.log(`random weights: ${(model.store.count() / 1e6).toFixed(1)} M parameters in ${seconds(start).toFixed(1)} s`);
  const weights = qwen2Weights(model);
  for (const v of needWeights.filter((x) => x.runtime === 'bvllm-ts')) {
    const dir = join(work, v.name);
    start = performance.now();
    exportQwen2Onnx(model.config, weights, dir, v.options);
    // The embedding table is its own graph, read one row per token; the decoder's weights are read in full.
    const perToken = folderBytes(dir, (f) => f.startsWith('embed_tokens') || f === 'config.json');
    files.set(v.name, { path: dir, perToken });
    console.log(`export ${v.name} ${JSON.stringify(v.options)}: ${seconds(start).toFixed(1)} s, ${(folderBytes(dir) / 2 ** 20).toFixed(0)} MiB`);
  }
  const tjs = needWeights.filter((v) => v.runtime === 'transformers.js');
  if (tjs.length) {
    const dir = join(work, 'transformers-js-qwen2');
    start = performance.now();
    const written = writeTransformersJsModel(model.config, weights, dir, tjs.map((v) => v.dtype));
    for (const v of tjs) files.set(v.name, { path: dir, perToken: written[v.dtype].bytes - written[v.dtype].embedBytes });
    console.log(`transformers.js folder (${tjs.map((v) => v.dtype).join(', ')}): ${seconds(start).toFixed(1)} s, ${(folderBytes(join(dir, 'onnx')) / 2 ** 20).toFixed(0)} MiB`);
  }
  for (const v of needWeights.filter((x) => x.runtime === 'llama.cpp')) {
    const path = join(work, `qwen2-${v.ggml}.gguf`);
    start = performance.now();
    const out = writeQwen2Gguf(model.config, weights, path, v.ggml);
    // Tied: token_embd is also the head, so every tensor is read per token.
    files.set(v.name, { path, perToken: out.tensorBytes });
    console.log(`gguf ${v.ggml}: ${seconds(start).toFixed(1)} s, ${(out.bytes / 2 ** 20).toFixed(0)} MiB`);
  }
  model.dispose();
  return files;
}

function printTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  console.log(['', line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
}

async function parent() {
  const names = process.env.BENCH_VARIANTS?.split(',');
  const unknown = names?.filter((n) => !VARIANTS.some((v) => v.name === n)) ?? [];
  if (unknown.length) throw new Error(`unknown BENCH_VARIANTS ${unknown.join(', ')}; known: ${VARIANTS.map((v) => v.name).join(', ')}`);
  const selected = names ? VARIANTS.filter((v) => names.includes(v.name)) : VARIANTS.filter((v) => !v.optIn);
  await initBackend(); // the random weights are tfjs tensors
  console.log(`shape: hidden ${d}, ${config.numLayers} layers, heads ${config.numHeads}/${config.numKvHeads}, intermediate ${config.intermediateSize}, vocab ${config.vocabSize}, tied${quick ? ' (quick)' : ' (Qwen2-0.5B)'}`);
  const versions = (pkg) => JSON.parse(readFileSync(fileURLToPath(new URL(`../node_modules/${pkg}/package.json`, import.meta.url)), 'utf8')).version;
  console.log(`prompt ${promptLength} tokens, ${decodeSteps} greedy decode steps, ${threads} threads each, ${rounds} rounds; onnxruntime-node ${ort.env.versions.node}, @huggingface/transformers ${versions('@huggingface/transformers')}, node-llama-cpp ${versions('node-llama-cpp')}`);

  const work = mkdtempSync(join(tmpdir(), 'bvllm-runtime-bench-'));
  try {
    const files = writeModels(selected, work);
    const script = fileURLToPath(import.meta.url);
    const runs = new Map(selected.map((v) => [v.name, []]));
    const bandwidths = [];
    for (let round = 0; round < rounds; round++) {
      const bandwidth = await copyBandwidth({ threads });
      bandwidths.push(bandwidth);
      console.log(`round ${round + 1}: copy bandwidth ${bandwidth.toFixed(1)} GB/s (${threads} threads, read + write)`);
      for (const v of round % 2 ? [...selected].reverse() : selected) {
        const run = spawnSync(process.execPath, [script, '--child', v.name, files.get(v.name)?.path ?? ''], { encoding: 'utf8', env: process.env, maxBuffer: 1 << 26 });
        const line = run.stdout?.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
        if (run.status !== 0 || !line) {
          console.log(`  ${v.name}: failed (${run.status})\n${run.stderr.slice(-3000)}${run.stdout.slice(-1000)}`);
          continue;
        }
        const r = JSON.parse(line.slice('BENCH_RESULT '.length));
        runs.get(v.name).push(r);
        if (r.info && round === 0) console.log(`  ${v.name}: ${JSON.stringify(r.info)}`);
        console.log(`  ${v.name.padEnd(18)} roofline ${r.roofline.toFixed(0).padStart(4)} GFLOP/s  prefill ${(promptLength / r.prefillSec).toFixed(1).padStart(7)} tok/s  decode ${(decodeSteps / r.decodeSec).toFixed(2).padStart(6)} tok/s  peak RSS ${r.peakRssMb.toFixed(0)} MB  load ${r.loadSec.toFixed(1)} s`);
      }
    }
    summarize(selected, runs, files, Math.max(...bandwidths));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Best of the rounds per variant (the least disturbed run), ratios to the best peer at the same precision. */
function summarize(selected, runs, files, bandwidth) {
  const best = new Map();
  for (const v of selected) {
    const rs = runs.get(v.name);
    if (!rs.length) continue;
    const max = (f) => Math.max(...rs.map(f));
    const min = (f) => Math.min(...rs.map(f));
    best.set(v.name, {
      v,
      prefill: max((r) => promptLength / r.prefillSec),
      decode: max((r) => decodeSteps / r.decodeSec),
      batch: rs[0].batchDecodeTokS === undefined ? undefined : max((r) => r.batchDecodeTokS),
      rss: max((r) => r.peakRssMb),
      roofline: [min((r) => r.roofline), max((r) => r.roofline)],
      tokens: rs[0].tokens,
    });
  }
  const peers = [...best.values()].filter((b) => b.v.runtime === 'transformers.js' || b.v.runtime === 'llama.cpp');
  const bestPeer = (precision, f, pick = Math.max) => {
    const xs = peers.filter((b) => b.v.precision === precision).map(f);
    return xs.length ? pick(...xs) : undefined;
  };
  const ratio = (x, y) => (y ? `${(x / y).toFixed(2)}×` : '-');
  const reference = best.get(REFERENCE)?.tokens;
  const decodeFlops = Array.from({ length: decodeSteps }, (_, s) => forwardFlops(1, promptLength + s)).reduce((a, b) => a + b, 0);
  const header = ['runtime', 'precision', 'roofline GFLOP/s', 'prefill tok/s', '÷ best peer', '% roofline', 'decode tok/s', '÷ best peer', 'weights MB/token', 'bandwidth bound tok/s', '% of bound', 'peak RSS MB', '÷ least peer', 'batch-4 decode tok/s', `greedy = ${REFERENCE}`];
  const rows = [...best.values()].map((b) => {
    const perToken = files.get(b.v.name)?.perToken;
    const bound = perToken ? (bandwidth * 1e9) / perToken : undefined;
    const prefillGflops = (forwardFlops(promptLength, 0) * b.prefill) / promptLength / 1e9;
    const agree = reference ? `${b.tokens.filter((t, i) => t === reference[i]).length}/${decodeSteps}` : '-';
    return [
      b.v.name,
      b.v.precision,
      `${b.roofline[0].toFixed(0)}–${b.roofline[1].toFixed(0)}`,
      b.prefill.toFixed(1),
      ratio(b.prefill, bestPeer(b.v.precision, (p) => p.prefill)),
      ((100 * prefillGflops) / b.roofline[1]).toFixed(0),
      b.decode.toFixed(2),
      ratio(b.decode, bestPeer(b.v.precision, (p) => p.decode)),
      perToken ? (perToken / 1e6).toFixed(0) : '-',
      bound ? bound.toFixed(1) : '-',
      bound ? ((100 * b.decode) / bound).toFixed(0) : '-',
      b.rss.toFixed(0),
      ratio(b.rss, bestPeer(b.v.precision, (p) => p.rss, Math.min)),
      b.batch === undefined ? '-' : b.batch.toFixed(2),
      agree,
    ];
  });
  console.log(`\nbest of ${rounds} rounds; ratios to the best transformers.js / llama.cpp figure at the same precision (RSS: to the smallest); memory bandwidth ${bandwidth.toFixed(1)} GB/s (best copy)`);
  printTable(header, rows);
  console.log(`decode GFLOP/s = ${(decodeFlops / 1e9).toFixed(1)} GFLOP over ${decodeSteps} steps ÷ time; % roofline of prefill against the best roofline of the variant's rounds`);
  for (const name of ['llama-F32', 'tjs-fp32'])
    if (best.has(name) && reference) console.log(`${name} greedy tokens = ${REFERENCE}'s on the same weights: ${best.get(name).tokens.filter((t, i) => t === reference[i]).length}/${decodeSteps}`);
  for (const b of [...best.values()].filter((x) => x.v.precision === 'int4')) {
    const perToken = files.get(b.v.name)?.perToken;
    if (perToken) console.log(`int4 decode vs memory-bandwidth bound: ${b.v.name} ${b.decode.toFixed(2)} tok/s, bound ${((bandwidth * 1e9) / perToken).toFixed(1)} tok/s (${(perToken / 1e6).toFixed(0)} MB of weights per token ÷ ${bandwidth.toFixed(1)} GB/s) = ${((100 * b.decode * perToken) / (bandwidth * 1e9)).toFixed(0)}%`);
  }
  console.log('issue #19 targets: int8 prefill >= 1.0x best peer int8, decode >= 1.0x llama.cpp Q8_0; int4 prefill, decode >= 1.0x and peak RSS <= 1.0x llama.cpp Q4_0; f32 >= 1.0x every peer; int4 decode >= 70% of the bandwidth bound');
}

if (process.argv[2] === '--child') await child(VARIANTS.find((v) => v.name === process.argv[3]), process.argv[4]);
else await parent();
