/**
 * The loss curve as a PNG, drawn pixel by pixel (no plotting dependency): white background, black axes with ten
 * ticks on each, the curve in blue joining one point per optimizer update.
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { InvalidArgumentError } from '@bvllm/core';

export interface PlotLayout {
  width: number;
  height: number;
  /** Blank border around the axes, in pixels. */
  margin: number;
}

export const CURVE_RGB = [31, 119, 180] as const;
const AXIS_RGB = [0, 0, 0] as const;

/** Pixel of point `i` of `values` inside the axes box; y is flipped (larger loss → higher on the image). */
export function plotPoint(values: readonly number[], i: number, layout: PlotLayout): [number, number] {
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const span = hi - lo || 1;
  const x0 = layout.margin + 1;
  const x1 = layout.width - layout.margin - 1;
  const y0 = layout.margin;
  const y1 = layout.height - layout.margin - 2;
  const x = values.length === 1 ? x0 : x0 + Math.round(((x1 - x0) * i) / (values.length - 1));
  const y = y1 - Math.round(((y1 - y0) * (values[i] - lo)) / span);
  return [x, y];
}

/** Encodes the curve of `values` (one loss per update) as PNG bytes. Non-finite values are left out. */
export function renderLossCurve(values: readonly number[], layout: PlotLayout = { width: 640, height: 360, margin: 24 }): Buffer {
  if (!values.some(Number.isFinite)) throw new InvalidArgumentError('values', 'the loss curve needs at least one finite value');
  const { width, height, margin } = layout;
  const png = new PNG({ width, height });
  png.data.fill(255);
  const set = (x: number, y: number, rgb: readonly number[]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (y * width + x) * 4;
    png.data[o] = rgb[0];
    png.data[o + 1] = rgb[1];
    png.data[o + 2] = rgb[2];
    png.data[o + 3] = 255;
  };
  const originX = margin;
  const originY = height - margin - 1;
  for (let x = originX; x < width - margin; x++) set(x, originY, AXIS_RGB);
  for (let y = margin; y <= originY; y++) set(originX, y, AXIS_RGB);
  for (let t = 0; t <= 10; t++) {
    const tx = originX + Math.round(((width - 2 * margin - 1) * t) / 10);
    const ty = originY - Math.round(((height - 2 * margin - 1) * t) / 10);
    for (let d = 1; d <= 4; d++) {
      set(tx, originY + d, AXIS_RGB);
      set(originX - d, ty, AXIS_RGB);
    }
  }
  // Bresenham between consecutive finite points.
  let previous: [number, number] | undefined;
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const p = plotPoint(values, i, layout);
    if (!previous) set(p[0], p[1], CURVE_RGB);
    else {
      let [x, y] = previous;
      const [x2, y2] = p;
      const dx = Math.abs(x2 - x);
      const dy = -Math.abs(y2 - y);
      const sx = x < x2 ? 1 : -1;
      const sy = y < y2 ? 1 : -1;
      let err = dx + dy;
      for (;;) {
        set(x, y, CURVE_RGB);
        if (x === x2 && y === y2) break;
        const e2 = 2 * err;
        if (e2 >= dy) {
          err += dy;
          x += sx;
        }
        if (e2 <= dx) {
          err += dx;
          y += sy;
        }
      }
    }
    previous = p;
  });
  return PNG.sync.write(png);
}

export function writeLossCurve(path: string, values: readonly number[], layout?: PlotLayout): void {
  writeFileSync(path, renderLossCurve(values, layout));
}
