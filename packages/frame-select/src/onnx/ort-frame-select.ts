/**
 * The qformer-gumbel selector at inference on onnxruntime-node, whole (issue #18): `score` runs the Q-Former and the
 * Gumbel-softmax, `mix` the temporal LayerNorm and the selection matmul, both on plain arrays, so a caller holding
 * [CLS] for every frame and patches on disk needs no tfjs. `apply` is the stage contract's inference `apply` on top
 * of them (the tfjs stage's numbers and noise draw, D4). `openDir` needs only the spec and an export folder.
 */
import { join } from 'node:path';
import { ShapeError, tf, type FrameSelection, type StageContext } from '@bvllm/core';
import { createSession, ort, runSession, type ExecutionProvider, type OrtSession } from '@bvllm/onnx';
import { checkFrameFeatures } from '../frame-features.js';
import { frameWeightsFromScores } from '../gumbel-softmax.js';
import type { FrameSelectInput } from '../types.js';
import { FRAME_MIX_ONNX_FILE, FRAME_SELECT_ONNX_FILE, FRAME_SELECT_ONNX_NAMES, type FrameSelectSpec } from './frame-select-onnx.js';

export interface OrtStageOptions {
  threads?: number;
  executionProviders?: readonly ExecutionProvider[];
}

/** One tokenised question as plain ids (batch 1): both of length Lt, mask 1 = token, 0 = pad. */
export interface QuestionIds {
  inputIds: ArrayLike<number>;
  attentionMask: ArrayLike<number>;
}

export class OrtFrameSelect {
  private constructor(
    readonly spec: FrameSelectSpec,
    private readonly selectSession: OrtSession,
    private readonly mixSession: OrtSession,
    /** The export folder. */
    readonly dir: string,
  ) {}

  /** Opens `dir`'s {@link FRAME_SELECT_ONNX_FILE} and {@link FRAME_MIX_ONNX_FILE} (as `exportFrameSelectOnnx` writes them). */
  static async openDir(spec: FrameSelectSpec, dir: string, options: OrtStageOptions = {}): Promise<OrtFrameSelect> {
    const select = await createSession(join(dir, FRAME_SELECT_ONNX_FILE), options);
    const mix = await createSession(join(dir, FRAME_MIX_ONNX_FILE), options).catch(async (error: unknown) => {
      await select.release();
      throw error;
    });
    return new OrtFrameSelect(spec, select, mix, dir);
  }

  /**
   * S and W `[K, T]` for one question, the selection feature `[T, Cv]` (raw [CLS] by default, D10) and the noise G
   * `[K, T]` (zeros: softmax(S/τ)). Every row of W sums to 1.
   */
  async score(question: QuestionIds, feature: Float32Array, noise: Float32Array): Promise<{ scores: Float32Array; frameWeights: Float32Array }> {
    const cv = this.spec.visionWidth;
    const k = this.spec.config.numQueries;
    const t = feature.length / cv;
    if (!Number.isInteger(t) || t === 0) throw new ShapeError('feature', ['T', cv], [feature.length], 'one row of Cv values per frame');
    if (noise.length !== k * t) throw new ShapeError('gumbelNoise', [k, t], [noise.length]);
    if (question.inputIds.length !== question.attentionMask.length || question.inputIds.length === 0)
      throw new ShapeError('question.attentionMask', [1, question.inputIds.length], [1, question.attentionMask.length], 'one mask entry per token');
    const n = FRAME_SELECT_ONNX_NAMES;
    const feeds = {
      [n.inputIds]: int64(question.inputIds),
      [n.attentionMask]: int64(question.attentionMask),
      [n.frameFeatures]: new ort.Tensor('float32', feature, [t, cv]),
      [n.gumbelNoise]: new ort.Tensor('float32', noise, [k, t]),
    };
    const out = await runSession(this.selectSession, feeds, join(this.dir, FRAME_SELECT_ONNX_FILE));
    const result = { scores: out[n.scores].data as Float32Array, frameWeights: out[n.frameWeights].data as Float32Array };
    for (const v of Object.values(out)) v.dispose();
    return result;
  }

  /** `frameWeights [K, Ts] · LN_t(patches [Ts, N, Cv])` → selected `[K, N, Cv]` (spec §1.1 (a), D10). */
  async mix(frameWeights: Float32Array, patches: Float32Array): Promise<Float32Array> {
    const cv = this.spec.visionWidth;
    const k = this.spec.config.numQueries;
    const ts = frameWeights.length / k;
    const np = patches.length / (ts * cv);
    if (!Number.isInteger(ts) || ts === 0) throw new ShapeError('frameWeights', [k, 'Ts'], [frameWeights.length]);
    if (!Number.isInteger(np) || np === 0) throw new ShapeError('patches', [ts, 'N', cv], [patches.length], 'the patches of the frames frameWeights covers');
    const n = FRAME_SELECT_ONNX_NAMES;
    const feeds = { [n.frameWeights]: new ort.Tensor('float32', frameWeights, [k, ts]), [n.patches]: new ort.Tensor('float32', patches, [ts, np, cv]) };
    const out = await runSession(this.mixSession, feeds, join(this.dir, FRAME_MIX_ONNX_FILE));
    const selected = out[n.selected].data as Float32Array;
    for (const v of Object.values(out)) v.dispose();
    return selected;
  }

  /** The stage's inference `apply` (spec §1.1 (a), D4): frame weights, LN_t-selected patches, argmax frames. */
  async apply(input: FrameSelectInput, context: StageContext): Promise<FrameSelection> {
    const cv = this.spec.visionWidth;
    const { numFrames, numPatches } = checkFrameFeatures(input.features, cv);
    const { numQueries: k, inferenceNoise: mode, tau } = this.spec.config;
    // Drawn exactly where and as the tfjs stage draws it, so a seed selects the same frames on both runtimes.
    const noiseTensor = mode === 'gumbel' ? (input.gumbelNoise ? tf.clone(input.gumbelNoise) : context.rng.gumbel([k, numFrames])) : tf.zeros([k, numFrames]);
    const noise = (await noiseTensor.data()) as Float32Array;
    noiseTensor.dispose();
    const feature = this.selectionFeature(input);
    const featureValues = (await feature.data()) as Float32Array;
    feature.dispose();
    const question = { inputIds: await input.question.inputIds.data(), attentionMask: await input.question.attentionMask.data() };
    let { scores, frameWeights } = await this.score(question, featureValues, noise);
    if (mode === 'hard') {
      const hard = tf.tidy(() => frameWeightsFromScores(tf.tensor2d(scores, [k, numFrames]), { tau, mode, straightThrough: false }));
      frameWeights = (await hard.data()) as Float32Array;
      hard.dispose();
    }
    const selected = await this.mix(frameWeights, (await input.features.patches.data()) as Float32Array);
    const frameIndices = Int32Array.from({ length: k }, (_, q) => argmax(frameWeights.subarray(q * numFrames, (q + 1) * numFrames)));
    return {
      frameWeights: tf.tensor2d(frameWeights, [k, numFrames]),
      selected: tf.tensor3d(selected, [k, numPatches, cv]),
      frameIndices,
      timestampsSec: Array.from(frameIndices, (i) => input.features.timestampsSec[i]),
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.selectSession.release(), this.mixSession.release()]);
  }

  /** `[T, Cv]`: raw [CLS] (D10), or the mean / max over raw patches (spec §5), as the tfjs stage. */
  private selectionFeature(input: FrameSelectInput): tf.Tensor2D {
    const { cls, patches } = input.features;
    switch (this.spec.config.selectionFeature) {
      case 'cls':
        return tf.clone(cls);
      case 'mean':
        return tf.mean(patches, 1) as tf.Tensor2D;
      case 'max':
        return tf.max(patches, 1) as tf.Tensor2D;
    }
  }
}

/** First index of the largest value, as tf.argMax. */
function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

function int64(values: ArrayLike<number>): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(v)), [1, values.length]);
}
