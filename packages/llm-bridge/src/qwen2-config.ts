import { ConfigError, parseConfig } from '@bvllm/core';
import { z } from 'zod';

/**
 * The hyper-parameters the Qwen2 forward pass reads (HF `Qwen2Config`), in our names. Defaults are those of a tiny
 * from-scratch model; a pretrained model always comes from its `config.json` through {@link qwen2ConfigFromHf}.
 */
export const qwen2Config = z
  .object({
    /** Vocabulary size V (HF `vocab_size`); the tokenizer's. */
    vocabSize: z.number().int().positive(),
    /** Model width D (HF `hidden_size`; 3584 for Qwen2-7B, spec §1.0). */
    hiddenSize: z.number().int().positive().default(128),
    /** SiLU-gated MLP width (HF `intermediate_size`). */
    intermediateSize: z.number().int().positive().default(352),
    /** Decoder layers (HF `num_hidden_layers`). */
    numLayers: z.number().int().positive().default(2),
    /** Query heads H (HF `num_attention_heads`). */
    numHeads: z.number().int().positive().default(4),
    /** Key/value heads Hkv; H must be a multiple (grouped-query attention, HF `num_key_value_heads`). */
    numKvHeads: z.number().int().positive().default(2),
    /** Per-head width d; HF derives it as D / H unless `head_dim` is given. */
    headDim: z.number().int().positive().optional(),
    /** RMSNorm epsilon (HF `rms_norm_eps`, Qwen2 default 1e-6). */
    rmsNormEps: z.number().positive().default(1e-6),
    /** Rotary base θ (HF `rope_theta`; Qwen2 default 1e6). */
    ropeTheta: z.number().positive().default(1_000_000),
    /** Longest sequence the model accepts, prompt plus generation (HF `max_position_embeddings`). */
    maxPositionEmbeddings: z.number().int().positive().default(2048),
    /** Whether the LM head reuses `model.embed_tokens.weight` (HF `tie_word_embeddings`; true for Qwen2-0.5B). */
    tieWordEmbeddings: z.boolean().default(true),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.numHeads % c.numKvHeads !== 0)
      ctx.addIssue({ code: 'custom', path: ['numKvHeads'], message: `numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}` });
    if (c.headDim === undefined && c.hiddenSize % c.numHeads !== 0)
      ctx.addIssue({ code: 'custom', path: ['numHeads'], message: `hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}` });
    if ((c.headDim ?? c.hiddenSize / c.numHeads) % 2 !== 0)
      ctx.addIssue({ code: 'custom', path: ['headDim'], message: 'rotary embeddings need an even head dimension' });
  });
export type Qwen2Config = z.output<typeof qwen2Config>;
export type Qwen2ConfigInput = z.input<typeof qwen2Config>;

/** Validates our config (strict: a typo fails), filling defaults. Throws ConfigError. */
export function parseQwen2Config(input: unknown): Qwen2Config {
  return parseConfig(qwen2Config, input, 'qwen2');
}

/** The per-head width d. */
export function headDimOf(config: Qwen2Config): number {
  return config.headDim ?? config.hiddenSize / config.numHeads;
}

// HF config.json is not ours: unknown keys are ignored and only the fields the forward pass reads are checked.
const hfQwen2Config = z
  .object({
    model_type: z.string().optional(),
    vocab_size: z.number(),
    hidden_size: z.number(),
    intermediate_size: z.number(),
    num_hidden_layers: z.number(),
    num_attention_heads: z.number(),
    num_key_value_heads: z.number().optional(),
    head_dim: z.number().nullish(),
    rms_norm_eps: z.number().optional(),
    rope_theta: z.number().optional(),
    max_position_embeddings: z.number().optional(),
    tie_word_embeddings: z.boolean().optional(),
    hidden_act: z.string().optional(),
    rope_scaling: z.unknown().optional(),
    // transformers 5 saves the rotary settings here instead (`rope_theta` moves inside; `rope_scaling` is gone).
    rope_parameters: z
      .object({ rope_type: z.string().optional(), rope_theta: z.number().optional(), partial_rotary_factor: z.number().optional() })
      .passthrough()
      .nullish(),
  })
  .passthrough();

/**
 * θ from either layout: top-level `rope_theta` (Hub configs, transformers 4) or `rope_parameters.rope_theta`
 * (transformers 5). Any rotary variant other than the default one (YaRN, linear, dynamic NTK, partial rotary, per
 * attention type) changes the tables, so running without it would be silently wrong: ConfigError naming the field.
 */
function ropeThetaOf(hf: z.output<typeof hfQwen2Config>): number {
  if (hf.rope_scaling !== undefined && hf.rope_scaling !== null) {
    const scaling = hf.rope_scaling as Record<string, unknown>;
    const type = scaling.rope_type ?? scaling.type;
    throw new ConfigError(`config.json: rope_scaling${type === undefined ? '' : ` of type ${JSON.stringify(type)}`} is not supported`, ['rope_scaling']);
  }
  const params = hf.rope_parameters;
  if (!params) return hf.rope_theta ?? 10_000;
  const nested = Object.keys(params).find((k) => typeof params[k] === 'object' && params[k] !== null);
  if (nested !== undefined)
    throw new ConfigError(`config.json: rope_parameters.${nested}: per-attention-type rotary settings are not supported`, ['rope_parameters', nested]);
  if (params.rope_type !== undefined && params.rope_type !== 'default')
    throw new ConfigError(`config.json: rope_parameters.rope_type is "${params.rope_type}"; only "default" rotary embeddings are supported`, ['rope_parameters', 'rope_type']);
  if (params.partial_rotary_factor !== undefined && params.partial_rotary_factor !== 1)
    throw new ConfigError(`config.json: rope_parameters.partial_rotary_factor ${params.partial_rotary_factor} is not supported (Qwen2 rotates whole heads)`, ['rope_parameters', 'partial_rotary_factor']);
  if (params.rope_theta !== undefined && hf.rope_theta !== undefined && params.rope_theta !== hf.rope_theta)
    throw new ConfigError(`config.json: rope_theta ${hf.rope_theta} and rope_parameters.rope_theta ${params.rope_theta} disagree`, ['rope_parameters', 'rope_theta']);
  return params.rope_theta ?? hf.rope_theta ?? 10_000;
}

/** Reads a Hugging Face `Qwen2ForCausalLM` `config.json` object. Throws ConfigError on anything we cannot run. */
export function qwen2ConfigFromHf(raw: Record<string, unknown>): Qwen2Config {
  const hf = parseConfig(hfQwen2Config, raw, 'config.json');
  if (hf.model_type !== undefined && hf.model_type !== 'qwen2')
    throw new ConfigError(`config.json: model_type is "${hf.model_type}", expected "qwen2"`, ['model_type']);
  if (hf.hidden_act !== undefined && hf.hidden_act !== 'silu')
    throw new ConfigError(`config.json: hidden_act is "${hf.hidden_act}", Qwen2 uses "silu"`, ['hidden_act']);
  const ropeTheta = ropeThetaOf(hf);
  return parseQwen2Config({
    vocabSize: hf.vocab_size,
    hiddenSize: hf.hidden_size,
    intermediateSize: hf.intermediate_size,
    numLayers: hf.num_hidden_layers,
    numHeads: hf.num_attention_heads,
    // HF defaults num_key_value_heads to num_attention_heads (plain multi-head attention).
    numKvHeads: hf.num_key_value_heads ?? hf.num_attention_heads,
    headDim: hf.head_dim ?? undefined,
    rmsNormEps: hf.rms_norm_eps ?? 1e-6,
    ropeTheta,
    maxPositionEmbeddings: hf.max_position_embeddings ?? 32_768,
    // HF Qwen2Config's default is false (the 0.5B/1.5B configs set it true explicitly).
    tieWordEmbeddings: hf.tie_word_embeddings ?? false,
  });
}
