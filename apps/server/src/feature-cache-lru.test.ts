/**
 * The feature cache is bounded in bytes (issue #20 item 2): with room for one of two media, the least recently used
 * entry goes, the folder stays under the budget, and a follow-up about the kept medium still hits.
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl } from '../test/helpers.js';
import { createServer } from './build-server.js';

let session: InferenceSession;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
});

afterAll(async () => {
  await session.close();
});

const folderBytes = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

async function ask(base: string, file: 'clip.mp4' | 'dot.png'): Promise<string> {
  const part = file === 'clip.mp4' ? { type: 'video_url', video_url: { url: dataUrl(file, 'video/mp4') } } : { type: 'image_url', image_url: { url: dataUrl(file, 'image/png') } };
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: session.config.name, max_tokens: 1, messages: [{ role: 'user', content: [part, { type: 'text', text: 'What colour?' }] }] }),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { bvllm: { selection: { feature_cache: string } } }).bvllm.selection.feature_cache;
}

async function withServer<T>(cacheDir: string, featureCacheBytes: number, body: (base: string) => Promise<T>): Promise<T> {
  const server = createServer(session, { port: 0, cacheDir, featureCacheBytes });
  try {
    return await body(await server.listen());
  } finally {
    await server.close();
  }
}

describe('feature cache LRU', () => {
  it('evicts the least recently used entry to stay within --feature-cache-mb', async () => {
    // Entry sizes, measured with room for everything.
    const measured = mkdtempSync(join(tmpdir(), 'bvllm-lru-'));
    const sizes = await withServer(measured, 2 ** 30, async (base) => {
      await ask(base, 'clip.mp4');
      const clip = folderBytes(measured);
      await ask(base, 'dot.png');
      return { clip, dot: folderBytes(measured) - clip };
    });
    expect(sizes.clip).toBeGreaterThan(0);
    expect(sizes.dot).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-lru-'));
    const budget = sizes.clip + sizes.dot - 1;
    const results = await withServer(dir, budget, async (base) => {
      const seen: string[] = [];
      for (const file of ['clip.mp4', 'dot.png', 'dot.png', 'clip.mp4', 'dot.png'] as const) {
        seen.push(`${file}:${await ask(base, file)}`);
        expect(folderBytes(dir)).toBeLessThanOrEqual(budget);
      }
      return seen;
    });
    // Adding the dot evicts the clip (older); the dot then hits; the clip's return evicts the dot.
    expect(results).toEqual(['clip.mp4:miss', 'dot.png:miss', 'dot.png:hit', 'clip.mp4:miss', 'dot.png:miss']);
  });
});
