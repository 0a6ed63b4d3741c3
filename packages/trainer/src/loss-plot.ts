/**
 * The loss curve as a PNG, drawn pixel by pixel (no plotting dependency): white background, black axes with five
 * labelled ticks on each (loss values on the left, update numbers below), the axis titles "loss" and "step", and the
 * curve in blue joining one point per optimizer update.
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { InvalidArgumentError } from '@bvllm/core';
import { GLYPH_HEIGHT, drawText, textWidth } from './bitmap-font.js';

export interface PlotLayout {
  width: number;
  height: number;
  /** Blank border around the axes (and their labels), in pixels. */
  margin: number;
}

export const CURVE_RGB = [31, 119, 180] as const;
const AXIS_RGB = [0, 0, 0] as const;
/** Ticks per axis, the ends included. */
const TICKS = 5;
const TICK_LENGTH = 4;
/** Room left of the y axis for tick labels of up to 7 characters, and below the x axis for a label row and the title. */
const LEFT_GUTTER = 7 * 6 + TICK_LENGTH + 3;
const BOTTOM_GUTTER = TICK_LENGTH + 2 + GLYPH_HEIGHT + 3 + GLYPH_HEIGHT;

/** The axes box in pixels: x from `x0` to `x1`, y from `y0` (top) to `y1` (bottom), inside the margin and label gutters. */
export function plotBox(layout: PlotLayout): { x0: number; x1: number; y0: number; y1: number } {
  return { x0: layout.margin + LEFT_GUTTER + 1, x1: layout.width - layout.margin - 1, y0: layout.margin + GLYPH_HEIGHT + 3, y1: layout.height - layout.margin - BOTTOM_GUTTER - 2 };
}

/** A tick value in at most three significant digits: 2.35, 0.0123, 12300, 1.23e-7. */
export function tickLabel(value: number): string {
  return String(Number(value.toPrecision(3)));
}

/** The y ticks: `TICKS` evenly spaced loss values from the smallest to the largest finite one. */
export function lossTicks(values: readonly number[]): number[] {
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  return hi === lo ? [lo] : Array.from({ length: TICKS }, (_, t) => lo + ((hi - lo) * t) / (TICKS - 1));
}

/** The x ticks: indices of updates (0-based) spread over the run, first and last included, no repeats. */
export function stepTicks(count: number): number[] {
  return [...new Set(Array.from({ length: TICKS }, (_, t) => Math.round(((count - 1) * t) / (TICKS - 1))))];
}

/** Pixel of point `i` of `values` inside the axes box; y is flipped (larger loss → higher on the image). */
export function plotPoint(values: readonly number[], i: number, layout: PlotLayout): [number, number] {
  const finite = values.filter(Number.isFinite);
  return pixelOf(i, values[i]!, values.length, Math.min(...finite), Math.max(...finite), layout);
}

function pixelOf(i: number, value: number, count: number, lo: number, hi: number, layout: PlotLayout): [number, number] {
  const { x0, x1, y0, y1 } = plotBox(layout);
  const x = count === 1 ? x0 : x0 + Math.round(((x1 - x0) * i) / (count - 1));
  const y = y1 - Math.round(((y1 - y0) * (value - lo)) / (hi - lo || 1));
  return [x, y];
}

/** Encodes the curve of `values` (one loss per update) as PNG bytes. Non-finite values are left out. */
export function renderLossCurve(values: readonly number[], layout: PlotLayout = { width: 640, height: 360, margin: 16 }): Buffer {
  if (!values.some(Number.isFinite)) throw new InvalidArgumentError('values', 'the loss curve needs at least one finite value');
  const { width, height } = layout;
  const box = plotBox(layout);
  if (box.x1 - box.x0 < 8 || box.y1 - box.y0 < 8) throw new InvalidArgumentError('layout', `${width}×${height} leaves no room for the axes and their labels`);
  const png = new PNG({ width, height });
  png.data.fill(255);
  const set = (x: number, y: number, rgb: readonly number[] = AXIS_RGB) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (y * width + x) * 4;
    png.data[o] = rgb[0]!;
    png.data[o + 1] = rgb[1]!;
    png.data[o + 2] = rgb[2]!;
    png.data[o + 3] = 255;
  };
  const finite = values.filter(Number.isFinite);
  const [lo, hi] = [Math.min(...finite), Math.max(...finite)];
  // Axes one pixel outside the box, so the curve never covers them.
  const originX = box.x0 - 1;
  const originY = box.y1 + 1;
  for (let x = originX; x <= box.x1; x++) set(x, originY);
  for (let y = box.y0; y <= originY; y++) set(originX, y);
  for (const v of lossTicks(values)) {
    const [, ty] = pixelOf(0, v, values.length, lo, hi, layout);
    for (let d = 1; d <= TICK_LENGTH; d++) set(originX - d, ty);
    const label = tickLabel(v);
    drawText(label, originX - TICK_LENGTH - 2 - textWidth(label), ty - (GLYPH_HEIGHT >> 1), set);
  }
  for (const i of stepTicks(values.length)) {
    const [tx] = pixelOf(i, lo, values.length, lo, hi, layout);
    for (let d = 1; d <= TICK_LENGTH; d++) set(tx, originY + d);
    const label = String(i + 1);
    drawText(label, Math.min(tx - (textWidth(label) >> 1), width - layout.margin - textWidth(label)), originY + TICK_LENGTH + 2, set);
  }
  drawText('loss', originX - (textWidth('loss') >> 1), layout.margin, set);
  drawText('step', box.x1 - textWidth('step'), height - layout.margin - GLYPH_HEIGHT, set);
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
