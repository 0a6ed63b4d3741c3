import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { preprocessClip, preprocessOptionsSchema, resizeAndCrop, resizeBicubic } from './preprocess.js';

const fixture = new URL('../../../../shared/fixtures/clip-preprocess/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('expected.json', fixture), 'utf8')) as {
  images: Record<string, { width: number; height: number }>;
  cases: Record<string, {
    image: string; pad_to_square_first: boolean; shortest_edge: number; crop: [number, number]; resized_hw: [number, number];
    uint8_file: string; f32_file?: string; resized_uint8_file?: string; pixel_values_sum_per_channel: number[];
    pixel_values_abs_sum: number; samples?: { c: number; y: number; x: number; v: number }[];
  }>;
};
const bytes = (name: string) => new Uint8Array(readFileSync(new URL(name, fixture)));
const f32 = (name: string) => {
  const b = readFileSync(new URL(name, fixture));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};
const countDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((n, v, i) => n + (v !== b[i] ? 1 : 0), 0);

describe('CLIP preprocessing against the clip-preprocess fixture (spec §1.0)', () => {
  for (const [name, c] of Object.entries(expected.cases)) {
    it(`${name}: exact Pillow levels and pixel values within 1e-6`, () => {
      const { width, height } = expected.images[c.image];
      const rgb = bytes(c.image);
      const opts = preprocessOptionsSchema.parse({ shortestEdge: c.shortest_edge, cropSize: c.crop[0], aspect: c.pad_to_square_first ? 'pad' : 'square' });
      if (c.resized_uint8_file && !c.pad_to_square_first) {
        const [h, w] = c.resized_hw;
        const resized = resizeBicubic(rgb, width, height, w, h);
        expect(countDiff(resized, bytes(c.resized_uint8_file))).toBe(0);
      }
      const crop = resizeAndCrop(rgb, width, height, opts);
      const want = bytes(c.uint8_file);
      expect(crop.length).toBe(want.length);
      expect(countDiff(crop, want)).toBe(0);

      const pixels = preprocessClip(rgb, width, height, opts); // NHWC [S, S, 3]
      const s = c.crop[0];
      const at = (ch: number, y: number, x: number) => pixels[(y * s + x) * 3 + ch];
      let maxErr = 0;
      if (c.f32_file) {
        const chw = f32(c.f32_file);
        for (let ch = 0; ch < 3; ch++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++)
          maxErr = Math.max(maxErr, Math.abs(at(ch, y, x) - chw[(ch * s + y) * s + x]));
      }
      for (const p of c.samples ?? []) maxErr = Math.max(maxErr, Math.abs(at(p.c, p.y, p.x) - p.v));
      expect(maxErr).toBeLessThanOrEqual(1e-6);
      const sums = [0, 0, 0];
      let abs = 0;
      pixels.forEach((v, i) => {
        sums[i % 3] += v;
        abs += Math.abs(v);
      });
      sums.forEach((v, ch) => expect(Math.abs(v - c.pixel_values_sum_per_channel[ch])).toBeLessThan(1e-3));
      expect(Math.abs(abs - c.pixel_values_abs_sum)).toBeLessThan(1e-3);
    });
  }

  it('rejects a buffer of the wrong size', () => {
    expect(() => preprocessClip(new Uint8Array(10), 4, 4)).toThrow(/48 bytes, got 10/);
  });
});
