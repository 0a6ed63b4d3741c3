/**
 * The decoder a model answers with. `runtime.llm: tfjs` generates on the training model itself; `onnx` runs the
 * same weights on onnxruntime-node: an export shipped in the model folder (`onnx/llm/`, the transformers.js layout)
 * when there is one, else our own export of the current weights (LoRA merged in), cached on disk under the
 * weights' hash so a model is exported once per machine, not once per process. The decoder (and its ONNX
 * sessions) is built on first use and reused for every question until the model is disposed.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@bvllm/core';
import { OrtDecoder, asCausalDecoder, exportQwen2OnnxCached, type CausalDecoder, type OrtDecoderOptions } from '@bvllm/llm-bridge';
import type { BvllmModel } from './bvllm-model.js';
import { moduleRuntime, type ModuleRuntime } from './pipeline-config.js';

/** Inside a model folder: a decoder export to run instead of exporting our own. */
export const LLM_ONNX_DIR = join('onnx', 'llm');

export interface InferenceRuntimeOptions {
  /** Export cache; `BVLLM_ONNX_CACHE`, else `~/.cache/bvllm/onnx`. */
  cacheDir?: string;
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /**
   * onnxruntime execution providers in order, e.g. `['cuda', 'cpu']` once onnxruntime-node's CUDA build is installed
   * (`ONNXRUNTIME_NODE_INSTALL_CUDA=v12` at install time); `BVLLM_ORT_PROVIDERS=cuda,cpu`, else CPU.
   */
  executionProviders?: OrtDecoderOptions['executionProviders'];
}

const PROVIDERS = ['cpu', 'cuda'] as const;

/** `BVLLM_ORT_PROVIDERS`, validated; nothing when unset. */
export function providersFromEnv(): OrtDecoderOptions['executionProviders'] {
  const env = process.env.BVLLM_ORT_PROVIDERS;
  if (!env) return undefined;
  const names = env.split(',').map((p) => p.trim());
  const bad = names.filter((p) => !(PROVIDERS as readonly string[]).includes(p));
  if (bad.length) throw new ConfigError(`BVLLM_ORT_PROVIDERS names ${bad.join(', ')}; expected a list of ${PROVIDERS.join(', ')}`, ['runtime', 'llm']);
  return names as (typeof PROVIDERS)[number][];
}

const decoders = new WeakMap<BvllmModel, Promise<CausalDecoder>>();
const modelDirs = new WeakMap<BvllmModel, string>();

/** Records the folder a model was loaded from, where a shipped ONNX export may sit. */
export function rememberModelDir(model: BvllmModel, dir: string): void {
  modelDirs.set(model, dir);
}

/** The LLM's engine: `BVLLM_LLM_RUNTIME` if set, else the config's `runtime.llm`. */
export function llmRuntime(model: BvllmModel): ModuleRuntime {
  const env = process.env.BVLLM_LLM_RUNTIME;
  if (env === undefined || env === '') return model.config.runtime.llm;
  const parsed = moduleRuntime.safeParse(env);
  if (!parsed.success) throw new ConfigError(`BVLLM_LLM_RUNTIME is ${JSON.stringify(env)}, expected "tfjs" or "onnx"`, ['runtime', 'llm']);
  return parsed.data;
}

/** The decoder `model` answers with, built once and reused. */
export function inferenceDecoder(model: BvllmModel, options: InferenceRuntimeOptions = {}): Promise<CausalDecoder> {
  let decoder = decoders.get(model);
  if (!decoder) {
    decoder = llmRuntime(model) === 'tfjs' ? Promise.resolve(asCausalDecoder(model.llm)) : onnxDecoder(model, options);
    // A failed build is not cached: the next question tries again (e.g. after the user fixed the cache folder).
    const building = decoder;
    building.catch(() => {
      if (decoders.get(model) === building) decoders.delete(model);
    });
    decoders.set(model, building);
  }
  return decoder;
}

/** Frees the model's ONNX sessions; the next question builds its decoder again (call after changing weights). */
export async function releaseInferenceDecoder(model: BvllmModel): Promise<void> {
  const decoder = decoders.get(model);
  decoders.delete(model);
  const built = await decoder?.catch(() => undefined);
  if (built instanceof OrtDecoder) await built.release();
}

async function onnxDecoder(model: BvllmModel, options: InferenceRuntimeOptions): Promise<CausalDecoder> {
  const shipped = modelDirs.get(model);
  const folder = shipped && OrtDecoder.exists(join(shipped, LLM_ONNX_DIR)) ? join(shipped, LLM_ONNX_DIR) : await exportedLlm(model, options);
  return OrtDecoder.load(folder, { threads: options.threads, executionProviders: options.executionProviders ?? providersFromEnv() });
}

/** The cache folder holding an export of the model's current LLM weights (LoRA merged), exporting them on a miss. */
export async function exportedLlm(model: BvllmModel, options: InferenceRuntimeOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? (process.env.BVLLM_ONNX_CACHE || join(homedir(), '.cache', 'bvllm', 'onnx'));
  const quantize = model.config.runtime.llmQuantize;
  const lora = model.lora;
  const mergeHere = lora !== undefined && !lora.merged;
  // The exporter reads the base weights, so the adapter's update must be in them (the cache key hashes them too).
  if (mergeHere) lora.merge();
  try {
    // Generation reads only the last position's logits: the export skips the head everywhere else in a prefill.
    return await exportQwen2OnnxCached(model.llm, cacheDir, { logitsFor: 'last', ...(quantize !== 'none' && { quantize }) });
  } finally {
    // Unmerging restores the adapter's training form (to float32 rounding), as the caller left it.
    if (mergeHere) lora.unmerge();
  }
}
