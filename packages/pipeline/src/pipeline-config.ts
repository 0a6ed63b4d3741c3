/**
 * One config assembles a whole B-VLLM: the vision tower, a `kind` per stage, the projector, the LLM and its LoRA.
 * Each stage's own fields are validated by its registry (so `frameSelect: { kind: 'uniform' }` is an ablation), and
 * this schema validates only what the pipeline itself reads.
 */
import { ConfigError, parseConfig } from '@bvllm/core';
import { z } from 'zod';

export const PIPELINE_FORMAT = 'bvllm-pipeline';
export const PIPELINE_FORMAT_VERSION = 1;

const stageConfig = z.object({ kind: z.string() }).passthrough();

/** The engine of one module at inference: tfjs (trains; runs anywhere) or onnxruntime-node (the fast path). */
export const moduleRuntime = z.enum(['tfjs', 'onnx']);
export type ModuleRuntime = z.infer<typeof moduleRuntime>;

/**
 * Quantisation of one module's ONNX MatMuls: `none` (float32), or a preset of `QUANT_PRESETS` in `@bvllm/onnx`:
 * weight-only `int8`/`int4` blocks (decoding) or `dynamic-int8` (integer GEMM; towers, Q-Formers, prefill).
 */
export const quantizeSetting = z.enum(['none', 'int8', 'int4', 'dynamic-int8']);
export type QuantizeSetting = z.infer<typeof quantizeSetting>;

/**
 * Inference engine per module. Training always runs on tfjs; a module on `onnx` is exported from the current
 * weights (cached on disk by their hash) the first time it answers. A stage kind without an exporter (the uniform
 * and all selectors, the pooling samplers) runs on tfjs whatever its field says.
 */
export const runtimeConfig = z
  .object({
    /** The Qwen2 decoder; `onnx` by default, `BVLLM_LLM_RUNTIME` overrides it. */
    llm: moduleRuntime.default('onnx'),
    /** Quantisation of the decoder's ONNX export (`none` keeps f32, and greedy answers equal tfjs'). */
    llmQuantize: quantizeSetting.default('none'),
    /** The vision tower (spec §1.0) when encoding videos; `onnx` by default, `BVLLM_VISUAL_RUNTIME` overrides it. */
    vision: moduleRuntime.default('onnx'),
    /** Quantisation of the tower's ONNX export (`none` keeps f32 and tfjs' features to 1e-4). */
    visionQuantize: quantizeSetting.default('none'),
    /** Quantisation of both Q-Formers' ONNX exports (frame selection; spatial sampling with the projector). */
    qformerQuantize: quantizeSetting.default('none'),
    /**
     * Weight dtype of the exported graphs: `float32`, or `float16` for the CUDA execution provider (graph inputs and
     * outputs stay float32). `bvllm convert --onnx-dtype f16` records it, so a session opens that export as it is.
     */
    onnxDtype: z.enum(['float32', 'float16']).default('float32'),
    /** The qformer-gumbel selector's Q-Former, projection and scores (spec §1.1 (a)); `onnx` by default. */
    frameSelect: moduleRuntime.default('onnx'),
    /** The spatial Q-Former and the projector after it (spec §1.1 (c), (e)); `onnx` by default. */
    spatialSample: moduleRuntime.default('onnx'),
  })
  .strict();
export type RuntimeConfig = z.output<typeof runtimeConfig>;

export const pipelineConfigSchema = z
  .object({
    format: z.literal(PIPELINE_FORMAT).default(PIPELINE_FORMAT),
    formatVersion: z.literal(PIPELINE_FORMAT_VERSION).default(PIPELINE_FORMAT_VERSION),
    /** Shown by `bvllm doctor` and in API responses (`model`). */
    name: z.string().min(1),
    vision: z
      .object({
        /** The ViT's fields (`@bvllm/vision-encoder` `vitConfigSchema`); EVA-ViT-g at 336 px for the official model. */
        vit: z.record(z.unknown()),
        /** Inference sampling (`samplingOptionsSchema`): 1 fps by default (spec §3). */
        sampling: z.record(z.unknown()).default({}),
        /** Frames per training sample, sampled uniformly (spec §2, D6: 16 in stage 1, 32 in stage 2). */
        trainFrames: z.number().int().positive().default(16),
        /** Frames per ViT call; bounds memory on long videos. */
        batchSize: z.number().int().positive().default(8),
      })
      .strict(),
    /** Longest question the Q-Formers read, truncated on the left (spec §1.1 "text": 256). */
    questionMaxLength: z.number().int().positive().default(256),
    frameSelect: stageConfig,
    tokenMerge: stageConfig,
    spatialSample: stageConfig,
    projector: stageConfig,
    /** The Qwen2 decoder (`@bvllm/llm-bridge` `qwen2Config`). */
    llm: z.record(z.unknown()),
    /** LoRA on the LLM (`loraConfig`); present in stage 2 and after (spec §2). */
    lora: z.record(z.unknown()).optional(),
    /** Omitted: the chat template's default system turn, as the official code passes none (spec §1.2). */
    systemPrompt: z.string().optional(),
    /** Generation defaults (`generationConfig`): greedy, as the official eval (spec §3). */
    generation: z.record(z.unknown()).default({}),
    /** Which engine runs each module at inference (`runtimeConfig`). */
    runtime: runtimeConfig.default({}),
  })
  .strict();

export type PipelineConfig = z.output<typeof pipelineConfigSchema>;
export type PipelineConfigInput = z.input<typeof pipelineConfigSchema>;

/** Validates a pipeline config at the boundary; a bad field gives a ConfigError naming its path. */
export function parsePipelineConfig(input: unknown): PipelineConfig {
  return parseConfig(pipelineConfigSchema, input, 'pipeline config');
}

/** Runs a stage registry's validation, prefixing the error with the slot's path in the pipeline config. */
export function withSlot<T>(slot: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${slot}: ${error.message}`, [slot, ...error.path], { cause: error });
    throw error;
  }
}
