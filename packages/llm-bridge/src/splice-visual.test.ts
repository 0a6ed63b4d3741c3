import { Rng, ShapeError, initBackend, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IGNORE_INDEX, IMAGE_TOKEN_INDEX, VIDEO_TOKEN_INDEX } from './constants.js';
import { Qwen2Model } from './qwen2-model.js';
import { PlaceholderMismatchError, spliceVisual } from './splice-visual.js';

let model: Qwen2Model;
beforeAll(async () => {
  await initBackend();
  model = Qwen2Model.create({ vocabSize: 20, hiddenSize: 4, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 8 }, Rng.fromSeed(5));
});
afterAll(() => model.dispose());

const rows = (t: tf.Tensor) => t.arraySync() as number[][][];
const embedRow = (id: number) => (model.embedTokens.arraySync() as number[][])[id];

describe('spliceVisual (spec §1.2)', () => {
  it('replaces placeholders by their blocks, masks their labels and right-pads the batch', () => {
    const video = tf.tensor2d([
      [1, 1, 1, 1],
      [2, 2, 2, 2],
      [3, 3, 3, 3],
    ]);
    const image = tf.tensor2d([[9, 9, 9, 9]]);
    const out = spliceVisual(model, {
      inputIds: [
        [5, VIDEO_TOKEN_INDEX, 6, 7],
        [8, IMAGE_TOKEN_INDEX],
      ],
      labels: [
        [IGNORE_INDEX, IGNORE_INDEX, 6, 7],
        [8, IGNORE_INDEX],
      ],
      visual: [[video], [image]],
    });
    expect(out.lengths).toEqual([6, 2]);
    expect(out.inputsEmbeds.shape).toEqual([2, 6, 4]);
    const e = rows(out.inputsEmbeds);
    const close = (a: number[], b: number[]) => a.forEach((x, i) => expect(x).toBeCloseTo(b[i], 6));
    close(e[0][0], embedRow(5));
    close(e[0][1], [1, 1, 1, 1]);
    close(e[0][3], [3, 3, 3, 3]);
    close(e[0][4], embedRow(6));
    close(e[0][5], embedRow(7));
    close(e[1][0], embedRow(8));
    close(e[1][1], [9, 9, 9, 9]);
    for (let t = 2; t < 6; t++) close(e[1][t], [0, 0, 0, 0]);
    expect(out.attentionMask.arraySync()).toEqual([
      [1, 1, 1, 1, 1, 1],
      [1, 1, 0, 0, 0, 0],
    ]);
    expect(out.labels.arraySync()).toEqual([
      [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 6, 7],
      [8, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
    ]);
    tf.dispose([video, image, out.inputsEmbeds, out.attentionMask, out.labels]);
  });

  it('a placeholder count that differs from the blocks is a typed error with both counts', () => {
    const block = tf.zeros([2, 4]);
    let error: unknown;
    try {
      spliceVisual(model, { inputIds: [[1, VIDEO_TOKEN_INDEX, VIDEO_TOKEN_INDEX]], visual: [[block]] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PlaceholderMismatchError);
    expect((error as PlaceholderMismatchError).placeholders).toBe(2);
    expect((error as PlaceholderMismatchError).visualBlocks).toBe(1);
    expect((error as PlaceholderMismatchError).code).toBe('INVALID_ARGUMENT');
    expect(() => spliceVisual(model, { inputIds: [[VIDEO_TOKEN_INDEX]], visual: [[tf.zeros([2, 3])]] })).toThrow(ShapeError);
    block.dispose();
  });

  it('truncates to maxLength and passes gradients to the visual block', () => {
    const block = tf.tensor2d([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    const grad = tf.grad((v: tf.Tensor) => {
      const out = spliceVisual(model, { inputIds: [[3, VIDEO_TOKEN_INDEX, 4]], visual: [[v]], maxLength: 2 });
      expect(out.lengths).toEqual([2]);
      return tf.sum(tf.mul(out.inputsEmbeds, 2));
    })(block);
    // Only the first visual row survives truncation.
    expect(grad.arraySync()).toEqual([
      [2, 2, 2, 2],
      [0, 0, 0, 0],
    ]);
    tf.dispose([block, grad]);
  });

  it('does not leak tensors', () => {
    const block = tf.ones([3, 4]);
    const run = () => {
      const out = spliceVisual(model, { inputIds: [[1, VIDEO_TOKEN_INDEX, 2], [3]], visual: [[block], []] });
      tf.dispose([out.inputsEmbeds, out.attentionMask, out.labels]);
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    block.dispose();
  });
});
