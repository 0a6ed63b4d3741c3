/**
 * A bounded load test on loopback: 50 concurrent clients, 1,000 requests mixing health checks and cheap chat
 * completions (a 16×16 image, one token). Only 200 and 429 may come back, the process must stay up, and memory
 * must not grow between the first and the last hundred requests. Timings are the bench's job, not asserted here.
 */
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl, exited, startProcess } from '../test/helpers.js';

let child: ChildProcess;
let url: string;
let name: string;

beforeAll(async () => {
  ({ child, url } = await startProcess(['--model', inject('modelDir')]));
  name = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
});

afterAll(async () => {
  child.kill('SIGTERM');
  await exited(child);
});

async function metrics(): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Object.fromEntries(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
}

function load(amount: number): Promise<autocannon.Result> {
  const chat = JSON.stringify({
    model: name,
    max_tokens: 1,
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl('dot.png', 'image/png') } }, { type: 'text', text: 'What colour?' }] }],
  });
  return autocannon({
    url,
    connections: 50,
    amount,
    timeout: 30,
    requests: [{ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: chat }, { method: 'GET', path: '/health' }],
  });
}

describe('load', () => {
  it('1,000 requests from 50 clients: only 200/429, no errors, the process alive, no memory growth', async () => {
    const first = await load(100);
    const before = await metrics();
    // /health from 5 more clients while the 800 run: the latency an orchestrator's probe sees under load.
    const [middle, health] = await Promise.all([load(800), autocannon({ url: `${url}/health`, connections: 5, amount: 500, timeout: 30 })]);
    console.log(
      `load: 50 clients, 800 requests in ${(middle.duration).toFixed(1)} s (${middle.requests.average} req/s); ` +
        `/health under that load: p50 ${health.latency.p50} ms, p99 ${health.latency.p99} ms, max ${health.latency.max} ms (${health.requests.total} requests)`,
    );
    expect(health.non2xx).toBe(0);
    expect(health.errors).toBe(0);
    const last = await load(100);
    const after = await metrics();
    let total = 0;
    for (const result of [first, middle, last]) {
      expect(result.errors).toBe(0);
      expect(result.timeouts).toBe(0);
      expect(result['5xx']).toBe(0);
      const stats: Record<string, { count?: number }> = result.statusCodeStats ?? {};
      expect(Object.keys(stats).every((c) => c === '200' || c === '429')).toBe(true);
      total += Object.values(stats).reduce((n, s) => n + (s.count ?? 0), 0);
    }
    expect(total).toBe(1000);
    expect(child.exitCode).toBeNull();
    expect((await fetch(`${url}/health`)).status).toBe(200);
    // Some chats ran (the queue takes 8 waiting); many were refused.
    expect(after['bvllm_chat_completions_total{finish_reason="length"}']).toBeGreaterThan(before['bvllm_chat_completions_total{finish_reason="length"}']);
    expect(after.bvllm_queue_rejections_total).toBeGreaterThan(0);
    // Every tensor of a request is freed; the V8 heap may wander with GC timing, but not by a leak's worth.
    expect(after.bvllm_tensors).toBe(before.bvllm_tensors);
    expect(after.nodejs_heap_used_bytes - before.nodejs_heap_used_bytes).toBeLessThan(24 * 1024 * 1024);
  });
});
