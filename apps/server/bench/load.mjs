// pnpm bench (after pnpm build): throughput and time to first token of the server on loopback, measured, never
// asserted. Uses --model DIR (or BENCH_MODEL); without one it builds the untrained tiny test model in a temp folder.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { initBackend } from '@bvllm/core';
import { buildTinyAssets, tinyPipelineConfig } from '@bvllm/bvllm-tiny';
import { BvllmModel, loadAssets, saveModel } from '@bvllm/pipeline';
import { generateBenchmark } from '@bvllm/synth';
import { ffmpegPath } from '@bvllm/vision-encoder';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'bvllm-server-bench-'));

async function tinyModel() {
  await initBackend();
  const data = join(work, 'data');
  await generateBenchmark({ outDir: data, seed: 3, counts: { train: 1, val: 0, test: 1 } });
  const sizes = buildTinyAssets(data, join(work, 'assets'), 50);
  const model = BvllmModel.create(tinyPipelineConfig(sizes), loadAssets(join(work, 'assets')));
  saveModel(model, join(work, 'model'), join(work, 'assets'));
  model.dispose();
  const video = join(data, JSON.parse(readFileSync(join(data, 'test.json'), 'utf8'))[0].video);
  return { modelDir: join(work, 'model'), video };
}

function start(modelDir) {
  const child = spawn(process.execPath, [main, '--model', modelDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /at (http:\/\/[\d.:]+)/.exec(out);
      if (match) resolve({ child, url: match[1] });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** Streams one answer; returns ms to the first content delta and to the end. */
async function streamOnce(url, body) {
  const t0 = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  if (response.status !== 200) return { status: response.status };
  const decoder = new TextDecoder();
  let first;
  let buffer = '';
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    if (first === undefined && /"delta":\{"content"/.test(buffer)) first = performance.now() - t0;
  }
  return { status: 200, ttft: first ?? performance.now() - t0, total: performance.now() - t0 };
}

const argModel = process.argv.indexOf('--model');
const given = argModel > 0 ? process.argv[argModel + 1] : process.env.BENCH_MODEL;
const { modelDir, video } = given ? { modelDir: given, video: process.env.BENCH_VIDEO } : await tinyModel();
if (!video) throw new Error('with --model, set BENCH_VIDEO to a video file');
const png = join(work, 'dot.png');
execFileSync(ffmpegPath(), ['-loglevel', 'error', '-i', video, '-frames:v', '1', '-vf', 'scale=16:16', png]);
const { child, url } = await start(modelDir);
try {
  const name = (await (await fetch(`${url}/v1/models`)).json()).data[0].id;
  const image = { type: 'image_url', image_url: { url: `data:image/png;base64,${readFileSync(png).toString('base64')}` } };
  const clip = { type: 'video_url', video_url: { url: `data:video/mp4;base64,${readFileSync(video).toString('base64')}` } };
  const ask = (media, maxTokens) => ({ model: name, max_tokens: maxTokens, temperature: 0, messages: [{ role: 'user', content: [media, { type: 'text', text: 'What colour is the square?' }] }] });
  console.log(`bvllm server bench: model ${name}, node ${process.version}, ${process.arch}`);

  for (const [label, requests] of [
    ['health only', [{ method: 'GET', path: '/health' }]],
    ['chat (16x16 image, max_tokens 1)', [{ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask(image, 1)) }]],
  ]) {
    const r = await autocannon({ url, connections: 50, amount: 1000, timeout: 30, requests });
    const codes = Object.entries(r.statusCodeStats).map(([c, s]) => `${c}×${s.count}`).join(' ');
    const ok = r.statusCodeStats['200']?.count ?? 0;
    console.log(`${label.padEnd(36)} 50 clients, 1000 requests: ${(r.requests.total / r.duration).toFixed(0)} req/s, ${(ok / r.duration).toFixed(1)} answered/s, latency p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms, status ${codes}`);
  }

  for (const [label, media, maxTokens, concurrency, perClient] of [
    ['stream, image, 16 tokens', image, 16, 1, 20],
    ['stream, video, 16 tokens', clip, 16, 1, 20],
    ['stream, video, 16 tokens', clip, 16, 4, 10],
  ]) {
    const started = performance.now();
    const runs = (await Promise.all(Array.from({ length: concurrency }, async () => {
      const out = [];
      for (let i = 0; i < perClient; i++) out.push(await streamOnce(url, ask(media, maxTokens)));
      return out;
    }))).flat();
    const ok = runs.filter((r) => r.status === 200);
    const ttft = ok.map((r) => r.ttft).sort((a, b) => a - b);
    const total = ok.map((r) => r.total).sort((a, b) => a - b);
    const seconds = (performance.now() - started) / 1000;
    console.log(`${label.padEnd(26)} ${concurrency} client(s) × ${perClient}: ${(ok.length / seconds).toFixed(1)} answers/s, time to first token p50 ${quantile(ttft, 0.5).toFixed(0)} ms p99 ${quantile(ttft, 0.99).toFixed(0)} ms, whole answer p50 ${quantile(total, 0.5).toFixed(0)} ms (${runs.length - ok.length} refused)`);
  }
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const pick = (name) => Number(metrics.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
  console.log(`server side: mean time to first token ${((1000 * pick('bvllm_time_to_first_token_seconds_sum')) / pick('bvllm_time_to_first_token_seconds_count')).toFixed(0)} ms over ${pick('bvllm_time_to_first_token_seconds_count')} answers, RSS ${(pick('process_resident_memory_bytes') / 2 ** 20).toFixed(0)} MiB`);
} finally {
  child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
