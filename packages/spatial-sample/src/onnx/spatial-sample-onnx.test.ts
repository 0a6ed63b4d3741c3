import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, TensorSource, initBackend, parseConfig, qformerConfigFromHf, readHfConfig, renamedSource, tf, type MergedFrames, type QuestionTokens } from '@bvllm/core';
import { sourceWeights, tensorWeights, type GraphWeights } from '@bvllm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir, fixtureMerged, fixtureQuestion, fixtureWeights, maxAbsDiff, tinyQFormer, visualExpected, visualInputs } from '../../test/visual-fixture.js';
import { qformerSampleConfig } from '../config.js';
import type { QFormerSample } from '../qformer-sample.js';
import { spatialSampleRegistry } from '../registry.js';
import { OrtSpatialSample } from './ort-spatial-sample.js';
import { buildSpatialSampleGraph, exportSpatialSampleOnnx, type SpatialSampleSpec } from './spatial-sample-onnx.js';

// issue #10, #18 / spec §1.1 (c)–(e): the spatial Q-Former (+ projector) on onnxruntime equals the bvllm-visual
// fixture and the tfjs stage, whether the weights come from the stage or straight from safetensors.
const context = { training: false, rng: Rng.fromSeed(0) };
const sessions: OrtSpatialSample[] = [];
const config = JSON.parse(readFileSync(join(fixtureDir, 'config.json'), 'utf8'));
const cv: number = config.mm_hidden_size;
/** The fixture's two projector Linears (B-VLLM's `linear2`, D9). */
const PROJECTOR = ['vlm_att_projector_spatial', 'vlm_att_val_projector_spatial'] as const;

const samplerConfig = (tokenBudget: number | null) => ({ kind: 'qformer', numQueries: config.num_query_spatial, tokenBudget, qformer: tinyQFormer });

function fixtureSampler(tokenBudget: number | null): QFormerSample {
  const stage = spatialSampleRegistry.create(samplerConfig(tokenBudget), { rng: Rng.fromSeed(0), dims: { Cv: cv } }) as QFormerSample;
  const weights = fixtureWeights(['vlm_att_query_spatial', 'vlm_att_encoder_spatial.']);
  stage.loadWeights(weights);
  weights.forEach((t) => t.dispose());
  return stage;
}

/** A tfjs stage's current weights (with the projector's tensors when given) exported and opened. */
async function ortOf(stage: QFormerSample, projector?: ReadonlyMap<string, tf.Tensor>): Promise<OrtSpatialSample> {
  const file = join(mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-')), 'ss.onnx');
  const spec: SpatialSampleSpec = { config: stage.config, visionWidth: stage.visionWidth, projector: projector && { kind: 'linear2', keys: PROJECTOR } };
  const weights: GraphWeights = tensorWeights(new Map([...stage.variables(), ...(projector ?? [])]));
  exportSpatialSampleOnnx(spec, weights, file);
  const ort = await OrtSpatialSample.openFile(spec, file, { threads: 1 });
  sessions.push(ort);
  return ort;
}

const flat = (rows: unknown) => Float32Array.from((rows as number[][]).flat(Infinity as 1) as number[]);
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('spatial sampling on onnxruntime', () => {
  let question: QuestionTokens;
  /** The projector's two Linears by checkpoint key. */
  let projector: Map<string, tf.Tensor>;
  beforeAll(async () => {
    await initBackend();
    question = fixtureQuestion();
    projector = fixtureWeights(PROJECTOR.map((k) => `${k}.`));
  });
  afterAll(async () => {
    for (const s of sessions) await s.release();
    tf.dispose([question.inputIds, question.attentionMask, ...projector.values()]);
  });

  it('streamed from the fixture safetensors (lazy weights, projector by its checkpoint keys): Z and V equal the fixture and the tfjs-path export (1e-4)', async () => {
    const spec: SpatialSampleSpec = { config: parseConfig(qformerSampleConfig, samplerConfig(config.spatial_token_budget), 'spatial sample'), visionWidth: cv, projector: { kind: 'linear2', keys: PROJECTOR } };
    const source = TensorSource.fromDir(fixtureDir);
    const file = join(mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-')), 'ss.onnx');
    exportSpatialSampleOnnx(spec, sourceWeights(source), file);
    source.close();
    const streamed = await OrtSpatialSample.openFile(spec, file, { threads: 1 });
    sessions.push(streamed);
    const fromStage = await ortOf(fixtureSampler(config.spatial_token_budget), projector);
    const merged = flat(visualExpected.X_merged);
    const frames = (visualExpected.X_merged as unknown[]).length;
    const plain = { inputIds: visualInputs.input_ids[0], attentionMask: visualInputs.attention_mask[0] };
    const a = await streamed.run(plain, merged, frames);
    const b = await fromStage.run(plain, merged, frames);
    expect(streamed.tokensPerFrame(frames)).toBe(Math.min(config.num_query_spatial, visualExpected.spatial_tokens_per_frame));
    expect(maxDiff(a.spatialTokens, flat(visualExpected.Z))).toBeLessThan(1e-4);
    expect(maxDiff(a.visualEmbeds!, flat(visualExpected.V))).toBeLessThan(1e-4);
    expect(maxDiff(a.spatialTokens, b.spatialTokens)).toBeLessThan(1e-5);
    expect(maxDiff(a.visualEmbeds!, b.visualEmbeds!)).toBeLessThan(1e-5);
  });

  it('float16 weights (exportSpatialSampleOnnx dtype) run on onnxruntime CPU within f16 tolerance of the fixture', async () => {
    const spec: SpatialSampleSpec = { config: parseConfig(qformerSampleConfig, samplerConfig(config.spatial_token_budget), 'spatial sample'), visionWidth: cv, projector: { kind: 'linear2', keys: PROJECTOR } };
    const source = TensorSource.fromDir(fixtureDir);
    const file = join(mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-')), 'ss16.onnx');
    exportSpatialSampleOnnx(spec, sourceWeights(source), file, { dtype: 'float16' });
    source.close();
    const half = await OrtSpatialSample.openFile(spec, file, { threads: 1 });
    sessions.push(half);
    const plain = { inputIds: visualInputs.input_ids[0], attentionMask: visualInputs.attention_mask[0] };
    const out = await half.run(plain, flat(visualExpected.X_merged), (visualExpected.X_merged as unknown[]).length);
    const errors = { Z: maxDiff(out.spatialTokens, flat(visualExpected.Z)), V: maxDiff(out.visualEmbeds!, flat(visualExpected.V)) };
    console.log(`[spatial-sample f16] max |error| Z ${errors.Z.toExponential(2)}, V ${errors.V.toExponential(2)}`);
    // f16's relative step 2⁻¹⁰ ≈ 1e-3 through 4 post-LN Q-Former layers (Z of order 1) and two Linears.
    expect(errors.Z).toBeLessThan(2e-2);
    expect(errors.V).toBeLessThan(5e-2);
  });

  it('building reads no tensor; the export reads every spatial and projector tensor it uses exactly once (bounded memory)', () => {
    const spec: SpatialSampleSpec = { config: parseConfig(qformerSampleConfig, samplerConfig(null), 'spatial sample'), visionWidth: cv, projector: { kind: 'linear2', keys: PROJECTOR } };
    const inner = TensorSource.fromDir(fixtureDir);
    const reads = new Map<string, number>();
    const source = { has: (k: string) => inner.has(k), info: (k: string) => inner.info(k), read: (k: string) => (reads.set(k, (reads.get(k) ?? 0) + 1), inner.read(k)) };
    buildSpatialSampleGraph(spec, sourceWeights(source));
    expect(reads.size).toBe(0);
    exportSpatialSampleOnnx(spec, sourceWeights(source), join(mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-')), 'ss.onnx'));
    const used = ['vlm_att_query_spatial', 'vlm_att_encoder_spatial.', ...PROJECTOR.map((k) => `${k}.`)];
    // Only the queries' output is read, so the last layer's text FFN is not in the graph (qformerGraph).
    const textFfn = new RegExp(`^vlm_att_encoder_spatial\\.encoder\\.layer\\.${spec.config.qformer.numLayers - 1}\\.(intermediate|output)\\.`);
    expect([...reads.keys()].sort()).toEqual(inner.keys().filter((k) => used.some((p) => k.startsWith(p)) && !textFfn.test(k)).sort());
    expect(Math.max(...reads.values())).toBe(1);
    inner.close();
  });

  it('an InstructBLIP Q-Former folder (qformer fixture, renamed onto vlm_att_*_spatial keys) gives its query_output per row (1e-4)', async () => {
    const dir = new URL('../../../../../shared/fixtures/qformer/', import.meta.url).pathname;
    const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    const { encoderHiddenSize, ...qformer } = qformerConfigFromHf(readHfConfig(dir));
    const spec: SpatialSampleSpec = { config: parseConfig(qformerSampleConfig, { kind: 'qformer', numQueries: inputs.num_query_tokens, tokenBudget: null, qformer }, 'spatial sample'), visionWidth: encoderHiddenSize };
    // The HF layout under the spatial sampler's module names (the key table convert uses; names only, no transform).
    const source = renamedSource(TensorSource.fromDir(dir), [
      { match: /^query_tokens$/, rename: 'vlm_att_query_spatial' },
      { match: /^(embeddings|encoder)\./, rename: 'vlm_att_encoder_spatial.$1.' },
    ]);
    const file = join(mkdtempSync(join(tmpdir(), 'bvllm-ss-onnx-')), 'qformer.onnx');
    exportSpatialSampleOnnx(spec, sourceWeights(source), file);
    source.close();
    const ort = await OrtSpatialSample.openFile(spec, file, { threads: 1 });
    sessions.push(ort);
    // Each fixture row is its own question and encoder states: one frame (K' = 1) per run.
    for (const [row, ids] of (inputs.input_ids as number[][]).entries()) {
      const out = await ort.run({ inputIds: ids, attentionMask: inputs.attention_mask[row] }, flat(inputs.encoder_hidden_states[row]), 1);
      expect(maxDiff(out.spatialTokens, flat(expected.query_output[row])), `row ${row}`).toBeLessThan(1e-4);
    }
  });

  const orders: [string, number[][][], { Z: number[][][]; V: number[][] }][] = [
    ['query order', visualExpected.X_merged, visualExpected],
    ['sorted by frame', visualExpected.sorted_variant.X_merged, visualExpected.sorted_variant],
  ];
  for (const [name, rows, expected] of orders)
    it(`apply matches the bvllm-visual fixture's Z and V (${name}) within 1e-4, projector in the same graph`, async () => {
      const stage = fixtureSampler(config.spatial_token_budget);
      const ort = await ortOf(stage, projector);
      const merged: MergedFrames = fixtureMerged(rows);
      const out = await ort.apply({ merged, question }, context);
      expect(out.spatialTokens.shape).toEqual([expected.Z.length, expected.Z[0].length, expected.Z[0][0].length]);
      expect(maxAbsDiff(out.spatialTokens, expected.Z)).toBeLessThan(1e-4);
      expect(out.visualEmbeds!.shape).toEqual([expected.V.length, expected.V[0].length]);
      expect(maxAbsDiff(out.visualEmbeds!, expected.V)).toBeLessThan(1e-4);
      tf.dispose([merged.merged, out.spatialTokens, out.visualEmbeds!]);
      stage.dispose();
    });

  it('budget θ = 6: the ToMe merge runs in tfjs after the graph and gives Z_after_budget; no projected output then', async () => {
    const stage = fixtureSampler(6);
    const ort = await ortOf(stage, projector);
    const merged = fixtureMerged();
    const out = await ort.apply({ merged, question }, context);
    const want = visualExpected.budget_variant.Z_after_budget as number[][][];
    expect(out.spatialTokens.shape).toEqual([want.length, want[0].length, want[0][0].length]);
    expect(maxAbsDiff(out.spatialTokens, want)).toBeLessThan(1e-4);
    expect(out.visualEmbeds).toBeUndefined();
    tf.dispose([merged.merged, out.spatialTokens]);
    stage.dispose();
  });

  it('equals the tfjs stage on other frame counts and question lengths, without a projector', async () => {
    const stage = fixtureSampler(null);
    const ort = await ortOf(stage);
    const rng = Rng.fromSeed(5);
    for (const [frames, length] of [[1, 3], [5, 11]]) {
      const merged: MergedFrames = { merged: rng.normal([frames, 8, cv], 1) as tf.Tensor3D, groups: [], frameIndices: new Int32Array(frames), timestampsSec: [] };
      const ids = tf.tensor2d([Array.from({ length }, (_, i) => (i * 7) % 100)], undefined, 'int32');
      const mask = tf.tensor2d([Array.from({ length }, (_, i) => (i < length - 1 ? 1 : 0))], undefined, 'int32');
      const q = { inputIds: ids, attentionMask: mask };
      const a = stage.apply({ merged, question: q }, context);
      const b = await ort.apply({ merged, question: q }, context);
      expect(b.visualEmbeds).toBeUndefined();
      expect(maxAbsDiff(b.spatialTokens, await a.spatialTokens.array())).toBeLessThan(1e-4);
      tf.dispose([merged.merged, ids, mask, a.spatialTokens, b.spatialTokens]);
    }
    await expect(ort.run({ inputIds: [1, 2], attentionMask: [1, 1] }, new Float32Array(cv + 1), 1)).rejects.toThrow(/merged/);
    stage.dispose();
  });

  it('leaks no tensors over repeated applies', async () => {
    const stage = fixtureSampler(config.spatial_token_budget);
    const ort = await ortOf(stage, projector);
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
