/**
 * A video as the session keeps it between questions (issue #18 item 4): [CLS] `[T, Cv]` and the selection feature
 * `[T, Cv]` of every frame in memory (what frame selection reads whole), patches `[T, N, Cv]` in a bounded
 * {@link PatchStore}. Encoding streams: frames are decoded, preprocessed and encoded one batch at a time, and each
 * batch's patches go to the store, so peak memory does not grow with the video's length (only the two `[T, Cv]`
 * arrays do, 2·T·Cv floats: 11 MB for an hour at 1 fps of EVA-ViT-g).
 *
 * With a feature cache folder the patches are written there as float16 (`<key>.patches.f16`, with `<key>.cls.f32`,
 * `<key>.feature.f32` and `<key>.json` written last as the commit marker); the key hashes the video's bytes, the
 * tower's identity, the sampling, the preprocessing and the selection feature, so any change gives a new entry.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError, tf, type FrameFeatures } from '@bvllm/core';
import { contentHash, type SamplingOptions } from '@bvllm/vision-encoder';
import { sharedClipPool, type ClipPool } from './clip-pool.js';
import { openFrameStream } from './frame-stream.js';
import type { VisionModule } from './modules.js';
import { FilePatches, createPatchStore, type PatchStore } from './patch-store.js';

/** What frame selection scores frames by (D10: raw [CLS]; spec §5: the mean or max over raw patches). */
export type SelectionFeature = 'cls' | 'mean' | 'max';

const CACHE_FORMAT = 'bvllm-session-features/1';

export class EncodedVideo {
  constructor(
    /** `[T, Cv]`, raw (not layer-normed). */
    readonly cls: Float32Array,
    /** `[T, Cv]`, the selection feature (the same array as `cls` for `cls`). */
    readonly feature: Float32Array,
    readonly patches: PatchStore,
    readonly timestampsSec: readonly number[],
    /** Source frame number of each sampled frame (for display). */
    readonly frameIndices: readonly number[],
    /** Whether the features came from the feature cache. */
    readonly cacheHit: boolean,
  ) {}

  /** T. */
  get numFrames(): number {
    return this.timestampsSec.length;
  }

  /** Cv. */
  get width(): number {
    return this.patches.width;
  }

  /** Wraps tfjs features (all patches in memory); the tensors stay the caller's. */
  static async fromFeatures(features: FrameFeatures, selectionFeature: SelectionFeature = 'cls'): Promise<EncodedVideo> {
    const [t, n, c] = features.patches.shape;
    const patches = createPatchStore({ numPatches: n, width: c, memoryLimitBytes: Infinity });
    const values = (await features.patches.data()) as Float32Array;
    patches.append(values);
    const cls = (await features.cls.data()) as Float32Array;
    const feature = selectionFeature === 'cls' ? cls : poolPatches(values, t, n, c, selectionFeature);
    return new EncodedVideo(cls, feature, patches, [...features.timestampsSec], Array.from({ length: t }, (_, i) => i), false);
  }

  /** The whole video as tfjs features (every patch read back): for tests and small videos only. */
  toFeatures(): FrameFeatures {
    const t = this.numFrames;
    const all = this.patches.read(Array.from({ length: t }, (_, i) => i));
    return { cls: tf.tensor2d(this.cls, [t, this.width]), patches: tf.tensor3d(all, [t, this.patches.numPatches, this.width]), timestampsSec: this.timestampsSec };
  }

  /** Frees the patches (a temp file is deleted; a cache entry stays). */
  close(): void {
    this.patches.close();
  }
}

/** Mean or max over each frame's N patches: `[B, N, Cv]` → `[B, Cv]`. */
function poolPatches(patches: Float32Array, b: number, n: number, c: number, mode: 'mean' | 'max'): Float32Array {
  const out = new Float32Array(b * c).fill(mode === 'max' ? -Infinity : 0);
  for (let f = 0; f < b; f++)
    for (let p = 0; p < n; p++)
      for (let j = 0; j < c; j++) {
        const v = patches[(f * n + p) * c + j];
        const o = f * c + j;
        out[o] = mode === 'max' ? Math.max(out[o], v) : out[o] + v;
      }
  if (mode === 'mean') for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

/** Rows appended batch by batch into one preallocated `[T, Cv]` array. */
class Rows {
  readonly values: Float32Array;
  private filled = 0;
  constructor(rows: number, width: number) {
    this.values = new Float32Array(rows * width);
  }
  push(values: Float32Array): void {
    this.values.set(values, this.filled);
    this.filled += values.length;
  }
}

export interface EncodeOptions {
  sampling: SamplingOptions;
  /** Frames per tower call (bounds memory with the chunked decoding). */
  batchSize: number;
  selectionFeature: SelectionFeature;
  /** Feature cache folder (patches on disk as float16 there). */
  cacheDir?: string;
  /** Float32 patch bytes kept in memory before spilling to a temp float16 file. */
  patchMemoryBytes?: number;
  /** Where frames are CLIP-preprocessed, off the event loop (default: the process's shared pool). */
  clipPool?: ClipPool;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

/** Decodes, preprocesses and encodes `path` in batches (or reads it from the cache) into an {@link EncodedVideo}. */
export async function encodeVideo(vision: VisionModule, path: string, options: EncodeOptions): Promise<EncodedVideo> {
  const pre = vision.preprocessOptions();
  const c = vision.hiddenSize;
  let entry: { key: string; parts: Record<string, unknown>; base: string } | undefined;
  if (options.cacheDir) {
    mkdirSync(options.cacheDir, { recursive: true });
    const parts = { format: CACHE_FORMAT, video: await contentHash(path), vision: vision.identity, sampling: options.sampling, preprocess: pre, selectionFeature: options.selectionFeature };
    const key = createHash('sha256').update(canonical(parts)).digest('hex');
    entry = { key, parts, base: join(options.cacheDir, key) };
    const hit = readCached(entry.base, parts);
    if (hit) return hit;
  }
  const stream = await openFrameStream(path, options.sampling, { signal: options.signal });
  const total = stream.timestampsSec.length;
  const cls = new Rows(total, c);
  const feature = options.selectionFeature === 'cls' ? cls : new Rows(total, c);
  let patches: PatchStore | undefined;
  let done = 0;
  try {
    for await (const chunk of stream.chunks(options.batchSize, options.signal)) {
      if (options.signal?.aborted) throw new AbortedError('frame encoding');
      const pixels = await (options.clipPool ?? sharedClipPool()).preprocessBatch(chunk.frames, chunk.width, chunk.height, pre);
      const out = await vision.encode(pixels, chunk.frames.length);
      patches ??= createPatchStore({ numPatches: out.numPatches, width: c, memoryLimitBytes: options.patchMemoryBytes, file: entry && `${entry.base}.patches.f16` });
      patches.append(out.patches);
      cls.push(out.cls);
      if (feature !== cls) feature.push(poolPatches(out.patches, chunk.frames.length, out.numPatches, c, options.selectionFeature as 'mean' | 'max'));
      done += chunk.frames.length;
      options.onProgress?.(done, total);
      // Lets an abort or a server request in; one batch is the unit of latency.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (entry && patches instanceof FilePatches) {
      patches.commit();
      writeFileSync(`${entry.base}.cls.f32`, cls.values);
      if (feature !== cls) writeFileSync(`${entry.base}.feature.f32`, feature.values);
      const meta = { ...entry.parts, key: entry.key, timestampsSec: stream.timestampsSec, frameIndices: stream.frameIndices, numPatches: patches.numPatches, width: c };
      writeFileSync(`${entry.base}.json`, JSON.stringify(meta));
    }
  } catch (error) {
    patches?.close();
    if (entry) removeEntry(entry.base);
    throw error;
  }
  return new EncodedVideo(cls.values, feature.values, patches!, stream.timestampsSec, stream.frameIndices, false);
}

const floats = (path: string) => {
  const bytes = readFileSync(path);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
};

/** A complete entry whose recorded inputs equal `parts`, else nothing (and a broken entry is removed). */
function readCached(base: string, parts: Record<string, unknown>): EncodedVideo | undefined {
  if (!existsSync(`${base}.json`)) return undefined;
  try {
    const meta = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as Record<string, unknown> & { timestampsSec: number[]; frameIndices: number[]; numPatches: number; width: number };
    if (Object.entries(parts).some(([k, v]) => canonical(meta[k]) !== canonical(v))) throw new Error('entry inputs differ');
    const t = meta.timestampsSec.length;
    const cls = floats(`${base}.cls.f32`);
    const feature = parts.selectionFeature === 'cls' ? cls : floats(`${base}.feature.f32`);
    const patchBytes = statSync(`${base}.patches.f16`).size;
    if (cls.length !== t * meta.width || feature.length !== t * meta.width || patchBytes !== t * meta.numPatches * meta.width * 2) throw new Error('truncated entry');
    const patches = FilePatches.open(`${base}.patches.f16`, meta.numPatches, meta.width, t);
    return new EncodedVideo(cls, feature, patches, meta.timestampsSec, meta.frameIndices, true);
  } catch {
    removeEntry(base);
    return undefined;
  }
}

function removeEntry(base: string): void {
  for (const suffix of ['.json', '.cls.f32', '.feature.f32', '.patches.f16', '.patches.f16.tmp']) rmSync(`${base}${suffix}`, { force: true });
}
