import { createSession, ort } from './session.js';
import { encodeModel } from './serialize.js';
import type { GraphBuilder } from './graph-builder.js';

/** Runs a built graph once in onnxruntime (single thread, tests share the machine); returns outputs by name. */
export async function runGraph(g: GraphBuilder, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await createSession(encodeModel(g), { threads: 1, thread: 'main' });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export function f32(data: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

export function i64(data: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(data), (v) => BigInt(v)), dims);
}

/** Deterministic values in (−1, 1) (a fixed LCG), so tests need no RNG state. */
export function pseudoRandom(n: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
