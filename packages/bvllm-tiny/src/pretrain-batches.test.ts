import { InvalidArgumentError, Rng, initBackend, tf } from '@bvllm/core';
import { PALETTE, buildItem, parseSynthConfig, renderFrame, PAIR_CLASSES, frameLabels } from '@bvllm/synth';
import { preprocessClip } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeBatch, mixedBatches, poolBatches, renderedBatches, type PretrainBatch } from './pretrain-batches.js';

beforeAll(async () => {
  await initBackend();
});

const settings = parseSynthConfig({ outDir: '/nonexistent', seed: 3, counts: { train: 10, val: 0, test: 0 } });

describe('renderedBatches', () => {
  it('renders one random frame of each fresh training-split scene past firstIndex, preprocessed and labelled as the recipe labels decoded frames', () => {
    const source = renderedBatches(settings, 64, 4, 10);
    const first = source.draw(2, Rng.fromSeed(1));
    const second = source.draw(1, Rng.fromSeed(2));
    // The same draws by hand: scenes 10 and 11 with the first rng, then scene 12 (never a repeat) with the second.
    const draw = (index: number, rng: Rng) => {
      const { scene } = buildItem(settings, 'train', index);
      return { scene, frame: rng.int(scene.numFrames) };
    };
    const rng1 = Rng.fromSeed(1);
    const expected = [draw(10, rng1), draw(11, rng1), draw(12, Rng.fromSeed(2))];
    const check = (batch: PretrainBatch, row: number, e: (typeof expected)[number]) => {
      const pixels = batch.pixels.arraySync()[row].flat(2);
      const reference = preprocessClip(renderFrame(e.scene, e.frame), 64, 64, { shortestEdge: 64, cropSize: 64 });
      expect(pixels.length).toBe(reference.length);
      expect(Math.max(...pixels.map((v, i) => Math.abs(v - reference[i])))).toBeLessThan(1e-6);
      const labels = frameLabels(e.scene, e.frame, 4);
      expect(batch.labels!.patchColour.arraySync()[row]).toEqual([...labels.patchColour]);
      expect(batch.labels!.patchShape.arraySync()[row]).toEqual([...labels.patchShape]);
      expect(batch.labels!.present.arraySync()[row]).toEqual([...labels.present]);
      expect(batch.labels!.cellPairs.arraySync()[row]).toEqual([...labels.cellPairs]);
    };
    expect(first.pixels.shape).toEqual([2, 64, 64, 3]);
    expect(first.labels!.present.shape).toEqual([2, PAIR_CLASSES]);
    check(first, 0, expected[0]);
    check(first, 1, expected[1]);
    check(second, 0, expected[2]);
    // Not a flat image: the frame shows at least one palette colour (an object) besides the background.
    const rgb = renderFrame(expected[0].scene, expected[0].frame);
    const colours = new Set<string>();
    for (let i = 0; i < rgb.length; i += 3) colours.add(`${rgb[i]},${rgb[i + 1]},${rgb[i + 2]}`);
    expect([...colours].some((c) => Object.values(PALETTE).some((p) => p.join(',') === c))).toBe(true);
    disposeBatch(first, second);
  });

  it('goes back to a saved position: a mixed source draws the same frames again after seek', () => {
    const pixels = tf.tidy(() => Rng.fromSeed(4).normal([3, 64, 64, 3]) as tf.Tensor4D);
    const source = mixedBatches([poolBatches(pixels), renderedBatches(settings, 64, 4, 10)]);
    disposeBatch(source.draw(4, Rng.fromSeed(0)));
    // Pool: no state of its own; rendered: two scenes drawn, so scene 12 is next.
    const saved = source.position();
    expect(saved).toEqual([0, 1, 12]);
    const once = source.draw(4, Rng.fromSeed(5));
    source.seek(saved);
    const again = source.draw(4, Rng.fromSeed(5));
    expect(again.pixels.arraySync()).toEqual(once.pixels.arraySync());
    expect(source.position()).toEqual([0, 1, 14]);
    disposeBatch(once, again);
    pixels.dispose();
  });

  it('refuses a tower whose input size differs from the rendered frames', () => {
    expect(() => renderedBatches(settings, 32, 2, 10)).toThrow(InvalidArgumentError);
  });
});

describe('poolBatches and mixedBatches', () => {
  const pool = (value: number, frames: number, labelled: boolean) => {
    const pixels = tf.fill([frames, 4, 4, 3], value) as tf.Tensor4D;
    const labels = labelled
      ? {
          patchColour: tf.fill([frames, 1], value, 'int32') as tf.Tensor2D,
          patchShape: tf.fill([frames, 1], value, 'int32') as tf.Tensor2D,
          present: tf.fill([frames, PAIR_CLASSES], value) as tf.Tensor2D,
          cellPairs: tf.fill([frames, 4 * PAIR_CLASSES], value) as tf.Tensor2D,
        }
      : undefined;
    return { pixels, labels };
  };

  it('poolBatches gathers the rows the rng picks', () => {
    const pixels = tf.tensor4d(Array.from({ length: 5 * 3 }, (_, i) => Math.floor(i / 3)), [5, 1, 1, 3]);
    const batch = poolBatches(pixels).draw(4, Rng.fromSeed(9));
    const rng = Rng.fromSeed(9);
    const rows = Array.from({ length: 4 }, () => rng.int(5));
    expect(batch.pixels.arraySync().map((frame) => frame[0][0][0])).toEqual(rows);
    expect(batch.labels).toBeUndefined();
    disposeBatch(batch);
    pixels.dispose();
  });

  it('mixedBatches splits a batch between its sources in order, earlier sources taking the remainder', () => {
    const a = pool(1, 3, true);
    const b = pool(2, 3, true);
    const batch = mixedBatches([poolBatches(a.pixels, a.labels), poolBatches(b.pixels, b.labels)]).draw(5, Rng.fromSeed(0));
    expect(batch.pixels.arraySync().map((frame) => frame[0][0][0])).toEqual([1, 1, 1, 2, 2]);
    expect(batch.labels!.present.arraySync().map((row) => row[0])).toEqual([1, 1, 1, 2, 2]);
    expect(batch.labels!.patchShape.shape).toEqual([5, 1]);
    expect(batch.labels!.cellPairs.arraySync().map((row) => row[0])).toEqual([1, 1, 1, 2, 2]);
    disposeBatch(batch);
    // A source without labels makes the whole batch unlabelled (the label losses need every row).
    const c = pool(3, 2, false);
    const unlabelled = mixedBatches([poolBatches(a.pixels, a.labels), poolBatches(c.pixels)]).draw(2, Rng.fromSeed(0));
    expect(unlabelled.labels).toBeUndefined();
    disposeBatch(unlabelled, a, b, c);
    expect(() => mixedBatches([])).toThrow(InvalidArgumentError);
  });
});
