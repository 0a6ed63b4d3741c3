import { Rng, initBackend, layerNorm, matMulPlain, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TfjsFrameMix } from './modules.js';
import { createPatchStore, type PatchStore } from './patch-store.js';
import { framesToRead, readSelection } from './selection-read.js';

// spec §1.1 (a): X = W · LN_t(P); only frames with non-negligible weight are read back from the store.
const [t, k, n, c] = [40, 3, 4, 8];
let patches: Float32Array;
let gamma: tf.Tensor1D;
let beta: tf.Tensor1D;

beforeAll(async () => {
  await initBackend();
  const rng = Rng.fromSeed(11);
  const p = rng.normal([t, n, c], 3);
  patches = (await p.data()) as Float32Array;
  p.dispose();
  gamma = tf.add(rng.normal([c], 0.2), 1) as tf.Tensor1D;
  beta = rng.normal([c], 0.1) as tf.Tensor1D;
});

/** Softmax rows peaked on a few frames: most of the T columns are negligible, as on a long video. */
function peakedWeights(): Float32Array {
  const w = new Float32Array(k * t);
  const peaks = [[3, 4], [20], [33, 34, 35]];
  for (let q = 0; q < k; q++) {
    const logits = Array.from({ length: t }, (_, f) => (peaks[q]!.includes(f) ? 12 : 0) + 0.1 * Math.sin(f + q));
    const z = logits.reduce((s, v) => s + Math.exp(v), 0);
    logits.forEach((v, f) => (w[q * t + f] = Math.exp(v) / z));
  }
  return w;
}

/** The dense reference over every frame, as the tfjs stage computes it. */
function dense(w: Float32Array): Float32Array {
  return tf.tidy(() => {
    const normed = tf.reshape(layerNorm(tf.tensor3d(patches, [t, n, c]), gamma, beta, 1e-5), [t, n * c]) as tf.Tensor2D;
    return matMulPlain(tf.tensor2d(w, [k, t]), normed).dataSync() as Float32Array;
  });
}

/** A store that records which frames were read. */
function recording(): { store: PatchStore; reads: number[] } {
  const store = createPatchStore({ numPatches: n, width: c });
  store.append(patches);
  const reads: number[] = [];
  const read = store.read.bind(store);
  store.read = (frames) => (reads.push(...frames), read(frames));
  return { store, reads };
}

describe('readSelection', () => {
  it('reads only frames above ε, in chunks, within the documented bound of the dense result', async () => {
    const w = peakedWeights();
    const mix = new TfjsFrameMix(tf.clone(gamma), tf.clone(beta), 1e-5);
    const { store, reads } = recording();
    const eps = 1e-4;
    const out = await readSelection(w, k, store, mix, { epsilon: eps, chunkFrames: 2 });
    expect(out.framesRead).toEqual(framesToRead(w, k, t, eps));
    expect(out.framesRead).toEqual([3, 4, 20, 33, 34, 35]);
    expect(reads.sort((a, b) => a - b)).toEqual(out.framesRead);
    // |LN(p)_c| ≤ max|γ|·√(Cv − 1) + max|β|, so each row moves by at most its dropped mass times that.
    const bound = out.droppedMass * (Math.max(...Array.from(gamma.dataSync(), Math.abs)) * Math.sqrt(c - 1) + Math.max(...Array.from(beta.dataSync(), Math.abs)));
    expect(out.droppedMass).toBeGreaterThan(0);
    expect(out.droppedMass).toBeLessThan((t - 6) * eps);
    const ref = dense(w);
    const err = Math.max(...Array.from(out.selected, (v, i) => Math.abs(v - ref[i]!)));
    expect(err).toBeLessThanOrEqual(bound + 1e-6);
    store.close();
    await mix.release();
  });

  it('ε = 0 reads every weighted frame and equals the dense result; one-hot rows read only their frames', async () => {
    const w = peakedWeights();
    const mix = new TfjsFrameMix(tf.clone(gamma), tf.clone(beta), 1e-5);
    const { store } = recording();
    const exact = await readSelection(w, k, store, mix, { epsilon: 0 });
    expect(exact.framesRead).toHaveLength(t);
    expect(exact.droppedMass).toBe(0);
    const ref = dense(w);
    expect(Math.max(...Array.from(exact.selected, (v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(1e-5);
    const hot = new Float32Array(k * t);
    [7, 7, 30].forEach((f, q) => (hot[q * t + f] = 1));
    const picked = await readSelection(hot, k, store, mix, { epsilon: 0 });
    expect(picked.framesRead).toEqual([7, 30]);
    expect(Math.max(...Array.from(picked.selected, (v, i) => Math.abs(v - dense(hot)[i]!)))).toBe(0);
    store.close();
    await mix.release();
  });
});
