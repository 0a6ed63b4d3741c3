/**
 * What every onnxruntime session of an {@link InferenceSession} is opened with: threads, execution providers and
 * the export cache folder, from options and the environment (`BVLLM_ORT_PROVIDERS`, `BVLLM_ONNX_CACHE`).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@bvllm/core';
import type { ExecutionProvider } from '@bvllm/onnx';

export interface OrtOptions {
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /**
   * Execution providers in order, e.g. `['cuda', 'cpu']` once onnxruntime-node's CUDA build is installed
   * (`ONNXRUNTIME_NODE_INSTALL_CUDA=v12` at install time); `BVLLM_ORT_PROVIDERS=cuda,cpu`, else CPU.
   */
  executionProviders?: readonly ExecutionProvider[];
}

const PROVIDERS = ['cpu', 'cuda'] as const;

/** `BVLLM_ORT_PROVIDERS`, validated; nothing when unset. */
export function providersFromEnv(): ExecutionProvider[] | undefined {
  const env = process.env.BVLLM_ORT_PROVIDERS;
  if (!env) return undefined;
  const names = env.split(',').map((p) => p.trim());
  const bad = names.filter((p) => !(PROVIDERS as readonly string[]).includes(p));
  if (bad.length) throw new ConfigError(`BVLLM_ORT_PROVIDERS names ${bad.join(', ')}; expected a list of ${PROVIDERS.join(', ')}`, ['runtime']);
  return names as ExecutionProvider[];
}

/** The options with the environment's providers filled in where the caller gave none. */
export function resolveOrtOptions(options: OrtOptions = {}): OrtOptions {
  return { threads: options.threads, executionProviders: options.executionProviders ?? providersFromEnv() };
}

/** The export cache folder: the option, `BVLLM_ONNX_CACHE`, or `~/.cache/bvllm/onnx`. */
export function exportCacheDir(cacheDir?: string): string {
  return cacheDir ?? (process.env.BVLLM_ONNX_CACHE || join(homedir(), '.cache', 'bvllm', 'onnx'));
}
