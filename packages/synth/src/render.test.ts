import { describe, expect, it } from 'vitest';
import { renderFrame, renderVideoFrames, shapeContains } from './render.js';
import type { Scene } from './scene.js';
import { PALETTE } from './vocabulary.js';
import { pixelAt } from './testing/decode-rgb.js';

const BG = [24, 24, 24] as const;

// A hand-made scene: a still red square for 1 s, a blue circle moving right from x=10 to x=50 over 2 s,
// and a green triangle from 1.5 s to the end. 4 fps, 3 s, 64 px.
const scene: Scene = {
  size: 64,
  fps: 4,
  durationSec: 3,
  numFrames: 12,
  background: BG,
  objects: [
    { shape: 'square', colour: 'red', radiusPx: 6, startSec: 0, endSec: 1, from: { x: 16, y: 16 }, to: { x: 16, y: 16 } },
    { shape: 'circle', colour: 'blue', radiusPx: 5, startSec: 0.5, endSec: 2.5, from: { x: 10, y: 48 }, to: { x: 50, y: 48 } },
    { shape: 'triangle', colour: 'green', radiusPx: 7, startSec: 1.5, endSec: 3, from: { x: 48, y: 16 }, to: { x: 48, y: 16 } },
  ],
};

describe('renderFrame', () => {
  const frames = renderVideoFrames(scene);

  it('renders numFrames packed RGB frames of size × size', () => {
    expect(frames).toHaveLength(12);
    for (const f of frames) expect(f.length).toBe(64 * 64 * 3);
  });

  it('draws the still square exactly in frames 0–3 (t < 1 s) and background afterwards', () => {
    for (let i = 0; i < 12; i++) {
      const expected = i < 4 ? PALETTE.red : BG;
      expect(pixelAt(frames[i], 64, 16, 16)).toEqual([...expected]);
    }
  });

  it('moves the circle: centre at x = 10 + 20·(t − 0.5) while 0.5 ≤ t < 2.5', () => {
    for (let i = 2; i < 10; i++) {
      const x = 10 + 20 * (i / 4 - 0.5);
      expect(pixelAt(frames[i], 64, x, 48)).toEqual([...PALETTE.blue]);
    }
    // Before it appears and after it leaves, its path is background.
    expect(pixelAt(frames[1], 64, 10, 48)).toEqual([...BG]);
    expect(pixelAt(frames[10], 64, 50, 48)).toEqual([...BG]);
    // At frame 2 (t = 0.5 s) it sits at x = 10: x = 30 is still background.
    expect(pixelAt(frames[2], 64, 30, 48)).toEqual([...BG]);
  });

  it('shows the triangle from frame 6 (t = 1.5 s) to the end', () => {
    for (let i = 0; i < 12; i++) expect(pixelAt(frames[i], 64, 48, 16)).toEqual([...(i >= 6 ? PALETTE.green : BG)]);
  });

  it('leaves the corners as background and draws nothing but palette colours', () => {
    const allowed = new Set([BG, PALETTE.red, PALETTE.blue, PALETTE.green].map((c) => c.join(',')));
    for (const f of frames) {
      expect(pixelAt(f, 64, 0, 0)).toEqual([...BG]);
      expect(pixelAt(f, 64, 63, 63)).toEqual([...BG]);
      for (let p = 0; p < f.length; p += 3) expect(allowed.has(`${f[p]},${f[p + 1]},${f[p + 2]}`)).toBe(true);
    }
  });

  it('fills about πr² pixels for a circle and 1.6²r² for a square', () => {
    const countColour = (frame: Uint8Array, rgb: readonly number[]) => {
      let n = 0;
      for (let p = 0; p < frame.length; p += 3) if (frame[p] === rgb[0] && frame[p + 1] === rgb[1] && frame[p + 2] === rgb[2]) n++;
      return n;
    };
    expect(countColour(frames[0], PALETTE.red)).toBe(100); // side 2·0.8·6 = 9.6 px → 10×10 pixel centres
    expect(Math.abs(countColour(frames[4], PALETTE.blue) - Math.PI * 25)).toBeLessThan(8);
  });

  it('is pure: the same scene and index give the same bytes', () => {
    expect(renderFrame(scene, 5)).toEqual(frames[5]);
  });
});

describe('shapeContains', () => {
  it('matches hand-checked points for every shape', () => {
    expect(shapeContains('circle', 3, 4, 5)).toBe(true);
    expect(shapeContains('circle', 3.1, 4, 5)).toBe(false);
    expect(shapeContains('square', 3.9, -3.9, 5)).toBe(true);
    expect(shapeContains('square', 4.1, 0, 5)).toBe(false);
    expect(shapeContains('triangle', 0, -4.9, 5)).toBe(true); // near the apex
    expect(shapeContains('triangle', 2, -4, 5)).toBe(false); // beside the apex
    expect(shapeContains('triangle', 4.9, 3.7, 5)).toBe(true); // base corner
    expect(shapeContains('cross', 4.9, 1.6, 5)).toBe(true); // arm
    expect(shapeContains('cross', 3, 3, 5)).toBe(false); // between arms
    expect(shapeContains('diamond', 2.8, 2.8, 5)).toBe(true);
    expect(shapeContains('diamond', 3, 3, 5)).toBe(false);
  });
});
