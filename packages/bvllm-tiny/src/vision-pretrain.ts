/**
 * Pre-trains a small vision tower from scratch on decoded frames, since no pretrained encoder can be downloaded
 * for the default model. The [CLS] token reconstructs the whole frame at 8×8 and each patch token its own patch at
 * 4×4 (both in CLIP-normalised pixels), so [CLS] summarises the frame (it is what frame selection scores, spec §1.1
 * (a)) and patch tokens keep local colour. With labels (frame-labels.ts) each patch token also classifies the colour
 * and shape it shows and [CLS] which colour–shape pairs the frame holds: pixel targets alone lose the shape. Heads
 * are discarded afterwards; the tower is then frozen as in the paper (spec §2).
 */
import { Linear, ParameterStore, Rng, tf } from '@bvllm/core';
import { AdamW } from '@bvllm/trainer';
import { COLOURS, SHAPES, PAIR_CLASSES } from '@bvllm/synth';
import type { VisionEncoder } from '@bvllm/vision-encoder';
import { disposeBatch, type PretrainBatchSource } from './pretrain-batches.js';
import { cosineLr, cosineUpdate } from './pretrain-step.js';
import { runSteps, type PhaseRun } from './step-loop.js';

export interface VisionPretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Checkpoints, resume and progress (see step-loop.ts); default: none. */
  run?: PhaseRun;
}

/** Mean softmax cross-entropy of `logits` `[B, N, C]` against class ids `[B, N]`. */
function classLoss(logits: tf.Tensor, ids: tf.Tensor): tf.Scalar {
  const classes = logits.shape.at(-1)!;
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, classes), tf.reshape(logits, [-1, classes])) as tf.Scalar;
}

/**
 * Binary cross-entropy of pair `logits` `[B, PAIR_CLASSES]` against `present` `[B, PAIR_CLASSES]`, summed over the
 * pairs and averaged over frames. Averaged over pairs instead, the loss is dominated by the many absent pairs and
 * a head that says "nothing here" nearly minimises it (measured: the [CLS] probe stayed at ~34% F1).
 */
export function pairLoss(present: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.mul(tf.losses.sigmoidCrossEntropy(present, logits), PAIR_CLASSES) as tf.Scalar;
}

/** Average-pools `[B, S, S, 3]` to `[B, g, g, 3]`. */
export function poolTo(pixels: tf.Tensor4D, grid: number): tf.Tensor4D {
  const size = pixels.shape[1];
  return tf.avgPool(pixels, size / grid, size / grid, 'valid');
}

/**
 * Trains every parameter of `encoder` in place on batches drawn from `batches` (see pretrain-batches.ts; the label
 * losses apply when a batch carries labels) and returns the loss of each step (those before a resume included).
 */
export async function pretrainVision(encoder: VisionEncoder, batches: PretrainBatchSource, options: VisionPretrainOptions): Promise<number[]> {
  const grid = Math.sqrt(encoder.numPatches);
  const patch = encoder.imageSize / grid;
  const cv = encoder.hiddenSize;
  const rng = Rng.fromSeed(options.seed).fork('vision-pretrain');
  const heads = new ParameterStore('vision-pretrain-heads', rng);
  const clsHead = new Linear(heads, 'cls_head', cv, 8 * 8 * 3);
  const patchHead = new Linear(heads, 'patch_head', cv, 4 * 4 * 3);
  const colourHead = new Linear(heads, 'colour_head', cv, 1 + COLOURS.length);
  const shapeHead = new Linear(heads, 'shape_head', cv, 1 + SHAPES.length);
  const presentHead = new Linear(heads, 'present_head', cv, PAIR_CLASSES);
  // The post-LayerNorm is not on B-VLLM's path (spec §1.0: features are the last block), so it gets no gradient.
  const params = new Map([...encoder.variables(), ...heads.entries()].filter(([key]) => !key.startsWith('post_layernorm.')));
  for (const [key, v] of encoder.variables()) v.trainable = params.has(key);
  const optimizer = new AdamW(params, { weightDecay: 0 });
  const size = options.batchSize;
  const loop = { steps: options.steps, batchSize: size, params, optimizer, batches, rng, lrAt: (step: number) => cosineLr(options.lr, step, options.steps) };
  try {
    return await runSteps(loop, options.run ?? {}, (step, rng) => {
      const { pixels, labels } = batches.draw(size, rng);
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const { cls, patches } = encoder.encode(pixels);
          const frameTarget = tf.reshape(poolTo(pixels, 8), [size, -1]);
          // Each patch's own pixels, pooled to 4×4: [B, g, p, g, p, 3] → [B, g·g, 4·4·3].
          const tiles = tf.reshape(
            tf.transpose(tf.reshape(pixels, [size, grid, patch, grid, patch, 3]), [0, 1, 3, 2, 4, 5]),
            [size * grid * grid, patch, patch, 3],
          ) as tf.Tensor4D;
          const patchTarget = tf.reshape(poolTo(tiles, 4), [size, grid * grid, -1]);
          const frameLoss = tf.losses.meanSquaredError(frameTarget, clsHead.apply(cls));
          const patchLoss = tf.losses.meanSquaredError(patchTarget, patchHead.apply(patches));
          if (!labels) return tf.add(frameLoss, patchLoss) as tf.Scalar;
          const named = tf.addN([
            classLoss(colourHead.apply(patches), labels.patchColour),
            classLoss(shapeHead.apply(patches), labels.patchShape),
            pairLoss(labels.present, presentHead.apply(cls)),
          ]);
          return tf.addN([frameLoss, patchLoss, named]) as tf.Scalar;
        }),
      );
      cosineUpdate(optimizer, params, grads, options.lr, step, options.steps);
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      disposeBatch({ pixels, labels });
      return loss;
    });
  } finally {
    optimizer.dispose();
    heads.dispose();
    for (const v of encoder.variables().values()) v.trainable = false;
  }
}
