import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, initBackend, tf, type FrameFeatures, type QuestionTokens } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureFeatures, fixtureQuestion, fixtureWeights, maxAbsDiff, tinyQFormer, visualExpected, visualInputs } from '../../test/visual-fixture.js';
import type { QFormerGumbelSelect } from '../qformer-gumbel-select.js';
import { frameSelectRegistry } from '../registry.js';
import { OrtFrameSelect, exportFrameSelectCached, exportFrameSelectOnnx } from './frame-select-onnx.js';

// issue #10 / spec §1.1 (a): the selector's Q-Former, projection and scores on onnxruntime equal the fixture and tfjs.
const prefixes = ['vlm_att_query_temporal', 'vlm_att_encoder_temporal.', 'vlm_att_ln_temporal.', 'vlm_att_projector_temporal.'];
const cacheDir = mkdtempSync(join(tmpdir(), 'bvllm-fs-onnx-'));
const sessions: OrtFrameSelect[] = [];

function fixtureSelector(overrides: Record<string, unknown> = {}): QFormerGumbelSelect {
  const stage = frameSelectRegistry.create({ kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer: tinyQFormer, ...overrides }, { rng: Rng.fromSeed(0), dims: { Cv: 24 } }) as QFormerGumbelSelect;
  const weights = fixtureWeights(prefixes);
  stage.loadWeights(weights);
  weights.forEach((t) => t.dispose());
  return stage;
}

async function ortOf(stage: QFormerGumbelSelect): Promise<OrtFrameSelect> {
  const file = join(mkdtempSync(join(tmpdir(), 'bvllm-fs-onnx-')), 'fs.onnx');
  exportFrameSelectOnnx(stage, file);
  const ort = await OrtFrameSelect.open(stage, file, { threads: 1 });
  sessions.push(ort);
  return ort;
}

describe('frame-select on onnxruntime', () => {
  let features: FrameFeatures;
  let question: QuestionTokens;
  let noise: tf.Tensor2D;
  beforeAll(async () => {
    await initBackend();
    features = fixtureFeatures();
    question = fixtureQuestion();
    noise = tf.tensor2d(visualInputs.gumbel_noise);
  });
  afterAll(async () => {
    for (const s of sessions) await s.release();
    tf.dispose([features.cls, features.patches, question.inputIds, question.attentionMask, noise]);
  });

  it('matches the bvllm-visual fixture: S, W with the given noise, X = W · LN_t(P), argmax frames (1e-4)', async () => {
    const stage = fixtureSelector();
    const ort = await ortOf(stage);
    const { scores, frameWeights } = await ort.run({ features, question }, noise);
    expect(maxAbsDiff(scores, visualExpected.S)).toBeLessThan(1e-4);
    expect(maxAbsDiff(frameWeights, visualExpected.W)).toBeLessThan(1e-4);
    const out = await ort.apply({ features, question, gumbelNoise: noise }, { training: false, rng: Rng.fromSeed(0) });
    expect(maxAbsDiff(out.frameWeights, visualExpected.W)).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.selected, visualExpected.X)).toBeLessThan(1e-4);
    const argmax = (visualExpected.W as number[][]).map((row) => row.indexOf(Math.max(...row)));
    expect(Array.from(out.frameIndices)).toEqual(argmax);
    tf.dispose([scores, frameWeights, out.frameWeights, out.selected]);
    stage.dispose();
  });

  for (const overrides of [{}, { inferenceNoise: 'none' }, { inferenceNoise: 'hard' }, { selectionFeature: 'mean', numQueries: 3 }])
    it(`seeded inference equals the tfjs stage (${JSON.stringify(overrides)}; noise drawn from the same generator, D4)`, async () => {
      const stage = fixtureSelector(overrides);
      const ort = await ortOf(stage);
      for (const seed of [1, 2]) {
        const a = stage.apply({ features, question }, { training: false, rng: Rng.fromSeed(seed) });
        const b = await ort.apply({ features, question }, { training: false, rng: Rng.fromSeed(seed) });
        expect(Array.from(b.frameIndices)).toEqual(Array.from(a.frameIndices));
        expect(maxAbsDiff(b.frameWeights, await a.frameWeights.array())).toBeLessThan(1e-5);
        expect(maxAbsDiff(b.selected, await a.selected.array())).toBeLessThan(1e-5);
        tf.dispose([a.frameWeights, a.selected, b.frameWeights, b.selected]);
      }
      stage.dispose();
    });

  it('exports once per weights hash and leaks no tensors over repeated applies', async () => {
    const stage = fixtureSelector();
    const folder = await exportFrameSelectCached(stage, cacheDir);
    expect(await exportFrameSelectCached(stage, cacheDir)).toBe(folder);
    const ort = await OrtFrameSelect.create(stage, cacheDir, { threads: 1 });
    sessions.push(ort);
    const once = async () => {
      const out = await ort.apply({ features, question }, { training: false, rng: Rng.fromSeed(3) });
      tf.dispose([out.frameWeights, out.selected]);
    };
    await once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await once();
    expect(tf.memory().numTensors).toBe(before);
    stage.dispose();
  });
});
