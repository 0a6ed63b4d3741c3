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
import { COLOURS, SHAPES } from '@bvllm/synth';
import type { VisionEncoder } from '@bvllm/vision-encoder';
import { PAIR_CLASSES } from './frame-labels.js';

export interface VisionPretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  onStep?: (step: number, loss: number) => void;
}

/** Labels of the pre-training frames, stacked (see {@link frameLabels}). */
export interface FrameLabelTensors {
  /** `[F, N]` int32, 0 = background. */
  patchColour: tf.Tensor2D;
  /** `[F, N]` int32, 0 = background. */
  patchShape: tf.Tensor2D;
  /** `[F, PAIR_CLASSES]` 0/1. */
  present: tf.Tensor2D;
}

/** Mean softmax cross-entropy of `logits` `[B, N, C]` against class ids `[B, N]`. */
function classLoss(logits: tf.Tensor, ids: tf.Tensor): tf.Scalar {
  const classes = logits.shape.at(-1)!;
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, classes), tf.reshape(logits, [-1, classes])) as tf.Scalar;
}

/** Average-pools `[B, S, S, 3]` to `[B, g, g, 3]`. */
function poolTo(pixels: tf.Tensor4D, grid: number): tf.Tensor4D {
  const size = pixels.shape[1];
  return tf.avgPool(pixels, size / grid, size / grid, 'valid');
}

/**
 * `frames` are preprocessed pixels `[F, S, S, 3]` (NHWC, CLIP-normalised); trains every parameter of `encoder`
 * in place and returns the loss of each step.
 */
export function pretrainVision(encoder: VisionEncoder, frames: tf.Tensor4D, options: VisionPretrainOptions, labels?: FrameLabelTensors): number[] {
  const size = encoder.imageSize;
  const grid = Math.sqrt(encoder.numPatches);
  const patch = size / grid;
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
  const losses: number[] = [];
  const total = frames.shape[0];
  try {
    for (let step = 0; step < options.steps; step++) {
      const index = Array.from({ length: options.batchSize }, () => rng.int(total));
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const batch = tf.gather(frames, index) as tf.Tensor4D;
          const { cls, patches } = encoder.encode(batch);
          const frameTarget = tf.reshape(poolTo(batch, 8), [index.length, -1]);
          // Each patch's own pixels, pooled to 4×4: [B, g, p, g, p, 3] → [B, g·g, 4·4·3].
          const tiles = tf.reshape(
            tf.transpose(tf.reshape(batch, [index.length, grid, patch, grid, patch, 3]), [0, 1, 3, 2, 4, 5]),
            [index.length * grid * grid, patch, patch, 3],
          ) as tf.Tensor4D;
          const patchTarget = tf.reshape(poolTo(tiles, 4), [index.length, grid * grid, -1]);
          const frameLoss = tf.losses.meanSquaredError(frameTarget, clsHead.apply(cls));
          const patchLoss = tf.losses.meanSquaredError(patchTarget, patchHead.apply(patches));
          if (!labels) return tf.add(frameLoss, patchLoss) as tf.Scalar;
          const named = tf.addN([
            classLoss(colourHead.apply(patches), tf.gather(labels.patchColour, index)),
            classLoss(shapeHead.apply(patches), tf.gather(labels.patchShape, index)),
            tf.losses.sigmoidCrossEntropy(tf.gather(labels.present, index), presentHead.apply(cls)),
          ]);
          return tf.addN([frameLoss, patchLoss, named]) as tf.Scalar;
        }),
      );
      // Cosine decay to 10% keeps the last steps from undoing the fit.
      const lr = options.lr * (0.1 + 0.45 * (1 + Math.cos((Math.PI * step) / options.steps)));
      const keyed = new Map([...params].filter(([, v]) => grads[v.name]).map(([k, v]) => [k, grads[v.name]]));
      optimizer.update(keyed, lr);
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      losses.push(loss);
      options.onStep?.(step, loss);
    }
  } finally {
    optimizer.dispose();
    heads.dispose();
    for (const v of encoder.variables().values()) v.trainable = false;
  }
  return losses;
}
