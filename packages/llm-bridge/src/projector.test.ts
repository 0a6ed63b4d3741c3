import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, TensorSource, UnknownKindError, WeightsError, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { projectorRegistry } from './projector.js';

const dir = fileURLToPath(new URL('../../../../shared/fixtures/bvllm-visual/', import.meta.url));

beforeAll(async () => {
  await initBackend();
});

describe('projector (spec §1.1 (e), §10 D9)', () => {
  it('linear2 reproduces the fixture: Z [3, 6, 32] → V [18, 40], frame-major, no activation', () => {
    const expected = JSON.parse(readFileSync(`${dir}expected.json`, 'utf8')) as { Z: number[][][]; V: number[][] };
    const projector = projectorRegistry.create({ kind: 'linear2' }, { rng: Rng.fromSeed(0), dims: { Cq: 32, Cv: 24, D: 40 } });
    const source = TensorSource.fromDir(dir);
    projector.loadWeights(source.readAll((k) => k.startsWith('vlm_att_projector_spatial.') || k.startsWith('vlm_att_val_projector_spatial.')));
    source.close();
    const z = tf.tensor3d(expected.Z);
    const v = projector.apply({ spatialTokens: z }, { training: false, rng: Rng.fromSeed(0) });
    expect(v.shape).toEqual([18, 40]);
    const got = v.arraySync();
    const maxErr = Math.max(...got.flatMap((row, i) => row.map((x, j) => Math.abs(x - expected.V[i][j]))));
    expect(maxErr).toBeLessThan(1e-4);
    tf.dispose([z, v]);
    projector.dispose();
  });

  it('mlp2x_gelu is Linear → exact GELU → Linear with LLaVA key names', () => {
    const projector = projectorRegistry.create({ kind: 'mlp2x_gelu' }, { rng: Rng.fromSeed(0), dims: { Cq: 2, Cv: 99, D: 1 } });
    expect([...projector.variables().keys()].sort()).toEqual(['mm_projector.0.bias', 'mm_projector.0.weight', 'mm_projector.2.bias', 'mm_projector.2.weight']);
    projector.loadWeights(
      new Map<string, tf.Tensor>([
        ['mm_projector.0.weight', tf.tensor2d([[1, 0]])],
        ['mm_projector.0.bias', tf.tensor1d([0])],
        ['mm_projector.2.weight', tf.tensor2d([[2]])],
        ['mm_projector.2.bias', tf.tensor1d([0.5])],
      ]),
    );
    const v = projector.apply({ spatialTokens: tf.tensor3d([[[1, 7]], [[-1, 7]]]) }, { training: false, rng: Rng.fromSeed(0) });
    // gelu(1) = 0.8413447, gelu(−1) = −0.1586553 (x·Φ(x)).
    const got = Array.from(v.dataSync());
    expect(got[0]).toBeCloseTo(2 * 0.8413447 + 0.5, 5);
    expect(got[1]).toBeCloseTo(2 * -0.1586553 + 0.5, 5);
    projector.dispose();
  });

  it('rejects unknown kinds and fields, and a mismatched checkpoint', () => {
    expect(() => projectorRegistry.parse({ kind: 'mlp3x' })).toThrow(UnknownKindError);
    expect(() => projectorRegistry.parse({ kind: 'linear2', hidenDim: 3 })).toThrow(ConfigError);
    const projector = projectorRegistry.create({ kind: 'linear2' }, { rng: Rng.fromSeed(0), dims: { Cq: 4, Cv: 3, D: 2 } });
    expect(() => projector.loadWeights(new Map([['vlm_att_projector_spatial.weight', tf.zeros([3, 5])]]))).toThrow(WeightsError);
    projector.dispose();
  });

  it('does not leak tensors', () => {
    const projector = projectorRegistry.create({ kind: 'linear2' }, { rng: Rng.fromSeed(0), dims: { Cq: 4, Cv: 3, D: 2 } });
    const z = tf.ones([2, 3, 4]) as tf.Tensor3D;
    const run = () => tf.dispose(projector.apply({ spatialTokens: z }, { training: false, rng: Rng.fromSeed(0) }));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(z);
    projector.dispose();
  });
});
