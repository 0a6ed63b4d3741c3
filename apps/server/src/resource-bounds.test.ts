/**
 * Resource bounds before work (issue #20 item 2), on a server process: a pixel bomb (an 8192² H.264 and a 16000²
 * PNG) is refused from its header while /health is timed, a large admitted frame keeps /health answering, and 24
 * concurrent 40 MiB uploads are admitted a few at a time, with bounded peak RSS and no temp file for a refused one.
 * All media are made by ffmpeg; the /health bound is asserted generously (1 s) and the real figures printed (CLIP
 * preprocessing runs on worker threads, `ClipPool`, so the event loop only parses and answers).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exited, mainJs } from '../test/helpers.js';

let dir: string;
let tmp: string;
let child: ChildProcess;
let url: string;
let name: string;
const ffmpeg = (...args: string[]) => execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', ...args]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bvllm-bounds-'));
  // The server's temp folder, watched for upload files.
  tmp = join(dir, 'tmp');
  execFileSync('mkdir', [tmp]);
  child = spawn(process.execPath, [mainJs, '--port', '0', '--model', inject('modelDir'), '--max-queue', '1', '--max-tokens', '4'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: tmp },
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  name = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
});

afterAll(async () => {
  child.kill('SIGTERM');
  await exited(child);
  rmSync(dir, { recursive: true, force: true });
});

const body = (mime: string, bytes: Buffer, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: name,
    max_tokens: 1,
    messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: `data:${mime};base64,${bytes.toString('base64')}` } }, { type: 'text', text: 'What colour?' }] }],
    ...extra,
  });
const post = (text: string) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });

/** The server's own event-loop delay since the previous scrape, in ms (the scrape resets it). */
async function loopLagMaxMs(): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)![1]) * 1000;
}

/** Runs `work` while timing /health every 10 ms; returns its result and the slowest /health. */
async function timedHealth<T>(work: () => Promise<T>): Promise<{ result: T; worstMs: number; p50Ms: number; samples: number }> {
  let done = false;
  const times: number[] = [];
  const poll = (async () => {
    while (!done) {
      const t = performance.now();
      expect((await fetch(`${url}/health`)).status).toBe(200);
      times.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  let result: T;
  try {
    result = await work();
  } finally {
    done = true;
    await poll;
  }
  const sorted = times.sort((a, b) => a - b);
  return { result, worstMs: sorted.at(-1) ?? 0, p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0, samples: sorted.length };
}

const vmHwmMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;

describe('resource bounds', () => {
  it('refuses an 8192² H.264 and a 16000² PNG from the header, /health answering meanwhile', async () => {
    const h264 = join(dir, 'bomb.mp4');
    ffmpeg('-f', 'lavfi', '-i', 'color=c=red:s=8192x8192:r=1:d=3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', h264);
    const png = join(dir, 'bomb.png');
    ffmpeg('-f', 'lavfi', '-i', 'color=c=black:s=16000x16000', '-frames:v', '1', '-pix_fmt', 'monob', png);
    for (const [file, mime, size] of [[h264, 'video/mp4', '8192x8192'], [png, 'image/png', '16000x16000']] as const) {
      const { result, worstMs, samples } = await timedHealth(async () => {
        const r = await post(body(mime, readFileSync(file)));
        return { status: r.status, error: ((await r.json()) as { error: { code: string; message: string } }).error };
      });
      console.log(`pixel bomb ${size} (${mime}): ${result.status} ${result.error.code}; /health worst ${worstMs.toFixed(1)} ms over ${samples} polls`);
      expect(result.status).toBe(400);
      expect(result.error.code).toBe('media_resolution_too_large');
      expect(result.error.message).toContain(size);
      expect(result.error.message).not.toContain(tmp);
      expect(worstMs).toBeLessThan(1000);
    }
  });

  it('keeps /health answering while a 4K video (admitted, scaled by ffmpeg) is encoded', async () => {
    const uhd = join(dir, 'uhd.mp4');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=3840x2160:r=2:d=4', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', uhd);
    await loopLagMaxMs();
    const { result, worstMs, p50Ms, samples } = await timedHealth(async () => (await post(body('video/mp4', readFileSync(uhd), { media_io_kwargs: { video: { fps: 2 } } }))).status);
    const lag = await loopLagMaxMs();
    console.log(
      `4K video, 8 frames: ${result}; /health p50 ${p50Ms.toFixed(1)} ms, worst ${worstMs.toFixed(1)} ms over ${samples} polls; server event-loop delay max ${lag.toFixed(0)} ms (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`,
    );
    expect(lag).toBeLessThan(1000);
    expect(result).toBe(200);
    expect(worstMs).toBeLessThan(1000);
  });

  it('24 concurrent 40 MiB uploads: a few admitted, the rest 429 before their body is read; bounded RSS; no temp file for a refused one', async () => {
    // 40 MiB of rawvideo in AVI: an allowed container ffmpeg decodes fast.
    const avi = join(dir, 'big.avi');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=320x240:r=25', '-frames:v', '182', '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', avi);
    const bytes = readFileSync(avi);
    expect(bytes.length).toBeGreaterThan(40 * 10 ** 6);
    const payload = body('video/x-msvideo', bytes);
    const created = new Set<string>();
    const watcher = watch(tmp, { recursive: true }, (_event, file) => file && /uploads\/.+\.avi$/.test(String(file)) && created.add(String(file)));
    const before = vmHwmMiB();
    await loopLagMaxMs();
    let statuses: number[];
    try {
      const responses = await Promise.all(Array.from({ length: 24 }, () => post(payload)));
      statuses = responses.map((r) => r.status);
      await Promise.all(responses.map((r) => r.arrayBuffer()));
    } finally {
      watcher.close();
    }
    const peak = vmHwmMiB();
    // Measured in the server, so the test process's own work of sending 1.3 GB does not count.
    const lag = await loopLagMaxMs();
    const admitted = statuses.filter((s) => s !== 429).length;
    console.log(
      `24 x ${(bytes.length / 2 ** 20).toFixed(1)} MiB uploads: ${admitted} admitted, ${24 - admitted} refused (429); peak RSS ${before.toFixed(0)} -> ${peak.toFixed(0)} MiB; upload files written: ${created.size}; server event-loop delay max ${lag.toFixed(0)} ms`,
    );
    // Bodies over 1 MiB are parsed, their base64 decoded, on a worker thread (json-body.ts).
    expect(lag).toBeLessThan(1000);
    // --max-queue 1: one running and one waiting at most.
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(admitted).toBeLessThanOrEqual(2);
    expect(statuses.filter((s) => s !== 429).every((s) => s === 200)).toBe(true);
    expect(created.size).toBeLessThanOrEqual(admitted);
    // Each admitted body costs about 3× its size (the JSON text, its string, the decoded bytes); 24 would be ~7 GB.
    expect(peak - before).toBeLessThan(800);
    const work = readdirSync(tmp).find((f) => f.startsWith('bvllm-server-'))!;
    expect(readdirSync(join(tmp, work, 'uploads'))).toEqual([]);
  });
});
