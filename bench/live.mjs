// Live streams (issue #22): frames/s a watcher sustains, question latency at stream ages of 1, 10 and 60 minutes
// (simulated: the stream is pushed through stdin as fast as it encodes), and RSS over a simulated hour. Prints
// figures and ratios; asserts nothing.
//
//   node bench/live.mjs [--model DIR]... [--window-sec 600] [--questions 5] [--size 320x240] [--ages 1,10,60]
//                       [--sustained-sec 600] [--max-new-tokens 16] [--replay N]
//
// A 60-minute age is also the RSS run. A slow tower (#18's small config: under 1 frame/s on 2 cores) cannot encode
// an hour in minutes: `--replay N` encodes only the stream's first N frames through the tower, then ages each
// window by pushing those encodings again, in turn, at later stream times (a question reads the same window size
// and layout as a real stream of that age; only the tower's work is skipped).
// Default model: the shipped bvllm-tiny. #18's small config (ViT-B/16 + Qwen2-0.5B) is a folder made by
// `node packages/pipeline/bench/real-scale.mjs --configs small --keep --work DIR`; pass it with --model.
// Build first (`pnpm build`): this imports the packages' dist.
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { initBackend } from '../packages/core/dist/index.js';
import { defaultModelDir } from '../packages/bvllm-tiny/dist/index.js';
import { InferenceSession, LiveStream, LiveWindow } from '../packages/pipeline/dist/index.js';
import { LiveSource, ffmpegPath } from '../packages/vision-encoder/dist/index.js';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const models = args.flatMap((a, i) => (a === '--model' ? [args[i + 1]] : []));
if (models.length === 0) models.push(defaultModelDir());
const windowSec = Number(flag('window-sec', '600'));
const questions = Number(flag('questions', '5'));
const size = flag('size', '320x240');
const ages = flag('ages', '1,10,60').split(',').map(Number);
const sustainedSec = Number(flag('sustained-sec', '600'));
// Answers of at most 16 tokens: a random-weight model (#18's small config) never stops by itself.
const generation = { maxNewTokens: Number(flag('max-new-tokens', '16')) };
const replay = flag('replay') === undefined ? undefined : Number(flag('replay'));

const mb = (bytes) => (bytes / 1e6).toFixed(0);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `seconds` of a 1 fps test pattern as MPEG-TS on a pipe: one source frame per stream second, so ffmpeg's own work is small. */
function feed(seconds) {
  const stdin = new PassThrough();
  const child = spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=s=${size}:r=1`, '-t', String(seconds), '-q:v', '4', '-f', 'mpegts', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout.pipe(stdin);
  return { stdin, child };
}

const until = async (check) => {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
};

/** Runs a stream of `seconds` to its end; `onProgress(status)` is called as it goes. */
async function simulate(session, seconds, onProgress = () => undefined) {
  const { stdin, child } = feed(seconds);
  const stream = LiveStream.open(session, '-', { stdin, overflow: 'wait', windowSec });
  const t0 = performance.now();
  await until(() => {
    const s = stream.status();
    onProgress(s);
    return s.state === 'ended' && s.framesEncoded === s.framesSeen;
  });
  const wall = (performance.now() - t0) / 1000;
  child.kill('SIGKILL');
  return { stream, wall };
}

/**
 * `--replay`: the first `n` frames of a stream through the tower, then a window `minutes` old made by pushing those
 * encodings again in turn at 1 s steps; `onProgress(framesPushed)` as it goes. An object with `snapshot()`,
 * `status()` and `close()`, as the stream's.
 */
async function replayedEncodings(session, n) {
  const run = await simulate(session, n);
  const video = run.stream.snapshot();
  const frames = Array.from({ length: video.numFrames }, (_, i) => i);
  const c = session.vision.hiddenSize;
  const patches = video.patches.read(frames);
  const per = patches.length / frames.length;
  const encoded = frames.map((i) => ({ cls: video.cls.slice(i * c, (i + 1) * c), patches: patches.slice(i * per, (i + 1) * per) }));
  video.close();
  await run.stream.close();
  return { encoded, numPatches: per / c, width: c };
}

function replayedWindow(session, { encoded, numPatches, width }, minutes, onProgress = () => undefined) {
  const window = new LiveWindow({ windowSec, fps: 1, numPatches, width, selectionFeature: session.selectionFeature() });
  for (let t = 0; t < minutes * 60; t++) {
    const e = encoded[t % encoded.length];
    window.push({ cls: e.cls, patches: e.patches, timestampSec: t, sequence: t });
    onProgress(t + 1);
  }
  return {
    snapshot: () => window.snapshot(),
    status: () => ({ window: window.status() }),
    async answer(question, options) {
      const video = window.snapshot();
      try {
        const stream = session.stream(video, [{ role: 'user', content: question }], options);
        let text = '';
        for (;;) {
          const next = await stream.next();
          if (next.done) return { ...next.value, text, window: { frames: video.numFrames, fromSec: video.timestampsSec[0], toSec: video.timestampsSec.at(-1) } };
          text += next.value;
        }
      } finally {
        video.close();
      }
    },
    close: async () => window.close(),
  };
}

/** The source alone (decode and sampling, no tower): the ceiling the watcher's rate is compared with. */
async function sourceRate(seconds) {
  const { stdin, child } = feed(seconds);
  const source = new LiveSource('-', { stdin, overflow: 'wait' });
  const t0 = performance.now();
  let frames = 0;
  for (let got; (got = await source.next()).length; ) frames += got.length;
  child.kill('SIGKILL');
  await source.close();
  return frames / ((performance.now() - t0) / 1000);
}

const info = await initBackend();
console.log(`backend ${info.choice}; window ${windowSec} s at 1 fps; frames ${size}; ${questions} questions per age`);
const decodeFps = await sourceRate(600);
console.log(`source alone (ffmpeg decode + sampling, no tower): ${decodeFps.toFixed(0)} frames/s`);

for (const dir of models) {
  const session = await InferenceSession.open(dir);
  console.log(`\nmodel ${session.config.name} (${dir})`);

  // 1. Sustained rate: a stream (10 minutes by default) pushed as fast as the watcher takes it (ffmpeg waits, nothing dropped).
  const sustained = await simulate(session, sustainedSec);
  const s = sustained.stream.status();
  const fps = s.framesEncoded / sustained.wall;
  console.log(`sustained: ${fps.toFixed(1)} frames/s (${(fps / decodeFps).toFixed(2)}x the source alone), ${s.encodeMsPerFrame.toFixed(2)} ms/frame preprocess + tower, ${s.framesDropped} dropped`);
  console.log(`  a live source at up to ${fps.toFixed(1)} frames/s of sampling (times the server's --stream-cpu-share) is kept whole`);
  await sustained.stream.close();

  // 2. Question latency by stream age; 3. RSS over the hour (the 60-minute run).
  const rows = [];
  let rss = [];
  const encodings = replay === undefined ? undefined : await replayedEncodings(session, replay);
  if (encodings) console.log(`replay: the first ${encodings.encoded.length} frames encoded by the tower, pushed again in turn to age each window`);
  for (const minutes of ages) {
    let nextMark = 0;
    const mark = (encodedFrames) => {
      if (minutes === 60 && encodedFrames >= nextMark) {
        rss.push({ minute: Math.round(encodedFrames / 60), rss: process.memoryUsage().rss });
        nextMark += 600;
      }
    };
    const run = encodings ? { stream: replayedWindow(session, encodings, minutes, mark) } : await simulate(session, minutes * 60, (st) => mark(st.framesEncoded));
    const latencies = [];
    const visual = [];
    const tokens = [];
    let window;
    for (let q = 0; q < questions; q++) {
      // The visual path alone (snapshot, selection, merge, sampling, prompt): what the window's size decides.
      let t0 = performance.now();
      const video = run.stream.snapshot();
      await session.prompt(video, [{ role: 'user', content: 'What shape flashed briefly?' }], q);
      video.close();
      visual.push(performance.now() - t0);
      t0 = performance.now();
      const answer = await run.stream.answer('What shape flashed briefly?', { seed: q, generation });
      latencies.push(performance.now() - t0);
      tokens.push(session.assets.tokenizer.encode(answer.text).length);
      window = answer.window;
    }
    rows.push({ minutes, frames: window.frames, span: window.toSec - window.fromSec, p50: median(latencies), visual: median(visual), tokens: median(tokens), bytes: run.stream.status().window.bytes });
    await run.stream.close();
  }
  const ref = rows.find((r) => r.minutes === 10) ?? rows.at(-1);
  console.log(`age     window frames  span s  visual path p50 ms  (ratio to ${ref.minutes} min)  answer p50 ms  (ratio)  answer tokens p50  window bytes`);
  for (const r of rows)
    console.log(
      `${String(r.minutes).padStart(3)} min  ${String(r.frames).padStart(13)}  ${String(r.span).padStart(6)}  ${r.visual.toFixed(1).padStart(18)}  ${(r.visual / ref.visual).toFixed(2).padStart(17)}  ${r.p50.toFixed(1).padStart(13)}  ${(r.p50 / ref.p50).toFixed(2).padStart(7)}  ${String(r.tokens).padStart(17)}  ${r.bytes}`,
    );
  if (rss.length) {
    const first = rss.find((r) => r.minute >= windowSec / 60) ?? rss[0];
    console.log(`RSS over the simulated hour (MB): ${rss.map((r) => `${r.minute} min ${mb(r.rss)}`).join(', ')}`);
    console.log(`  peak after the first window / at the first window: ${(Math.max(...rss.filter((r) => r.minute >= first.minute).map((r) => r.rss)) / first.rss).toFixed(3)}`);
  } else console.log('RSS over the simulated hour: not run (no 60-minute age in --ages)');
  await session.close();
}
