import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../../../test/live/loopback.js';
import { ffmpegPath } from './ffmpeg.js';
import { openLiveSource, type LiveFrame, type LiveSource, type LiveSourceEvent } from './live-source.js';

/** A free UDP port on loopback (bound, read, released). */
/**
 * Grey frames whose level is 20 × the sender's clock (mod 250): a received frame's content says when it was sent,
 * so its timestamp can be checked against the source.
 */
const CLOCK_SOURCE = ['-f', 'lavfi', '-i', "color=black:s=64x64:r=10,format=gray,geq=lum='mod(20*T\\,250)'"];

function sender(args: string[]): ChildProcess {
  return spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
}

const mean = (f: LiveFrame) => f.rgb.reduce((a, b) => a + b, 0) / f.rgb.length;

async function collect(source: LiveSource, count: number): Promise<LiveFrame[]> {
  const frames: LiveFrame[] = [];
  while (frames.length < count) {
    const got = await source.next();
    if (got.length === 0) break;
    frames.push(...got);
  }
  return frames;
}

const running: (ChildProcess | LiveSource)[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    if ('status' in r) await r.close();
    else r.kill('SIGKILL');
  }
});

describe('LiveSource', () => {
  it('samples a live UDP MPEG-TS stream at 1 fps, timestamped by the stream clock', async () => {
    const port = await freeUdpPort();
    const source = openLiveSource(`udp://127.0.0.1:${port}`, { openTimeoutMs: 8000 });
    running.push(source);
    const tx = sender(['-re', ...CLOCK_SOURCE, '-t', '8', '-q:v', '2', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`]);
    running.push(tx);
    const frames = await collect(source, 4);
    expect(frames.length).toBe(4);
    for (const [i, f] of frames.entries()) {
      expect([f.width, f.height]).toEqual([64, 64]);
      expect(f.sequence).toBe(i);
      if (i > 0) expect(f.timestampSec - frames[i - 1].timestampSec).toBeCloseTo(1, 1);
    }
    expect(frames[0].timestampSec).toBe(0);
    // Each frame's content is the sender's clock: it moved as much as the timestamps say (20 levels a second).
    for (let i = 1; i < frames.length; i++) expect(mean(frames[i]) - mean(frames[0])).toBeCloseTo(20 * frames[i].timestampSec, -1);
    expect(source.status()).toMatchObject({ state: 'live', framesDropped: 0, connections: 1 });
  }, 30_000);

  it('reconnects after the source drops, marks the gap and resumes the clock past it', async () => {
    const port = await freeUdpPort();
    const events: LiveSourceEvent[] = [];
    const source = openLiveSource(`udp://127.0.0.1:${port}`, { openTimeoutMs: 8000, stallTimeoutMs: 1500, backoffMs: 100, onEvent: (e) => events.push(e) });
    running.push(source);
    const first = sender(['-re', ...CLOCK_SOURCE, '-t', '5', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`]);
    running.push(first);
    const before = await collect(source, 2);
    await new Promise((resolve) => first.once('close', resolve));
    // Away for a while: the source stalls, ffmpeg restarts, then a new sender starts.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(events.some((e) => e.type === 'stalled')).toBe(true);
    running.push(sender(['-re', ...CLOCK_SOURCE, '-t', '6', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`]));
    const after: LiveFrame[] = [];
    while (source.status().connections < 2 || after.length < 2) after.push(...(await source.next()));
    const status = source.status();
    expect(status.gaps.length).toBe(1);
    const [gap] = status.gaps;
    // The gap spans the silence (≥ 2.5 s of wall clock); no frame falls inside it, and frames carry on past it.
    expect(gap.toSec - gap.fromSec).toBeGreaterThan(2.5);
    expect(before.every((f) => f.timestampSec <= gap.fromSec)).toBe(true);
    expect(after.filter((f) => f.timestampSec > gap.fromSec && f.timestampSec < gap.toSec)).toEqual([]);
    expect(after.filter((f) => f.timestampSec >= gap.toSec).length).toBeGreaterThan(0);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['open', 'stalled', 'reconnecting', 'gap']));
  }, 40_000);

  it("opens the URL its checkSource returns (the address a guard checked), not the source's own name", async () => {
    const port = await freeUdpPort();
    const checked: string[] = [];
    // `.invalid` never resolves (RFC 6761): frames can only come if ffmpeg was given the pinned address instead.
    const source = openLiveSource(`udp://camera.invalid:${port}`, {
      openTimeoutMs: 8000,
      checkSource: async (url) => (checked.push(url.href), new URL(`udp://127.0.0.1:${url.port}`)),
    });
    running.push(source);
    running.push(sender(['-re', ...CLOCK_SOURCE, '-t', '6', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`]));
    expect((await collect(source, 2)).length).toBe(2);
    expect(checked).toEqual([`udp://camera.invalid:${port}`]);
  }, 30_000);

  it('a source that never sends is a StreamOpenError after its attempts', async () => {
    const port = await freeUdpPort();
    const source = openLiveSource(`udp://127.0.0.1:${port}`, { openTimeoutMs: 600, openAttempts: 2, backoffMs: 50 });
    running.push(source);
    await expect(source.next()).rejects.toMatchObject({ code: 'STREAM_OPEN', attempts: 2 });
    expect(source.status().state).toBe('failed');
  }, 20_000);

  it('a stream without video is a StreamNoVideoError, not retried', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'live-novideo-'));
    try {
      const audio = join(dir, 'tone.ts');
      await new Promise((resolve) => sender(['-f', 'lavfi', '-i', 'sine=d=1', '-f', 'mpegts', audio]).once('close', resolve));
      const events: LiveSourceEvent[] = [];
      const source = openLiveSource(audio, { onEvent: (e) => events.push(e) });
      running.push(source);
      await expect(source.next()).rejects.toMatchObject({ code: 'STREAM_NO_VIDEO' });
      expect(events.filter((e) => e.type === 'reconnecting')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('reads stdin without pacing when told to wait, and ends with the input', async () => {
    const stdin = new PassThrough();
    const gen = spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', ...CLOCK_SOURCE, '-t', '30', '-f', 'mpegts', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    running.push(gen);
    gen.stdout!.pipe(stdin);
    const source = openLiveSource('-', { stdin, overflow: 'wait', maxQueuedFrames: 2 });
    running.push(source);
    const frames: LiveFrame[] = [];
    for (;;) {
      const got = await source.next();
      if (got.length === 0) break;
      frames.push(...got);
      // A slow consumer: with `wait`, ffmpeg is paused instead of frames being dropped.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(frames.map((f) => f.timestampSec)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(source.status()).toMatchObject({ state: 'ended', framesDropped: 0, framesSeen: 30 });
  }, 30_000);
});
