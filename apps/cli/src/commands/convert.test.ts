/**
 * `bvllm convert` end to end (issue #18): Hugging Face folders are written from a real (untrained) tiny model in
 * the InstructBLIP and Qwen2 key layouts, converted, and the folder answers with `bvllm ask`.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TensorSource, writeSafetensors, type WritableTensor } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bvllm, testWorkspace } from '../test-workspace.js';

let dir: string;
let video: string;
let configPath: string;
let instructblip: string;
let qwen2: string;

/** Writes `dir/model.safetensors` with `modelDir`'s tensors that `rename` maps (undefined: left out). */
function writeRenamed(modelDir: string, target: string, rename: (key: string) => string | undefined): void {
  mkdirSync(target, { recursive: true });
  const source = TensorSource.fromDir(modelDir);
  const tensors = new Map<string, WritableTensor>();
  for (const key of source.keys()) {
    const to = rename(key);
    if (to !== undefined) tensors.set(to, { values: source.read(key), shape: source.info(key).shape });
  }
  source.close();
  writeSafetensors(join(target, 'model.safetensors'), tensors);
}

beforeAll(async () => {
  let modelDir: string;
  ({ dir, modelDir, video } = await testWorkspace({ train: 1, test: 1 }));
  const model = JSON.parse(readFileSync(join(modelDir, 'bvllm.json'), 'utf8')) as Record<string, any>;
  // One InstructBLIP Q-Former and query set initialises both stages (D14): the sampler reads all 8 query rows.
  const config = { ...model, spatialSample: { ...model.spatialSample, numQueries: model.frameSelect.numQueryTokens } };
  configPath = join(dir, 'convert-config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const vit = model.vision.vit;
  const q = model.frameSelect.qformer;
  instructblip = join(dir, 'hf-instructblip');
  writeRenamed(modelDir, instructblip, (key) => {
    if (key.startsWith('vision_tower.')) return `vision_model.${key.slice('vision_tower.'.length)}`;
    if (key.startsWith('vlm_att_encoder_temporal.')) return `qformer.${key.slice('vlm_att_encoder_temporal.'.length)}`;
    return key === 'vlm_att_query_temporal' ? 'query_tokens' : undefined;
  });
  writeFileSync(
    join(instructblip, 'config.json'),
    JSON.stringify({
      model_type: 'instructblip',
      vision_config: { hidden_size: vit.hiddenSize, intermediate_size: vit.intermediateSize, num_hidden_layers: vit.numLayers, num_attention_heads: vit.numHeads, image_size: vit.imageSize, patch_size: vit.patchSize },
      qformer_config: { hidden_size: q.hiddenSize, num_hidden_layers: q.numLayers, num_attention_heads: q.numHeads, intermediate_size: q.intermediateSize, vocab_size: q.vocabSize, max_position_embeddings: q.maxPositions, cross_attention_frequency: q.crossAttentionFrequency },
    }),
  );
  cpSync(join(modelDir, 'question_tokenizer'), join(instructblip, 'qformer_tokenizer'), { recursive: true });
  qwen2 = join(dir, 'hf-qwen2');
  writeRenamed(modelDir, qwen2, (key) => (key.startsWith('model.') || key === 'lm_head.weight' ? key : undefined));
  const llm = model.llm;
  writeFileSync(
    join(qwen2, 'config.json'),
    JSON.stringify({
      model_type: 'qwen2',
      vocab_size: llm.vocabSize,
      hidden_size: llm.hiddenSize,
      intermediate_size: llm.intermediateSize,
      num_hidden_layers: llm.numLayers,
      num_attention_heads: llm.numHeads,
      num_key_value_heads: llm.numKvHeads,
      rms_norm_eps: llm.rmsNormEps,
      rope_theta: llm.ropeTheta,
      max_position_embeddings: llm.maxPositionEmbeddings,
      tie_word_embeddings: llm.tieWordEmbeddings,
    }),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(modelDir, f), join(qwen2, f));
}, 120_000);

describe('bvllm convert', () => {
  it('converts InstructBLIP + Qwen2 folders into a model folder that bvllm ask answers with', async () => {
    const out = join(dir, 'converted');
    const run = await bvllm(['convert', '--config', configPath, '--instructblip', instructblip, '--qwen2', qwen2, '--out', out, '--dtype', 'f16']);
    expect(run.stderr).toMatch(/weights \d+\/\d+/);
    expect(run.code).toBe(0);
    // The table: counts per source, and every weight the official init leaves random, by name.
    expect(run.stdout).toMatch(/^instructblip\s+\d+/m);
    expect(run.stdout).toMatch(/^qwen2\s+\d+/m);
    expect(run.stdout).toMatch(/^random\s+6\s/m);
    for (const key of ['vlm_att_projector_temporal.weight', 'vlm_att_projector_spatial.weight', 'vlm_att_val_projector_spatial.bias']) expect(run.stdout).toContain(key);
    expect(existsSync(join(out, 'onnx', 'manifest.json'))).toBe(true);

    const ask = await bvllm(['ask', video, 'What colour is the square?', '--model', out, '--json', '--max-new-tokens', '3']);
    expect(ask.stderr).toBe('');
    expect(ask.code).toBe(0);
    const answer = JSON.parse(ask.stdout) as { answer: string; selection: { visualTokens: number; frames: unknown[] } };
    expect(typeof answer.answer).toBe('string');
    expect(answer.selection.visualTokens).toBe(answer.selection.frames.length * 8);
  }, 240_000);

  it('fails with one line naming every missing key, and exit 1', async () => {
    const visionOnly = join(dir, 'hf-vision-only');
    writeRenamed(instructblip, visionOnly, (key) => (key.startsWith('vision_model.') ? key : undefined));
    cpSync(join(instructblip, 'config.json'), join(visionOnly, 'config.json'));
    cpSync(join(instructblip, 'qformer_tokenizer'), join(visionOnly, 'qformer_tokenizer'), { recursive: true });
    const run = await bvllm(['convert', '--config', configPath, '--instructblip', visionOnly, '--qwen2', qwen2, '--out', join(dir, 'never')]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^bvllm: error WEIGHTS_MISMATCH: .*missing \d+ weight/);
    for (const key of ['vlm_att_query_temporal', 'vlm_att_query_spatial', 'vlm_att_encoder_spatial.embeddings.layernorm.weight']) expect(run.stderr).toContain(key);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});
