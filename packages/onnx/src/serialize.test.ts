import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkModel } from './check-model.js';
import { GraphBuilder } from './graph-builder.js';
import { decodeModel, writeModel } from './serialize.js';
import { createSession } from './session.js';
import { f32, pseudoRandom } from './test-support.js';

function affineGraph(): GraphBuilder {
  const g = new GraphBuilder('affine');
  const x = g.input('x', 'float32', ['batch', 64]);
  const w = g.initializer('w', pseudoRandom(64 * 32, 3), [64, 32]);
  const b = g.initializer('b', pseudoRandom(32, 4), [32]);
  g.output('y', 'float32', ['batch', 32], g.op.add(g.op.matMul(x, w), b));
  return g;
}

async function run(path: string): Promise<Float32Array> {
  const session = await createSession(path, { threads: 1 });
  const out = await session.run({ x: f32(pseudoRandom(2 * 64, 5), [2, 64]) });
  await session.release();
  return out.y.data as Float32Array;
}

describe('writeModel', () => {
  it('writes external data above the threshold and onnxruntime loads it with the same results as inline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-ext-'));
    const inline = writeModel(affineGraph(), join(dir, 'inline.onnx'));
    const external = writeModel(affineGraph(), join(dir, 'external.onnx'), { externalDataThreshold: 1000, externalMinBytes: 100 });
    expect(inline.dataPath).toBeUndefined();
    expect(external.dataPath).toBe(join(dir, 'external.onnx.data'));
    // w (8192 bytes) goes out; b (128 bytes) is above minBytes too; the proto keeps only their references.
    expect(statSync(external.dataPath!).size).toBeGreaterThanOrEqual(64 * 32 * 4 + 32 * 4);
    const proto = decodeModel(readFileSync(join(dir, 'external.onnx')));
    const w = proto.graph!.initializer!.find((t) => t.name === 'w')!;
    expect(w.dataLocation).toBe(1);
    const entries = Object.fromEntries(w.externalData!.map((e) => [e.key, e.value]));
    expect(entries).toEqual({ location: 'external.onnx.data', offset: expect.any(String), length: String(64 * 32 * 4) });
    expect(Number(entries.offset) % 64).toBe(0);
    checkModel(proto);
    expect(Array.from(await run(external.path))).toEqual(Array.from(await run(inline.path)));
    expect(existsSync(`${external.path}.${process.pid}.tmp`)).toBe(false);
  });
});
