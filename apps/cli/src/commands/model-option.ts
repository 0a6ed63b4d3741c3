import { initBackend } from '@bvllm/core';
import { defaultModelDir, loadModel, type BvllmModel } from '@bvllm/pipeline';

/** Loads `--model DIR`, or the shipped default model. */
export async function loadModelOption(dir: string | undefined): Promise<BvllmModel> {
  await initBackend();
  return loadModel(dir ?? defaultModelDir());
}
