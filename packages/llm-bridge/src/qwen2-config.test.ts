import { ConfigError } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { headDimOf, parseQwen2Config, qwen2ConfigFromHf } from './qwen2-config.js';

// Qwen/Qwen2-0.5B-Instruct's config.json, the fields that matter.
const qwen05b = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  max_position_embeddings: 32768,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  sliding_window: 32768,
  use_sliding_window: false,
  torch_dtype: 'bfloat16',
};

describe('Qwen2 config', () => {
  it('reads an HF config.json leniently (unknown keys ignored)', () => {
    const c = qwen2ConfigFromHf(qwen05b);
    expect(c).toMatchObject({ hiddenSize: 896, numLayers: 24, numHeads: 14, numKvHeads: 2, vocabSize: 151936, tieWordEmbeddings: true, maxPositionEmbeddings: 32768 });
    expect(headDimOf(c)).toBe(64);
  });

  it("fills HF Qwen2Config's defaults for absent fields", () => {
    const { num_key_value_heads: _k, tie_word_embeddings: _t, rope_theta: _r, ...rest } = qwen05b;
    const c = qwen2ConfigFromHf(rest);
    expect(c.numKvHeads).toBe(14);
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.ropeTheta).toBe(10000);
  });

  it('refuses what it cannot run, naming the field', () => {
    expect(() => qwen2ConfigFromHf({ ...qwen05b, model_type: 'llama' })).toThrow(/model_type/);
    expect(() => qwen2ConfigFromHf({ ...qwen05b, rope_scaling: { type: 'yarn', factor: 4 } })).toThrow(ConfigError);
    expect(() => qwen2ConfigFromHf({ ...qwen05b, hidden_size: undefined })).toThrow(ConfigError);
  });

  it('reads rope_theta from the top level (Hub) or from rope_parameters (transformers 5)', () => {
    const { rope_theta: theta, ...withoutTheta } = qwen05b;
    const v5 = { ...withoutTheta, rope_parameters: { rope_theta: theta, rope_type: 'default' } };
    expect(qwen2ConfigFromHf(v5).ropeTheta).toBe(theta);
    expect(qwen2ConfigFromHf(qwen05b).ropeTheta).toBe(theta);
    // Both layouts at once (a config re-saved by transformers 5 may keep the old field) must agree.
    expect(qwen2ConfigFromHf({ ...v5, rope_theta: theta }).ropeTheta).toBe(theta);
    expect(qwen2ConfigFromHf({ ...qwen05b, rope_parameters: { rope_type: 'default' } }).ropeTheta).toBe(theta);
    expect(qwen2ConfigFromHf({ ...qwen05b, rope_scaling: null, rope_parameters: null }).ropeTheta).toBe(theta);
  });

  it('refuses rotary variants other than the default one, naming the field', () => {
    const { rope_theta: theta, ...withoutTheta } = qwen05b;
    const cases: [Record<string, unknown>, (string | number)[], RegExp][] = [
      [{ rope_parameters: { rope_theta: theta, rope_type: 'yarn', factor: 4 } }, ['rope_parameters', 'rope_type'], /rope_parameters\.rope_type is "yarn"/],
      [{ rope_parameters: { rope_theta: theta, partial_rotary_factor: 0.5 } }, ['rope_parameters', 'partial_rotary_factor'], /partial_rotary_factor/],
      [{ rope_parameters: { full_attention: { rope_theta: theta } } }, ['rope_parameters', 'full_attention'], /full_attention/],
      [{ rope_theta: 10_000, rope_parameters: { rope_theta: theta } }, ['rope_parameters', 'rope_theta'], /disagree/],
      [{ rope_theta: theta, rope_scaling: { type: 'linear', factor: 2 } }, ['rope_scaling'], /rope_scaling of type "linear"/],
      [{ rope_theta: theta, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, ['rope_scaling'], /rope_scaling of type "dynamic"/],
    ];
    for (const [patch, path, message] of cases) {
      let error: unknown;
      try {
        qwen2ConfigFromHf({ ...withoutTheta, ...patch });
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(patch)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toEqual(path);
      expect((error as ConfigError).message).toMatch(message);
    }
  });

  it('our own config is strict and checks head divisibility', () => {
    expect(() => parseQwen2Config({ vocabSize: 10, hiddenSiz: 64 })).toThrow(ConfigError);
    expect(() => parseQwen2Config({ vocabSize: 10, numHeads: 4, numKvHeads: 3 })).toThrow(/numKvHeads/);
    expect(parseQwen2Config({ vocabSize: 10 })).toMatchObject({ hiddenSize: 128, numLayers: 2, tieWordEmbeddings: true });
  });
});
