import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { afterEach, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../../../../test/live/loopback.js';
import { bvllm } from '../test-workspace.js';

// issue #22 item 4: `bvllm watch` on a loopback stream, with the shipped default model.
const bin = fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url));
const SOURCE = ['-f', 'lavfi', '-i', 'testsrc=s=64x64:r=10'];

interface Answer {
  question: string;
  answer: string;
  window: { frames: number; fromSec: number; toSec: number };
  citedSec: number[];
}

const senders: ChildProcess[] = [];
afterEach(() => senders.splice(0).forEach((s) => s.kill('SIGKILL')));

describe('bvllm watch', () => {
  it('answers questions from stdin about the last W seconds of a live UDP stream, citing frame times', async () => {
    const port = await freeUdpPort();
    senders.push(spawn(ffmpegPath(), ['-loglevel', 'error', '-re', ...SOURCE, '-t', '30', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`], { stdio: 'ignore' }));
    const run = spawnSync(process.execPath, [bin, 'watch', `udp://127.0.0.1:${port}`, '--window-sec', '4', '--min-frames', '4', '--json', '--max-new-tokens', '4'], {
      input: 'What is on screen now?\nAnd what shape flashed briefly?\n',
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/watching udp:\/\/127\.0\.0\.1:\d+ \(connection 1\)/);
    const answers = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Answer);
    expect(answers.map((a) => a.question)).toEqual(['What is on screen now?', 'And what shape flashed briefly?']);
    for (const a of answers) {
      // A 4 s window at 1 fps: 4 frames, 3 s from first to last; every cited frame is one of them.
      expect(a.window.frames).toBe(4);
      expect(a.window.toSec - a.window.fromSec).toBe(3);
      expect(a.citedSec.length).toBeGreaterThan(0);
      for (const t of a.citedSec) expect(t >= a.window.fromSec && t <= a.window.toSec && Number.isInteger(t)).toBe(true);
    }
  }, 90_000);

  it('reads the video from stdin with --prompt, and prints the answer with its frame times', async () => {
    const clip = spawnSync(ffmpegPath(), ['-loglevel', 'error', ...SOURCE, '-t', '12', '-f', 'mpegts', 'pipe:1'], { maxBuffer: 64 * 1024 * 1024 });
    const run = spawnSync(process.execPath, [bin, 'watch', '-', '--prompt', 'What shape flashed briefly?', '--window-sec', '5', '--max-new-tokens', '4'], { input: clip.stdout, encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(0);
    // Read as fast as it decodes, so the question may land anywhere in the 12 s; the window is at most 5 frames.
    const [, from, to, frames] = /\[window ([\d.]+) s – ([\d.]+) s, (\d+) frames; frames used: [\d.]+ s/.exec(run.stdout) ?? [];
    expect(Number(to) - Number(from)).toBeLessThanOrEqual(4);
    expect(Number(frames)).toBeGreaterThanOrEqual(1);
    expect(Number(frames)).toBeLessThanOrEqual(5);
  }, 60_000);

  it('fails with one typed line when the source never opens, or when stdin is both source and questions', async () => {
    const port = await freeUdpPort();
    const never = await bvllm(['watch', `udp://127.0.0.1:${port}`, '--open-timeout-sec', '0.5', '--prompt', 'Anything?']);
    expect(never.code).toBe(1);
    expect(never.stderr).toMatch(/^bvllm: error STREAM_OPEN: udp:\/\/127\.0\.0\.1:\d+: cannot open the live source after 3 attempt\(s\)/);
    const both = await bvllm(['watch', '-']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/INVALID_ARGUMENT.*--prompt/);
  }, 60_000);
});
