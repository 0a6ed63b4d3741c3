import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, initBackend, tf, type MergedFrames, type QuestionTokens } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureMerged, fixtureQuestion, fixtureWeights, maxAbsDiff, tinyQFormer, visualExpected } from '../../test/visual-fixture.js';
import type { QFormerSample } from '../qformer-sample.js';
import { spatialSampleRegistry } from '../registry.js';
import { OrtSpatialSample, exportSpatialSampleCached, exportSpatialSampleOnnx, type SpatialProjectorWeights } from './spatial-sample-onnx.js';

// issue #10 / spec §1.1 (c)–(e): the spatial Q-Former (+ projector) on onnxruntime equals the fixture and tfjs.
const context = { training: false, rng: Rng.fromSeed(0) };
const sessions: OrtSpatialSample[] = [];
const cacheDir = mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-'));

function fixtureSampler(tokenBudget: number | null): QFormerSample {
  const stage = spatialSampleRegistry.create({ kind: 'qformer', numQueries: 6, tokenBudget, qformer: tinyQFormer }, { rng: Rng.fromSeed(0), dims: { Cv: 24 } }) as QFormerSample;
  const weights = fixtureWeights(['vlm_att_query_spatial', 'vlm_att_encoder_spatial.']);
  stage.loadWeights(weights);
  weights.forEach((t) => t.dispose());
  return stage;
}

async function ortOf(stage: QFormerSample, projector?: SpatialProjectorWeights): Promise<OrtSpatialSample> {
  const file = join(mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-')), 'ss.onnx');
  exportSpatialSampleOnnx(stage, file, projector);
  const ort = await OrtSpatialSample.open(stage, file, { threads: 1, projector });
  sessions.push(ort);
  return ort;
}

describe('spatial sampling on onnxruntime', () => {
  let question: QuestionTokens;
  let projectorTensors: Map<string, tf.Tensor>;
  let projector: SpatialProjectorWeights;
  beforeAll(async () => {
    await initBackend();
    question = fixtureQuestion();
    projectorTensors = fixtureWeights(['vlm_att_projector_spatial.', 'vlm_att_val_projector_spatial.']);
    const get = (k: string) => projectorTensors.get(k)!;
    projector = {
      first: { weight: get('vlm_att_projector_spatial.weight'), bias: get('vlm_att_projector_spatial.bias') },
      second: { weight: get('vlm_att_val_projector_spatial.weight'), bias: get('vlm_att_val_projector_spatial.bias') },
      activation: 'none',
    };
  });
  afterAll(async () => {
    for (const s of sessions) await s.release();
    tf.dispose([question.inputIds, question.attentionMask, ...projectorTensors.values()]);
  });

  const orders: [string, number[][][], { Z: unknown; V: unknown }][] = [
    ['query order', visualExpected.X_merged, visualExpected],
    ['sorted by frame', visualExpected.sorted_variant.X_merged, visualExpected.sorted_variant],
  ];
  for (const [name, rows, expected] of orders)
    it(`matches the bvllm-visual fixture's Z and V (${name}) within 1e-4, projector in the same graph`, async () => {
      const stage = fixtureSampler(24);
      const ort = await ortOf(stage, projector);
      const merged: MergedFrames = fixtureMerged(rows);
      const out = await ort.apply({ merged, question }, context);
      expect(out.spatialTokens.shape).toEqual([3, 6, 32]);
      expect(maxAbsDiff(out.spatialTokens, expected.Z)).toBeLessThan(1e-4);
      expect(out.visualEmbeds!.shape).toEqual([18, 40]);
      expect(maxAbsDiff(out.visualEmbeds!, expected.V)).toBeLessThan(1e-4);
      tf.dispose([merged.merged, out.spatialTokens, out.visualEmbeds!]);
      stage.dispose();
    });

  it('budget θ = 6: the ToMe merge runs in tfjs after the graph and gives Z_after_budget; no projected output then', async () => {
    const stage = fixtureSampler(6);
    const ort = await ortOf(stage, projector);
    const merged = fixtureMerged();
    const out = await ort.apply({ merged, question }, context);
    expect(out.spatialTokens.shape).toEqual([3, 2, 32]);
    expect(maxAbsDiff(out.spatialTokens, visualExpected.budget_variant.Z_after_budget)).toBeLessThan(1e-4);
    expect(out.visualEmbeds).toBeUndefined();
    tf.dispose([merged.merged, out.spatialTokens]);
    stage.dispose();
  });

  it('equals the tfjs stage on other frame counts and question lengths, without a projector', async () => {
    const stage = fixtureSampler(null);
    const ort = await ortOf(stage);
    const rng = Rng.fromSeed(5);
    for (const [frames, length] of [[1, 3], [5, 11]]) {
      const merged: MergedFrames = { merged: rng.normal([frames, 8, 24], 1) as tf.Tensor3D, groups: [], frameIndices: new Int32Array(frames), timestampsSec: [] };
      const ids = tf.tensor2d([Array.from({ length }, (_, i) => (i * 7) % 100)], undefined, 'int32');
      const mask = tf.tensor2d([Array.from({ length }, (_, i) => (i < length - 1 ? 1 : 0))], undefined, 'int32');
      const q = { inputIds: ids, attentionMask: mask };
      const a = stage.apply({ merged, question: q }, context);
      const b = await ort.apply({ merged, question: q }, context);
      expect(b.visualEmbeds).toBeUndefined();
      expect(maxAbsDiff(b.spatialTokens, await a.spatialTokens.array())).toBeLessThan(1e-4);
      tf.dispose([merged.merged, ids, mask, a.spatialTokens, b.spatialTokens]);
    }
    stage.dispose();
  });

  it('exports once per weights hash (projector included in the key) and leaks no tensors', async () => {
    const stage = fixtureSampler(24);
    const plain = await exportSpatialSampleCached(stage, cacheDir);
    expect(await exportSpatialSampleCached(stage, cacheDir)).toBe(plain);
    expect(await exportSpatialSampleCached(stage, cacheDir, projector)).not.toBe(plain);
    const ort = await OrtSpatialSample.create(stage, cacheDir, { threads: 1, projector });
    sessions.push(ort);
    const merged = fixtureMerged();
    const once = async () => {
      const out = await ort.apply({ merged, question }, context);
      tf.dispose([out.spatialTokens, out.visualEmbeds!]);
    };
    await once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await once();
    expect(tf.memory().numTensors).toBe(before);
    merged.merged.dispose();
    stage.dispose();
  });
});
