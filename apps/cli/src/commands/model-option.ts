import { initBackend } from '@bvllm/core';
import { defaultModelDir, loadModel, type BvllmModel } from '@bvllm/pipeline';

/** Loads `--model DIR`, or the shipped default model. */
export async function loadModelOption(dir: string | undefined): Promise<BvllmModel> {
  await initBackend();
  return loadModel(dir ?? defaultModelDir());
}

export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got "${value}"`);
  return n;
}

export function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`expected a number, got "${value}"`);
  return n;
}
