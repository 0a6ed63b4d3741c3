import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrtSessionError } from './errors.js';
import { GraphBuilder } from './graph-builder.js';
import { writeModel } from './serialize.js';
import { OrtSessionCache, createSession, runSession } from './session.js';
import { f32 } from './test-support.js';

function negModel(dir: string): string {
  const g = new GraphBuilder('neg');
  g.output('y', 'float32', ['n'], g.op.neg(g.input('x', 'float32', ['n'])));
  return writeModel(g, join(dir, 'neg.onnx')).path;
}

describe('onnxruntime sessions', () => {
  it('the cache creates one session per model file and options, and reuses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-sess-'));
    const path = negModel(dir);
    const cache = new OrtSessionCache({ threads: 1 });
    const first = await cache.get(path);
    expect(await cache.get(join(dir, '.', 'neg.onnx'))).toBe(first);
    expect(await cache.get(path, { threads: 2 })).not.toBe(first);
    expect(cache.size).toBe(2);
    const out = await runSession(first, { x: f32([1, -2], [2]) }, path);
    expect(Array.from(out.y.data as Float32Array)).toEqual([-1, 2]);
    await cache.dispose();
    expect(cache.size).toBe(0);
  });

  it('a file onnxruntime cannot load is an OrtSessionError naming it, and is not cached', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-sess-'));
    const bad = join(dir, 'broken.onnx');
    writeFileSync(bad, 'not a model');
    await expect(createSession(bad)).rejects.toThrowError(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: onnxruntime failed to create a session`));
    const cache = new OrtSessionCache();
    await expect(cache.get(bad)).rejects.toBeInstanceOf(OrtSessionError);
    await new Promise((r) => setTimeout(r, 0));
    expect(cache.size).toBe(0);
  });

  it('a run with a wrong feed is an OrtSessionError with code ONNX_RUNTIME', async () => {
    const session = await createSession(negModel(mkdtempSync(join(tmpdir(), 'onnx-sess-'))), { threads: 1 });
    await expect(runSession(session, { wrong: f32([1], [1]) }, 'neg.onnx')).rejects.toMatchObject({ code: 'ONNX_RUNTIME', file: 'neg.onnx' });
    await session.release();
  });
});
