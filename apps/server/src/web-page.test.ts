/**
 * The web page end to end in a real headless browser (Debian's chromium, driven by playwright-core): upload the
 * sample video, ask, watch the answer stream in, check the frame strip against the API's own selection, then ask
 * a follow-up in the same conversation.
 */
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchChromium } from '../test/browser.js';
import { dataUrl } from '../test/helpers.js';
import { createServer, type BvllmServer } from './build-server.js';
import type { SelectionPayload } from './chat-completion.js';

let session: InferenceSession;
let server: BvllmServer;
let url: string;
let browser: Browser;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
  server = createServer(session, { port: 0 });
  url = await server.listen();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server.close();
  await session.close();
});

/** The same conversation through the API, for the page's expected answer and selection. */
async function viaApi(turns: string[], answers: string[]): Promise<{ text: string; selection: SelectionPayload }> {
  const messages = turns.flatMap((q, i) => [
    { role: 'user', content: i === 0 ? [{ type: 'video_url', video_url: { url: dataUrl('clip.mp4', 'video/mp4') } }, { type: 'text', text: q }] : q },
    ...(i < answers.length ? [{ role: 'assistant', content: answers[i] }] : []),
  ]);
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: session.config.name, messages, max_tokens: 12, temperature: 1, seed: 0 }),
  });
  const body = (await response.json()) as { choices: { message: { content: string } }[]; bvllm: { selection: SelectionPayload } };
  return { text: body.choices[0].message.content, selection: body.bvllm.selection };
}

describe('the web page', () => {
  it('uploads a video, streams the answer, shows the selected frames, and takes a follow-up', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => page.textContent('#model')).toBe(session.config.name);
    await page.setInputFiles('#file', join(inject('mediaRoot'), 'clip.mp4'));
    // Page-side code is passed as strings: this package compiles without the DOM library.
    await page.waitForFunction("document.getElementById('status').textContent.includes('ready')");
    await page.fill('#max-tokens', '12');
    await page.fill('#temperature', '1');

    await page.fill('#question', 'What colour is the square?');
    await page.click('#ask');
    await page.waitForFunction("document.getElementById('status').textContent === 'done'", undefined, { timeout: 30_000 });
    const first = await viaApi(['What colour is the square?'], []);
    expect(await page.textContent('#answer')).toBe(first.text);
    // Streamed: the answer arrived in more than one event.
    expect(Number(await page.getAttribute('#answer', 'data-chunks'))).toBeGreaterThan(1);

    const frames = await page.evaluate<{ timestamp: number; weight: number; imageWidth: number }[]>(
      "[...document.querySelectorAll('#frames .frame')].map((d) => ({ timestamp: Number(d.dataset.timestamp), weight: Number(d.dataset.weight), imageWidth: d.querySelector('img')?.naturalWidth ?? 0 }))",
    );
    expect(frames.map((f) => f.timestamp)).toEqual(first.selection.frames.map((f) => f.timestamp_sec));
    expect(frames.map((f) => f.weight)).toEqual(first.selection.frames.map((f) => f.weight));
    for (const f of frames) expect(f.imageWidth).toBe(server.config.thumbnailWidth);
    // The timeline has one tick per sampled frame, the kept ones marked.
    expect(await page.$$eval('#timeline .tick', (t) => t.length)).toBe(first.selection.frame_timestamps_sec.length);
    expect(await page.$$eval('#timeline .tick.selected', (t) => t.length)).toBe(new Set(first.selection.frames.map((f) => f.frame_index)).size);

    await page.fill('#question', 'What shape flashed briefly?');
    await page.click('#ask');
    await page.waitForFunction("document.querySelectorAll('#history .turn').length === 4 && document.getElementById('status').textContent === 'done'", undefined, { timeout: 30_000 });
    const second = await viaApi(['What colour is the square?', 'What shape flashed briefly?'], [first.text]);
    expect(await page.textContent('#answer')).toBe(second.text);
    expect(await page.textContent('#timeline-label')).toContain('from the cache');
    await page.close();
  });
});
