import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, TensorSource, initBackend, layerNorm, parseConfig, tf, type FrameFeatures, type QuestionTokens } from '@bvllm/core';
import { sourceWeights, tensorWeights } from '@bvllm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir, fixtureFeatures, fixtureQuestion, fixtureWeights, maxAbsDiff, tinyQFormer, visualConfig, visualExpected, visualInputs } from '../../test/visual-fixture.js';
import { qformerGumbelConfig } from '../config.js';
import type { QFormerGumbelSelect } from '../qformer-gumbel-select.js';
import { frameSelectRegistry } from '../registry.js';
import { buildFrameMixGraph, buildFrameSelectGraph, exportFrameSelectOnnx, type FrameSelectSpec } from './frame-select-onnx.js';
import { OrtFrameSelect } from './ort-frame-select.js';

// issue #10, #18 / spec §1.1 (a): the selector's Q-Former, projection, scores and W · LN_t(P) on onnxruntime equal
// the bvllm-visual fixture and the tfjs stage, whether the weights come from the stage or straight from safetensors.
const prefixes = ['vlm_att_query_temporal', 'vlm_att_encoder_temporal.', 'vlm_att_ln_temporal.', 'vlm_att_projector_temporal.'];
const sessions: OrtFrameSelect[] = [];
const tmp = () => mkdtempSync(join(tmpdir(), 'bvllm-fs-onnx-'));

/** The fixture's selector config, read from its config.json. */
const fixtureConfig = (overrides: Record<string, unknown> = {}) => ({
  kind: 'qformer-gumbel',
  numQueries: visualConfig.num_query_temporal_used,
  numQueryTokens: visualConfig.num_query_temporal,
  tau: visualConfig.gumbel_tau,
  logitScale: visualConfig.temporal_score_scale,
  lnEps: visualConfig.ln_temporal_eps,
  qformer: tinyQFormer,
  ...overrides,
});

function fixtureSelector(overrides: Record<string, unknown> = {}): QFormerGumbelSelect {
  const stage = frameSelectRegistry.create(fixtureConfig(overrides), { rng: Rng.fromSeed(0), dims: { Cv: visualConfig.mm_hidden_size } }) as QFormerGumbelSelect;
  const weights = fixtureWeights(prefixes);
  stage.loadWeights(weights);
  weights.forEach((t) => t.dispose());
  return stage;
}

/** A tfjs stage's current weights exported and opened: the spec is its config and Cv. */
async function ortOf(stage: QFormerGumbelSelect): Promise<OrtFrameSelect> {
  const dir = tmp();
  const spec: FrameSelectSpec = { config: stage.config, visionWidth: stage.visionWidth };
  exportFrameSelectOnnx(spec, tensorWeights(stage.variables()), dir);
  const ort = await OrtFrameSelect.openDir(spec, dir, { threads: 1 });
  sessions.push(ort);
  return ort;
}

const flat = (rows: unknown) => Float32Array.from((rows as number[][]).flat(Infinity as 1) as number[]);
/** Max |a − b| of two equally long arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('frame-select on onnxruntime', () => {
  let features: FrameFeatures;
  let question: QuestionTokens;
  let plainQuestion: { inputIds: number[]; attentionMask: number[] };
  let noise: tf.Tensor2D;
  beforeAll(async () => {
    await initBackend();
    features = fixtureFeatures();
    question = fixtureQuestion();
    plainQuestion = { inputIds: visualInputs.input_ids[0], attentionMask: visualInputs.attention_mask[0] };
    noise = tf.tensor2d(visualInputs.gumbel_noise);
  });
  afterAll(async () => {
    for (const s of sessions) await s.release();
    tf.dispose([features.cls, features.patches, question.inputIds, question.attentionMask, noise]);
  });

  it('streamed from the fixture safetensors (lazy weights): S, W and X = W · LN_t(P) equal the fixture and the tfjs-path export (1e-4)', async () => {
    const spec: FrameSelectSpec = { config: parseConfig(qformerGumbelConfig, fixtureConfig(), 'frame select'), visionWidth: visualConfig.mm_hidden_size };
    const source = TensorSource.fromDir(fixtureDir);
    const dir = tmp();
    exportFrameSelectOnnx(spec, sourceWeights(source), dir);
    source.close();
    const streamed = await OrtFrameSelect.openDir(spec, dir, { threads: 1 });
    sessions.push(streamed);
    const fromStage = await ortOf(fixtureSelector());
    const cls = (await features.cls.data()) as Float32Array;
    const g = flat(visualInputs.gumbel_noise);
    const a = await streamed.score(plainQuestion, cls, g);
    const b = await fromStage.score(plainQuestion, cls, g);
    expect(maxDiff(a.scores, flat(visualExpected.S))).toBeLessThan(1e-4);
    expect(maxDiff(a.frameWeights, flat(visualExpected.W))).toBeLessThan(1e-4);
    expect(maxDiff(a.frameWeights, b.frameWeights)).toBeLessThan(1e-5);
    const patches = (await features.patches.data()) as Float32Array;
    const selected = await streamed.mix(a.frameWeights, patches);
    expect(maxDiff(selected, flat(visualExpected.X))).toBeLessThan(1e-4);
    expect(maxDiff(selected, await fromStage.mix(b.frameWeights, patches))).toBeLessThan(1e-5);
  });

  it('float16 weights (exportFrameSelectOnnx dtype) run on onnxruntime CPU within f16 tolerance of the fixture', async () => {
    const spec: FrameSelectSpec = { config: parseConfig(qformerGumbelConfig, fixtureConfig(), 'frame select'), visionWidth: visualConfig.mm_hidden_size };
    const source = TensorSource.fromDir(fixtureDir);
    const dir = tmp();
    exportFrameSelectOnnx(spec, sourceWeights(source), dir, { dtype: 'float16' });
    source.close();
    const half = await OrtFrameSelect.openDir(spec, dir, { threads: 1 });
    sessions.push(half);
    const a = await half.score(plainQuestion, (await features.cls.data()) as Float32Array, flat(visualInputs.gumbel_noise));
    const selected = await half.mix(a.frameWeights, (await features.patches.data()) as Float32Array);
    const errors = { S: maxDiff(a.scores, flat(visualExpected.S)), W: maxDiff(a.frameWeights, flat(visualExpected.W)), X: maxDiff(selected, flat(visualExpected.X)) };
    console.log(`[frame-select f16] max |error| S ${errors.S.toExponential(2)}, W ${errors.W.toExponential(2)}, X ${errors.X.toExponential(2)}`);
    // f16 keeps a relative step of 2⁻¹⁰ ≈ 1e-3 per value; through 4 Q-Former layers, S (|S| ≲ 1) and the
    // probabilities W stay within 1e-2, and X, LayerNormed values of order 1, within 2e-2.
    expect(errors.S).toBeLessThan(1e-2);
    expect(errors.W).toBeLessThan(1e-2);
    expect(errors.X).toBeLessThan(2e-2);
  });

  it('building reads no tensor; the export reads every temporal tensor it uses exactly once (bounded memory)', () => {
    const spec: FrameSelectSpec = { config: parseConfig(qformerGumbelConfig, fixtureConfig(), 'frame select'), visionWidth: visualConfig.mm_hidden_size };
    const inner = TensorSource.fromDir(fixtureDir);
    const reads = new Map<string, number>();
    const source = { has: (k: string) => inner.has(k), info: (k: string) => inner.info(k), read: (k: string) => (reads.set(k, (reads.get(k) ?? 0) + 1), inner.read(k)) };
    buildFrameSelectGraph(spec, sourceWeights(source));
    buildFrameMixGraph(spec, sourceWeights(source));
    expect(reads.size).toBe(0);
    exportFrameSelectOnnx(spec, sourceWeights(source), tmp());
    // Only the queries' output is read, so the last layer's text FFN is not in the graph (qformerGraph).
    const textFfn = new RegExp(`^vlm_att_encoder_temporal\\.encoder\\.layer\\.${spec.config.qformer.numLayers - 1}\\.(intermediate|output)\\.`);
    expect([...reads.keys()].sort()).toEqual(inner.keys().filter((k) => prefixes.some((p) => k.startsWith(p)) && !textFfn.test(k)).sort());
    expect(Math.max(...reads.values())).toBe(1);
    inner.close();
  });

  it('apply matches the fixture: W with the given noise, X, argmax frames (1e-4)', async () => {
    const stage = fixtureSelector();
    const ort = await ortOf(stage);
    const out = await ort.apply({ features, question, gumbelNoise: noise }, { training: false, rng: Rng.fromSeed(0) });
    expect(maxAbsDiff(out.frameWeights, visualExpected.W)).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.selected, visualExpected.X)).toBeLessThan(1e-4);
    const argmax = (visualExpected.W as number[][]).map((row) => row.indexOf(Math.max(...row)));
    expect(Array.from(out.frameIndices)).toEqual(argmax);
    tf.dispose([out.frameWeights, out.selected]);
    stage.dispose();
  });

  it('the mix graph on a subset of Ts frames equals tfjs W · LN_t(P) on those frames (D10)', async () => {
    const stage = fixtureSelector();
    const ort = await ortOf(stage);
    const rng = Rng.fromSeed(9);
    const k = stage.config.numQueries;
    const [t, n, c] = features.patches.shape;
    const keep = [0, 2, 5].filter((i) => i < t);
    const frameWeights = tf.tidy(() => tf.softmax(rng.normal([k, keep.length], 1)) as tf.Tensor2D);
    const patches = tf.gather(features.patches, keep);
    const vars = stage.variables();
    const want = tf.tidy(() => {
      const normed = layerNorm(patches, vars.get('vlm_att_ln_temporal.weight')!, vars.get('vlm_att_ln_temporal.bias')!, stage.config.lnEps);
      return tf.reshape(tf.matMul(frameWeights, tf.reshape(normed, [keep.length, n * c])), [k, n, c]);
    });
    const got = await ort.mix((await frameWeights.data()) as Float32Array, (await patches.data()) as Float32Array);
    expect(maxDiff(got, (await want.data()) as Float32Array)).toBeLessThan(1e-5);
    tf.dispose([frameWeights, patches, want]);
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

  it('plain inputs of the wrong size are ShapeErrors naming the tensor', async () => {
    const ort = await ortOf(fixtureSelector());
    const cv = visualConfig.mm_hidden_size;
    await expect(ort.score(plainQuestion, new Float32Array(cv * 3), new Float32Array(2))).rejects.toThrow(/gumbelNoise/);
    await expect(ort.mix(new Float32Array(ort.spec.config.numQueries * 2), new Float32Array(cv + 1))).rejects.toThrow(/patches/);
  });

  it('leaks no tensors over repeated applies', async () => {
    const stage = fixtureSelector();
    const ort = await ortOf(stage);
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
