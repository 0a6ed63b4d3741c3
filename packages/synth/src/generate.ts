/**
 * Writing a whole benchmark folder: `videos/*.mp4`, `train.json`, `val.json`, `test.json` (VideoLLaMA2 format,
 * spec §2), `scenes.json` and `meta.json`. Everything written is a function of the config alone (no timestamps, no
 * absolute paths), so the same seed gives byte-identical JSON.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, parseConfig } from '@bvllm/core';
import { synthConfigSchema, type SynthConfig, type SynthConfigInput, type TaskName } from './config.js';
import { buildItem, itemSamples, SPLITS, type SplitName, type SynthItem } from './build-item.js';
import { encodeMp4 } from './encode-mp4.js';
import { renderFrame } from './render.js';
import { oneFpsFrameIndices, uniformFrameIds, type Scene } from './scene.js';
import { COLOURS, COUNTS, DIRECTIONS, OPTION_LETTERS, SHAPES } from './vocabulary.js';

/** Bumped whenever the same seed and config would produce different content. */
export const GENERATOR_VERSION = 1;

/** Validates a config, filling in defaults; throws `ConfigError` naming the first bad field. */
export function parseSynthConfig(input: unknown): SynthConfig {
  return parseConfig(synthConfigSchema, input, 'synth config');
}

export interface SynthProgress {
  /** Videos written so far, over all splits. */
  done: number;
  total: number;
  /** The video just written. */
  id: string;
}

export interface GenerateOptions extends SynthConfigInput {
  onProgress?: (progress: SynthProgress) => void;
  signal?: AbortSignal;
}

export interface SynthSummary {
  outDir: string;
  videos: number;
  /** Samples per split: videos × forms. */
  samples: Record<SplitName, number>;
  /** The files written besides the videos, as paths under `outDir`. */
  files: { train: string; val: string; test: string; scenes: string; meta: string };
  elapsedSec: number;
  videosPerSec: number;
}

export async function generateBenchmark(options: GenerateOptions): Promise<SynthSummary> {
  const { onProgress, signal, ...input } = options;
  const config = parseSynthConfig(input);
  const started = performance.now();
  const items = SPLITS.flatMap((split) => Array.from({ length: config.counts[split] }, (_, i) => buildItem(config, split, i)));
  await mkdir(join(config.outDir, 'videos'), { recursive: true });

  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      if (signal?.aborted) throw new AbortedError('benchmark generation');
      const item = items[next++];
      await encodeMp4(join(config.outDir, item.video), lazyFrames(item.scene), {
        width: config.size,
        height: config.size,
        fps: config.fps,
        crf: config.crf,
        signal,
      });
      onProgress?.({ done: ++done, total: items.length, id: item.id });
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.concurrency, Math.max(1, items.length)) }, worker));

  const files = {
    train: join(config.outDir, 'train.json'),
    val: join(config.outDir, 'val.json'),
    test: join(config.outDir, 'test.json'),
    scenes: join(config.outDir, 'scenes.json'),
    meta: join(config.outDir, 'meta.json'),
  };
  const samples = {} as Record<SplitName, number>;
  for (const split of SPLITS) {
    const records = items.filter((item) => item.split === split).flatMap((item) => itemSamples(item, config));
    samples[split] = records.length;
    await writeFile(files[split], toJson(records));
  }
  await writeFile(files.scenes, toJson(items.map((item) => ({ video: item.video, task: item.question.task, scene: item.scene }))));
  await writeFile(files.meta, toJson(benchmarkMeta(config, items)));

  const elapsedSec = (performance.now() - started) / 1000;
  return { outDir: config.outDir, videos: items.length, samples, files, elapsedSec, videosPerSec: items.length / elapsedSec };
}

function* lazyFrames(scene: Scene): Generator<Uint8Array> {
  for (let i = 0; i < scene.numFrames; i++) yield renderFrame(scene, i);
}

function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** `meta.json`: how the folder was made and what is in it. `outDir` is left out so copies compare equal. */
function benchmarkMeta(config: SynthConfig, items: readonly SynthItem[]) {
  const { outDir: _outDir, ...settings } = config;
  const splits = Object.fromEntries(
    SPLITS.map((split) => {
      const ofSplit = items.filter((item) => item.split === split);
      const byTask = Object.fromEntries(config.tasks.map((task: TaskName) => [task, ofSplit.filter((i) => i.question.task === task).length]));
      return [split, { videos: ofSplit.length, samples: ofSplit.length * config.forms.length, byTask }];
    }),
  );
  const brief = items.filter((item) => item.question.eventSec);
  return {
    generator: { name: '@bvllm/synth', version: GENERATOR_VERSION },
    seed: config.seed,
    settings,
    splits,
    vocabulary: {
      shapes: config.shapes,
      colours: config.colours,
      directions: DIRECTIONS,
      counts: COUNTS,
      letters: OPTION_LETTERS,
      allShapes: SHAPES,
      allColours: COLOURS,
    },
    briefEvent: {
      uniformProbeFrames: config.uniformProbeFrames,
      videos: brief.length,
      /** Brief events whose window holds none of the K uniform picks from the 1-fps frames. */
      missedByUniform: brief.filter((item) => !uniformSees(item)).length,
    },
    files: { videos: 'videos/', train: 'train.json', val: 'val.json', test: 'test.json', scenes: 'scenes.json' },
  };

  function uniformSees(item: SynthItem): boolean {
    const [start, end] = item.question.eventSec!;
    const { numFrames, fps } = item.scene;
    const sampled = oneFpsFrameIndices(numFrames, fps);
    return uniformFrameIds(sampled.length, config.uniformProbeFrames).some((j) => sampled[j] / fps >= start && sampled[j] / fps < end);
  }
}
