/**
 * The vision tower on onnxruntime-node: the same `encode`/`encodeFrames`/`encodeVideo` as {@link VisionEncoder},
 * on an export of its current weights. The export is cached on disk under a hash of the config and every weight
 * (`exportKey`/`exportCached`), so a tower is exported once per machine; the session is created once per instance.
 * Training stays on the tfjs tower this wraps.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ShapeError, tf, type FrameFeatures } from '@bvllm/core';
import { createSession, exportCached, exportKey, ort, runSession, type ExecutionProvider } from '@bvllm/onnx';
import { decodeVideo, type DecodedVideo } from '../decode.js';
import type { PreprocessInput, PreprocessOptions } from '../preprocess.js';
import { encodeFrameBatches, splitTokens, type EncodeOptions, type EncodeVideoOptions, type EncoderIdentity, type FrameEncoder, type VisionEncoder } from '../vision-encoder.js';
import { VISION_EXPORTER_VERSION, VISION_ONNX_NAMES, exportVisionEncoderOnnx, type VisionQuantize } from './vision-onnx.js';

/** File name of the tower inside its export folder. */
export const VISION_ONNX_FILE = 'vision.onnx';

export interface OrtVisionOptions {
  /** Export cache folder; `BVLLM_ONNX_CACHE`, else `~/.cache/bvllm/onnx`. */
  cacheDir?: string;
  /** Weight-only quantisation of the export (default `none`). */
  quantize?: VisionQuantize;
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** e.g. `['cuda', 'cpu']` once onnxruntime-node's CUDA build is installed. */
  executionProviders?: readonly ExecutionProvider[];
}

/** The export cache folder: the option, `BVLLM_ONNX_CACHE`, or `~/.cache/bvllm/onnx`. */
export function onnxCacheDir(cacheDir?: string): string {
  return cacheDir ?? (process.env.BVLLM_ONNX_CACHE || join(homedir(), '.cache', 'bvllm', 'onnx'));
}

/** The folder holding an export of `encoder`'s current weights, exporting them on a cache miss. */
export async function exportVisionEncoderCached(encoder: VisionEncoder, options: Pick<OrtVisionOptions, 'cacheDir' | 'quantize'> = {}): Promise<string> {
  const quantize = options.quantize ?? 'none';
  const vit = encoder.model;
  const weights = vit.store.entries().sort(([a], [b]) => (a < b ? -1 : 1));
  const key = exportKey(VISION_EXPORTER_VERSION, weights, { config: vit.config, quantize });
  return exportCached(onnxCacheDir(options.cacheDir), `vision-${key}`, (folder) => {
    exportVisionEncoderOnnx(encoder, join(folder, VISION_ONNX_FILE), { quantize });
  });
}

export class OrtVisionEncoder implements FrameEncoder {
  private constructor(
    /** The tfjs tower whose weights were exported: identity, preprocessing and sizes come from it. */
    readonly encoder: VisionEncoder,
    private readonly session: ort.InferenceSession,
    /** The `.onnx` file the session runs. */
    readonly file: string,
  ) {}

  /** Exports (or finds in the cache) `encoder`'s current weights and opens one session on them. */
  static async create(encoder: VisionEncoder, options: OrtVisionOptions = {}): Promise<OrtVisionEncoder> {
    const file = join(await exportVisionEncoderCached(encoder, options), VISION_ONNX_FILE);
    return OrtVisionEncoder.open(encoder, file, options);
  }

  /** A session on an already exported file of `encoder`'s weights. */
  static async open(encoder: VisionEncoder, file: string, options: Pick<OrtVisionOptions, 'threads' | 'executionProviders'> = {}): Promise<OrtVisionEncoder> {
    return new OrtVisionEncoder(encoder, await createSession(file, { threads: options.threads, executionProviders: options.executionProviders }), file);
  }

  get imageSize(): number {
    return this.encoder.imageSize;
  }

  get hiddenSize(): number {
    return this.encoder.hiddenSize;
  }

  get numPatches(): number {
    return this.encoder.numPatches;
  }

  /** Same numbers as the tfjs tower's, so the feature cache shares entries between the runtimes. */
  identity(): EncoderIdentity {
    return this.encoder.identity();
  }

  preprocessOptions(overrides: PreprocessInput = {}): PreprocessOptions {
    return this.encoder.preprocessOptions(overrides);
  }

  /** `pixels` NHWC `[B, S, S, 3]` → `cls [B, Cv]`, `patches [B, N, Cv]`, as {@link VisionEncoder.encode}. Not differentiable. */
  async encode(pixels: tf.Tensor4D, options: EncodeOptions = {}): Promise<{ cls: tf.Tensor2D; patches: tf.Tensor3D }> {
    const s = this.imageSize;
    if (pixels.rank !== 4 || pixels.shape[1] !== s || pixels.shape[2] !== s || pixels.shape[3] !== 3)
      throw new ShapeError('pixels', ['B', s, s, 3], pixels.shape, 'NHWC at the encoder image size');
    const feeds = { [VISION_ONNX_NAMES.pixels]: new ort.Tensor('float32', (await pixels.data()) as Float32Array, pixels.shape) };
    const out = await runSession(this.session, feeds, this.file);
    const name = options.output === 'postLayernorm' ? VISION_ONNX_NAMES.postLayernorm : VISION_ONNX_NAMES.lastBlock;
    const tokens = toTensor(out[name]) as tf.Tensor3D;
    const pooled = out[VISION_ONNX_NAMES.pooled] ? (toTensor(out[VISION_ONNX_NAMES.pooled]) as tf.Tensor2D) : undefined;
    for (const t of Object.values(out)) t.dispose();
    try {
      return splitTokens(tokens, pooled, options.split);
    } finally {
      tf.dispose([tokens, ...(pooled ? [pooled] : [])]);
    }
  }

  async encodeFrames(video: DecodedVideo, options: EncodeVideoOptions = {}): Promise<FrameFeatures> {
    return encodeFrameBatches(video, this.preprocessOptions(options.preprocess), options, (pixels) => this.encode(pixels, options));
  }

  async encodeVideo(path: string, options: EncodeVideoOptions = {}): Promise<FrameFeatures> {
    const video = await decodeVideo(path, options.sampling ?? {}, options);
    return this.encodeFrames(video, options);
  }

  /** Frees the session's native memory; the tfjs tower is the caller's. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

function toTensor(t: ort.Tensor): tf.Tensor {
  return tf.tensor(t.data as Float32Array, t.dims as number[], 'float32');
}
