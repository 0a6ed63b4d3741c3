/**
 * The decoder a model answers with. `runtime.llm: tfjs` generates on the training model itself; `onnx` runs the
 * same weights on onnxruntime-node: an export shipped in the model folder (`onnx/llm/`, the transformers.js layout)
 * when there is one, else our own export of the current weights (LoRA merged in), cached on disk under the
 * weights' hash so a model is exported once per machine, not once per process. The decoder (and its ONNX
 * sessions) is built on first use and reused for every question until the model is disposed.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@bvllm/core';
import { OrtDecoder, asCausalDecoder, type CausalDecoder } from '@bvllm/llm-bridge';
import type { BvllmModel } from './bvllm-model.js';
import { moduleRuntime, type ModuleRuntime } from './pipeline-config.js';

/** Inside a model folder: a decoder export to run instead of exporting our own. */
export const LLM_ONNX_DIR = join('onnx', 'llm');
/** Written last into a finished export; a folder without it is a crashed export and is rebuilt. */
const COMPLETE_MARKER = '.export-complete';
/** Bumped when the export layout changes, so old cache entries are not reused. */
const EXPORT_FORMAT = 'qwen2-onnx-1';

export interface InferenceRuntimeOptions {
  /** Export cache; `BVLLM_ONNX_CACHE`, else `~/.cache/bvllm/onnx`. */
  cacheDir?: string;
  /** onnxruntime intra-op threads (its default: one per physical core). */
  threads?: number;
  /** onnxruntime execution providers, e.g. `['cuda', 'cpu']` once the CUDA build is installed. */
  executionProviders?: string[];
}

/** Writes an ONNX decoder export of `model.llm` (LoRA merged) into an empty folder. */
export type LlmExporter = (model: BvllmModel, folder: string) => Promise<void>;

const decoders = new WeakMap<BvllmModel, Promise<CausalDecoder>>();
const modelDirs = new WeakMap<BvllmModel, string>();
let exporter: LlmExporter | undefined;

/** Records the folder a model was loaded from, where a shipped ONNX export may sit. */
export function rememberModelDir(model: BvllmModel, dir: string): void {
  modelDirs.set(model, dir);
}

/** Installs the function that exports the decoder when no export exists yet. */
export function setLlmExporter(fn: LlmExporter): void {
  exporter = fn;
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
    decoder.catch(() => decoders.delete(model));
    decoders.set(model, decoder);
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
  return OrtDecoder.load(folder, { threads: options.threads, executionProviders: options.executionProviders });
}

/** The cache folder holding an export of the model's current LLM weights, exporting them on a miss. */
export async function exportedLlm(model: BvllmModel, options: InferenceRuntimeOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? (process.env.BVLLM_ONNX_CACHE || join(homedir(), '.cache', 'bvllm', 'onnx'));
  const lora = model.lora;
  const mergeHere = lora !== undefined && !lora.merged;
  if (mergeHere) lora.merge();
  try {
    const folder = join(cacheDir, llmWeightsKey(model));
    if (existsSync(join(folder, COMPLETE_MARKER))) return folder;
    if (!exporter) throw new ConfigError('runtime.llm is "onnx" but no ONNX exporter is installed and the model folder has no onnx/llm export; use runtime.llm "tfjs"', ['runtime', 'llm']);
    const temp = `${folder}.tmp-${process.pid}`;
    rmSync(temp, { recursive: true, force: true });
    mkdirSync(temp, { recursive: true });
    try {
      await exporter(model, temp);
      writeFileSync(join(temp, COMPLETE_MARKER), new Date().toISOString());
      rmSync(folder, { recursive: true, force: true });
      renameSync(temp, folder);
    } catch (error) {
      rmSync(temp, { recursive: true, force: true });
      throw error;
    }
    return folder;
  } finally {
    // Unmerging restores the adapter's training form (to float32 rounding), as the caller left it.
    if (mergeHere) lora.unmerge();
  }
}

/**
 * sha256 over the export format, the quantisation, the LLM config and every LLM weight (name, shape, bytes) as
 * the export would read them, LoRA already merged: a changed weight, option or exporter gives a new folder.
 */
export function llmWeightsKey(model: BvllmModel): string {
  const hash = createHash('sha256');
  hash.update(`${EXPORT_FORMAT}\0${model.config.runtime.llmQuantize}\0${JSON.stringify(model.llm.config)}\0`);
  const store = model.llm.store;
  for (const key of [...store.keys()].sort()) {
    const value = store.get(key);
    const data = value.dataSync() as Float32Array;
    hash.update(`${key}\0${value.shape.join(',')}\0`);
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex').slice(0, 32);
}
