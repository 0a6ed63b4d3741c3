import { initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { causalLmLoss } from './causal-lm-loss.js';
import { IGNORE_INDEX } from './constants.js';

beforeAll(async () => {
  await initBackend();
});

// −log softmax(row)[k], by hand in float64.
const nll = (row: number[], k: number) => Math.log(row.reduce((s, x) => s + Math.exp(x), 0)) - row[k];

describe('causalLmLoss (spec §2)', () => {
  const logits = [
    [
      [1, 2, 0.5],
      [0.1, -1, 3],
      [2, 2, 2],
      [0, 1, -1],
    ],
    [
      [-2, 0, 1],
      [0.3, 0.2, 0.1],
      [1, 0, 0],
      [5, -5, 0],
    ],
  ];
  it('shifts by one, skips −100 and averages over the supervised tokens of the batch', () => {
    const labels = [
      [IGNORE_INDEX, 2, 0, IGNORE_INDEX],
      [IGNORE_INDEX, IGNORE_INDEX, 1, 2],
    ];
    // Supervised: row 0 position 0 → 2, position 1 → 0; row 1 position 1 → 1, position 2 → 2.
    const want = (nll(logits[0][0], 2) + nll(logits[0][1], 0) + nll(logits[1][1], 1) + nll(logits[1][2], 2)) / 4;
    const loss = causalLmLoss(tf.tensor3d(logits), labels);
    expect(loss.dataSync()[0]).toBeCloseTo(want, 5);
    loss.dispose();
  });

  it('is 0 when nothing is supervised', () => {
    const loss = causalLmLoss(tf.tensor3d(logits), [
      [1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
      [0, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
    ]);
    expect(loss.dataSync()[0]).toBe(0);
    loss.dispose();
  });

  it('gradient with respect to the logits is (softmax − onehot) / count on supervised rows, 0 elsewhere', () => {
    const labels = [[IGNORE_INDEX, 1, IGNORE_INDEX, 0]];
    const x = tf.tensor3d([logits[0]]);
    const grad = tf.grad((z: tf.Tensor) => causalLmLoss(z, labels))(x);
    const g = grad.arraySync() as number[][][];
    const softmax = (row: number[]) => {
      const e = row.map(Math.exp);
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    const expectRow = (pos: number, target: number | undefined) =>
      g[0][pos].forEach((v, k) => expect(v).toBeCloseTo(target === undefined ? 0 : (softmax(logits[0][pos])[k] - (k === target ? 1 : 0)) / 2, 5));
    expectRow(0, 1);
    expectRow(1, undefined);
    expectRow(2, 0);
    expectRow(3, undefined);
    tf.dispose([x, grad]);
  });

  it('does not leak tensors', () => {
    const x = tf.tensor3d(logits);
    const run = () => tf.dispose(causalLmLoss(x, [[1, 2, 0, 1], [0, IGNORE_INDEX, 2, 1]]));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
