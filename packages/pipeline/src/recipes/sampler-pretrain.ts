/**
 * Pre-trains the spatial Q-Former to keep each frame's content, standing in for the InstructBLIP initialisation the
 * official model starts both Q-Formers from (spec §1.0, D14), which the default model cannot download. Without it a
 * from-scratch Q-Former's outputs barely depend on the frame (measured: 3% relative difference between two videos
 * after 4 epochs of stage 2), so the LLM learns to ignore the visual tokens. Objective: from the R query outputs of
 * one frame, a linear head reconstructs the frame at 8×8 (CLIP-normalised pixels) and, given labels, another names
 * the colour–shape pairs in the frame (an image-text objective, as InstructBLIP's Q-Former was pre-trained with);
 * the heads are discarded afterwards.
 */
import { Linear, ParameterStore, Rng, layerNorm, tf } from '@bvllm/core';
import { PROJECTOR_KEYS } from '@bvllm/llm-bridge';
import { AdamW } from '@bvllm/trainer';
import type { BvllmModel } from '../bvllm-model.js';
import { PAIR_CLASSES } from './frame-labels.js';

export interface SamplerPretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
}

/**
 * `pixels` `[F, S, S, 3]` preprocessed frames, `present` `[F, PAIR_CLASSES]` their colour–shape pairs (optional);
 * trains `vlm_att_encoder_spatial.*`, `vlm_att_query_spatial` in place.
 */
export function pretrainSpatialSampler(model: BvllmModel, pixels: tf.Tensor4D, options: SamplerPretrainOptions, present?: tf.Tensor2D): number[] {
  const frames = pixels.shape[0];
  // The tower is frozen: its patch tokens are computed once.
  const patches = tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    for (let start = 0; start < frames; start += 32)
      parts.push(model.vision.encode(tf.slice(pixels, [start, 0, 0, 0], [Math.min(32, frames - start), -1, -1, -1]) as tf.Tensor4D).patches);
    return tf.concat(parts, 0) as tf.Tensor3D;
  });
  const targets = tf.tidy(() => tf.reshape(tf.avgPool(pixels, pixels.shape[1] / 8, pixels.shape[1] / 8, 'valid'), [frames, -1]));
  const rng = Rng.fromSeed(options.seed).fork('sampler-pretrain');
  const question = model.tokenizeQuestion('');
  const probe = model.spatialSample.apply(
    { merged: { merged: tf.slice(patches, [0, 0, 0], [1, -1, -1]) as tf.Tensor3D, groups: [[0]], frameIndices: Int32Array.of(0), timestampsSec: [0] }, question },
    { training: false, rng },
  ).spatialTokens;
  const [, tokens, width] = probe.shape;
  probe.dispose();
  const heads = new ParameterStore('sampler-pretrain-head', rng);
  const head = new Linear(heads, 'head', tokens * width, targets.shape[1]!);
  const presentHead = new Linear(heads, 'present_head', tokens * width, PAIR_CLASSES);
  const params = new Map([...model.store.entries()].filter(([key]) => /^vlm_att_(encoder|query)_spatial/.test(key)).concat(heads.entries()));
  for (const v of params.values()) v.trainable = true;
  const lnWeight = model.store.get('vlm_att_ln_temporal.weight');
  const lnBias = model.store.get('vlm_att_ln_temporal.bias');
  const optimizer = new AdamW(params, { weightDecay: 0 });
  const losses: number[] = [];
  try {
    for (let step = 0; step < options.steps; step++) {
      const index = Array.from({ length: options.batchSize }, () => rng.int(frames));
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          // The sampler reads patches through the temporal LN (D10), as in the full path with one-hot frame weights.
          const merged = layerNorm(tf.gather(patches, index), lnWeight, lnBias, 1e-5) as tf.Tensor3D;
          const { spatialTokens } = model.spatialSample.apply(
            { merged: { merged, groups: index.map((_, i) => [i]), frameIndices: Int32Array.from(index), timestampsSec: index.map(() => 0) }, question },
            { training: true, rng },
          );
          const flat = tf.reshape(spatialTokens, [index.length, -1]);
          const reconstruction = tf.losses.meanSquaredError(tf.gather(targets, index), head.apply(flat));
          if (!present) return reconstruction as tf.Scalar;
          return tf.add(reconstruction, tf.losses.sigmoidCrossEntropy(tf.gather(present, index), presentHead.apply(flat))) as tf.Scalar;
        }),
      );
      const keyed = new Map([...params].filter(([, v]) => grads[v.name]).map(([k, v]) => [k, grads[v.name]]));
      optimizer.update(keyed, options.lr * (0.1 + 0.45 * (1 + Math.cos((Math.PI * step) / options.steps))));
      losses.push(value.dataSync()[0]);
      tf.dispose([value, ...Object.values(grads)]);
    }
  } finally {
    optimizer.dispose();
    heads.dispose();
    tf.dispose([patches, targets, question.inputIds, question.attentionMask]);
  }
  return losses;
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
  const question = model.tokenizeQuestion('');
  const visual = tf.tidy(() => {
    const count = Math.min(64, pixels.shape[0]);
    const { patches } = model.vision.encode(tf.slice(pixels, [0, 0, 0, 0], [count, -1, -1, -1]) as tf.Tensor4D);
    const merged = layerNorm(patches, model.store.get('vlm_att_ln_temporal.weight'), model.store.get('vlm_att_ln_temporal.bias'), 1e-5) as tf.Tensor3D;
    const { spatialTokens } = model.spatialSample.apply(
      { merged: { merged, groups: [...Array(count).keys()].map((i) => [i]), frameIndices: new Int32Array(count), timestampsSec: new Array(count).fill(0) }, question },
      { training: false, rng: Rng.fromSeed(0) },
    );
    return model.projector.apply({ spatialTokens });
  });
  tf.dispose([question.inputIds, question.attentionMask]);
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
