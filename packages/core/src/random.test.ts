import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { philox4x32, Rng } from './random.js';

const hex = (words: Uint32Array) => Array.from(words, (w) => w.toString(16).padStart(8, '0'));

beforeAll(async () => {
  await initBackend();
});

describe('philox4x32 (Philox4x32-10)', () => {
  // Known-answer vectors from the kat_vectors file of the Random123 distribution (D. E. Shaw Research), as quoted in
  // DEShawResearch/fs123 core123/ut/ut_philox.cpp: counter words, key words → four output words.
  it.each([
    [[0, 0, 0, 0], [0, 0], ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], ['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], ['d16cfe09', '94fdcceb', '5001e420', '24126ea1']],
  ] as const)('counter %j key %j', (counter, key, expected) => {
    expect(hex(philox4x32(counter, key))).toEqual(expected);
  });
});

describe('Rng', () => {
  it('is Philox keyed by (seed, stream) over an incrementing counter', () => {
    const rng = Rng.fromSeed(7);
    const words = rng.uint32(8);
    expect(Array.from(words.subarray(0, 4))).toEqual(Array.from(philox4x32([0, 0, 0, 0], [7, 0])));
    expect(Array.from(words.subarray(4))).toEqual(Array.from(philox4x32([1, 0, 0, 0], [7, 0])));
    expect(rng.state()).toEqual({ seed: 7, stream: 0, counter: 2 });
  });

  it('equal seeds give equal draws; different seeds differ', () => {
    expect(Rng.fromSeed(3).uniformArray(10)).toEqual(Rng.fromSeed(3).uniformArray(10));
    expect(Rng.fromSeed(3).uniformArray(10)).not.toEqual(Rng.fromSeed(4).uniformArray(10));
  });

  it('resumes exactly from a saved state (through JSON, as a checkpoint stores it)', () => {
    const rng = Rng.fromSeed(11).fork('gumbel');
    rng.normalArray(7);
    const saved = JSON.parse(JSON.stringify(rng.state()));
    const continued = [rng.gumbelArray(9), rng.uniformArray(3), rng.shuffle([1, 2, 3, 4, 5])];
    const resumed = Rng.fromState(saved);
    expect([resumed.gumbelArray(9), resumed.uniformArray(3), resumed.shuffle([1, 2, 3, 4, 5])]).toEqual(continued);
  });

  it('forks are deterministic, independent of each other, and do not advance the parent', () => {
    const parent = Rng.fromSeed(5);
    const before = parent.state();
    const a = parent.fork('frame-select').uniformArray(4000);
    const b = parent.fork('spatial-sample').uniformArray(4000);
    expect(parent.state()).toEqual(before);
    expect(parent.fork('frame-select').uniformArray(4000)).toEqual(a);
    expect(a).not.toEqual(b);
    expect(parent.fork('frame-select').stream).not.toBe(parent.fork('frame-select').fork('frame-select').stream);
    // Uncorrelated streams: |Pearson r| of 4000 pairs stays well inside 5 standard errors (1/√4000 ≈ 0.016).
    const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
    const ma = mean(a);
    const mb = mean(b);
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let i = 0; i < a.length; i++) {
      sab += (a[i] - ma) * (b[i] - mb);
      saa += (a[i] - ma) ** 2;
      sbb += (b[i] - mb) ** 2;
    }
    expect(Math.abs(sab / Math.sqrt(saa * sbb))).toBeLessThan(0.08);
  });

  it('uniforms lie in the open interval (0, 1) with mean 1/2', () => {
    const u = Rng.fromSeed(1).uniformArray(100_000);
    expect(Math.min(...u)).toBeGreaterThan(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(u.reduce((s, v) => s + v, 0) / u.length).toBeCloseTo(0.5, 2);
  });

  it('Gumbel(0, 1) draws have mean ≈ Euler–Mascheroni γ and variance ≈ π²/6', () => {
    const n = 200_000;
    const g = Rng.fromSeed(2024).gumbelArray(n);
    let sum = 0;
    for (const v of g) sum += v;
    const mean = sum / n;
    let sq = 0;
    for (const v of g) sq += (v - mean) ** 2;
    // Standard error of the mean is (π/√6)/√n ≈ 0.0029; 0.015 is about five of them.
    expect(Math.abs(mean - 0.5772156649015329)).toBeLessThan(0.015);
    expect(Math.abs(sq / (n - 1) - Math.PI ** 2 / 6)).toBeLessThan(0.05);
  });

  it('normals have mean 0 and variance std²', () => {
    const x = Rng.fromSeed(9).normalArray(100_001);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.03);
    const scaled = Rng.fromSeed(9).normal([5, 7], 3);
    expect(Array.from(scaled.dataSync())).toEqual(Array.from(Rng.fromSeed(9).normalArray(35), (v) => Math.fround(v * 3)));
    scaled.dispose();
  });

  it('int covers [0, n) and shuffle is a permutation', () => {
    const rng = Rng.fromSeed(3);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 5000; i++) counts[rng.int(5)]++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = rng.shuffle(items);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((p, q) => p - q)).toEqual(items);
  });

  it('tensor draws match the array draws, and do not leak', () => {
    const g = Rng.fromSeed(4).gumbel([2, 3]);
    expect(g.shape).toEqual([2, 3]);
    expect(Array.from(g.dataSync())).toEqual(Array.from(Rng.fromSeed(4).gumbelArray(6)));
    g.dispose();
    const rng = Rng.fromSeed(4);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) tf.dispose([rng.uniform([3, 4]), rng.normal([3, 4], 2), rng.gumbel([3, 4])]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
