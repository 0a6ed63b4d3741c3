import { describe, expect, it } from 'vitest';
import { selectionLines } from './selection-lines.js';

describe('selectionLines (ask --show-frames)', () => {
  it('names the kept frames with their times, weights and merges, out of the frames sampled', () => {
    const selection = {
      // K = 3 queries over T = 5 frames; two queries picked frame 3, so the merge joined them.
      frameWeights: [
        [0, 0, 0, 0.97, 0.03],
        [0, 0, 0, 0.91, 0.09],
        [0.6, 0.4, 0, 0, 0],
      ],
      frames: [
        { frameIndex: 0, timestampSec: 0.5, weight: 0.6, mergedQueries: [2] },
        { frameIndex: 3, timestampSec: 3.5, weight: 0.94, mergedQueries: [0, 1] },
      ],
      visualTokens: 8,
      promptTokens: 40,
      framesRead: 2,
    };
    expect(selectionLines(selection, 'frames.png')).toBe(
      'frames: 3 selection queries kept 2 of 5 sampled: 0.5 s (weight 0.60), 3.5 s (weight 0.94, 2 queries merged); 8 visual tokens\ncontact sheet: frames.png\n',
    );
  });
});
