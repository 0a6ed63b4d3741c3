/**
 * The implementations of the session's module interfaces: onnxruntime sessions on an export folder (the inference
 * path), tfjs stages of a model in memory (`runtime: tfjs`, for training-time checks), and the runtime-neutral
 * stages that have no exporter (uniform/all selection, pool samplers; they hold no big weights).
 */
import { join } from 'node:path';
import { tf, type MergedFrames, type QuestionTokens, type StageContext, type WeightSource } from '@bvllm/core';
import { OrtFrameSelect, frameWeightsFromScores, type QFormerGumbelSelect } from '@bvllm/frame-select';
import { OrtDecoder, type CausalDecoder, type Projector } from '@bvllm/llm-bridge';
import { OrtSpatialSample, type SpatialSampleStage } from '@bvllm/spatial-sample';
import { multiLayerMerge } from '@bvllm/token-merge';
import { OrtVisionEncoder, vitConfigSchema, type VisionEncoder } from '@bvllm/vision-encoder';
import type { PipelineConfig } from '../pipeline-config.js';
import { LLM_MODULE_DIR, frameSelectSpecOf, projectorFrom, spatialSampleSpecOf, type ModulesManifest } from './export-modules.js';
import type { FrameMix, SampleModule, SelectModule, VisionModule } from './modules.js';
import type { OrtOptions } from './ort-options.js';

/** The tower on onnxruntime: needs only the config and the file (no tfjs tower, no weights in this process). */
export class OrtVision implements VisionModule {
  private constructor(
    readonly encoder: OrtVisionEncoder,
    readonly identity: string,
  ) {}

  static async open(config: PipelineConfig, dir: string, manifest: ModulesManifest, ort: OrtOptions): Promise<OrtVision> {
    const vit = vitConfigSchema.parse(config.vision.vit);
    const identity = { family: vit.family, layout: 'created' as const, config: { ...vit }, weightsSha256: manifest.key };
    const encoder = await OrtVisionEncoder.openFile({ vit, identity }, join(dir, manifest.modules.vision), ort);
    return new OrtVision(encoder, `onnx:${manifest.key}`);
  }

  get imageSize(): number {
    return this.encoder.imageSize;
  }

  get hiddenSize(): number {
    return this.encoder.hiddenSize;
  }

  preprocessOptions() {
    return this.encoder.preprocessOptions();
  }

  encode(pixels: Float32Array, batch: number) {
    return this.encoder.encodePixels(pixels, batch);
  }

  release(): Promise<void> {
    return this.encoder.release();
  }
}

/** The tfjs tower of a model in memory. */
export class TfjsVision implements VisionModule {
  constructor(
    readonly encoder: VisionEncoder,
    readonly identity: string,
  ) {}

  get imageSize(): number {
    return this.encoder.imageSize;
  }

  get hiddenSize(): number {
    return this.encoder.hiddenSize;
  }

  preprocessOptions() {
    return this.encoder.preprocessOptions();
  }

  async encode(pixels: Float32Array, batch: number) {
    const s = this.imageSize;
    const input = tf.tensor4d(pixels, [batch, s, s, 3]);
    const { cls, patches } = this.encoder.encode(input);
    input.dispose();
    try {
      return { cls: (await cls.data()) as Float32Array, patches: (await patches.data()) as Float32Array, numPatches: patches.shape[1] };
    } finally {
      tf.dispose([cls, patches]);
    }
  }

  async release(): Promise<void> {}
}

/** The question's ids as plain arrays (batch 1). */
async function questionIds(question: QuestionTokens): Promise<{ inputIds: ArrayLike<number>; attentionMask: ArrayLike<number> }> {
  return { inputIds: await question.inputIds.data(), attentionMask: await question.attentionMask.data() };
}

/** The qformer-gumbel scoring and the selection matmul X = W · LN_t(P) on onnxruntime: no tfjs stage, no weights here. */
export class OrtSelect implements SelectModule, FrameMix {
  private constructor(private readonly ort: OrtFrameSelect) {}

  static async open(config: PipelineConfig, dir: string, ort: OrtOptions): Promise<OrtSelect> {
    return new OrtSelect(await OrtFrameSelect.openDir(frameSelectSpecOf(config), dir, ort));
  }

  async score(question: QuestionTokens, feature: Float32Array, _numFrames: number, noise: Float32Array) {
    return this.ort.score(await questionIds(question), feature, noise);
  }

  mix(frameWeights: Float32Array, _numQueries: number, patches: Float32Array) {
    return this.ort.mix(frameWeights, patches);
  }

  release(): Promise<void> {
    return this.ort.release();
  }
}

/**
 * A `[T, Cv]` selection feature as FrameFeatures the tfjs stage's scoring accepts: `cls` is the feature and the
 * patches are the same rows `[T, 1, Cv]`, so `cls`, `mean` and `max` selection features all read it back unchanged.
 */
function featureAsFrames(feature: Float32Array, numFrames: number, width: number) {
  const cls = tf.tensor2d(feature, [numFrames, width]);
  return { cls, patches: tf.reshape(cls, [numFrames, 1, width]) as tf.Tensor3D, timestampsSec: Array.from({ length: numFrames }, (_, i) => i) };
}

/** The qformer-gumbel scoring on the tfjs stage of a model in memory. */
export class TfjsSelect implements SelectModule {
  constructor(private readonly stage: QFormerGumbelSelect) {}

  async score(question: QuestionTokens, feature: Float32Array, numFrames: number, noise: Float32Array) {
    const stage = this.stage;
    const features = featureAsFrames(feature, numFrames, stage.visionWidth);
    const k = noise.length / numFrames;
    const [scores, weights] = tf.tidy(() => {
      // The stage's scoring reads its configured selection feature from these frames: all equal `feature`.
      const s = stage.scores({ features, question });
      const w = frameWeightsFromScores(s, { tau: stage.config.tau, mode: 'gumbel', straightThrough: false, noise: tf.tensor2d(noise, [k, numFrames]) });
      return [s, w];
    });
    tf.dispose([features.cls, features.patches]);
    try {
      return { scores: (await scores.data()) as Float32Array, frameWeights: (await weights.data()) as Float32Array };
    } finally {
      tf.dispose([scores, weights]);
    }
  }

  async release(): Promise<void> {}
}

/** The spatial Q-Former (+ projector) on onnxruntime; a budget merge (N' < R) and the projector after it on tfjs. */
export class OrtSample implements SampleModule {
  private projector?: Projector;

  private constructor(
    private readonly ort: OrtSpatialSample,
    private readonly config: PipelineConfig,
    private readonly weights: () => WeightSource,
  ) {}

  static async open(config: PipelineConfig, dir: string, manifest: ModulesManifest, ort: OrtOptions, weights: () => WeightSource): Promise<OrtSample> {
    const entry = manifest.modules.spatialSample!;
    const spec = spatialSampleSpecOf(config);
    const session = await OrtSpatialSample.openFile(entry.projector ? spec : { ...spec, projector: undefined }, join(dir, entry.file), ort);
    return new OrtSample(session, config, weights);
  }

  async sample(question: QuestionTokens, merged: MergedFrames, context: StageContext, tokenBudget?: number | null) {
    const frames = merged.merged.shape[0];
    const out = await this.ort.run(await questionIds(question), (await merged.merged.data()) as Float32Array, frames);
    const { numQueries: r, qformer } = this.ort.spec.config;
    const z = tf.tensor3d(out.spatialTokens, [frames, r, qformer.hiddenSize]);
    const target = this.ort.tokensPerFrame(frames, tokenBudget === undefined ? this.ort.spec.config.tokenBudget : tokenBudget);
    if (target >= r && out.visualEmbeds) return { spatialTokens: z, visualEmbeds: tf.tensor2d(out.visualEmbeds, [frames * r, out.visualEmbeds.length / (frames * r)]) };
    const spatialTokens = target < r ? (multiLayerMerge(z, target) as tf.Tensor3D) : z;
    if (spatialTokens !== z) z.dispose();
    // Read once, on the first question whose frame count triggers the budget merge.
    this.projector ??= projectorFrom(this.config, this.weights(), qformer.hiddenSize, this.ort.spec.visionWidth);
    return { spatialTokens, visualEmbeds: this.projector.apply({ spatialTokens }, context) };
  }

  async release(): Promise<void> {
    this.projector?.dispose();
    await this.ort.release();
  }
}

/** A tfjs sampler and projector: a model in memory's, or a runtime-neutral pool sampler's (no exporter). */
export class TfjsSample implements SampleModule {
  constructor(
    private readonly stage: SpatialSampleStage,
    private readonly projector: Projector,
    /** Whether release frees the stages (built by the session) or leaves them (a model's). */
    private readonly owned: boolean,
  ) {}

  async sample(question: QuestionTokens, merged: MergedFrames, context: StageContext, tokenBudget?: number | null) {
    const { spatialTokens } = this.stage.apply({ merged, question, tokenBudget }, context);
    return { spatialTokens, visualEmbeds: this.projector.apply({ spatialTokens }, context) };
  }

  async release(): Promise<void> {
    if (!this.owned) return;
    this.stage.dispose();
    this.projector.dispose();
  }
}

/** The decoder export of a modules folder. */
export function openOrtDecoder(dir: string, ort: OrtOptions): Promise<CausalDecoder> {
  return OrtDecoder.load(join(dir, LLM_MODULE_DIR), ort);
}
