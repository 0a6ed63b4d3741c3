import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrtSessionError } from './errors.js';
import { GraphBuilder } from './graph-builder.js';
import { writeModel } from './serialize.js';
import { OrtSessionCache, WorkerSession, createSession, runSession } from './session.js';
import { encodeModel } from './serialize.js';
import { f32, maxAbsDiff, pseudoRandom } from './test-support.js';

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

/** y = x·W repeated `depth` times, `[n, n]` each: seconds of compute from a few kilobytes of graph. */
function heavyModel(n: number, depth: number): Uint8Array {
  const g = new GraphBuilder('heavy');
  let h = g.input('x', 'float32', [n, n]);
  const w = g.initializer('w', pseudoRandom(n * n, 3).map((v) => v / Math.sqrt(n)), [n, n]);
  for (let i = 0; i < depth; i++) h = g.op.matMul(h, w);
  g.output('y', 'float32', [n, n], h);
  return encodeModel(g);
}

describe('sessions on a worker thread (the default)', () => {
  it('give the calling thread’s outputs and metadata, bit for bit, with feeds left intact', async () => {
    const model = heavyModel(64, 3);
    const [worker, main] = await Promise.all([createSession(model, { threads: 1 }), createSession(model, { threads: 1, thread: 'main' })]);
    expect(worker).toBeInstanceOf(WorkerSession);
    expect(main).not.toBeInstanceOf(WorkerSession);
    expect(worker.inputNames).toEqual(main.inputNames);
    expect(worker.outputMetadata).toEqual(main.outputMetadata.map((m) => ({ ...m })));
    const x = f32(pseudoRandom(64 * 64, 5), [64, 64]);
    const [a, b] = [await runSession(worker, { x }), await runSession(main, { x })];
    expect(a.y.dims).toEqual(b.y.dims);
    expect(maxAbsDiff(a.y.data as Float32Array, b.y.data as Float32Array)).toBe(0);
    expect((x.data as Float32Array).length).toBe(64 * 64);
    // A handed-over feed's buffer moves instead of being copied.
    const consumed = f32(pseudoRandom(64 * 64, 5), [64, 64]);
    const c = await runSession(worker, { x: consumed }, 'heavy', ['x']);
    expect(maxAbsDiff(c.y.data as Float32Array, b.y.data as Float32Array)).toBe(0);
    expect((consumed.data as Float32Array).length).toBe(0);
    await Promise.all([worker.release(), main.release()]);
    await expect(worker.run({ x })).rejects.toThrow(/released/);
  });

  it('keep the event loop free during a long run, unlike the calling thread', async () => {
    const model = heavyModel(384, 120);
    const x = f32(pseudoRandom(384 * 384, 7), [384, 384]);
    const worstLag = async (thread: 'worker' | 'main') => {
      const session = await createSession(model, { threads: 1, thread });
      await session.run({ x });
      let worst = 0;
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
      }, 2);
      const start = performance.now();
      await session.run({ x });
      const runMs = performance.now() - start;
      clearInterval(timer);
      await session.release();
      return { worst: Math.max(worst, performance.now() - last), runMs };
    };
    const main = await worstLag('main');
    const worker = await worstLag('worker');
    console.log(`worst event-loop stall during a ${main.runMs.toFixed(0)} ms run: main thread ${main.worst.toFixed(1)} ms, worker ${worker.worst.toFixed(1)} ms`);
    expect(main.worst).toBeGreaterThan(main.runMs * 0.8);
    expect(worker.worst).toBeLessThan(main.worst / 2);
  });

  it('a failed creation and a failed run are OrtSessionErrors, and the worker keeps serving after a bad run', async () => {
    await expect(createSession(new Uint8Array([1, 2, 3]))).rejects.toBeInstanceOf(OrtSessionError);
    const session = await createSession(heavyModel(8, 1), { threads: 1 });
    await expect(runSession(session, { x: f32([1], [1]) }, 'heavy.onnx')).rejects.toMatchObject({ code: 'ONNX_RUNTIME', file: 'heavy.onnx' });
    const out = await runSession(session, { x: f32(pseudoRandom(64), [8, 8]) });
    expect(out.y.dims).toEqual([8, 8]);
    await session.release();
  });
});
