/**
 * The vision stage as the pipeline uses it: decoded frames → CLIP preprocessing → ViT in batches → core
 * {@link FrameFeatures}. B-VLLM feeds the frame selector all tokens of EVA's last block with no final norm
 * (spec §1.0, §1.1 "split"): `cls` is token 0 and `patches` the N grid tokens. `postLayernorm` is offered for
 * ports that want HF's `last_hidden_state` (decision D13: taking it and then the temporal LN would normalise twice).
 * The tower's `post_layernorm` weights are what initialise the frame selector's temporal LN (D13).
 */
import { createHash } from 'node:crypto';
import { AbortedError, ShapeError, tf, type FrameFeatures, type Rng, parseConfig } from '@bvllm/core';
import { decodeVideo, type DecodeOptions, type DecodedVideo } from './decode.js';
import type { VitLayout } from './hf-vit-config.js';
import { loadVisionTransformer, type LoadVitOptions } from './load-vit.js';
import { preprocessClip, preprocessOptionsSchema, type PreprocessInput, type PreprocessOptions } from './preprocess.js';
import type { SamplingInput } from './sampling.js';
import { VisionTransformer, vitConfigSchema, type VitConfigInput } from './vit.js';

/** Which tokens become `cls`/`patches`. B-VLLM: `lastBlock` (spec §1.0). */
export type FeatureOutput = 'lastBlock' | 'postLayernorm';

/**
 * How tokens become `cls` and `patches`. `token0`: the class token and the N grid tokens (SigLIP: the pooling head
 * and all N tokens). `parity`: the reference's rule (`bvlm_arch.py:405-408`, spec §1.1 "split"): with an odd token
 * count token 0 is `cls` and the rest are `patches`; with an even count `cls` is the mean of all tokens and
 * `patches` keeps all of them. Both agree for EVA at 336 px (577 tokens); they differ for odd grids such as 7×7.
 */
export type ClsSplit = 'token0' | 'parity';

export interface EncodeOptions {
  /** Default `lastBlock`: the raw last block, as B-VLLM's frame selector reads it (spec §1.1). */
  output?: FeatureOutput;
  /** Default `token0`. */
  split?: ClsSplit;
}

export interface EncodeVideoOptions extends EncodeOptions, DecodeOptions {
  sampling?: SamplingInput;
  /** Overrides of the CLIP preprocessing; sizes default to the encoder's image size. */
  preprocess?: PreprocessInput;
  /** Frames per ViT call (default 8). The reference runs all T at once (spec §3); batches bound memory. */
  batchSize?: number;
  /** Called after each batch with frames encoded so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** What identifies an encoder's numbers: architecture, config and a hash of every weight. For cache keys. */
export interface EncoderIdentity {
  family: string;
  layout: VitLayout | 'created';
  config: Record<string, unknown>;
  weightsSha256: string;
}

/**
 * The tower's tokens `[B, L, Cv]` → `cls [B, Cv]`, `patches [B, N, Cv]` under the {@link ClsSplit} rule; `pooled`
 * (SigLIP's pooling head, `[B, Cv]`) is the `cls` of a tower without a class token. Shared by both runtimes.
 */
export function splitTokens(tokens: tf.Tensor3D, pooled: tf.Tensor2D | undefined, split: ClsSplit = 'token0'): { cls: tf.Tensor2D; patches: tf.Tensor3D } {
  return tf.tidy(() => {
    const [b, l, c] = tokens.shape;
    if (pooled && split !== 'parity') return { cls: tf.clone(pooled), patches: tf.clone(tokens) };
    if (split === 'parity' && l % 2 === 0) return { cls: tf.mean(tokens, 1) as tf.Tensor2D, patches: tf.clone(tokens) };
    return {
      cls: tf.reshape(tf.slice(tokens, [0, 0, 0], [b, 1, c]), [b, c]) as tf.Tensor2D,
      patches: tf.slice(tokens, [0, 1, 0], [b, l - 1, c]) as tf.Tensor3D,
    };
  });
}

/** What the feature cache and the pipeline need from an encoder, whichever runtime runs it. */
export interface FrameEncoder {
  readonly imageSize: number;
  identity(): EncoderIdentity;
  preprocessOptions(overrides?: PreprocessInput): PreprocessOptions;
  encodeFrames(video: DecodedVideo, options?: EncodeVideoOptions): Promise<FrameFeatures>;
  encodeVideo(path: string, options?: EncodeVideoOptions): Promise<FrameFeatures>;
}

/** Decoded RGB frames → FrameFeatures: CLIP preprocessing, then `encodeBatch` on `batchSize` frames at a time. */
export async function encodeFrameBatches(
  video: DecodedVideo,
  pre: PreprocessOptions,
  options: EncodeVideoOptions,
  encodeBatch: (pixels: tf.Tensor4D) => { cls: tf.Tensor2D; patches: tf.Tensor3D } | Promise<{ cls: tf.Tensor2D; patches: tf.Tensor3D }>,
): Promise<FrameFeatures> {
  const total = video.frames.length;
  const batchSize = options.batchSize ?? 8;
  const s = pre.cropSize;
  const cls: tf.Tensor2D[] = [];
  const patches: tf.Tensor3D[] = [];
  try {
    for (let start = 0; start < total; start += batchSize) {
      if (options.signal?.aborted) throw new AbortedError('frame encoding');
      const frames = video.frames.slice(start, start + batchSize);
      const batch = new Float32Array(frames.length * s * s * 3);
      frames.forEach((rgb, i) => batch.set(preprocessClip(rgb, video.width, video.height, pre), i * s * s * 3));
      const pixels = tf.tensor4d(batch, [frames.length, s, s, 3]);
      try {
        const out = await encodeBatch(pixels);
        cls.push(out.cls);
        patches.push(out.patches);
      } finally {
        pixels.dispose();
      }
      options.onProgress?.(Math.min(start + batchSize, total), total);
      // Lets an abort or a server request in; one batch is the unit of latency.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    tf.dispose([...cls, ...patches]);
    throw error;
  }
  if (cls.length === 1) return { cls: cls[0], patches: patches[0], timestampsSec: video.timestampsSec };
  const features = { cls: tf.concat(cls, 0), patches: tf.concat(patches, 0), timestampsSec: video.timestampsSec };
  tf.dispose([...cls, ...patches]);
  return features;
}

export class VisionEncoder implements FrameEncoder {
  private constructor(
    readonly model: VisionTransformer,
    readonly layout: VitLayout | 'created',
  ) {}

  /** A pretrained tower from a Hugging Face folder (frozen unless `trainable`); see {@link LoadVitOptions}. */
  static load(dir: string, options: LoadVitOptions = {}): VisionEncoder {
    const { model, layout } = loadVisionTransformer(dir, options);
    return new VisionEncoder(model, layout);
  }

  /** A randomly initialised, trainable tower under HF InstructBlipVision key names (or the family's own). */
  static create(config: VitConfigInput, rng: Rng): VisionEncoder {
    return new VisionEncoder(new VisionTransformer(parseConfig(vitConfigSchema, config, 'vision encoder config'), rng), 'created');
  }

  get imageSize(): number {
    return this.model.config.imageSize;
  }

  /** Cv. */
  get hiddenSize(): number {
    return this.model.config.hiddenSize;
  }

  /** N, patch tokens per frame. */
  get numPatches(): number {
    return this.model.grid * this.model.grid;
  }

  /** Trainable tensors by checkpoint key. */
  variables(): ReadonlyMap<string, tf.Variable> {
    return this.model.store.select(() => true);
  }

  /**
   * `pixels` NHWC `[B, S, S, 3]` → `cls [B, Cv]`, `patches [B, N, Cv]`. SigLIP has no class token: its `cls` is
   * the attention-pooling head's output (HF `pooler_output`). Differentiable; the caller owns the results.
   */
  encode(pixels: tf.Tensor4D, options: EncodeOptions = {}): { cls: tf.Tensor2D; patches: tf.Tensor3D } {
    const output = options.output ?? 'lastBlock';
    const pooled = this.model.config.family === 'siglip' && options.split !== 'parity';
    return tf.tidy(() => {
      const out = this.model.forward(pixels, { postLayernorm: output === 'postLayernorm', pooled });
      return splitTokens(output === 'postLayernorm' ? out.postLayernorm! : out.lastBlock, out.pooled, options.split);
    });
  }

  /** The preprocessing this encoder expects: CLIP's, at its own image size unless overridden. */
  preprocessOptions(overrides: PreprocessInput = {}): PreprocessOptions {
    const options = parseConfig(preprocessOptionsSchema, { shortestEdge: this.imageSize, cropSize: this.imageSize, ...overrides }, 'preprocess options');
    if (options.cropSize !== this.imageSize) throw new ShapeError('pixels', ['B', this.imageSize, this.imageSize, 3], [1, options.cropSize, options.cropSize, 3], 'cropSize must equal the encoder image size');
    return options;
  }

  /** Decoded RGB frames → FrameFeatures, `batchSize` frames per ViT call. */
  async encodeFrames(video: DecodedVideo, options: EncodeVideoOptions = {}): Promise<FrameFeatures> {
    return encodeFrameBatches(video, this.preprocessOptions(options.preprocess), options, (pixels) => this.encode(pixels, options));
  }

  /** Decodes, samples (1 fps by default, spec §3), preprocesses and encodes a video, image or frame folder. */
  async encodeVideo(path: string, options: EncodeVideoOptions = {}): Promise<FrameFeatures> {
    const video = await decodeVideo(path, options.sampling ?? {}, options);
    return this.encodeFrames(video, options);
  }

  /**
   * Architecture, config and a SHA-256 over every parameter (keys, shapes, values). Hashes all weights on each
   * call, since an optimizer may have changed them: about a second per 100M parameters.
   */
  identity(): EncoderIdentity {
    const hash = createHash('sha256');
    for (const [key, v] of this.model.store.entries().sort(([a], [b]) => (a < b ? -1 : 1))) {
      hash.update(`${key}:${v.shape.join('x')};`);
      const data = v.dataSync() as Float32Array;
      hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    return { family: this.model.config.family, layout: this.layout, config: { ...this.model.config }, weightsSha256: hash.digest('hex') };
  }

  dispose(): void {
    this.model.dispose();
  }
}
