import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, qformerConfigFromHf, readSafetensors, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkModel } from './check-model.js';
import { convertToFloat16 } from './float16.js';
import { GraphBuilder } from './graph-builder.js';
import { linear, rmsNorm } from './layers.js';
import { qformerGraph } from './qformer-graph.js';
import { quantizeMatMuls, QUANT_PRESETS } from './quantize-pass.js';
import { decodeModel, writeModel } from './serialize.js';
import { createSession } from './session.js';
import { f32, i64, maxAbsDiff, pseudoRandom, runGraph } from './test-support.js';
import { isLazyWeight, lazyWeight, sourceWeights, tensorWeights, type GraphWeights } from './weights.js';

// spec §1.1 (a), (c): the Q-Former export, built once from tfjs tensors (eager) and once from a weight source
// (lazy): the lazy graph must give the same outputs bit for bit, before and after quantisation.
const fixture = fileURLToPath(new URL('../../../../shared/fixtures/qformer/', import.meta.url));
const json = (name: string) => JSON.parse(readFileSync(`${fixture}${name}`, 'utf8'));

/** A WeightSource over tensors that counts reads per key. */
function countingSource(tensors: Map<string, tf.Tensor>) {
  const reads = new Map<string, number>();
  return {
    reads,
    has: (key: string) => tensors.has(key),
    info: (key: string) => ({ dtype: 'F32' as const, shape: tensors.get(key)!.shape }),
    read: (key: string) => {
      reads.set(key, (reads.get(key) ?? 0) + 1);
      return (tensors.get(key)!.dataSync() as Float32Array).slice();
    },
  };
}

describe('lazy weights', () => {
  let tensors: Map<string, tf.Tensor>;
  let dir: string;
  beforeAll(async () => {
    await initBackend();
    tensors = readSafetensors(`${fixture}model.safetensors`);
    dir = mkdtempSync(join(tmpdir(), 'onnx-lazy-'));
  });
  afterAll(() => {
    tf.dispose([...tensors.values()]);
    rmSync(dir, { recursive: true, force: true });
  });

  function qformer(weights: GraphWeights): GraphBuilder {
    const config = qformerConfigFromHf(json('config.json'));
    const g = new GraphBuilder('qformer');
    const inputIds = g.input('input_ids', 'int64', ['batch', 'text']);
    const attentionMask = g.input('attention_mask', 'int64', ['batch', 'text']);
    const encoderStates = g.input('encoder_hidden_states', 'float32', ['batch', 'encoder', 24]);
    const query = weights.get('query_tokens');
    const queries = isLazyWeight(query) ? g.lazyInitializer('query_tokens', 'float32', query.dims, query.load) : g.initializerFromTensor('query_tokens', query as tf.Tensor);
    const out = qformerGraph(g, (key) => weights.get(key), '', config, { queries, numQueries: 8, inputIds, attentionMask, encoderStates });
    g.output('out', 'float32', ['batch', 8, 32], out);
    return g;
  }

  const feeds = () => {
    const inputs = json('inputs.json');
    return {
      input_ids: i64(inputs.input_ids.flat(), [2, 12]),
      attention_mask: i64(inputs.attention_mask.flat(), [2, 12]),
      encoder_hidden_states: f32(inputs.encoder_hidden_states.flat(2), [2, 10, 24]),
    };
  };

  async function runFile(path: string): Promise<Float32Array> {
    const session = await createSession(path, { threads: 1 });
    try {
      return (await session.run(feeds())).out.data as Float32Array;
    } finally {
      await session.release();
    }
  }

  it('sourceWeights reads nothing while the graph is built', () => {
    const source = countingSource(tensors);
    const g = qformer(sourceWeights(source));
    expect(source.reads.size).toBe(0);
    expect([...g.initializers.values()].filter((i) => i.load).length).toBeGreaterThan(10);
    // The byte count is known without loading: fused q/k/v of width 32 is 32 × 96 float32 values.
    expect(g.initializers.get('encoder.layer.0.attention.qkv.weight')!.byteLength).toBe(32 * 96 * 4);
  });

  it('a lazy Q-Former graph, written with streamed external data, equals the eager one bit for bit; each weight is read once', async () => {
    const eager = (await runGraph(qformer(tensorWeights(tensors)), feeds())).out.data as Float32Array;
    const source = countingSource(tensors);
    const lazy = qformer(sourceWeights(source));
    const written = writeModel(lazy, join(dir, 'lazy.onnx'));
    // Lazy weights always go to external data, even far below the size threshold.
    expect(written.dataPath).toBe(join(dir, 'lazy.onnx.data'));
    checkModel(decodeModel(readFileSync(written.path)));
    expect(Array.from(await runFile(written.path))).toEqual(Array.from(eager));
    // q, k and v are three keys fused into one initializer: each is still read exactly once.
    expect(new Set(source.reads.values())).toEqual(new Set([1]));
    expect(source.reads.size).toBeGreaterThan(10);
  });

  it('quantised lazy equals quantised eager (int4 and int8), quantising each weight once', async () => {
    for (const preset of ['int4', 'int8'] as const) {
      const eagerGraph = qformer(tensorWeights(tensors));
      const eagerResult = quantizeMatMuls(eagerGraph, QUANT_PRESETS[preset]);
      const eager = (await runGraph(eagerGraph, feeds())).out.data as Float32Array;
      const source = countingSource(tensors);
      const lazyGraph = qformer(sourceWeights(source));
      const lazyResult = quantizeMatMuls(lazyGraph, QUANT_PRESETS[preset]);
      expect(lazyResult).toEqual(eagerResult);
      expect(source.reads.size).toBe(0);
      const written = writeModel(lazyGraph, join(dir, `lazy-${preset}.onnx`));
      expect(Array.from(await runFile(written.path)), preset).toEqual(Array.from(eager));
      // codes, scales (and zero points) come from one quantisation: the weight behind them was read once.
      expect(new Set(source.reads.values()), preset).toEqual(new Set([1]));
    }
  });

  it('the lazy Q-Former in float16 matches the fixture query_output within float16 tolerance', async () => {
    const g = qformer(sourceWeights(countingSource(tensors)));
    convertToFloat16(g);
    const written = writeModel(g, join(dir, 'lazy-f16.onnx'));
    const expected = json('expected.json').query_output.flat(2) as number[];
    const got = await runFile(written.path);
    const peak = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // Post-LN BERT layers renormalise every block, so float16 rounding (5e-4 relative) does not accumulate far.
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-2 * peak);
  });

  it('lazy linear parts mixed with eager ones, and rmsNorm, match the eager graph; eager tensors may be disposed after building', async () => {
    const [a, b] = [pseudoRandom(6 * 8, 1), pseudoRandom(4 * 8, 2)];
    const norm = pseudoRandom(8, 3);
    const build = (lazy: boolean) => {
      const g = new GraphBuilder('mixed');
      const x = g.input('x', 'float32', ['n', 8]);
      const tb = tf.tensor2d(b, [4, 8]);
      const tbias = tf.tensor1d(b.subarray(0, 4));
      const wa = lazy ? lazyWeight([6, 8], () => a.slice()) : { data: a, dims: [6, 8] };
      const normed = rmsNorm(g, x, 'norm', lazy ? lazyWeight([8], () => norm.slice()) : { data: norm, dims: [8] }, 1e-6);
      const y = linear(g, normed, 'proj', [wa, tb], [{ data: a.subarray(0, 6), dims: [6] }, tbias]);
      tf.dispose([tb, tbias]);
      g.output('y', 'float32', ['n', 10], y);
      return g;
    };
    const x = f32(pseudoRandom(3 * 8, 4), [3, 8]);
    const eager = (await runGraph(build(false), { x })).y.data;
    const lazy = (await runGraph(build(true), { x })).y.data;
    expect(Array.from(lazy as Float32Array)).toEqual(Array.from(eager as Float32Array));
  });

  it('a load() returning the wrong length is an error naming the initializer', () => {
    const g = new GraphBuilder('bad');
    g.output('y', 'float32', ['n', 4], linear(g, g.input('x', 'float32', ['n', 3]), 'p', lazyWeight([4, 3], () => new Float32Array(5))));
    expect(() => writeModel(g, join(dir, 'bad.onnx'))).toThrowError(/p\.weight|lazy weight \[4, 3\]/);
  });
});
