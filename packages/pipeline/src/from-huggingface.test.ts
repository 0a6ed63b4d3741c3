import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParameterStore, QFormer, Rng, TensorSource, initBackend, tf, writeSafetensors } from '@bvllm/core';
import { frameSelectRegistry } from '@bvllm/frame-select';
import { generationConfig, parseQwen2Config } from '@bvllm/llm-bridge';
import { spatialSampleRegistry } from '@bvllm/spatial-sample';
import { tokenMergeRegistry } from '@bvllm/token-merge';
import { VisionEncoder } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConversionError } from './convert/conversion-error.js';
import { modelFromHuggingFace } from './from-huggingface.js';
import { parsePipelineConfig } from './pipeline-config.js';
import { buildAssetsDir, testConfig } from './test-model.js';

const qwen2Dir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));
const official = JSON.parse(readFileSync(new URL('../configs/bvllm-official.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const qformer = { hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, vocabSize: 100, maxPositions: 64, crossAttentionFrequency: 1 };

let dir: string;
const written = new Map<string, Float32Array>();

/** A small InstructBLIP checkpoint in the real Hugging Face key layout (`vision_model.*`, `qformer.*`, `query_tokens`). */
function writeInstructBlip(target: string): void {
  const vision = VisionEncoder.create({ family: 'instructblip', hiddenSize: 24, intermediateSize: 48, numLayers: 1, numHeads: 2, imageSize: 32, patchSize: 16 }, Rng.fromSeed(1));
  const store = new ParameterStore('instructblip', Rng.fromSeed(2));
  new QFormer(store, 'qformer.', { ...qformer, encoderHiddenSize: 24, layerNormEps: 1e-12, hiddenAct: 'gelu' });
  store.create('query_tokens', [1, 8, 32], { kind: 'normal', std: 0.02 });
  const tensors = new Map<string, tf.Tensor>([...[...vision.variables()].map(([k, v]) => [`vision_model.${k}`, v] as const), ...store.entries()]);
  // A non-identity post-LayerNorm, so taking it as the temporal LN (D13) is visible.
  tensors.set('vision_model.post_layernorm.weight', tf.linspace(0.5, 1.5, 24));
  for (const [k, t] of tensors) written.set(k, t.dataSync() as Float32Array);
  writeSafetensors(join(target, 'model.safetensors'), tensors);
  writeFileSync(
    join(target, 'config.json'),
    JSON.stringify({
      model_type: 'instructblip',
      vision_config: { hidden_size: 24, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, image_size: 32, patch_size: 16, layer_norm_eps: 1e-6, hidden_act: 'gelu', qkv_bias: true },
      qformer_config: { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, vocab_size: 100, max_position_embeddings: 64, encoder_hidden_size: 24, cross_attention_frequency: 1 },
    }),
  );
  vision.model.store.dispose();
  store.dispose();
}

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'bvllm-hf-'));
  mkdirSync(join(dir, 'instructblip'));
  writeInstructBlip(join(dir, 'instructblip'));
  buildAssetsDir(join(dir, 'tokenizers'));
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('modelFromHuggingFace (spec §1.0, D13, D14)', () => {
  it('loads the tower, both Q-Formers and query sets, ln_vision as the temporal LN, and the Qwen2 weights', () => {
    const config = testConfig({
      frameSelect: { kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer },
      spatialSample: { kind: 'qformer', numQueries: 8, tokenBudget: null, qformer },
    });
    const model = modelFromHuggingFace(config, {
      instructblip: join(dir, 'instructblip'),
      qwen2: qwen2Dir,
      tokenizer: join(dir, 'tokenizers'),
      questionTokenizer: join(dir, 'tokenizers', 'question_tokenizer'),
    });
    expect(values(model.store.get('vision_tower.embeddings.class_embedding'))).toEqual(Array.from(written.get('vision_model.embeddings.class_embedding')!));
    for (const side of ['temporal', 'spatial']) {
      expect(values(model.store.get(`vlm_att_encoder_${side}.encoder.layer.1.crossattention.attention.key.weight`))).toEqual(
        Array.from(written.get('qformer.encoder.layer.1.crossattention.attention.key.weight')!),
      );
      expect(values(model.store.get(`vlm_att_query_${side}`))).toEqual(Array.from(written.get('query_tokens')!));
    }
    expect(values(model.store.get('vlm_att_ln_temporal.weight'))).toEqual(Array.from(written.get('vision_model.post_layernorm.weight')!));
    // The LLM is the fixture's: its logits at the last position match the fixture's expected values.
    const expected = JSON.parse(readFileSync(join(qwen2Dir, 'expected.json'), 'utf8')) as { input_ids: number[]; last_logits: number[] };
    const embeds = model.llm.embed([expected.input_ids]);
    const { logits } = model.llm.forward({ inputsEmbeds: embeds, logitsFor: 'last' });
    const got = logits.dataSync();
    expect(Math.max(...expected.last_logits.map((v, i) => Math.abs(v - got[i])))).toBeLessThan(1e-4);
    tf.dispose([embeds, logits]);
    model.dispose();
  });
  it('refuses a vision-only InstructBLIP folder, listing every missing Q-Former weight, before building anything', () => {
    const visionOnly = join(dir, 'vision-only');
    mkdirSync(visionOnly);
    const full = TensorSource.fromDir(join(dir, 'instructblip'));
    const tower = full.readAll((key) => key.startsWith('vision_model.'));
    full.close();
    writeSafetensors(join(visionOnly, 'model.safetensors'), tower);
    tf.dispose([...tower.values()]);
    writeFileSync(join(visionOnly, 'config.json'), readFileSync(join(dir, 'instructblip', 'config.json')));
    const config = testConfig({
      frameSelect: { kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer },
      spatialSample: { kind: 'qformer', numQueries: 8, tokenBudget: null, qformer },
    });
    const before = tf.memory().numTensors;
    let error: unknown;
    try {
      modelFromHuggingFace(config, { instructblip: visionOnly, qwen2: qwen2Dir, tokenizer: join(dir, 'tokenizers'), questionTokenizer: join(dir, 'tokenizers', 'question_tokenizer') });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConversionError);
    const missing = (error as ConversionError).missing.map((m) => m.key);
    expect(missing).toContain('vlm_att_query_temporal');
    expect(missing).toContain('vlm_att_encoder_spatial.encoder.layer.1.crossattention.attention.key.weight');
    expect(missing.every((k) => k.startsWith('vlm_att_'))).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('configs/bvllm-official.json', () => {
  it('is a valid pipeline config with the paper and code hyper-parameters (spec §1.0, §1.1, §2, §10)', () => {
    const config = parsePipelineConfig(official);
    const frameSelect = frameSelectRegistry.parse(config.frameSelect) as unknown as { numQueries: number; tau: number; qformer: { hiddenSize: number; numLayers: number } };
    expect(frameSelect).toMatchObject({ numQueries: 32, tau: 0.5, qformer: { hiddenSize: 768, numLayers: 12 } });
    expect(tokenMergeRegistry.parse(config.tokenMerge)).toMatchObject({ mergeThreshold: 0.75, order: 'time' });
    expect(spatialSampleRegistry.parse(config.spatialSample)).toMatchObject({ numQueries: 32, tokenBudget: 576 });
    expect(config.vision.vit).toMatchObject({ hiddenSize: 1408, numLayers: 39, imageSize: 336, patchSize: 14 });
    expect(parseQwen2Config(config.llm)).toMatchObject({ hiddenSize: 3584, numLayers: 28, numHeads: 28, numKvHeads: 4, tieWordEmbeddings: false });
    expect(config.lora).toMatchObject({ r: 128, alpha: 256, dropout: 0.05 });
    // Greedy with up to 2048 new tokens, as the official eval (spec §3).
    expect(generationConfig.parse(config.generation)).toMatchObject({ doSample: false, maxNewTokens: 2048 });
  });
});
