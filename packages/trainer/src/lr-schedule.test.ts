import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@bvllm/core';
import { LrSchedule, lrMultiplier, warmupStepsFor } from './lr-schedule.js';

// Values worked out by hand from HF transformers' optimization.py formulas (spec §2: warmup 0.03, linear / cosine).
describe('lr schedules (HF get_*_schedule_with_warmup)', () => {
  it('derives warm-up steps as ceil(total · ratio)', () => {
    expect(warmupStepsFor(100, 0.03)).toBe(3);
    expect(warmupStepsFor(1000, 0.03)).toBe(30);
    expect(warmupStepsFor(10, 0.03)).toBe(1); // ceil(0.3)
    expect(warmupStepsFor(10, 0)).toBe(0);
  });

  it('linear: ramps from 0, then decays to 0 at the last step', () => {
    // total 10, warmup 2: 0, 0.5, then (10 - s) / 8.
    const got = Array.from({ length: 11 }, (_, s) => lrMultiplier('linear', s, 2, 10));
    expect(got).toEqual([0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0]);
    expect(lrMultiplier('linear', 12, 2, 10)).toBe(0); // clamped past the end
  });

  it('cosine: half a cosine from 1 to 0 after warm-up', () => {
    // total 10, warmup 2: progress p = (s - 2) / 8, value 0.5 (1 + cos(π p)).
    expect(lrMultiplier('cosine', 0, 2, 10)).toBe(0);
    expect(lrMultiplier('cosine', 1, 2, 10)).toBe(0.5);
    expect(lrMultiplier('cosine', 2, 2, 10)).toBeCloseTo(1, 15);
    expect(lrMultiplier('cosine', 4, 2, 10)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 15); // p = 1/4
    expect(lrMultiplier('cosine', 6, 2, 10)).toBeCloseTo(0.5, 15); // p = 1/2
    expect(lrMultiplier('cosine', 10, 2, 10)).toBeCloseTo(0, 15);
  });

  it('no warm-up starts at the full rate', () => {
    expect(lrMultiplier('linear', 0, 0, 4)).toBe(1);
    expect(lrMultiplier('cosine', 0, 0, 4)).toBe(1);
    expect(lrMultiplier('constant', 3, 0, 4)).toBe(1);
  });

  it('LrSchedule scales the base lr (stage 2: 1e-4 cosine, warmup 0.03 over 100 steps → 3 warm-up steps)', () => {
    const s = new LrSchedule('cosine', 1e-4, 100, 0.03);
    expect(s.warmupSteps).toBe(3);
    expect(s.lrAt(0)).toBe(0);
    expect(s.lrAt(2)).toBeCloseTo((1e-4 * 2) / 3, 18);
    expect(s.lrAt(3)).toBeCloseTo(1e-4, 18);
    expect(s.lrAt(3 + 97 / 2)).toBeCloseTo(0.5e-4, 18);
  });

  it('rejects a non-positive run length and a ratio outside [0, 1]', () => {
    expect(() => new LrSchedule('linear', 1e-3, 0, 0.03)).toThrow(InvalidArgumentError);
    expect(() => new LrSchedule('linear', 1e-3, 10, 1.5)).toThrow(/warmupRatio/);
  });
});
