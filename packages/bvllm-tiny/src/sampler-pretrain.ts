/**
 * Pre-trains the spatial Q-Former to keep each frame's content, standing in for the InstructBLIP initialisation the
 * official model starts both Q-Formers from (spec §1.0, D14), which the default model cannot download. Without it a
 * from-scratch Q-Former's outputs barely depend on the frame (measured: 3% relative difference between two videos
 * after 4 epochs of stage 2), so the LLM learns to ignore the visual tokens. Objective: from the R query outputs of
 * one frame, a linear head reconstructs the frame at 8×8 (CLIP-normalised pixels) and, given labels, another names
 * the colour–shape pairs in the frame (an image-text objective, as InstructBLIP's Q-Former was pre-trained with);
 * the heads are discarded afterwards.
 */
import { Linear, ParameterStore, Rng, layerNorm, tf, type QuestionTokens } from '@bvllm/core';
import { PROJECTOR_KEYS } from '@bvllm/llm-bridge';
import { AdamW } from '@bvllm/trainer';
import type { BvllmModel } from '@bvllm/pipeline';
import { PAIR_CLASSES } from '@bvllm/synth';
import { disposeBatch, type PretrainBatchSource } from './pretrain-batches.js';
import { pairLoss, poolTo } from './vision-pretrain.js';
import { cosineLr, cosineUpdate } from './pretrain-step.js';
import { runSteps, type PhaseRun } from './step-loop.js';

export interface SamplerPretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Checkpoints, resume and progress (see step-loop.ts); default: none. */
  run?: PhaseRun;
}

/**
 * Patches `[B, N, Cv]` of one frame each → the spatial sampler's tokens `[B, R, D]`. The sampler reads them through
 * the temporal LN (D10), as in the full path with one-hot frame weights.
 */
export function frameSpatialTokens(model: BvllmModel, patches: tf.Tensor3D, question: QuestionTokens, training: boolean, rng: Rng): tf.Tensor3D {
  const merged = layerNorm(patches, model.store.get('vlm_att_ln_temporal.weight'), model.store.get('vlm_att_ln_temporal.bias'), 1e-5) as tf.Tensor3D;
  const frames = [...Array(patches.shape[0]).keys()];
  return model.spatialSample.apply(
    { merged: { merged, groups: frames.map((i) => [i]), frameIndices: Int32Array.from(frames), timestampsSec: frames.map(() => 0) }, question },
    { training, rng },
  ).spatialTokens;
}

/**
 * One frame per row of `pixels` `[B, S, S, 3]` → its visual tokens `[B · R, D]` (R = the sampler's tokens per frame).
 */
export function frameVisualTokens(model: BvllmModel, pixels: tf.Tensor4D, training: boolean, rng: Rng): tf.Tensor2D {
  return tf.tidy(() => {
    const question = model.tokenizeQuestion('');
    const { patches } = model.vision.encode(pixels);
    const tokens = model.projector.apply({ spatialTokens: frameSpatialTokens(model, patches, question, training, rng) });
    tf.dispose([question.inputIds, question.attentionMask]);
    return tokens;
  });
}

/**
 * Trains `vlm_att_encoder_spatial.*`, `vlm_att_query_spatial` in place on batches from `batches` (the frozen tower
 * encodes each; the pair loss applies when a batch carries labels) and returns the loss of each step (those before a
 * resume included).
 */
export async function pretrainSpatialSampler(model: BvllmModel, batches: PretrainBatchSource, options: SamplerPretrainOptions): Promise<number[]> {
  const rng = Rng.fromSeed(options.seed).fork('sampler-pretrain');
  const question = model.tokenizeQuestion('');
  const sample = (patches: tf.Tensor3D, training: boolean, noise: Rng) => frameSpatialTokens(model, patches, question, training, noise);
  const probe = batches.draw(1, rng);
  const probeTokens = tf.tidy(() => sample(model.vision.encode(probe.pixels).patches, false, rng));
  const [, tokens, width] = probeTokens.shape;
  tf.dispose(probeTokens);
  disposeBatch(probe);
  const heads = new ParameterStore('sampler-pretrain-head', rng);
  const head = new Linear(heads, 'head', tokens * width, 8 * 8 * 3);
  const presentHead = new Linear(heads, 'present_head', tokens * width, PAIR_CLASSES);
  const params = new Map([...model.store.entries()].filter(([key]) => /^vlm_att_(encoder|query)_spatial/.test(key)).concat(heads.entries()));
  for (const v of params.values()) v.trainable = true;
  const optimizer = new AdamW(params, { weightDecay: 0 });
  const size = options.batchSize;
  const loop = { steps: options.steps, batchSize: size, params, optimizer, batches, rng, lrAt: (step: number) => cosineLr(options.lr, step, options.steps) };
  try {
    return await runSteps(loop, options.run ?? {}, (step, rng) => {
      const batch = batches.draw(size, rng);
      // The tower is frozen (no trainable variables), so encoding outside the gradient tape costs no gradient.
      const patches = tf.tidy(() => model.vision.encode(batch.pixels).patches);
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const flat = tf.reshape(sample(patches, true, rng), [size, -1]);
          const target = tf.reshape(poolTo(batch.pixels, 8), [size, -1]);
          const reconstruction = tf.losses.meanSquaredError(target, head.apply(flat));
          if (!batch.labels) return reconstruction as tf.Scalar;
          return tf.add(reconstruction, pairLoss(batch.labels.present, presentHead.apply(flat))) as tf.Scalar;
        }),
      );
      cosineUpdate(optimizer, params, grads, options.lr, step, options.steps);
      const loss = value.dataSync()[0];
      tf.dispose([value, patches, ...Object.values(grads)]);
      disposeBatch(batch);
      return loss;
    });
  } finally {
    optimizer.dispose();
    heads.dispose();
    tf.dispose([question.inputIds, question.attentionMask]);
  }
}

/**
 * A data-dependent initialisation of the projector's last layer: its bias removes the visual tokens' mean over a
 * sample of frames, and the layer is scaled so the centred tokens have the RMS of the LLM's token embeddings. Both
 * fix measured failures of the default model: a random projector emitted tokens ~12× the embeddings' scale (Qwen2's
 * input RMSNorm then shrinks their gradient ~100×), and 96% of each token was the same for every video (a linear
 * probe still read colours and shapes off them, but the LLM saw a near-constant input and learned to ignore it).
 * Returns the scale factor applied.
 */
export function normaliseVisualTokens(model: BvllmModel, pixels: tf.Tensor4D): number {
  const second = PROJECTOR_KEYS[model.projector.kind][1];
  const visual = tf.tidy(() => {
    const count = Math.min(64, pixels.shape[0]);
    return frameVisualTokens(model, tf.slice(pixels, [0, 0, 0, 0], [count, -1, -1, -1]) as tf.Tensor4D, false, Rng.fromSeed(0));
  });
  const rms = (t: tf.Tensor) => tf.tidy(() => tf.sqrt(tf.mean(tf.square(t))).dataSync()[0]);
  const mean = tf.mean(visual, 0);
  const factor = rms(model.store.get('model.embed_tokens.weight')) / tf.tidy(() => rms(tf.sub(visual, mean)));
  const weight = model.store.get(`${second}.weight`);
  const bias = model.store.get(`${second}.bias`);
  tf.tidy(() => {
    weight.assign(tf.mul(weight, factor));
    bias.assign(tf.mul(tf.sub(bias, mean), factor));
  });
  tf.dispose([visual, mean]);
  return factor;
}
