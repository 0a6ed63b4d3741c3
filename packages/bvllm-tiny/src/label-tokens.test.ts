import { Rng, ShapeError, initBackend, tf } from '@bvllm/core';
import { COLOURS, SHAPES, PAIR_CLASSES, frameLabels } from '@bvllm/synth';
import { DatasetError, VIDEO_TOKEN_INDEX, type InstructSample } from '@bvllm/trainer';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from '@bvllm/pipeline';
import { testAssets, testConfig } from './test-model.js';
import { testScene as scene } from '../../synth/src/testing/test-scene.js';
import { CELLS, collateLabelTokens, labelTokenLoss, labelTokens, pairEmbeddings, pickFrames, videoCellLabels } from './label-tokens.js';

beforeAll(async () => {
  await initBackend();
});

const pair = (colour: (typeof COLOURS)[number], shape: (typeof SHAPES)[number]) => COLOURS.indexOf(colour) * SHAPES.length + SHAPES.indexOf(shape);

describe('label tokens (the LLM warm-up reads them; the visual path is aligned to them)', () => {
  it("are the LLM's colour-word plus shape-word embeddings, summed per cell, and a fixed vector at their RMS for an empty cell", () => {
    const model = BvllmModel.create(testConfig(), testAssets(), 1);
    const word = (w: string) => {
      const ids = model.assets.tokenizer.encode(` ${w}`);
      return tf.tidy(() => tf.mean(tf.reshape(model.llm.embed([ids]), [ids.length, -1]), 0).arraySync() as number[]);
    };
    const pairs = pairEmbeddings(model);
    expect(pairs.shape).toEqual([PAIR_CLASSES, 40]);
    const redSquare = word('red').map((v, i) => v + word('square')[i]);
    const blueCross = word('blue').map((v, i) => v + word('cross')[i]);
    const row = (r: number) => pairs.arraySync()[r];
    row(pair('red', 'square')).forEach((v, i) => expect(v).toBeCloseTo(redSquare[i], 5));

    const cells = tf.tensor2d([[pair('red', 'square')], [pair('red', 'square'), pair('blue', 'cross')], [], []].map((on) => [...Array(PAIR_CLASSES).keys()].map((p) => (on.includes(p) ? 1 : 0))));
    const tokens = labelTokens(model, cells, pairs).arraySync();
    tokens[0].forEach((v, i) => expect(v).toBeCloseTo(redSquare[i], 5));
    tokens[1].forEach((v, i) => expect(v).toBeCloseTo(redSquare[i] + blueCross[i], 5));
    // Both empty cells get the same vector, not zero: a seeded normal draw at the pairs' RMS.
    expect(tokens[3]).toEqual(tokens[2]);
    const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, v) => a + v * v, 0) / xs.length);
    const direction = Rng.fromSeed(0x5eed).normalArray(40);
    tokens[2].forEach((v, i) => expect(v).toBeCloseTo(direction[i] * rms(pairs.arraySync().flat()), 5));
    // The empty direction is fixed, whatever the model's seed.
    const other = BvllmModel.create(testConfig(), testAssets(), 2);
    const none = tf.zeros([1, PAIR_CLASSES]) as tf.Tensor2D;
    const held = tf.memory().numTensors;
    const emptyToken = labelTokens(other, none);
    // Without a table given, the one it builds is freed: only the result is left.
    expect(tf.memory().numTensors).toBe(held + 1);
    const empty = emptyToken.arraySync()[0];
    tf.dispose([none, emptyToken]);
    const cosine = empty.reduce((a, v, i) => a + v * tokens[2][i], 0) / Math.sqrt(empty.reduce((a, v) => a + v * v, 0) * tokens[2].reduce((a, v) => a + v * v, 0));
    expect(cosine).toBeCloseTo(1, 5);
    // Cell labels must name the pairs: a wrong width is a shape error naming `cells`.
    const wrong = tf.zeros([2, PAIR_CLASSES - 1]) as tf.Tensor2D;
    expect(() => labelTokens(model, wrong, pairs)).toThrow(ShapeError);
    expect(() => labelTokens(model, wrong, pairs)).toThrow(/cells/);
    tf.dispose([pairs, cells, wrong]);
    model.dispose();
    other.dispose();
  });

  it('label a video at the 16 frames stages 1 and 2 read, per cell, with who is on screen', () => {
    const labels = videoCellLabels(scene, 16);
    // Uniform 16 of a 16-frame video reads every frame; the triangle is on screen for the first second (frames 0–3).
    expect(labels.cells).toHaveLength(16);
    expect(labels.visible[2]).toEqual([0, 1, 2]);
    expect(labels.visible[4]).toEqual([0, 1]);
    expect(labels.visible.filter((v) => v.includes(2))).toHaveLength(4);
    expect([...labels.cells[15]]).toEqual([...frameLabels(scene, 15, 4).cellPairs]);
    expect(labels.cells[0][pair('red', 'square')]).toBe(1);
  });

  it('pick 1 to K frames in time order, always including a frame for an object that is on screen only briefly', () => {
    const labels = videoCellLabels(scene, 16);
    const rng = Rng.fromSeed(3);
    const counts = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const frames = pickFrames(labels, 4, rng);
      counts.add(frames.length);
      expect(frames).toEqual([...frames].sort((a, b) => a - b));
      expect(new Set(frames).size).toBe(frames.length);
      expect(frames.some((f) => f < 4)).toBe(true);
    }
    expect([...counts].sort()).toEqual([1, 2, 3, 4]);
  });

  it('collate the picked frames of each sample, and refuse a sample without its scene or placeholder, naming it', () => {
    const labels = videoCellLabels(scene, 16);
    const videos = new Map([['/d/a.mp4', labels]]);
    const sample = (id: string, mediaPath: string, inputIds: number[]): InstructSample => ({ id, modality: 'video', mediaPath, inputIds, labels: inputIds.map(() => -100), question: '' });
    const [collated] = collateLabelTokens([sample('a', '/d/a.mp4', [1, VIDEO_TOKEN_INDEX, 2])], videos, 4, Rng.fromSeed(5));
    const frames = pickFrames(labels, 4, Rng.fromSeed(5));
    expect(collated.cells).toHaveLength(frames.length * CELLS * PAIR_CLASSES);
    expect([...collated.cells]).toEqual(frames.flatMap((f) => [...labels.cells[f]]));
    expect(collated.inputIds).toEqual([1, VIDEO_TOKEN_INDEX, 2]);
    expect(() => collateLabelTokens([sample('b', '/d/b.mp4', [VIDEO_TOKEN_INDEX])], videos, 4, Rng.fromSeed(0))).toThrow(DatasetError);
    expect(() => collateLabelTokens([sample('c', '/d/a.mp4', [1, 2])], videos, 4, Rng.fromSeed(0))).toThrow(/placeholder/);
  });

  it("train the LLM's embedding table through the label tokens: the colour and shape words get a gradient they would not get from the text", () => {
    const model = BvllmModel.create(testConfig(), testAssets(), 1);
    const cells = new Float32Array(CELLS * PAIR_CLASSES);
    cells[pair('red', 'square')] = 1;
    // No colour or shape word in the text: ids 5 and 6, the answer 6.
    const batch = [{ inputIds: [5, VIDEO_TOKEN_INDEX, 6], labels: [-100, -100, 6], cells }];
    const table = model.llm.embedTokens;
    const { value, grads } = tf.variableGrads(() => labelTokenLoss(model, batch), [table]);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    const rows = grads[table.name].arraySync() as number[][];
    const norm = (ids: number[]) => ids.reduce((a, id) => a + rows[id].reduce((b, v) => b + v * v, 0), 0);
    expect(norm(model.assets.tokenizer.encode(' red'))).toBeGreaterThan(0);
    expect(norm(model.assets.tokenizer.encode(' square'))).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
  });
});
