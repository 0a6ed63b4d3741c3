import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WeightSource } from '@bvllm/core';
import { sourceWeights } from '@bvllm/onnx';
import { afterAll, describe, expect, it } from 'vitest';
import { qwen2ParameterShapes } from '../parameter-shapes.js';
import { parseQwen2Config } from '../qwen2-config.js';
import { exportQwen2Onnx } from './qwen2-onnx.js';

// issue #18: an export from a checkpoint holds a few tensors at a time, so its peak memory does not grow with the
// number of layers. Width 768 and MLP 3072 make one layer 34 MB of float32.
const config = (numLayers: number) =>
  parseQwen2Config({ vocabSize: 4096, hiddenSize: 768, intermediateSize: 3072, numLayers, numHeads: 12, numKvHeads: 2, tieWordEmbeddings: false });

/** Constant weights by key, read one at a time: only the shapes matter here, so no random draws. */
function constantSource(shapes: ReadonlyMap<string, number[]>): WeightSource {
  const shape = (key: string) => shapes.get(key)!;
  return {
    keys: () => [...shapes.keys()],
    has: (key) => shapes.has(key),
    info: (key) => ({ dtype: 'F32', shape: [...shape(key)] }),
    read: (key) => new Float32Array(shape(key).reduce((a, b) => a * b, 1)).fill(0.01),
    origin: () => 'constant',
    close: () => undefined,
  };
}

describe('exportQwen2Onnx memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qwen2-mem-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // maxRSS is this process's high-water mark (the forks pool runs each test file in its own process), so the small
  // export runs first: if the large one held its layers, their extra 270 MB (and transposed copies) would show.
  it('peak RSS stays flat from 2 to 10 decoder layers streamed from a WeightSource', () => {
    const peaks: number[] = [];
    let layerBytes = 0;
    for (const layers of [2, 10]) {
      const c = config(layers);
      const shapes = qwen2ParameterShapes(c);
      layerBytes = [...shapes].filter(([k]) => k.startsWith('model.layers.0.')).reduce((n, [, s]) => n + 4 * s.reduce((a, b) => a * b, 1), 0);
      const out = join(dir, `l${layers}`);
      const exported = exportQwen2Onnx(c, sourceWeights(constantSource(shapes)), out);
      expect(statSync(`${exported.decoder}.data`).size).toBeGreaterThanOrEqual(layers * layerBytes);
      peaks.push(process.resourceUsage().maxRSS * 1024);
      rmSync(out, { recursive: true });
    }
    const growth = peaks[1] - peaks[0];
    const held = 8 * layerBytes;
    console.log(`[qwen2 export memory] peak RSS ${peaks.map((p) => `${(p / 2 ** 20).toFixed(0)} MiB`).join(' → ')} for 2 → 10 layers (eight layers hold ${(held / 2 ** 20).toFixed(0)} MiB)`);
    // Generous: holding the eight extra layers would add their weights and as much again for the transposed copies;
    // what grows instead is garbage V8 has not collected yet (nothing is retained after a GC: measured with --expose-gc).
    expect(growth, `peak RSS ${peaks.map((p) => `${(p / 2 ** 20).toFixed(0)} MiB`).join(' → ')}, eight layers hold ${(held / 2 ** 20).toFixed(0)} MiB`).toBeLessThan(held);
  });
});
