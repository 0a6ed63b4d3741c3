import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { GLYPH_HEIGHT, drawText, textWidth } from './bitmap-font.js';
import { CURVE_RGB, lossTicks, plotBox, plotPoint, renderLossCurve, stepTicks, tickLabel } from './loss-plot.js';

const layout = { width: 240, height: 160, margin: 8 };
const rgbAt = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));
const isBlack = (png: PNG, x: number, y: number) => rgbAt(png, x, y).join() === '0,0,0';

/**
 * Where `text` appears in `png` inside the region (its top-left corners searched): the glyphs' pixels black and every
 * other pixel of their bounding box white, or undefined.
 */
function findText(png: PNG, text: string, region: { x0: number; x1: number; y0: number; y1: number }): [number, number] | undefined {
  const on = new Set<string>();
  drawText(text, 0, 0, (x, y) => on.add(`${x},${y}`));
  for (let y = region.y0; y <= region.y1; y++)
    for (let x = region.x0; x <= region.x1; x++) {
      let match = true;
      for (let dy = 0; dy < GLYPH_HEIGHT && match; dy++)
        for (let dx = 0; dx < textWidth(text) && match; dx++) {
          const black = isBlack(png, x + dx, y + dy);
          if (black !== on.has(`${dx},${dy}`) || (!black && rgbAt(png, x + dx, y + dy).join() !== '255,255,255')) match = false;
        }
      if (match) return [x, y];
    }
  return undefined;
}

describe('renderLossCurve', () => {
  const values = [4, 3, 2.5, 2, 1.8, 1.7];
  const png = PNG.sync.read(renderLossCurve(values, layout));
  const box = plotBox(layout);

  it('decodes to the requested size', () => {
    expect([png.width, png.height]).toEqual([240, 160]);
  });

  it('draws black axes along the bottom and the left of the box', () => {
    for (let x = box.x0 - 1; x <= box.x1; x++) expect(isBlack(png, x, box.y1 + 1), `x ${x}`).toBe(true);
    for (let y = box.y0; y <= box.y1 + 1; y++) expect(isBlack(png, box.x0 - 1, y), `y ${y}`).toBe(true);
    expect(rgbAt(png, layout.width - 2, 2)).toEqual([255, 255, 255]);
  });

  it('labels five y ticks with loss values from the smallest to the largest, left of the axis at their heights', () => {
    const ticks = lossTicks(values);
    // 1.7 + 2.3·t/4: 2.275 and 3.425 are 2.27499… and 3.42499… in binary, so three digits round them down.
    expect(ticks.map(tickLabel)).toEqual(['1.7', '2.27', '2.85', '3.42', '4']);
    for (const v of ticks) {
      const [, ty] = plotPoint([v, ...values], 0, layout);
      // The tick mark, and its label centred on it in the gutter.
      expect(isBlack(png, box.x0 - 3, ty)).toBe(true);
      const at = findText(png, tickLabel(v), { x0: 0, x1: box.x0 - 2 - textWidth(tickLabel(v)), y0: ty - GLYPH_HEIGHT, y1: ty });
      expect(at, `label ${tickLabel(v)}`).toBeDefined();
    }
  });

  it('labels the x ticks with update numbers, first and last included, below the axis', () => {
    expect(stepTicks(values.length).map((i) => i + 1)).toEqual([1, 2, 4, 5, 6]);
    for (const i of stepTicks(values.length)) {
      const [tx] = plotPoint(values, i, layout);
      expect(isBlack(png, tx, box.y1 + 3)).toBe(true);
      expect(findText(png, String(i + 1), { x0: tx - 8, x1: tx + 2, y0: box.y1 + 2, y1: box.y1 + 10 }), `step ${i + 1}`).toBeDefined();
    }
  });

  it('titles the axes "loss" (above the y axis) and "step" (below the x axis)', () => {
    expect(findText(png, 'loss', { x0: 0, x1: box.x0, y0: 0, y1: box.y0 - GLYPH_HEIGHT })).toBeDefined();
    expect(findText(png, 'step', { x0: box.x0, x1: layout.width - textWidth('step'), y0: box.y1 + 10, y1: layout.height - GLYPH_HEIGHT })).toBeDefined();
  });

  it('puts the first (largest) loss at the top left and the last (smallest) at the bottom right', () => {
    const first = plotPoint(values, 0, layout);
    const last = plotPoint(values, values.length - 1, layout);
    expect(first).toEqual([box.x0, box.y0]);
    expect(last).toEqual([box.x1, box.y1]);
    expect(rgbAt(png, ...first)).toEqual([...CURVE_RGB]);
    expect(rgbAt(png, ...last)).toEqual([...CURVE_RGB]);
  });

  it('joins the points: every column between the first and last point holds a curve pixel', () => {
    for (let x = box.x0; x <= box.x1; x++) {
      let found = false;
      for (let y = 0; y < layout.height; y++) if (rgbAt(png, x, y).join() === CURVE_RGB.join()) found = true;
      expect(found, `column ${x}`).toBe(true);
    }
  });

  it('labels a flat curve with its one value, and refuses a curve without finite values or a layout too small for labels', () => {
    const flat = PNG.sync.read(renderLossCurve([0.5, 0.5, Number.NaN], layout));
    expect(lossTicks([0.5, 0.5])).toEqual([0.5]);
    expect(findText(flat, '0.5', { x0: 0, x1: box.x0, y0: box.y0, y1: box.y1 })).toBeDefined();
    expect(() => renderLossCurve([Number.NaN])).toThrow(/finite/);
    expect(() => renderLossCurve([1, 2], { width: 60, height: 40, margin: 4 })).toThrow(/no room/);
  });
});
