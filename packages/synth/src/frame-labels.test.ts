import { renderFrame } from './render.js';
import { COLOURS, PALETTE, SHAPES } from './vocabulary.js';
import { describe, expect, it } from 'vitest';
import { CELL_GRID, PAIR_CLASSES, frameLabels } from './frame-labels.js';
import { testScene as scene } from './testing/test-scene.js';

describe('frameLabels', () => {
  it("agrees with the renderer's pixels: a patch is labelled with the colour covering most of it (≥ 8%)", () => {
    for (const frame of [0, 8, 15]) {
      const rgb = renderFrame(scene, frame);
      const { patchColour } = frameLabels(scene, frame, 4);
      for (let p = 0; p < 16; p++) {
        const counts = new Map<number, number>();
        for (let y = Math.floor(p / 4) * 16; y < Math.floor(p / 4) * 16 + 16; y++)
          for (let x = (p % 4) * 16; x < (p % 4) * 16 + 16; x++) {
            const i = (y * 64 + x) * 3;
            const colour = COLOURS.findIndex((c) => PALETTE[c].every((v, k) => v === rgb[i + k]));
            if (colour >= 0) counts.set(colour, (counts.get(colour) ?? 0) + 1);
          }
        const [best, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [-1, 0];
        expect(patchColour[p]).toBe(n >= 0.08 * 256 ? 1 + best : 0);
      }
    }
  });

  it('names shapes per patch and the visible colour–shape pairs, by hand', () => {
    const first = frameLabels(scene, 0, 4);
    const last = frameLabels(scene, 15, 4);
    expect(first.patchShape[0]).toBe(1 + SHAPES.indexOf('square'));
    expect(first.patchShape[2]).toBe(1 + SHAPES.indexOf('triangle'));
    expect(first.patchShape[8]).toBe(1 + SHAPES.indexOf('cross'));
    expect(last.patchShape[2]).toBe(0);
    expect(last.patchShape[11]).toBe(1 + SHAPES.indexOf('cross'));
    const pair = (colour: (typeof COLOURS)[number], shape: (typeof SHAPES)[number]) => COLOURS.indexOf(colour) * SHAPES.length + SHAPES.indexOf(shape);
    const on = (labels: Float32Array) => [...labels.keys()].filter((i) => labels[i] === 1).sort((a, b) => a - b);
    expect(first.present).toHaveLength(PAIR_CLASSES);
    expect(on(first.present)).toEqual([pair('red', 'square'), pair('blue', 'cross'), pair('yellow', 'triangle')].sort((a, b) => a - b));
    expect(on(last.present)).toEqual([pair('red', 'square'), pair('blue', 'cross')].sort((a, b) => a - b));
  });

  it('puts each visible pair in the 2 × 2 cell holding its centre (the label tokens), by hand', () => {
    const pair = (colour: (typeof COLOURS)[number], shape: (typeof SHAPES)[number]) => COLOURS.indexOf(colour) * SHAPES.length + SHAPES.indexOf(shape);
    const cells = (frame: number) => {
      const { cellPairs } = frameLabels(scene, frame, 4);
      expect(cellPairs).toHaveLength(CELL_GRID * CELL_GRID * PAIR_CLASSES);
      return [0, 1, 2, 3].map((c) => [...cellPairs.subarray(c * PAIR_CLASSES, (c + 1) * PAIR_CLASSES).keys()].filter((i) => cellPairs[c * PAIR_CLASSES + i] === 1));
    };
    // Frame 0: red square at (8, 8) → top left; yellow triangle at (40, 8) → top right; blue cross at (8, 40) → bottom left.
    expect(cells(0)).toEqual([[pair('red', 'square')], [pair('yellow', 'triangle')], [pair('blue', 'cross')], []]);
    // Frame 15 (3.75 s): the triangle is gone and the cross has moved to x = 8 + 48 · 3.75 / 4 = 53 → bottom right.
    expect(cells(15)).toEqual([[pair('red', 'square')], [], [], [pair('blue', 'cross')]]);
  });
});
