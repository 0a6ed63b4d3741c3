/**
 * Seeded, counter-based randomness (Philox4x32-10, Salmon et al. 2011). Numbers are a pure function of
 * (seed, stream, counter), computed in JavaScript integer arithmetic, so the same seed gives bit-identical Gumbel
 * noise on every backend, and a generator's whole state is two numbers that a checkpoint can store.
 */
import * as tf from '@tensorflow/tfjs-core';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High and low 32 bits of a 32×32-bit product, exactly (doubles lose bits past 2^53). */
function mulHiLo(a: number, b: number): [number, number] {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
  return [hi, Math.imul(a, b) >>> 0];
}

/** Philox4x32 with 10 rounds: four 32-bit outputs for one 128-bit counter and 64-bit key. */
export function philox4x32(counter: readonly [number, number, number, number], key: readonly [number, number]): Uint32Array {
  let [c0, c1, c2, c3] = counter.map((c) => c >>> 0) as [number, number, number, number];
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    const [hi0, lo0] = mulHiLo(M0, c0);
    const [hi1, lo1] = mulHiLo(M1, c2);
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

/** FNV-1a of a stream name, so `fork('gumbel')` is stable across runs and code versions. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The state a checkpoint stores to resume a generator exactly. */
export interface RngState {
  seed: number;
  stream: number;
  counter: number;
}

/** A seeded random source. Every draw advances `counter`; equal states give equal draws. */
export class Rng {
  private constructor(
    readonly seed: number,
    readonly stream: number,
    private counter: number,
  ) {}

  static fromSeed(seed: number): Rng {
    return new Rng(seed >>> 0, 0, 0);
  }

  static fromState(state: RngState): Rng {
    return new Rng(state.seed >>> 0, state.stream >>> 0, state.counter);
  }

  state(): RngState {
    return { seed: this.seed, stream: this.stream, counter: this.counter };
  }

  /** An independent generator for a named purpose; it does not advance this one. */
  fork(name: string): Rng {
    return new Rng(this.seed, (Math.imul(this.stream ^ 0x5bd1e995, 0x01000193) ^ hashName(name)) >>> 0, 0);
  }

  /** `n` raw 32-bit words. */
  uint32(n: number): Uint32Array {
    const out = new Uint32Array(n);
    const key: [number, number] = [this.seed, this.stream];
    for (let i = 0; i < n; i += 4) {
      const c = this.counter++;
      const block = philox4x32([c % 0x100000000, Math.floor(c / 0x100000000), 0, 0], key);
      out.set(block.subarray(0, Math.min(4, n - i)), i);
    }
    return out;
  }

  /** `n` floats uniform in the open interval (0, 1), float32-exact (24 bits). */
  uniformArray(n: number): Float32Array {
    const words = this.uint32(n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = ((words[i] >>> 8) + 0.5) / 16777216;
    return out;
  }

  /** `n` standard normal floats (Box–Muller). */
  normalArray(n: number): Float32Array {
    const u = this.uniformArray(n + (n % 2));
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(u[i]));
      const a = 2 * Math.PI * u[i + 1];
      out[i] = r * Math.cos(a);
      if (i + 1 < n) out[i + 1] = r * Math.sin(a);
    }
    return out;
  }

  /** `n` standard Gumbel(0, 1) floats, `-log(-log(u))`, as torch's gumbel_softmax draws them. */
  gumbelArray(n: number): Float32Array {
    const u = this.uniformArray(n);
    for (let i = 0; i < n; i++) u[i] = -Math.log(-Math.log(u[i]));
    return u;
  }

  /** An integer uniform in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniformArray(1)[0] * n);
  }

  /** A Fisher–Yates shuffle of `items`, returned as a new array. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  uniform(shape: number[]): tf.Tensor {
    return tf.tensor(this.uniformArray(shape.reduce((a, b) => a * b, 1)), shape, 'float32');
  }

  normal(shape: number[], std = 1): tf.Tensor {
    const values = this.normalArray(shape.reduce((a, b) => a * b, 1));
    if (std !== 1) for (let i = 0; i < values.length; i++) values[i] *= std;
    return tf.tensor(values, shape, 'float32');
  }

  gumbel(shape: number[]): tf.Tensor {
    return tf.tensor(this.gumbelArray(shape.reduce((a, b) => a * b, 1)), shape, 'float32');
  }
}
