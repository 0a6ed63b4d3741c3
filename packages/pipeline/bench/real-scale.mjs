// Real scale (issue #18): random weights at the real shapes in the real Hugging Face layouts (random-hf.mjs, no
// tfjs model), converted with `bvllm convert`, then answered about synthesised videos through one InferenceSession.
// Every conversion and every video length runs in its own child process, so each peak RSS is that step's own.
// Prints figures and their ratios to the targets and to onnxruntime's matmul roofline; asserts nothing.
//
//   node bench/real-scale.mjs [--configs small,paper,paper-0.5b] [--minutes 1,8,60] [--work DIR] [--threads N]
//                             [--providers cuda,cpu] [--dtype bf16|f16|f32] [--onnx-dtype f32|f16] [--keep]
//                             [--vision-quantize dynamic-int8|int8|int4] [--qformer-quantize …] [--llm-quantize …]
// --dtype is the model folder's stored dtype, --onnx-dtype the exported graphs' (f16 for the CUDA provider).
// Defaults: the configs and lengths of the issue's table on this CPU (paper at 1 minute only).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const cli = join(repo, 'apps', 'cli', 'dist', 'bvllm.js');
const official = JSON.parse(readFileSync(join(here, '..', 'configs', 'bvllm-official.json'), 'utf8'));

const QWEN2_05B = { vocabSize: 151936, hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14, numKvHeads: 2, rmsNormEps: 1e-6, ropeTheta: 1000000, maxPositionEmbeddings: 32768, tieWordEmbeddings: true };
const EVA_G = { hiddenSize: 1408, intermediateSize: 6144, numLayers: 39, numHeads: 16, patchSize: 14, imageSize: 224 };
const VIT_B16 = { hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, patchSize: 16, imageSize: 224 };

/** name → the checkpoint tower, the size it runs at, the LLM and its quantisation. */
const CONFIGS = {
  paper: { tower: EVA_G, imageSize: 224, llm: official.llm, llmQuantize: 'int4', minutes: [1] },
  'paper-336': { tower: EVA_G, imageSize: 336, llm: official.llm, llmQuantize: 'int4', minutes: [1] },
  'paper-0.5b': { tower: EVA_G, imageSize: 224, llm: QWEN2_05B, llmQuantize: 'int4', minutes: [1] },
  small: { tower: VIT_B16, imageSize: 224, llm: QWEN2_05B, llmQuantize: 'int4', minutes: [1, 8, 60] },
};

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};


/** The work of one child process; prints one JSON line `RESULT {...}` with its figures and its peak RSS. */
async function child(kind, job) {
  const report = (figures) => console.log(`RESULT ${JSON.stringify({ ...figures, peakRssMb: process.resourceUsage().maxRSS / 1024 })}`);
  if (kind === 'write') {
    const { writeRandomInstructBlip, writeRandomQwen2 } = await import('./random-hf.mjs');
    const t0 = performance.now();
    writeRandomInstructBlip(job.instructblip, job.tower);
    writeRandomQwen2(job.qwen2, job.llm);
    return report({ seconds: (performance.now() - t0) / 1000 });
  }
  if (kind === 'ask') return report(await askChild(job));
  if (kind === 'roofline') return report(await rooflineChild(job));
  throw new Error(`unknown child ${kind}`);
}

/** Encodes a video and answers one question with per-stage times. */
async function askChild(job) {
  const { initBackend, Rng } = await import('@bvllm/core');
  const { InferenceSession } = await import('../dist/index.js');
  await initBackend();
  const options = { threads: job.threads, executionProviders: job.providers, featureCacheDir: job.featureCacheDir, export: { dtype: job.onnxDtype === 'f16' ? 'float16' : 'float32' } };
  let t0 = performance.now();
  const session = await InferenceSession.open(job.model, options);
  const openSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const video = await session.encode(job.video);
  const encodeSeconds = (performance.now() - t0) / 1000;
  const frames = video.numFrames;
  const question = session.tokenizeQuestion('What happens in the video?');
  const stages = {};
  const path = await session.visualPath(video, question, { training: false, rng: Rng.fromSeed(0).fork('frame-select'), timings: stages });
  const visualTokens = path.visualEmbeds.shape[0];
  for (const t of [path.selection.frameWeights, path.selection.selected, path.merged.merged, path.spatialTokens, path.visualEmbeds]) t.dispose();
  // Prefill and greedy decode on the decoder itself: random weights pick ids the shipped tokenizer cannot spell.
  t0 = performance.now();
  const { prompt } = await session.prompt(video, [{ role: 'user', content: 'What happens in the video?' }]);
  const promptSeconds = (performance.now() - t0) / 1000;
  const decoder = session.decoder;
  const promptTokens = prompt.inputsEmbeds.length / decoder.hiddenSize;
  // One short prefill first, so the figure is steady-state prefill, not onnxruntime's first-run allocations.
  await decoder.prefill({ inputsEmbeds: prompt.inputsEmbeds.subarray(0, 8 * decoder.hiddenSize), batch: 1, length: 8 });
  t0 = performance.now();
  let step = await decoder.prefill({ inputsEmbeds: prompt.inputsEmbeds, batch: 1, length: promptTokens });
  const prefillSeconds = (performance.now() - t0) / 1000;
  const steps = job.decodeSteps;
  t0 = performance.now();
  for (let i = 0; i < steps; i++) step = await decoder.step(step.cache, [argmax(step.logits)]);
  const decodeSeconds = (performance.now() - t0) / 1000;
  await video.close();
  await session.close();
  return {
    frames, openSeconds, encodeSeconds, framesPerSec: frames / encodeSeconds, stages, visualTokens, promptTokens,
    promptSeconds, prefillTokPerSec: promptTokens / prefillSeconds, decodeTokPerSec: steps / decodeSeconds,
    endToEndSeconds: encodeSeconds + promptSeconds + prefillSeconds + decodeSeconds,
  };
}

function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * onnxruntime's MatMul GOP/s on the tower's FFN shape, the roofline the encoder is held against: float32, or the
 * tower's own quantisation (`job.quantize`), so a quantised tower is held against its own kernel.
 */
async function rooflineChild(job) {
  const { GraphBuilder, createSession, ort, quantizeGraph, writeModel } = await import('@bvllm/onnx');
  const { tokens, width, inner } = job;
  const g = new GraphBuilder('roofline');
  const x = g.input('x', 'float32', [tokens, width]);
  const w = new Float32Array(width * inner).map((_, i) => ((i * 2654435761) % 1000) / 1e5);
  g.output('y', 'float32', [tokens, inner], g.op.matMul(x, g.initializer('w', w, [width, inner])));
  if (job.quantize) quantizeGraph(g, job.quantize);
  const file = join(job.dir, `roofline-${job.quantize ?? 'f32'}.onnx`);
  writeModel(g, file);
  const session = await createSession(file, { threads: job.threads, executionProviders: job.providers });
  const feeds = { x: new ort.Tensor('float32', new Float32Array(tokens * width).fill(0.01), [tokens, width]) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  let best = Infinity;
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await session.release();
  return { gflops: (2 * tokens * width * inner) / (best / 1000) / 1e9 };
}

/** Runs `kind` in a child; returns its figures, or `{ error }` with the tail of its output. */
function runChild(kind, job) {
  const run = spawnSync(process.execPath, ['--max-old-space-size=8192', fileURLToPath(import.meta.url), '--child', kind, JSON.stringify(job)], { encoding: 'utf8', maxBuffer: 1 << 26, cwd: join(here, '..') });
  const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (run.status !== 0 || !line) return { error: `${kind} exited ${run.status}: ${(run.stderr || run.stdout).slice(-1500)}` };
  return JSON.parse(line.slice(7));
}

/** `bvllm convert` in a child, timed, with its peak RSS (GNU time when present, else none). */
function convert(job) {
  const argv = [cli, 'convert', '--config', job.config, '--instructblip', job.instructblip, '--qwen2', job.qwen2, '--out', job.out, '--dtype', job.dtype, '--onnx-dtype', job.onnxDtype, '--llm-quantize', job.llmQuantize, ...(job.visionQuantize ? ['--vision-quantize', job.visionQuantize] : []), ...(job.qformerQuantize ? ['--qformer-quantize', job.qformerQuantize] : [])];
  const time = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'PEAK_RSS_KB %M'] : [];
  const t0 = performance.now();
  const run = spawnSync(time[0] ?? process.execPath, [...time.slice(1), ...(time.length ? [process.execPath] : []), ...argv], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (run.status !== 0) return { error: `convert exited ${run.status}: ${(run.stderr || run.stdout).slice(-2000)}` };
  const peak = /PEAK_RSS_KB (\d+)/.exec(run.stderr);
  return { seconds, peakRssMb: peak ? Number(peak[1]) / 1024 : undefined, table: run.stdout.trim() };
}

/** A synthesised video of `minutes` (moving test pattern, 2 fps, 320×240), made once per work folder. */
function video(work, minutes) {
  const file = join(work, `video-${minutes}min.mp4`);
  if (existsSync(file)) return file;
  const ffmpeg = process.env.BVLLM_FFMPEG || execFileSync(process.execPath, ['-e', "import('@ffmpeg-installer/ffmpeg').then(m => console.log(m.default.path))"], { cwd: join(repo, 'packages', 'vision-encoder'), encoding: 'utf8' }).trim();
  execFileSync(ffmpeg, ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=s=320x240:r=2:d=${minutes * 60}`, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file]);
  return file;
}

/** Matmul FLOPs of one frame through the tower (2 per multiply-add; norms and softmax are O(L·C)). */
function towerFlops(tower, imageSize) {
  const grid = imageSize / tower.patchSize;
  const n = grid * grid;
  const l = n + 1;
  const c = tower.hiddenSize;
  return 2 * n * tower.patchSize ** 2 * 3 * c + tower.numLayers * (2 * l * c * (4 * c + 2 * tower.intermediateSize) + 4 * l * l * c);
}

const mb = (v) => (v === undefined ? '–' : `${(v / 1024).toFixed(2)} GB`);
const f = (v, d = 1) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d));

async function main() {
  const names = flag('configs', 'small,paper').split(',');
  const work = flag('work', join(tmpdir(), 'bvllm-real-scale'));
  const threads = Number(flag('threads', String(cpus().length)));
  const providers = flag('providers') ? flag('providers').split(',') : undefined;
  const dtype = flag('dtype', 'bf16');
  const onnxDtype = flag('onnx-dtype', 'f32');
  const visionQuantize = flag('vision-quantize');
  const qformerQuantize = flag('qformer-quantize');
  mkdirSync(work, { recursive: true });
  console.log(`real-scale bench: ${cpus().length} cores (${cpus()[0]?.model}), ${threads} onnxruntime threads, providers ${providers?.join(',') ?? 'cpu'}, stored ${dtype}, graphs ${onnxDtype}, tower ${visionQuantize ?? 'float'}, Q-Formers ${qformerQuantize ?? 'float'}, work ${work}`);
  for (const name of names) {
    const spec = CONFIGS[name];
    if (!spec) throw new Error(`unknown config ${name}; one of ${Object.keys(CONFIGS).join(', ')}`);
    const minutes = flag('minutes') ? flag('minutes').split(',').map(Number) : spec.minutes;
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    const sources = { instructblip: join(dir, 'instructblip'), qwen2: join(dir, 'qwen2') };
    const tower = { ...spec.tower };
    if (!existsSync(join(sources.qwen2, 'model.safetensors'))) {
      const written = runChild('write', { ...sources, tower, llm: spec.llm });
      if (written.error) throw new Error(written.error);
      console.log(`\n[${name}] random HF checkpoints written (BF16): ${f(written.seconds)} s, peak RSS ${mb(written.peakRssMb)}`);
    }
    const config = join(dir, 'config.json');
    const pipeline = structuredClone(official);
    pipeline.name = `bench-${name}`;
    pipeline.vision.vit = { ...pipeline.vision.vit, ...tower, imageSize: spec.imageSize };
    pipeline.llm = spec.llm;
    delete pipeline.lora;
    pipeline.generation = { maxNewTokens: 16, doSample: false };
    writeFileSync(config, JSON.stringify(pipeline, null, 2));
    const model = join(dir, 'model');
    rmSync(model, { recursive: true, force: true });
    const conversion = convert({ config, ...sources, out: model, dtype, onnxDtype, llmQuantize: flag('llm-quantize', spec.llmQuantize), visionQuantize, qformerQuantize });
    console.log(`\n[${name}] convert: ${conversion.error ?? `${f(conversion.seconds)} s, peak RSS ${mb(conversion.peakRssMb)}`}`);
    if (conversion.error) continue;
    console.log(conversion.table);
    const folderBytes = Number(execFileSync('du', ['-sb', model], { encoding: 'utf8' }).split('\t')[0]);
    console.log(`model folder: ${(folderBytes / 1e9).toFixed(2)} GB`);
    const grid = spec.imageSize / tower.patchSize;
    const shape = { dir, tokens: grid * grid + 1, width: tower.hiddenSize, inner: tower.intermediateSize, threads, providers };
    const roofline = runChild('roofline', shape);
    const ownRoofline = visionQuantize === 'dynamic-int8' ? runChild('roofline', { ...shape, quantize: visionQuantize }) : roofline;
    const rows = [];
    for (const m of minutes) {
      const result = runChild('ask', { model, video: video(work, m), threads, providers, decodeSteps: 16, onnxDtype, featureCacheDir: join(dir, `features-${m}`) });
      rmSync(join(dir, `features-${m}`), { recursive: true, force: true });
      rows.push({ minutes: m, ...result });
    }
    console.log(`\n[${name}] onnxruntime matmul roofline on the tower's FFN shape: float32 ${f(roofline.gflops)} GFLOP/s${ownRoofline === roofline ? '' : `, ${visionQuantize} ${f(ownRoofline.gflops)} GOP/s`}`);
    console.log('| video | frames | encode frames/s | % f32 roofline | % own roofline | select ms | merge ms | sample ms | prefill tok/s | decode tok/s | end to end s | peak RSS |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      if (r.error) {
        console.log(`| ${r.minutes} min | error: ${r.error.replace(/\n/g, ' ').slice(-400)} |`);
        continue;
      }
      const achieved = (towerFlops(tower, spec.imageSize) * r.framesPerSec) / 1e9;
      const s = r.stages ?? {};
      console.log(
        `| ${r.minutes} min | ${r.frames} | ${f(r.framesPerSec, 2)} | ${f((100 * achieved) / roofline.gflops)}% | ${f((100 * achieved) / ownRoofline.gflops)}% | ${f(s.select)} | ${f(s.merge)} | ${f(s.sample)} | ${f(r.prefillTokPerSec)} | ${f(r.decodeTokPerSec, 2)} | ${f(r.endToEndSeconds)} | ${mb(r.peakRssMb)} |`,
      );
    }
    const by = (m) => rows.find((r) => r.minutes === m && !r.error);
    if (name.startsWith('paper')) console.log(`target: converts and answers 1 min at peak RSS ≤ 12 GB → convert ${mb(conversion.peakRssMb)}, answer ${mb(by(1)?.peakRssMb)}`);
    if (name === 'small') {
      const [eight, sixty] = [by(8), by(60)];
      console.log(`target: 8 min ≤ 60 s end to end → ${f(eight?.endToEndSeconds)} s (${f((eight?.endToEndSeconds ?? NaN) / 60, 2)}× the target)`);
      console.log(`target: 60 min peak RSS ≤ 2.5 GB and within 10% of 8 min → ${mb(sixty?.peakRssMb)} (${f(((sixty?.peakRssMb ?? NaN) / (eight?.peakRssMb ?? NaN) - 1) * 100)}% over 8 min)`);
    }
    if (!args.includes('--keep')) rmSync(model, { recursive: true, force: true });
  }
}

if (args[0] === '--child') await child(args[1], JSON.parse(args[2]));
else await main();
