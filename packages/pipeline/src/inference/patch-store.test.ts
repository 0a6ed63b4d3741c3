import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, Rng, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FilePatches, createPatchStore } from './patch-store.js';

// issue #18 item 4: patches [T, N, Cv] in a bounded store; frame selection reads back only the frames it needs.
const [n, c] = [4, 6];
let frames: Float32Array;

beforeAll(async () => {
  await initBackend();
  const values = Rng.fromSeed(3).normal([10, n, c], 2);
  frames = (await values.data()) as Float32Array;
  values.dispose();
});

const frame = (t: number) => frames.subarray(t * n * c, (t + 1) * n * c);
const maxRel = (a: Float32Array, b: Float32Array) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!) / Math.max(1, Math.abs(b[i]!))));

describe('PatchStore', () => {
  it('in memory below the limit: exact, any order, repeats allowed', () => {
    const store = createPatchStore({ numPatches: n, width: c });
    store.append(frames.subarray(0, 4 * n * c));
    store.append(frames.subarray(4 * n * c));
    expect(store.location).toBe('memory');
    expect(store.numFrames).toBe(10);
    const read = store.read([7, 2, 7]);
    expect(Array.from(read.subarray(0, n * c))).toEqual(Array.from(frame(7)));
    expect(Array.from(read.subarray(n * c, 2 * n * c))).toEqual(Array.from(frame(2)));
    expect(() => store.read([10])).toThrow(InvalidArgumentError);
    expect(() => store.append(new Float32Array(5))).toThrow(InvalidArgumentError);
    store.close();
  });

  it('past the limit it spills to a temp float16 file (2 bytes a value), round trip within f16 rounding, deleted on close', () => {
    // Three frames fit in memory; the fourth moves everything to disk.
    const store = createPatchStore({ numPatches: n, width: c, memoryLimitBytes: 3 * n * c * 4 });
    for (let t = 0; t < 10; t++) store.append(frame(t));
    expect(store.location).toBe('file');
    expect(statSync(store.path!).size).toBe(10 * n * c * 2);
    for (const t of [0, 3, 9]) expect(maxRel(store.read([t]), frame(t))).toBeLessThan(1e-3);
    const path = store.path!;
    store.close();
    expect(existsSync(path)).toBe(false);
  });

  it('a cache file is written as .tmp, committed by rename, reopened read-only and kept on close', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'bvllm-patches-')), 'v.patches.f16');
    const file = FilePatches.create(path, n, c, false);
    file.append(frames);
    expect(existsSync(`${path}.tmp`)).toBe(true);
    file.commit();
    expect(existsSync(path)).toBe(true);
    file.close();
    const again = FilePatches.open(path, n, c, 10);
    expect(maxRel(again.read([5, 1]), new Float32Array([...frame(5), ...frame(1)]))).toBeLessThan(1e-3);
    expect(() => again.append(frame(0))).toThrow(/read-only/);
    again.close();
    expect(existsSync(path)).toBe(true);
    expect(tf.memory().numTensors).toBe(0);
  });
});
