/**
 * Training configs for the two B-VLLM stages (spec §2), validated once at the boundary. Defaults reproduce the
 * official scripts on one device: the per-device micro-batch of the scripts, with the gradient accumulation of
 * `accum 8 × 16 GPUs` so the effective batch is the paper's (256 for stage 1, 128 for stage 2).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, parseConfig } from '@bvllm/core';

/** What every stage shares: the optimizer, schedule, batching and bookkeeping of the loop. */
const common = {
  /** `set_seed(42)` in `train.py` (spec §2): data order and training noise derive from it. */
  seed: z.number().int().nonnegative().default(42),
  /** Passes over the data; both stages train 1 epoch (spec §2). */
  epochs: z.number().positive().default(1),
  /** Stops after this many optimizer updates instead of `epochs` (HF `max_steps`); absent → from epochs. */
  maxSteps: z.number().int().positive().optional(),
  /** Base lr of the schedule (set per stage below). */
  lr: z.number().positive(),
  /** Warm-up fraction of the updates, `--warmup_ratio 0.03` in both scripts (spec §2). */
  warmupRatio: z.number().min(0).max(1).default(0.03),
  /** AdamW λ; `--weight_decay 0.` in both scripts (spec §2). */
  weightDecay: z.number().nonnegative().default(0),
  /** AdamW β1; HF TrainingArguments default (the scripts keep it). */
  adamBeta1: z.number().min(0).lt(1).default(0.9),
  /** AdamW β2; HF TrainingArguments default. */
  adamBeta2: z.number().min(0).lt(1).default(0.999),
  /** AdamW ε; HF TrainingArguments default. */
  adamEps: z.number().positive().default(1e-8),
  /** Global gradient-norm clip; HF TrainingArguments `max_grad_norm` default 1.0 (the scripts keep it). 0 disables. */
  maxGradNorm: z.number().nonnegative().default(1),
  /** Longest tokenized sample, `--model_max_length 8192` (spec §2); longer samples are skipped. */
  modelMaxLength: z.number().int().positive().default(8192),
  /** Optimizer updates between checkpoints (HF `save_steps` default 500); the last update always saves. */
  checkpointEvery: z.number().int().positive().default(500),
  /** Optimizer updates between progress lines when stderr is not a terminal. */
  logEvery: z.number().int().positive().default(1),
  /** Annotation JSON in the VideoLLaMA2/LLaVA format and the folder its media paths are relative to (spec §2). */
  data: z
    .object({
      /** `--data_path`. */
      annotations: z.string().min(1),
      /** `--data_folder`. */
      folder: z.string().min(1),
    })
    .strict(),
};

/** The LoRA block of a stage-2 config (our names; `rank` is PEFT's `r`). */
export const stage2Lora = z
  .object({
    /** r = 128 (spec §2). */
    rank: z.number().int().positive().default(128),
    /** α = 256 (spec §2); the adapter scale is α / r. */
    alpha: z.number().positive().default(256),
    /** LoRA dropout 0.05 (spec §2). */
    dropout: z.number().min(0).lt(1).default(0.05),
    /** Target module names (spec §2). */
    targets: z
      .array(z.enum(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']))
      .nonempty()
      .default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
  })
  .strict();
export type Stage2Lora = z.infer<typeof stage2Lora>;

/** The adapter stage 2 attaches when its config has no `lora` block and the model no adapter (spec §2). */
export const STAGE2_LORA_DEFAULTS: Readonly<Stage2Lora> = stage2Lora.parse({});

export const stage1Config = z
  .object({
    stage: z.literal('stage1'),
    ...common,
    /** `--learning_rate 1e-3` in `pretrain.sh` (spec §2). */
    lr: common.lr.default(1e-3),
    /** Linear, as the supplementary material says (spec §10 D7); the script's cosine is available. */
    schedule: z.enum(['linear', 'cosine', 'constant']).default('linear'),
    /** `--per_device_train_batch_size 2` in `pretrain.sh` (spec §2). */
    microBatchSize: z.number().int().positive().default(2),
    /** Accumulation 8 × 16 GPUs = 128, so 2 × 128 = 256, the paper's stage-1 batch (spec §2). */
    gradientAccumulationSteps: z.number().int().positive().default(128),
    /** Frames per video, uniform (`--num_frames 16`; spec §10 D6). */
    numFrames: z.number().int().positive().default(16),
    /** `square` (no pad) is the stage-1 default (spec §2). */
    imageAspectRatio: z.enum(['square', 'pad']).default('square'),
  })
  .strict();

export const stage2Config = z
  .object({
    stage: z.literal('stage2'),
    ...common,
    /** `--learning_rate 1e-4` in `finetune.sh` (spec §2). */
    lr: common.lr.default(1e-4),
    /** Cosine, as the script (spec §2). */
    schedule: z.enum(['linear', 'cosine', 'constant']).default('cosine'),
    /** `--per_device_train_batch_size 1` in `finetune.sh` (spec §2). */
    microBatchSize: z.number().int().positive().default(1),
    /** Accumulation 8 × 16 GPUs = 128, the paper's stage-2 batch (spec §2). */
    gradientAccumulationSteps: z.number().int().positive().default(128),
    /** Frames per video, uniform (`--num_frames 32`; spec §10 D6). */
    numFrames: z.number().int().positive().default(32),
    /** `--image_aspect_ratio pad` in `finetune.sh` (spec §2). */
    imageAspectRatio: z.enum(['square', 'pad']).default('pad'),
    /**
     * LoRA on every Qwen2 linear layer but `lm_head` (spec §2, `bvlm_trainer.py:89-102`), attached when the model has
     * none. Omitted: {@link STAGE2_LORA_DEFAULTS}, or the model's own adapter when it has one; given for a model that
     * has one, it must match that adapter (a different adapter would be silently ignored otherwise).
     */
    lora: stage2Lora.optional(),
    /** Which stage-1 weights stage 2 starts from: all trained `vlm_att_*` (spec §10 D8) or the official reset (§2). */
    handoff: z.enum(['carry-all', 'official-reset']).default('carry-all'),
  })
  .strict();

export const trainingConfig = z.discriminatedUnion('stage', [stage1Config, stage2Config]);

export type Stage1Config = z.infer<typeof stage1Config>;
export type Stage2Config = z.infer<typeof stage2Config>;
export type TrainingConfig = z.infer<typeof trainingConfig>;
export type TrainingStage = TrainingConfig['stage'];

/** Validates a parsed config object; a bad field throws ConfigError with its path (e.g. `lora.rank`). */
export function parseTrainingConfig(value: unknown): TrainingConfig {
  const stage = (value as { stage?: unknown } | null)?.stage;
  if (stage !== 'stage1' && stage !== 'stage2')
    throw new ConfigError(`training config: stage: expected "stage1" or "stage2", got ${JSON.stringify(stage)}`, ['stage']);
  return parseConfig(trainingConfig, value, 'training config');
}

/** Parses YAML text into a validated config; YAML syntax errors are ConfigErrors too. */
export function parseTrainingConfigYaml(text: string, source = 'training config'): TrainingConfig {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (cause) {
    throw new ConfigError(`${source}: not valid YAML: ${(cause as Error).message}`, [], { cause });
  }
  return parseTrainingConfig(value);
}

export function loadTrainingConfig(path: string): TrainingConfig {
  return parseTrainingConfigYaml(readFileSync(path, 'utf8'), path);
}
