/**
 * Aligns the visual path with the label tokens (label-tokens.ts): the spatial sampler (when it has weights) and the
 * projector learn to turn one frame's patches into its cells' label tokens, query r for cell r, by regression on
 * labelled frames. The tower and the LLM's embeddings stay frozen, so the targets do not move. Afterwards a frame's
 * visual tokens say, in the LLM's own words, which colour–shape pair is in which cell; stages 1 and 2 go on from
 * there with the LLM's loss.
 */
import { InvalidArgumentError, Rng, tf } from '@bvllm/core';
import { PROJECTOR_KEYS } from '@bvllm/llm-bridge';
import { AdamW } from '@bvllm/trainer';
import type { BvllmModel } from '@bvllm/pipeline';
import { PAIR_CLASSES } from '@bvllm/synth';
import { CELLS, labelTokens, pairEmbeddings } from './label-tokens.js';
import { disposeBatch, type PretrainBatchSource } from './pretrain-batches.js';
import { frameVisualTokens } from './sampler-pretrain.js';
import { cosineLr, cosineUpdate } from './pretrain-step.js';
import { runSteps, type PhaseRun } from './step-loop.js';

export interface TokenAlignmentOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Checkpoints, resume and progress (see step-loop.ts); default: none. */
  run?: PhaseRun;
}

/** Weights the alignment trains: the spatial sampler's (none for `pool`) and the projector's. */
function alignedKeys(model: BvllmModel): (key: string) => boolean {
  const projector = PROJECTOR_KEYS[model.projector.kind];
  return (key) => /^vlm_att_(encoder|query)_spatial/.test(key) || projector.some((p) => key.startsWith(`${p}.`));
}

/**
 * Trains the sampler and projector in place so each frame's R visual tokens match its cells' label tokens (mean
 * squared error relative to the targets' mean square, so 1 is "predicts nothing") and returns each step's loss.
 * Batches must carry labels; R must equal the label tokens per frame.
 */
export async function alignVisualTokens(model: BvllmModel, batches: PretrainBatchSource, options: TokenAlignmentOptions): Promise<number[]> {
  const rng = Rng.fromSeed(options.seed).fork('token-alignment');
  const isAligned = alignedKeys(model);
  const params = new Map([...model.store.entries()].filter(([key]) => isAligned(key)));
  for (const [key, v] of model.store.entries()) v.trainable = isAligned(key);
  const optimizer = new AdamW(params, { weightDecay: 0 });
  const pairs = pairEmbeddings(model);
  const loop = { steps: options.steps, batchSize: options.batchSize, params, optimizer, batches, rng, lrAt: (step: number) => cosineLr(options.lr, step, options.steps) };
  try {
    return await runSteps(loop, options.run ?? {}, (step, rng) => {
      const batch = batches.draw(options.batchSize, rng);
      if (!batch.labels) {
        disposeBatch(batch);
        throw new InvalidArgumentError('batches', 'token alignment needs labelled frames');
      }
      const target = tf.tidy(() => labelTokens(model, tf.reshape(batch.labels!.cellPairs, [-1, PAIR_CLASSES]) as tf.Tensor2D, pairs));
      const scale = tf.tidy(() => tf.mean(tf.square(target)).dataSync()[0]);
      try {
        const { value, grads } = tf.variableGrads(() =>
          tf.tidy(() => {
            const tokens = frameVisualTokens(model, batch.pixels, true, rng);
            if (tokens.shape[0] !== target.shape[0]) throw new InvalidArgumentError('model', `${tokens.shape[0] / options.batchSize} visual tokens per frame; the label tokens are ${CELLS}`);
            return tf.div(tf.losses.meanSquaredError(target, tokens), scale) as tf.Scalar;
          }),
        );
        cosineUpdate(optimizer, params, grads, options.lr, step, options.steps);
        const loss = value.dataSync()[0];
        tf.dispose([value, ...Object.values(grads)]);
        return loss;
      } finally {
        tf.dispose(target);
        disposeBatch(batch);
      }
    });
  } finally {
    optimizer.dispose();
    pairs.dispose();
  }
}
