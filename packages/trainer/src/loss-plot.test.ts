import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { CURVE_RGB, plotPoint, renderLossCurve } from './loss-plot.js';

const layout = { width: 120, height: 80, margin: 10 };
const rgbAt = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));

describe('renderLossCurve', () => {
  const values = [4, 3, 2.5, 2, 1.8, 1.7];
  const png = PNG.sync.read(renderLossCurve(values, layout));

  it('decodes to the requested size', () => {
    expect([png.width, png.height]).toEqual([120, 80]);
  });

  it('draws black axes along the bottom and the left of the box', () => {
    expect(rgbAt(png, 60, 80 - 10 - 1)).toEqual([0, 0, 0]);
    expect(rgbAt(png, 10, 40)).toEqual([0, 0, 0]);
    expect(rgbAt(png, 5, 5)).toEqual([255, 255, 255]);
  });

  it('puts the first (largest) loss at the top left and the last (smallest) at the bottom right', () => {
    const first = plotPoint(values, 0, layout);
    const last = plotPoint(values, values.length - 1, layout);
    expect(first).toEqual([11, 10]);
    expect(last).toEqual([120 - 10 - 1, 80 - 10 - 2]);
    expect(rgbAt(png, ...first)).toEqual([...CURVE_RGB]);
    expect(rgbAt(png, ...last)).toEqual([...CURVE_RGB]);
  });

  it('joins the points: every column between the first and last point holds a curve pixel', () => {
    for (let x = 11; x <= 109; x++) {
      let found = false;
      for (let y = 0; y < 80; y++) if (rgbAt(png, x, y).join() === CURVE_RGB.join()) found = true;
      expect(found, `column ${x}`).toBe(true);
    }
  });

  it('rejects a curve without finite values', () => {
    expect(() => renderLossCurve([Number.NaN])).toThrow(/finite/);
  });
});
