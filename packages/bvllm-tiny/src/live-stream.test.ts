import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { initBackend } from '@bvllm/core';
import { InferenceSession, LiveStream } from '@bvllm/pipeline';
import { ffmpegPath, type LiveSourceEvent } from '@bvllm/vision-encoder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../../../test/live/loopback.js';
import { defaultModelDir } from './default-model.js';

// issue #22 items 2–3: a live stream's window on the shipped default model, asked at any moment.
const COLOURS = ['red', 'lime', 'blue', 'yellow'];
/** Scenes of 3 s each, cycling through COLOURS: what is on screen at sender time t is COLOURS[⌊t / 3⌋ mod 4]. */
const SCENES = `color=black:s=64x64:r=10,geq=r='255*eq(mod(floor(T/3)\\,4)\\,0)+255*eq(mod(floor(T/3)\\,4)\\,3)':g='255*eq(mod(floor(T/3)\\,4)\\,1)+255*eq(mod(floor(T/3)\\,4)\\,3)':b='255*eq(mod(floor(T/3)\\,4)\\,2)'`;

let session: InferenceSession;
let dir: string;
/** The tower's [CLS] of each scene colour, from a still image through the file path. */
let reference: Float32Array[];

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(defaultModelDir());
  dir = mkdtempSync(join(tmpdir(), 'bvllm-live-'));
  reference = [];
  for (const colour of COLOURS) {
    const png = join(dir, `${colour}.png`);
    execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=c=${colour}:s=64x64`, '-frames:v', '1', png]);
    const video = await session.encode(png);
    reference.push(video.cls.slice());
    video.close();
  }
}, 120_000);

afterAll(async () => {
  await session?.close();
  rmSync(dir, { recursive: true, force: true });
});

const sender = (args: string[]): ChildProcess => spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });

/** Which scene colour a frame's [CLS] is nearest to (cosine). */
function sceneOf(cls: Float32Array): number {
  const cos = (a: Float32Array, b: Float32Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i++) [ab, aa, bb] = [ab + a[i] * b[i], aa + a[i] * a[i], bb + b[i] * b[i]];
    return ab / Math.sqrt(aa * bb);
  };
  let best = 0;
  reference.forEach((r, i) => (cos(cls, r) > cos(cls, reference[best]) ? (best = i) : undefined));
  return best;
}

/** The scene of each frame of a snapshot, in time order. */
function scenes(stream: LiveStream): { times: number[]; scenes: number[] } {
  const video = stream.snapshot();
  const c = video.width;
  const out = { times: [...video.timestampsSec], scenes: video.timestampsSec.map((_, i) => sceneOf(video.cls.subarray(i * c, (i + 1) * c))) };
  video.close();
  return out;
}

const until = async (check: () => boolean, ms: number) => {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

describe('LiveStream', () => {
  it('a live UDP stream: the window is the last W seconds as shown, and a question cites frames from it', async () => {
    const port = await freeUdpPort();
    const stream = LiveStream.open(session, `udp://127.0.0.1:${port}`, { windowSec: 6, openTimeoutMs: 8000 });
    const tx = sender(['-re', '-f', 'lavfi', '-i', SCENES, '-t', '20', '-q:v', '2', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`]);
    try {
      await stream.ready(1);
      await until(() => stream.status().window.toSec! >= 8, 15_000);
      const seen = scenes(stream);
      const last = seen.times.at(-1)!;
      // Exactly the last 6 s of the stream clock, one frame a second.
      expect(seen.times).toEqual(Array.from({ length: 6 }, (_, k) => last - 5 + k));
      // Scenes advance in the sender's order and each whole one fills 3 frames: the content at each timestamp is
      // the source's content at that time.
      const runs: { scene: number; length: number }[] = [];
      for (const s of seen.scenes) runs.at(-1)?.scene === s ? runs.at(-1)!.length++ : runs.push({ scene: s, length: 1 });
      for (let i = 1; i < runs.length; i++) expect(runs[i].scene).toBe((runs[i - 1].scene + 1) % 4);
      for (const r of runs.slice(1, -1)) expect(r.length).toBe(3);
      expect(runs.every((r) => r.length <= 3)).toBe(true);
      // "Now" is the newest frame the source gave: the encoder keeps up, so the question's window ends there.
      const newest = stream.status().window.toSec!;
      const answer = await stream.answer('What colour is on screen now?', { seed: 1 });
      expect(answer.window.toSec).toBeGreaterThanOrEqual(newest);
      expect(stream.status().framesSeen - stream.status().framesEncoded).toBeLessThanOrEqual(1);
      expect(answer.window.toSec - answer.window.fromSec).toBe(5);
      expect(answer.citedSec.length).toBeGreaterThan(0);
      for (const t of answer.citedSec) expect(t >= answer.window.fromSec && t <= answer.window.toSec).toBe(true);
      expect(stream.status()).toMatchObject({ state: 'live', framesDropped: 0, connections: 1 });
    } finally {
      tx.kill('SIGKILL');
      await stream.close();
    }
  }, 60_000);

  it('follow-ups reuse the window (no re-encoding), are seeded like a file, and closing frees everything', async () => {
    const stdin = new PassThrough();
    const gen = sender(['-f', 'lavfi', '-i', SCENES, '-t', '40', '-f', 'mpegts', 'pipe:1']);
    gen.stdout!.pipe(stdin);
    const events: LiveSourceEvent[] = [];
    const stream = LiveStream.open(session, '-', { stdin, overflow: 'wait', windowSec: 10, onEvent: (e) => events.push(e) });
    await until(() => events.some((e) => e.type === 'ended'), 30_000);
    await until(() => stream.status().framesEncoded === 40, 5_000);
    expect(stream.status().window).toMatchObject({ frames: 10, fromSec: 30, toSec: 39 });
    const first = await stream.answer('What shape flashed briefly?', { seed: 7 });
    const again = await stream.answer([{ role: 'user', content: 'What shape flashed briefly?' }], { seed: 7 });
    expect(again.text).toBe(first.text);
    expect(again.selection).toEqual(first.selection);
    // The same frames as a finished video with those features gives: the snapshot is an EncodedVideo like any.
    const video = stream.snapshot();
    const direct = await session.answer(video, [{ role: 'user', content: 'What shape flashed briefly?' }], { seed: 7 });
    video.close();
    expect(direct.text).toBe(first.text);
    expect(first.citedSec).toEqual(first.selection.frames.map((f) => f.timestampSec));
    expect(stream.status().framesEncoded).toBe(40);
    // The source ended: a question wanting more frames than it gave is refused, typed.
    await expect(stream.ready(11)).rejects.toMatchObject({ code: 'STREAM_CLOSED' });
    await stream.close();
    expect(stream.status().state).toBe('closed');
    expect(stream.status().window.frames).toBe(0);
    expect(() => stream.snapshot()).toThrow(expect.objectContaining({ code: 'STREAM_CLOSED' }));
    await expect(stream.answer('Still there?')).rejects.toMatchObject({ code: 'STREAM_CLOSED' });
  }, 60_000);

  it('a CPU share caps the time spent encoding; a source faster than that loses frames, counted', async () => {
    const run = async (overflow: 'wait' | 'drop', seconds: number) => {
      const stdin = new PassThrough();
      // One source frame per second: ffmpeg gives the sampled frames as fast as it can write them.
      sender(['-f', 'lavfi', '-i', 'testsrc=s=64x64:r=1', '-t', String(seconds), '-f', 'mpegts', 'pipe:1']).stdout!.pipe(stdin);
      const events: LiveSourceEvent[] = [];
      const stream = LiveStream.open(session, '-', { stdin, overflow, windowSec: 60, batchSize: 1, cpuShare: 0.2, onEvent: (e) => events.push(e) });
      const t0 = performance.now();
      await until(() => events.some((e) => e.type === 'ended') && stream.status().framesEncoded + stream.status().framesDropped === stream.status().framesSeen, 40_000);
      const wall = performance.now() - t0;
      const status = stream.status();
      await stream.close();
      return { wall, status };
    };
    const paced = await run('wait', 60);
    expect(paced.status.framesEncoded).toBe(60);
    // After each frame's t ms of encoding it rests 4t: at least 5× the encoding time passes.
    expect(paced.wall).toBeGreaterThanOrEqual(0.95 * 5 * paced.status.encodeMsPerFrame * 60);
    const live = await run('drop', 600);
    expect(live.status.framesSeen).toBe(600);
    expect(live.status.framesDropped).toBeGreaterThan(0);
    expect(live.status.framesEncoded + live.status.framesDropped).toBe(600);
  }, 60_000);

  it('a question waiting on a stalled source gets a StreamStalledError', async () => {
    const port = await freeUdpPort();
    const stream = LiveStream.open(session, `udp://127.0.0.1:${port}`, { windowSec: 30, openTimeoutMs: 8000, stallTimeoutMs: 1000, backoffMs: 100 });
    const tx = sender(['-re', '-f', 'lavfi', '-i', SCENES, '-t', '6', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`]);
    try {
      await stream.ready(1);
      // Waits for 20 frames; the sender stops after a few.
      await expect(stream.answer('What is on screen?', { minFrames: 20 })).rejects.toMatchObject({ code: 'STREAM_STALLED' });
      expect(stream.status().state).not.toBe('live');
    } finally {
      tx.kill('SIGKILL');
      await stream.close();
    }
  }, 40_000);
});
