/**
 * LoRA adapters in the PEFT folder layout: `adapter_config.json` plus `adapter_model.safetensors` with tensors
 * named `base_model.model.<base module>.lora_{A,B}.weight` (no adapter name, F32). PEFT loads a misnamed tensor
 * with only a warning and then ignores it, so names must match exactly; the round-trip test loads what we save.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointFormatError, ConfigError, Rng, configErrorFrom, readSafetensors, tf, writeSafetensors } from '@bvllm/core';
import { z } from 'zod';
import { LoraAdapter, type LoraConfig } from './lora.js';
import type { Qwen2Model } from './qwen2-model.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

// PEFT writes ~30 fields; we read the ones that change the math and refuse values we do not implement, rather than
// load an adapter that would compute something else.
export const peftLoraConfig = z
  .object({
    peft_type: z.literal('LORA'),
    task_type: z.string().nullish(),
    r: z.number().int().positive(),
    lora_alpha: z.number().positive(),
    lora_dropout: z.number().min(0).lt(1).default(0),
    target_modules: z.array(z.string()),
    bias: z.literal('none').default('none'),
    use_rslora: z.literal(false).default(false),
    use_dora: z.literal(false).default(false),
    fan_in_fan_out: z.literal(false).default(false),
    modules_to_save: z.null().or(z.array(z.string()).length(0)).nullish(),
    layers_to_transform: z.null().nullish(),
    rank_pattern: z.record(z.unknown()).refine((v) => Object.keys(v).length === 0, 'per-module ranks are not supported').nullish(),
    alpha_pattern: z.record(z.unknown()).refine((v) => Object.keys(v).length === 0, 'per-module alphas are not supported').nullish(),
  })
  .passthrough();

function readConfig(dir: string): LoraConfig {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new CheckpointFormatError(path, `cannot read the adapter config (${(cause as Error).message})`, { cause });
  }
  const parsed = peftLoraConfig.safeParse(raw);
  if (!parsed.success) throw configErrorFrom(path, parsed.error);
  const c = parsed.data;
  return { r: c.r, alpha: c.lora_alpha, dropout: c.lora_dropout, targetModules: c.target_modules as LoraConfig['targetModules'] };
}

/** Attaches the adapter stored in a PEFT folder to `model`. Strict: WeightsError lists every key that does not fit. */
export function loadLoraAdapter(model: Qwen2Model, dir: string, rng: Rng = Rng.fromSeed(0)): LoraAdapter {
  const config = readConfig(dir);
  let adapter: LoraAdapter;
  try {
    adapter = LoraAdapter.attach(model, config, rng);
  } catch (cause) {
    if (cause instanceof z.ZodError) throw configErrorFrom(join(dir, ADAPTER_CONFIG_FILE), cause);
    throw cause;
  }
  const tensors = readSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
  try {
    adapter.store.load(tensors);
  } catch (error) {
    adapter.detach();
    throw error;
  } finally {
    tf.dispose([...tensors.values()]);
  }
  return adapter;
}

/** Writes `adapter` as a PEFT folder the Python library loads (`PeftModel.from_pretrained`). */
export function saveLoraAdapter(adapter: LoraAdapter, dir: string, options: { baseModel?: string } = {}): void {
  if (adapter.config.targetModules.length === 0) throw new ConfigError('LoRA adapter has no target modules', ['targetModules']);
  mkdirSync(dir, { recursive: true });
  const config = {
    alpha_pattern: {},
    base_model_name_or_path: options.baseModel ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_to_transform: null,
    lora_alpha: adapter.config.alpha,
    lora_dropout: adapter.config.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: adapter.config.r,
    rank_pattern: {},
    target_modules: [...adapter.config.targetModules].sort(),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), adapter.variables(), { floatDtype: 'F32', metadata: { format: 'pt' } });
  writeFileSync(join(dir, ADAPTER_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}
