import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, ConfigError } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildItem } from './build-item.js';
import { generateBenchmark, parseSynthConfig, type SynthProgress, type SynthSummary } from './generate.js';
import { renderVideoFrames } from './render.js';
import { benchmarkSplitSchema } from './sample-schema.js';
import { centreAt, isVisible, type Scene } from './scene.js';
import { decodeRgbFrames, pixelAt } from './testing/decode-rgb.js';
import { PALETTE } from './vocabulary.js';

const root = mkdtempSync(join(tmpdir(), 'bvllm-synth-gen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Tiny: 10 videos of 4 s at 4 fps, 48 px.
const settings = { seed: 5, counts: { train: 5, val: 2, test: 3 }, size: 48, fps: 4, minDurationSec: 4, maxDurationSec: 4 };
const sha = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
const JSON_FILES = ['train.json', 'val.json', 'test.json', 'scenes.json', 'meta.json'];

describe('generateBenchmark', () => {
  let first: SynthSummary;
  let second: SynthSummary;
  const progress: SynthProgress[] = [];

  beforeAll(async () => {
    first = await generateBenchmark({ ...settings, outDir: join(root, 'a'), onProgress: (p) => progress.push(p) });
    second = await generateBenchmark({ ...settings, outDir: join(root, 'b') });
  });

  it('writes every video and reports progress for each', () => {
    expect(first.videos).toBe(10);
    expect(first.samples).toEqual({ train: 10, val: 4, test: 6 });
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set(progress.map((p) => p.id)).size).toBe(10);
    expect(first.videosPerSec).toBeGreaterThan(0);
  });

  it('is deterministic: byte-identical JSON and identical decoded frames for the same seed', () => {
    for (const name of JSON_FILES) expect(sha(readFileSync(join(first.outDir, name)))).toBe(sha(readFileSync(join(second.outDir, name))));
    for (const video of ['videos/train-00000.mp4', 'videos/test-00002.mp4']) {
      const a = decodeRgbFrames(join(first.outDir, video), 48);
      const b = decodeRgbFrames(join(second.outDir, video), 48);
      expect(a.length).toBe(16);
      expect(sha(Buffer.concat(a))).toBe(sha(Buffer.concat(b)));
    }
  });

  it('writes splits that satisfy the VideoLLaMA2 sample schema (spec §2) and point at existing videos', () => {
    for (const split of ['train', 'val', 'test'] as const) {
      const records = benchmarkSplitSchema.parse(JSON.parse(readFileSync(first.files[split], 'utf8')));
      expect(records).toHaveLength(first.samples[split]);
      for (const r of records) {
        expect(existsSync(join(first.outDir, r.video))).toBe(true);
        expect(r.id.startsWith(`${split}-`)).toBe(true);
        if (r.form === 'mcqa') {
          expect(r.options![['A', 'B', 'C', 'D'].indexOf(r.answer)]).toBe(r.answerText);
          expect(r.conversations[0].value).toContain(`Question: ${r.question}\nOptions:\n(A) ${r.options![0]}\n`);
        } else {
          expect(r.conversations[0].value).toBe(`<video>\n${r.question}`);
          expect(r.answer).toBe(r.answerText);
        }
        expect(r.conversations[1].value).toBe(r.answer);
      }
      expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    }
  });

  it('writes meta.json with the seed, the settings and counts per task', () => {
    const meta = JSON.parse(readFileSync(first.files.meta, 'utf8'));
    expect(meta.seed).toBe(5);
    expect(meta.generator).toEqual({ name: '@bvllm/synth', version: 1 });
    expect(meta.settings.size).toBe(48);
    expect(meta.settings.outDir).toBeUndefined();
    expect(meta.splits.train.byTask).toEqual({ 'brief-event': 1, counting: 1, 'temporal-order': 1, direction: 1, attribute: 1 });
    expect(meta.splits.test).toMatchObject({ videos: 3, samples: 6 });
  });

  it('encodes the scene in scenes.json: a decoded frame shows each visible object\'s colour at its centre', () => {
    const scenes: { video: string; scene: Scene }[] = JSON.parse(readFileSync(first.files.scenes, 'utf8'));
    expect(scenes).toHaveLength(10);
    const { video, scene } = scenes[0];
    const frames = decodeRgbFrames(join(first.outDir, video), 48);
    expect(frames).toHaveLength(scene.numFrames);
    let checked = 0;
    for (let f = 0; f < scene.numFrames; f += 3)
      for (const o of scene.objects) {
        if (!isVisible(o, f / scene.fps)) continue;
        const c = centreAt(o, f / scene.fps);
        const got = pixelAt(frames[f], 48, c.x, c.y);
        expect(got.every((v, k) => Math.abs(v - PALETTE[o.colour][k]) <= 40)).toBe(true);
        checked++;
      }
    expect(checked).toBeGreaterThan(3);
  });

  it('draws each item from its own fork: more videos leave the first ones unchanged, another seed changes them', () => {
    const config = parseSynthConfig({ ...settings, outDir: 'x' });
    const bigger = parseSynthConfig({ ...settings, outDir: 'x', counts: { train: 50, val: 2, test: 3 } });
    expect(buildItem(bigger, 'train', 3)).toEqual(buildItem(config, 'train', 3));
    const rendered = (s: Scene) => sha(Buffer.concat(renderVideoFrames(s)));
    expect(rendered(buildItem(config, 'val', 1).scene)).toBe(rendered(buildItem(config, 'val', 1).scene));
    const other = parseSynthConfig({ ...settings, outDir: 'x', seed: 6 });
    expect(rendered(buildItem(other, 'val', 1).scene)).not.toBe(rendered(buildItem(config, 'val', 1).scene));
  });
});

describe('generateBenchmark cancellation', () => {
  it('rejects with AbortedError once the signal fires', async () => {
    const controller = new AbortController();
    const run = generateBenchmark({
      ...settings,
      counts: { train: 20, val: 0, test: 0 },
      concurrency: 1,
      outDir: join(root, 'aborted'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.done === 2) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(AbortedError);
    expect(existsSync(join(root, 'aborted', 'meta.json'))).toBe(false);
  });
});

describe('parseSynthConfig', () => {
  it('fills defaults sized for the tiny default model', () => {
    const c = parseSynthConfig({ outDir: 'out' });
    expect(c).toMatchObject({ seed: 0, size: 64, fps: 4, minDurationSec: 8, maxDurationSec: 12, counts: { train: 300, val: 50, test: 100 } });
    expect(c.tasks).toHaveLength(5);
  });

  it('rejects unknown keys and bad values with the field path', () => {
    expect(() => parseSynthConfig({ outDir: 'out', fsp: 4 })).toThrow(ConfigError);
    const odd = (() => {
      try {
        parseSynthConfig({ outDir: 'out', size: 63 });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(odd?.path).toEqual(['size']);
    expect(() => parseSynthConfig({ outDir: 'out', minDurationSec: 9, maxDurationSec: 8 })).toThrow(/maxDurationSec/);
    expect(() => parseSynthConfig({ outDir: 'out', counts: { train: 1, extra: 2 } })).toThrow(ConfigError);
    expect(() => parseSynthConfig({ outDir: 'out', shapes: ['circle', 'square', 'triangle'] })).toThrow(/shapes/);
  });

  it('cycles 10 s, 1 min and 10 min videos with `long`', () => {
    const c = parseSynthConfig({ outDir: 'out', long: true });
    expect([0, 1, 2, 3].map((i) => buildItem(c, 'test', i).scene.durationSec)).toEqual([10, 60, 600, 10]);
  });
});
