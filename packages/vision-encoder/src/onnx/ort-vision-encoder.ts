/**
 * The vision tower on onnxruntime-node: the same `encode`/`encodeFrames`/`encodeVideo` as {@link VisionEncoder},
 * on an exported graph. `openFile` needs only the tower's config and identity with the `.onnx` file (a model folder
 * converted from checkpoints never builds a tfjs tower, issue #18). `encodeBatches` hands each batch's [CLS] and
 * patches to the caller as plain arrays, so a long video's patches can go to disk instead of accumulating.
 */
import { AbortedError, ShapeError, parseConfig, tf, type FrameFeatures } from '@bvllm/core';
import { createSession, ort, runSession, type ExecutionProvider, type OrtSession } from '@bvllm/onnx';
import { decodeVideo, type DecodedVideo } from '../decode.js';
import { preprocessClip, preprocessOptionsSchema, type PreprocessInput, type PreprocessOptions } from '../preprocess.js';
import type { EncodeOptions, EncodeVideoOptions, EncoderIdentity, FrameEncoder } from '../vision-encoder.js';
import type { VitConfig } from '../vit.js';
import { VISION_ONNX_NAMES } from './vision-onnx.js';

/** File name of the tower inside an export folder. */
export const VISION_ONNX_FILE = 'vision.onnx';

export interface OrtVisionOptions {
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** e.g. `['cuda', 'cpu']` once onnxruntime-node's CUDA build is installed. */
  executionProviders?: readonly ExecutionProvider[];
}

/** What a session on an exported tower needs besides the file: no weights, no tfjs tower. */
export interface OrtVisionSpec {
  /** The exported tower's config: image size S, width Cv, patch grid and family (SigLIP has no [CLS]). */
  vit: VitConfig;
  /**
   * What identifies the export's numbers in the feature cache (family, layout, config, a hash of the weights): a
   * model folder records it at conversion, a tfjs tower computes it (`VisionEncoder.identity()`).
   */
  identity: EncoderIdentity;
  /** Preprocessing defaults; per-call `preprocess` overrides them. Sizes default to `vit.imageSize`. */
  preprocess?: PreprocessInput;
}

/** One encoded batch of consecutive frames, as plain arrays the caller owns. */
export interface EncodedBatch {
  /** Index of the batch's first frame in the video. */
  start: number;
  /** B, frames in this batch. */
  count: number;
  /** `[B, Cv]`. */
  cls: Float32Array;
  /** `[B, N, Cv]` (N = every token for SigLIP, or for `split: 'parity'` with an even token count). */
  patches: Float32Array;
  /** N. */
  numPatches: number;
}

export interface EncodeBatchesOptions extends EncodeVideoOptions {
  /** Receives each batch in frame order; the next batch is encoded after its promise settles. */
  onBatch: (batch: EncodedBatch) => void | Promise<void>;
}

/**
 * The tower's tokens `[B, L, Cv]` → `cls [B, Cv]`, `patches [B, N, Cv]` under the {@link EncodeOptions.split} rule,
 * on plain arrays: the same rules as `splitTokens`. `pooled` `[B, Cv]` is SigLIP's pooling head.
 */
function splitTokenValues(tokens: Float32Array, [b, l, c]: readonly number[], pooled: Float32Array | undefined, split: EncodeOptions['split'] = 'token0'): { cls: Float32Array; patches: Float32Array; numPatches: number } {
  if (pooled && split !== 'parity') return { cls: pooled, patches: tokens, numPatches: l };
  if (split === 'parity' && l % 2 === 0) {
    const cls = new Float32Array(b * c);
    for (let i = 0; i < b; i++)
      for (let t = 0; t < l; t++) for (let j = 0; j < c; j++) cls[i * c + j] += tokens[(i * l + t) * c + j];
    for (let i = 0; i < cls.length; i++) cls[i] /= l;
    return { cls, patches: tokens, numPatches: l };
  }
  const cls = new Float32Array(b * c);
  const patches = new Float32Array(b * (l - 1) * c);
  for (let i = 0; i < b; i++) {
    cls.set(tokens.subarray(i * l * c, (i * l + 1) * c), i * c);
    patches.set(tokens.subarray((i * l + 1) * c, (i + 1) * l * c), i * (l - 1) * c);
  }
  return { cls, patches, numPatches: l - 1 };
}

export class OrtVisionEncoder implements FrameEncoder {
  private constructor(
    readonly spec: OrtVisionSpec,
    private readonly session: OrtSession,
    /** The `.onnx` file the session runs. */
    readonly file: string,
  ) {}

  /** A session on an exported tower, described by `spec` alone. */
  static async openFile(spec: OrtVisionSpec, file: string, options: OrtVisionOptions = {}): Promise<OrtVisionEncoder> {
    return new OrtVisionEncoder(spec, await createSession(file, { threads: options.threads, executionProviders: options.executionProviders }), file);
  }

  get imageSize(): number {
    return this.spec.vit.imageSize;
  }

  /** Cv. */
  get hiddenSize(): number {
    return this.spec.vit.hiddenSize;
  }

  /** N, patch tokens per frame. */
  get numPatches(): number {
    return (this.spec.vit.imageSize / this.spec.vit.patchSize) ** 2;
  }

  /** The spec's identity: for an export of a tfjs tower, that tower's, so the feature cache shares entries between runtimes. */
  identity(): EncoderIdentity {
    return this.spec.identity;
  }

  /** CLIP preprocessing at the tower's image size, then the spec's defaults, then `overrides`. */
  preprocessOptions(overrides: PreprocessInput = {}): PreprocessOptions {
    const s = this.imageSize;
    const options = parseConfig(preprocessOptionsSchema, { shortestEdge: s, cropSize: s, ...this.spec.preprocess, ...overrides }, 'preprocess options');
    if (options.cropSize !== s) throw new ShapeError('pixels', ['B', s, s, 3], [1, options.cropSize, options.cropSize, 3], 'cropSize must equal the encoder image size');
    return options;
  }

  /**
   * `pixels` NHWC `[B, S, S, 3]` as values → `cls [B, Cv]`, `patches [B, N, Cv]` under the {@link EncodeOptions}
   * rules, as plain arrays.
   */
  async encodePixels(pixels: Float32Array, batch: number, options: EncodeOptions = {}): Promise<{ cls: Float32Array; patches: Float32Array; numPatches: number }> {
    const s = this.imageSize;
    if (pixels.length !== batch * s * s * 3) throw new ShapeError('pixels', [batch, s, s, 3], [pixels.length], 'NHWC values at the encoder image size');
    const out = await runSession(this.session, { [VISION_ONNX_NAMES.pixels]: new ort.Tensor('float32', pixels, [batch, s, s, 3]) }, this.file);
    try {
      const tokens = out[options.output === 'postLayernorm' ? VISION_ONNX_NAMES.postLayernorm : VISION_ONNX_NAMES.lastBlock];
      const pooled = out[VISION_ONNX_NAMES.pooled]?.data as Float32Array | undefined;
      return splitTokenValues(tokens.data as Float32Array, tokens.dims, pooled, options.split);
    } finally {
      for (const t of Object.values(out)) t.dispose();
    }
  }

  /** `pixels` NHWC `[B, S, S, 3]` → `cls [B, Cv]`, `patches [B, N, Cv]`, as {@link VisionEncoder.encode}. Not differentiable. */
  async encode(pixels: tf.Tensor4D, options: EncodeOptions = {}): Promise<{ cls: tf.Tensor2D; patches: tf.Tensor3D }> {
    const s = this.imageSize;
    if (pixels.rank !== 4 || pixels.shape[1] !== s || pixels.shape[2] !== s || pixels.shape[3] !== 3)
      throw new ShapeError('pixels', ['B', s, s, 3], pixels.shape, 'NHWC at the encoder image size');
    const b = pixels.shape[0];
    const { cls, patches, numPatches } = await this.encodePixels((await pixels.data()) as Float32Array, b, options);
    return { cls: tf.tensor2d(cls, [b, this.hiddenSize]), patches: tf.tensor3d(patches, [b, numPatches, this.hiddenSize]) };
  }

  /**
   * Decoded RGB frames → CLIP preprocessing → the tower, `batchSize` frames per call (default 8), each batch handed
   * to `onBatch` and then dropped: memory holds one batch, whatever the video's length (issue #18 §4).
   */
  async encodeBatches(video: DecodedVideo, options: EncodeBatchesOptions): Promise<{ numFrames: number; numPatches: number; timestampsSec: number[] }> {
    const pre = this.preprocessOptions(options.preprocess);
    const total = video.frames.length;
    const batchSize = options.batchSize ?? 8;
    const s = pre.cropSize;
    let numPatches = this.numPatches;
    for (let start = 0; start < total; start += batchSize) {
      if (options.signal?.aborted) throw new AbortedError('frame encoding');
      const frames = video.frames.slice(start, start + batchSize);
      const pixels = new Float32Array(frames.length * s * s * 3);
      frames.forEach((rgb, i) => pixels.set(preprocessClip(rgb, video.width, video.height, pre), i * s * s * 3));
      const out = await this.encodePixels(pixels, frames.length, options);
      numPatches = out.numPatches;
      await options.onBatch({ start, count: frames.length, ...out });
      options.onProgress?.(Math.min(start + batchSize, total), total);
      // Lets an abort or a server request in; one batch is the unit of latency.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { numFrames: total, numPatches, timestampsSec: [...video.timestampsSec] };
  }

  /** Decoded RGB frames → FrameFeatures (every frame's patches kept), as {@link VisionEncoder.encodeFrames}. */
  async encodeFrames(video: DecodedVideo, options: EncodeVideoOptions = {}): Promise<FrameFeatures> {
    const c = this.hiddenSize;
    const cls: Float32Array[] = [];
    const patches: Float32Array[] = [];
    const { numFrames, numPatches, timestampsSec } = await this.encodeBatches(video, {
      ...options,
      onBatch: (batch) => {
        cls.push(batch.cls);
        patches.push(batch.patches);
      },
    });
    return { cls: tf.tensor2d(concat(cls), [numFrames, c]), patches: tf.tensor3d(concat(patches), [numFrames, numPatches, c]), timestampsSec };
  }

  async encodeVideo(path: string, options: EncodeVideoOptions = {}): Promise<FrameFeatures> {
    const video = await decodeVideo(path, options.sampling ?? {}, options);
    return this.encodeFrames(video, options);
  }

  /** Frees the session's native memory. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

function concat(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}
