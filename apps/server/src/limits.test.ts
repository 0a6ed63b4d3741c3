/**
 * Work limits: a full generation queue answers 429 with Retry-After, a client that disconnects cancels its
 * generation, a request past its time limit gets 504, and SIGTERM drains in-flight requests before exiting.
 * Greedy decoding of the untrained test model never emits EOS, so `max_tokens` sets how long a generation runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl, exited, startProcess } from '../test/helpers.js';
import { createServer, type BvllmServer } from './build-server.js';

let session: InferenceSession;
let server: BvllmServer;
let url: string;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
  server = createServer(session, { port: 0, maxQueue: 1, maxTokens: 400 });
  url = await server.listen();
});

afterAll(async () => {
  await server.close();
  await session.close();
});

const request = (base: string, body: Record<string, unknown>, signal?: AbortSignal) =>
  fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    signal,
    body: JSON.stringify({
      model: session.config.name,
      temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl('dot.png', 'image/png') } }, { type: 'text', text: 'What colour?' }] }],
      ...body,
    }),
  });

/** One series' value from /metrics. */
async function metric(base: string, series: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('limits', () => {
  it('refuses past the queue with 429 and Retry-After, and runs what it accepted', async () => {
    const responses = await Promise.all([0, 1, 2, 3].map(() => request(url, { max_tokens: 150 })));
    const statuses = responses.map((r) => r.status).sort();
    // One running, one waiting (maxQueue 1), the other two refused at once.
    expect(statuses).toEqual([200, 200, 429, 429]);
    for (const r of responses.filter((r) => r.status === 429)) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await r.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
    }
    for (const r of responses.filter((r) => r.status === 200)) expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(150);
    expect(await metric(url, 'bvllm_queue_rejections_total')).toBe(2);
  });

  it('cancels the generation of a client that disconnects mid-stream, and frees its tensors', async () => {
    const tensors = tf.memory().numTensors;
    const completed = await metric(url, 'bvllm_chat_completions_total{finish_reason="length"}');
    const controller = new AbortController();
    const response = await request(url, { max_tokens: 400, stream: true }, controller.signal);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await waitFor(async () => (await metric(url, 'bvllm_generations_aborted_total')) === 1 && (await metric(url, 'bvllm_generation_running')) === 0, 'the abort');
    expect(await metric(url, 'bvllm_chat_completions_total{finish_reason="length"}')).toBe(completed);
    expect(tf.memory().numTensors).toBe(tensors);
    // The slot is free again.
    expect((await request(url, { max_tokens: 2 })).status).toBe(200);
  });

  it('refuses a video over the duration or frame-count limit before decoding it', async () => {
    const clip = [{ type: 'video_url', video_url: { url: dataUrl('clip.mp4', 'video/mp4') } }, { type: 'text', text: 'What colour?' }];
    for (const [limits, code] of [
      [{ maxDurationSec: 1 }, 'media_too_long'],
      [{ maxFrames: 2 }, 'too_many_frames'],
    ] as const) {
      const strict = createServer(session, { port: 0, ...limits });
      const base = await strict.listen();
      try {
        const response = await request(base, { max_tokens: 2, messages: [{ role: 'user', content: clip }] });
        expect(response.status).toBe(400);
        expect(((await response.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code, param: 'messages[0].content[0].video_url.url' });
        expect(await metric(base, 'bvllm_feature_cache_total{result="miss"}')).toBe(0);
      } finally {
        await strict.close();
      }
    }
  });

  it('answers 504 when a request runs past its time limit', async () => {
    // 1 ms: shorter than any answer takes on any runtime (the onnx path answers 400 tokens of this model in < 200 ms),
    // so the deadline always passes mid-request and the test does not depend on the machine's speed.
    const strict = createServer(session, { port: 0, requestTimeoutMs: 1, maxTokens: 400 });
    const base = await strict.listen();
    try {
      const response = await request(base, { max_tokens: 400 });
      expect(response.status).toBe(504);
      expect(((await response.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'timeout_error', code: 'generation_timeout' });
    } finally {
      await strict.close();
    }
  });

  it('fires the time limit on time while a 4K video is decoded, preprocessed and encoded (issue #20 item 2)', async () => {
    // Before, the CLIP resize and onnxruntime's runs held the event loop, so the 504 came seconds late.
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-limits-'));
    const uhd = join(dir, 'uhd.mp4');
    execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=3840x2160:r=4:d=4', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', uhd]);
    const video = `data:video/mp4;base64,${readFileSync(uhd).toString('base64')}`;
    const limitMs = 300;
    const strict = createServer(session, { port: 0, requestTimeoutMs: limitMs, maxTokens: 4 });
    const base = await strict.listen();
    try {
      const started = performance.now();
      const response = await request(base, {
        max_tokens: 4,
        media_io_kwargs: { video: { fps: 4 } },
        messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: video } }, { type: 'text', text: 'What colour?' }] }],
      });
      const elapsed = performance.now() - started;
      const full = performance.now();
      const unlimited = await request(url, { max_tokens: 4, media_io_kwargs: { video: { fps: 4 } }, messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: video } }, { type: 'text', text: 'What colour?' }] }] });
      const fullMs = performance.now() - full;
      console.log(`time limit ${limitMs} ms on a 16-frame 4K video: 504 after ${elapsed.toFixed(0)} ms (the whole request takes ${fullMs.toFixed(0)} ms)`);
      expect(response.status).toBe(504);
      expect(unlimited.status).toBe(200);
      // The deadline is observed at the next frame batch: well before the whole request would end.
      expect(elapsed).toBeLessThan(Math.max(limitMs + 1000, fullMs / 2));
    } finally {
      await strict.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drains an in-flight stream on SIGTERM, refuses new work, then exits 0', async () => {
    const { child, url: base, output } = await startProcess(['--model', inject('modelDir'), '--media-root', inject('mediaRoot')]);
    const response = await request(base, { max_tokens: 200, stream: true });
    const reader = response.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    child.kill('SIGTERM');
    await waitFor(async () => output().includes('draining'), 'the shutdown to begin');
    await expect(request(base, { max_tokens: 2 }).then((r) => r.status)).rejects.toThrow();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(text).toContain('"finish_reason":"length"');
    expect(await exited(child)).toBe(0);
    expect(output()).toContain('stopped');
  });
});
