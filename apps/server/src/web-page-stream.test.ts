/**
 * The web page with a live stream (issue #22 item 4), in headless chromium: open a loopback UDP stream, watch its
 * status, ask about it, see the frames it cited from the window, close it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession } from '@bvllm/pipeline';
import { ffmpegPath } from '@bvllm/vision-encoder';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from '../test/browser.js';
import { createServer, type BvllmServer } from './build-server.js';

let session: InferenceSession;
let server: BvllmServer;
let url: string;
let browser: Browser;
let sender: ChildProcess | undefined;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(defaultModelDir());
  server = createServer(session, { port: 0 });
  url = await server.listen();
  browser = await launchChromium();
});

afterAll(async () => {
  sender?.kill('SIGKILL');
  await browser?.close();
  await server.close();
  await session.close();
});

it('opens a live stream, shows its status, answers about its window with the cited frames, and closes it', async () => {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  const page = await browser.newPage();
  await page.goto(url);
  await expect.poll(() => page.textContent('#model')).toBe(session.config.name);
  await page.fill('#stream-source', `udp://127.0.0.1:${port}`);
  await page.fill('#window-sec', '4');
  await page.click('#open-stream');
  sender = spawn(ffmpegPath(), ['-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=s=64x64:r=10', '-t', '40', '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`], { stdio: 'ignore' });
  await page.waitForFunction("/: live, .* \\(4 frames\\)/.test(document.getElementById('stream-status').textContent)", undefined, { timeout: 30_000 });
  await page.fill('#max-tokens', '6');
  await page.fill('#question', 'What is on screen now?');
  await page.click('#ask');
  await page.waitForFunction("document.getElementById('status').textContent === 'done'", undefined, { timeout: 30_000 });
  const label = (await page.textContent('#timeline-label')) ?? '';
  const [, from, to] = /of the window ([\d.]+)–([\d.]+) s kept/.exec(label) ?? [];
  expect(Number(to) - Number(from)).toBe(3);
  const cited = await page.evaluate<number[]>("[...document.querySelectorAll('#frames .frame')].map((d) => Number(d.dataset.timestamp))");
  expect(cited.length).toBeGreaterThan(0);
  for (const t of cited) expect(t >= Number(from) && t <= Number(to)).toBe(true);
  // One tick per frame of the window.
  expect(await page.$$eval('#timeline .tick', (t) => t.length)).toBe(4);
  await page.click('#close-stream');
  await page.waitForFunction("document.getElementById('stream-status').textContent.endsWith('closed')");
  expect(((await (await fetch(`${url}/v1/streams`)).json()) as { data: unknown[] }).data).toEqual([]);
  await page.close();
}, 90_000);
