/** A hand-made scene for the frame-label tests here and in @bvllm/bvllm-tiny (not exported from the package). */
import type { Scene } from '../scene.js';

/** 4 s at 4 fps (16 frames), 64 px, three objects whose patches and cells the tests work out by hand. */
export const testScene: Scene = {
  size: 64,
  fps: 4,
  durationSec: 4,
  numFrames: 16,
  background: [24, 24, 24],
  objects: [
    // Centred in patch (row 0, col 0) of the 4×4 grid.
    { shape: 'square', colour: 'red', radiusPx: 6, startSec: 0, endSec: 4, from: { x: 8, y: 8 }, to: { x: 8, y: 8 } },
    // Moves right along row 2, from column 0 to column 3.
    { shape: 'cross', colour: 'blue', radiusPx: 6, startSec: 0, endSec: 4, from: { x: 8, y: 40 }, to: { x: 56, y: 40 } },
    // Visible in the first second only.
    { shape: 'triangle', colour: 'yellow', radiusPx: 6, startSec: 0, endSec: 1, from: { x: 40, y: 8 }, to: { x: 40, y: 8 } },
  ],
};
