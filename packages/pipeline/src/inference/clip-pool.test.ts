import { describe, expect, it } from 'vitest';
import { BvllmError } from '@bvllm/core';
import { preprocessClip, preprocessOptionsSchema } from '@bvllm/vision-encoder';
import { ClipPool } from './clip-pool.js';

/** A deterministic RGB frame with edges and gradients (a flat one would hide tap errors). */
function frame(width: number, height: number, seed: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) rgb[(y * width + x) * 3 + c] = (x * (c + 1) + y * 3 + seed * 17 + ((x ^ y) & 32 ? 90 : 0)) & 255;
  return rgb;
}

/** Worst delay of a 5 ms interval while `work` runs: how long the event loop was held. */
async function worstTimerLag(work: () => Promise<unknown>): Promise<number> {
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last - 5);
}

describe('ClipPool', () => {
  it('gives preprocessClip’s pixels bit for bit (spec §1.0 image preprocessor), for each aspect mode and odd sizes', async () => {
    const pool = new ClipPool(2);
    try {
      for (const [w, h, input] of [
        [640, 360, {}],
        [97, 131, { shortestEdge: 64, cropSize: 64 }],
        [320, 200, { aspect: 'pad' as const, shortestEdge: 224, cropSize: 224 }],
      ] as const) {
        const options = preprocessOptionsSchema.parse(input);
        const frames = [0, 1, 2].map((seed) => frame(w, h, seed));
        const expected = frames.map((rgb) => preprocessClip(rgb, w, h, options));
        const batch = await pool.preprocessBatch(frames.map((f) => f.slice()), w, h, options);
        const s = options.cropSize;
        expect(batch.length).toBe(3 * s * s * 3);
        expected.forEach((pixels, i) => expect(batch.subarray(i * s * s * 3, (i + 1) * s * s * 3)).toEqual(pixels));
      }
    } finally {
      await pool.close();
    }
  });

  it('keeps the event loop free while it resizes 1080p frames (issue #20 item 2), unlike the inline resize', async () => {
    const pool = new ClipPool(1);
    const options = preprocessOptionsSchema.parse({});
    const frames = [0, 1, 2, 3].map((seed) => frame(1920, 1080, seed));
    try {
      await pool.preprocess(frame(64, 64, 0), 64, 64, preprocessOptionsSchema.parse({ shortestEdge: 32, cropSize: 32 }));
      const inline = await worstTimerLag(async () => {
        for (const rgb of frames) {
          preprocessClip(rgb, 1920, 1080, options);
          await new Promise((r) => setImmediate(r));
        }
      });
      const pooled = await worstTimerLag(() => pool.preprocessBatch(frames, 1920, 1080, options));
      console.log(`worst event-loop stall, 4 × 1080p CLIP resize: inline ${inline.toFixed(1)} ms, on the pool ${pooled.toFixed(1)} ms`);
      // One frame inline holds the loop for its whole resize; the pool's share is the message copies.
      expect(pooled).toBeLessThan(inline / 2);
    } finally {
      await pool.close();
    }
  });

  it('rejects a wrong-sized frame with a typed error and keeps serving', async () => {
    const pool = new ClipPool(1);
    const options = preprocessOptionsSchema.parse({ shortestEdge: 32, cropSize: 32 });
    try {
      const error = await pool.preprocess(new Uint8Array(10), 64, 64, options).catch((e: unknown) => e);
      expect(BvllmError.isInstance(error) && error.code).toBe('VIDEO_ENCODE');
      expect((error as Error).message).toContain('64×64×3');
      const rgb = frame(64, 64, 1);
      expect(await pool.preprocess(rgb.slice(), 64, 64, options)).toEqual(preprocessClip(rgb, 64, 64, options));
    } finally {
      await pool.close();
    }
  });
});
