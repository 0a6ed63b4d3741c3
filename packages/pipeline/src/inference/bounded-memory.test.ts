import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';

// issue #18 item 4: at a fixed config, peak RSS does not grow with the video's length (chunked decoding and
// encoding, patches in a bounded store, selection reading back only weighted frames).
const WIDTH = 640;
const HEIGHT = 480;
let dir: string;

/** vite-node, which vitest itself depends on, runs the child on this package's TypeScript sources. */
function viteNode(): string {
  const fromVitest = createRequire(createRequire(import.meta.url).resolve('vitest/package.json'));
  return join(dirname(fromVitest.resolve('vite-node')), '..', 'vite-node.mjs');
}

function video(seconds: number): string {
  const path = join(dir, `v${seconds}.mp4`);
  // 1 fps sampling (spec §3) keeps one frame a second: T = seconds.
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${WIDTH}x${HEIGHT}:rate=2`, '-t', String(seconds), '-pix_fmt', 'yuv420p', path]);
  return path;
}

interface ChildResult {
  frames: number;
  location: string;
  framesRead: number;
  maxRssKiB: number;
}

/** Asynchronous, so the test worker keeps answering vitest while the child runs. */
async function run(path: string): Promise<ChildResult> {
  const child = fileURLToPath(new URL('./bounded-memory.child.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [viteNode(), child, path], { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bvllm-rss-'));
});

describe('bounded memory', () => {
  it('30 vs 300 sampled frames: peak RSS within a quarter of what holding the 270 extra decoded frames would add (237 MiB)', { timeout: 300_000 }, async () => {
    const short = await run(video(30));
    const long = await run(video(300));
    console.log(`peak RSS: ${short.frames} frames ${(short.maxRssKiB / 1024).toFixed(0)} MiB, ${long.frames} frames ${(long.maxRssKiB / 1024).toFixed(0)} MiB`);
    expect(short.frames).toBe(30);
    expect(long.frames).toBe(300);
    // The long video's patches went to disk (a temp float16 file) past the 64 KiB limit.
    expect(long.location).toBe('file');
    const frameBytes = WIDTH * HEIGHT * 3;
    const grew = (long.maxRssKiB - short.maxRssKiB) * 1024;
    expect(grew).toBeLessThan((270 * frameBytes) / 4);
  });
});
