/**
 * `planConversion` + `convertModel` on fixture-sized Hugging Face folders written here (issue #18): a tiny
 * InstructBLIP folder in the real key layout (random values at the shapes the test config needs) and the
 * `qwen2-tiny-s2` fixture as the Qwen2 folder. Each kind of mismatch is a typed error naming the key.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BvllmError, Rng, TensorSource, initBackend, qformerParameterShapes, tf, writeSafetensors, type WritableTensor } from '@bvllm/core';
import { vitConfigSchema, vitParameterShapes } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from '../bvllm-model.js';
import { MODULES_DIR, readModulesManifest } from '../inference/export-modules.js';
import { InferenceSession } from '../inference-session.js';
import { CONFIG_FILE, loadModel, readModelConfig, saveModel } from '../model-dir.js';
import { parsePipelineConfig } from '../pipeline-config.js';
import { buildAssetsDir, testAssets, testConfig } from '../test-model.js';
import { modelParameterShapes } from './model-shapes.js';
import { ConversionError } from './conversion-error.js';
import { convertModel } from './convert-model.js';
import { planConversion, type ConversionSources } from './plan.js';

const fixtures = new URL('../../../../../shared/fixtures/', import.meta.url);
const qwen2Fixture = fileURLToPath(new URL('qwen2-tiny-s2/', fixtures));
const loraFixture = fileURLToPath(new URL('qwen2-tiny-s2-lora/', fixtures));

const qformer = { hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, vocabSize: 100, maxPositions: 64, crossAttentionFrequency: 1 };
const vit = { family: 'instructblip' as const, hiddenSize: 24, intermediateSize: 48, numLayers: 1, numHeads: 2, imageSize: 32, patchSize: 16 };
/** Both Q-Formers the InstructBLIP one (D14): 8 query rows, the first K = 4 select, all 8 sample. */
const config = testConfig({
  frameSelect: { kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer },
  spatialSample: { kind: 'qformer', numQueries: 8, tokenBudget: null, qformer },
});

type Tensors = Map<string, { values: Float32Array | Int32Array; shape: number[] }>;

let root: string;
let assets: string;
let qwen2Dir: string;
/** The InstructBLIP folder's tensors: the tower, the Q-Former, 8 queries, and its LLM projection (unused). */
const instructblip: Tensors = new Map();

function randomTensors(shapes: Iterable<[string, number[]]>, rng: Rng): Tensors {
  return new Map(
    [...shapes].map(([key, shape]) => {
      const values = rng.normalArray(shape.reduce((a, b) => a * b, 1));
      return [key, { values, shape }];
    }),
  );
}

let folders = 0;
/** Writes an InstructBLIP folder (config.json, model.safetensors, qformer_tokenizer/) holding `tensors`. */
function writeInstructBlip(tensors: Tensors, vision = vit): string {
  const dir = join(root, `instructblip-${folders++}`);
  mkdirSync(join(dir, 'qformer_tokenizer'), { recursive: true });
  writeSafetensors(join(dir, 'model.safetensors'), tensors as ReadonlyMap<string, WritableTensor>);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'instructblip',
      vision_config: { hidden_size: vision.hiddenSize, intermediate_size: vision.intermediateSize, num_hidden_layers: vision.numLayers, num_attention_heads: vision.numHeads, image_size: vision.imageSize, patch_size: vision.patchSize },
      qformer_config: { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, vocab_size: 100, max_position_embeddings: 64, encoder_hidden_size: 24, cross_attention_frequency: 1 },
    }),
  );
  copyFileSync(join(assets, 'question_tokenizer', 'vocab.txt'), join(dir, 'qformer_tokenizer', 'vocab.txt'));
  return dir;
}

const edited = (edit: (t: Tensors) => void): Tensors => {
  const copy: Tensors = new Map(instructblip);
  edit(copy);
  return copy;
};

function sources(instructblipDir: string, extra: Partial<ConversionSources> = {}): ConversionSources {
  return { instructblip: instructblipDir, qwen2: qwen2Dir, ...extra };
}

/** The ConversionError `fn` throws. */
function conversionError(fn: () => unknown): ConversionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConversionError);
    expect((error as BvllmError).code).toBe('WEIGHTS_MISMATCH');
    return error as ConversionError;
  }
  throw new Error('expected a ConversionError');
}

beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-convert-'));
  assets = join(root, 'assets');
  buildAssetsDir(assets);
  // The Qwen2 fixture with the test tokenizer beside it, as a Hub folder carries its tokenizer.
  qwen2Dir = join(root, 'qwen2');
  mkdirSync(qwen2Dir);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(qwen2Fixture, f), join(qwen2Dir, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(assets, f), join(qwen2Dir, f));
  const rng = Rng.fromSeed(5);
  const shapes: [string, number[]][] = [
    ...vitParameterShapes(vitConfigSchema.parse(vit), 'vision_model.'),
    ...qformerParameterShapes('qformer.', { ...qformer, encoderHiddenSize: 24, layerNormEps: 1e-12, hiddenAct: 'gelu' }),
    ['query_tokens', [1, 8, 32]],
    ['language_projection.weight', [40, 32]],
    ['language_projection.bias', [40]],
  ];
  for (const [k, v] of randomTensors(shapes, rng)) instructblip.set(k, v);
});

describe('planConversion + convertModel (issue #18, spec §1.0, D13, D14)', () => {
  it('writes a folder loadModel loads, each weight equal to its source, the official random ones named', async () => {
    const plan = planConversion(config, sources(writeInstructBlip(instructblip)));
    const out = join(root, 'out-f32');
    const progress: number[] = [];
    const report = await convertModel(plan, out, { onProgress: (p) => progress.push(p.done) });
    plan.close();
    expect(progress.at(-1)).toBe(plan.weights.length);
    expect(report.random.map((r) => r.key).sort()).toEqual(
      ['vlm_att_projector_temporal', 'vlm_att_projector_spatial', 'vlm_att_val_projector_spatial'].flatMap((k) => [`${k}.bias`, `${k}.weight`]).sort(),
    );
    expect(report.random.every((r) => r.reason === 'official-init')).toBe(true);
    // InstructBLIP's own LLM projection is known-unused: listed as skipped, not an error.
    expect(report.skipped.filter((s) => s.key.startsWith('language_projection.')).map((s) => s.key).sort()).toEqual(['language_projection.bias', 'language_projection.weight']);
    const counts = Object.fromEntries(report.bySource.map((r) => [r.source, r.weights]));
    expect(counts.random).toBe(6);
    expect(counts.instructblip + counts.qwen2 + counts.random).toBe(report.weights);

    const model = loadModel(out);
    const qwen2 = TensorSource.fromDir(qwen2Dir);
    const values = (key: string) => Array.from(model.store.get(key).dataSync());
    expect(values('vision_tower.encoder.layers.0.self_attn.qkv.weight')).toEqual(Array.from(instructblip.get('vision_model.encoder.layers.0.self_attn.qkv.weight')!.values));
    for (const side of ['temporal', 'spatial']) {
      expect(values(`vlm_att_encoder_${side}.encoder.layer.1.crossattention.attention.key.weight`)).toEqual(Array.from(instructblip.get('qformer.encoder.layer.1.crossattention.attention.key.weight')!.values));
      expect(values(`vlm_att_query_${side}`)).toEqual(Array.from(instructblip.get('query_tokens')!.values));
    }
    // D13: InstructBLIP's post_layernorm (LAVIS ln_vision) is the temporal LayerNorm.
    expect(values('vlm_att_ln_temporal.weight')).toEqual(Array.from(instructblip.get('vision_model.post_layernorm.weight')!.values));
    for (const key of ['model.layers.2.self_attn.q_proj.weight', 'lm_head.weight']) expect(values(key)).toEqual(Array.from(qwen2.read(key)));
    // The widths come from the checkpoints: the fixture's Qwen2 (3 layers, width 64), not the config's.
    expect(model.llm.config).toMatchObject({ numLayers: 3, hiddenSize: 64 });
    qwen2.close();
    model.dispose();
  });

  it('stores f16 / bf16 weights within their rounding', async () => {
    for (const [dtype, tolerance] of [['f16', 2 ** -10], ['bf16', 2 ** -7]] as const) {
      const plan = planConversion(config, sources(writeInstructBlip(instructblip)));
      const out = join(root, `out-${dtype}`);
      await convertModel(plan, out, { dtype });
      plan.close();
      const written = TensorSource.fromDir(out);
      expect(written.info('vlm_att_query_spatial').dtype).toBe(dtype.toUpperCase());
      const got = written.read('vlm_att_query_spatial');
      const want = instructblip.get('query_tokens')!.values;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(tolerance * Math.abs(want[i]) + 1e-7);
      written.close();
    }
  });

  it('exportOnnx writes the ONNX modules into <out>/onnx (float16 graphs here, recorded as runtime.onnxDtype), which a session opens as it is', async () => {
    const plan = planConversion(config, sources(writeInstructBlip(instructblip)));
    const out = join(root, 'out-onnx');
    const phases: string[] = [];
    const report = await convertModel(plan, out, { exportOnnx: true, onnxDtype: 'float16', onProgress: (p) => phases.push(p.phase) });
    plan.close();
    expect(report.onnx).toBe(true);
    expect(phases.filter((p) => p === 'onnx').length).toBe(4);
    expect(readModulesManifest(join(out, MODULES_DIR)).options.dtype).toBe('float16');
    expect((JSON.parse(readFileSync(join(out, CONFIG_FILE), 'utf8')) as { runtime: { onnxDtype: string } }).runtime.onnxDtype).toBe('float16');
    // No dtype option: the folder's config says float16, so the session opens the shipped export, not a fresh one.
    const session = await InferenceSession.open(out, { cacheDir: join(root, 'no-cache') });
    expect(session.exportDir).toBe(join(out, MODULES_DIR));
    await session.close();
  }, 120_000);

  it('a missing key lists every weight it leaves without a source, in both Q-Formers', () => {
    const key = 'qformer.encoder.layer.0.output_query.dense.weight';
    const error = conversionError(() => planConversion(config, sources(writeInstructBlip(edited((t) => t.delete(key))))));
    expect(error.missing.map((m) => m.key).sort()).toEqual(['vlm_att_encoder_spatial.encoder.layer.0.output_query.dense.weight', 'vlm_att_encoder_temporal.encoder.layer.0.output_query.dense.weight']);
    expect(error.message).toContain('vlm_att_encoder_temporal.encoder.layer.0.output_query.dense.weight');
  });

  it('an unexpected key under a consumed prefix is an error naming it; --bvllm-free folders ignore none', () => {
    const extra = 'qformer.encoder.layer.7.attention.attention.query.weight';
    const tower = 'vision_model.encoder.layers.3.mlp.fc1.weight';
    const error = conversionError(() =>
      planConversion(
        config,
        sources(
          writeInstructBlip(
            edited((t) => {
              t.set(extra, { values: new Float32Array(4), shape: [2, 2] });
              t.set(tower, { values: new Float32Array(4), shape: [2, 2] });
            }),
          ),
        ),
      ),
    );
    expect(error.unexpected.map((u) => u.key).sort()).toEqual([extra, tower].sort());
    expect(error.missing).toEqual([]);
    expect(error.message).toContain(extra);
  });

  it('a wrong shape names the model key and the source key with both shapes', () => {
    const error = conversionError(() =>
      planConversion(config, sources(writeInstructBlip(edited((t) => t.set('qformer.embeddings.layernorm.weight', { values: new Float32Array(31), shape: [31] }))))),
    );
    expect(error.misshaped.map((m) => [m.key, m.sourceKey, m.expected, m.actual])).toEqual([
      ['vlm_att_encoder_temporal.embeddings.layernorm.weight', 'qformer.embeddings.layernorm.weight', [32], [31]],
      ['vlm_att_encoder_spatial.embeddings.layernorm.weight', 'qformer.embeddings.layernorm.weight', [32], [31]],
    ]);
  });

  it('a non-float tensor is a wrong-dtype error naming it', () => {
    const key = 'vision_model.embeddings.class_embedding';
    const error = conversionError(() => planConversion(config, sources(writeInstructBlip(edited((t) => t.set(key, { values: new Int32Array(24), shape: [1, 1, 24] }))))));
    expect(error.wrongDtype).toEqual([{ key: 'vision_tower.embeddings.class_embedding', source: 'instructblip', sourceKey: key, dtype: 'I64' }]);
  });

  it('a vision-only InstructBLIP folder lists every missing Q-Former weight; --allow-random fills them, named in the report', async () => {
    const visionOnly = writeInstructBlip(edited((t) => {
      for (const k of [...t.keys()]) if (!k.startsWith('vision_model.')) t.delete(k);
    }));
    const error = conversionError(() => planConversion(config, sources(visionOnly)));
    const missing = error.missing.map((m) => m.key);
    expect(missing).toContain('vlm_att_query_temporal');
    expect(missing).toContain('vlm_att_query_spatial');
    expect(missing.filter((k) => k.startsWith('vlm_att_encoder_spatial.')).length).toBe(qformerParameterShapes('', { ...qformer, encoderHiddenSize: 24, layerNormEps: 1e-12, hiddenAct: 'gelu' }).size);
    expect(missing.every((k) => k.startsWith('vlm_att_'))).toBe(true);

    const allowRandom = ['vlm_att_encoder_temporal', 'vlm_att_encoder_spatial', 'vlm_att_query_temporal', 'vlm_att_query_spatial'];
    const plan = planConversion(config, sources(visionOnly, { allowRandom }));
    const report = await convertModel(plan, join(root, 'out-random'));
    plan.close();
    const allowed = report.random.filter((r) => r.reason === 'allowed').map((r) => r.key);
    expect(allowed.sort()).toEqual(missing.sort());
    // Random fills are seeded per key, and norm scales start at one.
    const written = TensorSource.fromDir(join(root, 'out-random'));
    expect(Array.from(written.read('vlm_att_encoder_spatial.embeddings.layernorm.weight'))).toEqual(new Array(32).fill(1));
    written.close();
    expect(() => planConversion(config, sources(visionOnly, { allowRandom: ['vlm_att_nothing'] }))).toThrow(/vlm_att_nothing/);
  });

  it('with the selection and sampling baselines (uniform, pool) the Q-Former keys are skipped, not errors', () => {
    const baselines = { ...config, frameSelect: { kind: 'uniform', numFrames: 4 }, spatialSample: { kind: 'pool', outputGrid: [2, 2] } };
    const plan = planConversion(baselines, sources(writeInstructBlip(instructblip)));
    expect(plan.weights.find((w) => w.key === 'vlm_att_ln_temporal.weight')).toMatchObject({ source: 'instructblip', sourceKey: 'vision_model.post_layernorm.weight' });
    const skipped = plan.skipped.filter((k) => k.key.startsWith('qformer.') || k.key === 'query_tokens');
    expect(skipped.length).toBe([...instructblip.keys()].filter((k) => k.startsWith('qformer.') || k === 'query_tokens').length);
    expect(skipped.every((k) => k.reason.startsWith('not used by this config'))).toBe(true);
    plan.close();
  });

  it('resizes the position table to the config image size, as LAVIS does at load (spec §1.0)', () => {
    const bigger = { ...config, vision: { ...config.vision, vit: { ...vit, imageSize: 48 } } };
    const plan = planConversion(bigger, sources(writeInstructBlip(instructblip)));
    const pos = plan.weights.find((w) => w.key === 'vision_tower.embeddings.position_embedding')!;
    expect(pos.shape).toEqual([1, 10, 24]);
    expect(pos.note).toMatch(/2×2 → 3×3/);
    expect(plan.source.read(pos.key).length).toBe(10 * 24);
    plan.close();
  });

  it('--vision takes the tower and the temporal LayerNorm (D13) from a CLIP folder; InstructBLIP\'s tower is skipped', () => {
    const clip = { ...vit, family: 'clip' as const };
    const clipDir = join(root, 'clip');
    mkdirSync(clipDir);
    const tensors = randomTensors([...vitParameterShapes(vitConfigSchema.parse(clip), 'vision_model.'), ['text_model.embeddings.token_embedding.weight', [10, 24]]], Rng.fromSeed(8));
    writeSafetensors(join(clipDir, 'model.safetensors'), tensors as ReadonlyMap<string, WritableTensor>);
    writeFileSync(join(clipDir, 'config.json'), JSON.stringify({ model_type: 'clip', vision_config: { hidden_size: 24, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, image_size: 32, patch_size: 16 } }));
    const plan = planConversion({ ...config, vision: { ...config.vision, vit: clip } }, sources(writeInstructBlip(instructblip), { vision: clipDir }));
    const from = new Map(plan.weights.map((w) => [w.key, w]));
    expect(plan.weights.filter((w) => w.key.startsWith('vision_tower.')).every((w) => w.source === 'vision')).toBe(true);
    expect(from.get('vision_tower.pre_layrnorm.weight')?.sourceKey).toBe('vision_model.pre_layrnorm.weight');
    expect(from.get('vlm_att_ln_temporal.weight')).toMatchObject({ source: 'vision', sourceKey: 'vision_model.post_layernorm.weight' });
    expect(from.get('vlm_att_query_temporal')).toMatchObject({ source: 'instructblip', sourceKey: 'query_tokens' });
    const skipped = plan.skipped.filter((k) => k.source === 'instructblip' && k.key.startsWith('vision_model.'));
    expect(skipped.length).toBe([...instructblip.keys()].filter((k) => k.startsWith('vision_model.')).length);
    expect(Array.from(plan.source.read('vision_tower.embeddings.class_embedding'))).toEqual(Array.from(tensors.get('vision_model.embeddings.class_embedding')!.values));
    plan.close();
  });

  it('--lora merges the adapter into the Qwen2 weights, and the folder has no LoRA left', async () => {
    const plan = planConversion({ ...config, lora: { r: 4, alpha: 8 } }, sources(writeInstructBlip(instructblip), { lora: loraFixture }));
    expect(plan.config.lora).toBeUndefined();
    expect(plan.weights.some((w) => w.key.includes('lora_'))).toBe(false);
    const key = 'model.layers.0.self_attn.q_proj.weight';
    const base = TensorSource.fromDir(qwen2Dir);
    const adapter = TensorSource.fromDir(loraFixture, 'adapter_model.safetensors');
    const [a, b] = ['A', 'B'].map((m) => tf.tensor(adapter.read(`base_model.model.model.layers.0.self_attn.q_proj.lora_${m}.weight`), adapter.info(`base_model.model.model.layers.0.self_attn.q_proj.lora_${m}.weight`).shape));
    const merged = tf.tidy(() => tf.add(tf.tensor(base.read(key), base.info(key).shape), tf.mul(tf.matMul(b, a), 8 / 4)));
    const got = plan.source.read(key);
    const want = merged.dataSync();
    expect(Math.max(...Array.from(want, (v, i) => Math.abs(v - got[i])))).toBeLessThan(1e-5);
    tf.dispose([a, b, merged]);
    base.close();
    adapter.close();
    plan.close();
  });

  it('re-converts a B-VLLM folder: every weight from it, its LoRA kept as PEFT keys, the quantisation recorded for the first run', async () => {
    const trained = join(root, 'bvllm-source');
    const model = BvllmModel.create({ ...config, lora: { r: 2, alpha: 4 } }, testAssets(), 3);
    saveModel(model, trained, assets);
    const plan = planConversion(readModelConfig(trained), { bvllm: trained });
    expect(plan.config.lora).toMatchObject({ r: 2, alpha: 4 });
    expect(new Set(plan.weights.map((w) => w.source))).toEqual(new Set(['bvllm']));
    expect(plan.weights.map((w) => w.key).sort()).toEqual(model.store.keys().sort());
    const out = join(root, 'out-bvllm');
    await convertModel(plan, out, { dtype: 'bf16', llmQuantize: 'int4', visionQuantize: 'int8' });
    plan.close();
    const written = JSON.parse(readFileSync(join(out, 'bvllm.json'), 'utf8')) as { runtime: Record<string, string> };
    expect(written.runtime).toMatchObject({ llmQuantize: 'int4', visionQuantize: 'int8' });
    const reloaded = loadModel(out);
    const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
    const want = model.store.get(key).dataSync();
    const got = reloaded.store.get(key).dataSync();
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(2 ** -7 * Math.abs(want[i]) + 1e-7);
    reloaded.dispose();
    model.dispose();
  });

  it('plans the paper config (configs/bvllm-official.json) from the config alone, Qwen2-7B at its published size (spec §1.0)', () => {
    const official = parsePipelineConfig(JSON.parse(readFileSync(new URL('../../configs/bvllm-official.json', import.meta.url), 'utf8')));
    const { lora: _, ...merged } = official;
    const count = (filter: (key: string) => boolean) =>
      [...modelParameterShapes(merged)].filter(([k]) => filter(k)).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
    // Qwen2-7B's model card count (untied head), and EVA-ViT-g's 1.0 B; about 9 B in all.
    expect(count((k) => k.startsWith('model.') || k === 'lm_head.weight')).toBe(7_615_616_512);
    expect(count((k) => k.startsWith('vision_tower.')) / 1e9).toBeCloseTo(1.0, 1);
    expect(count(() => true) / 1e9).toBeGreaterThan(8.8);
    expect(count(() => true) / 1e9).toBeLessThan(9.1);
  });
});
