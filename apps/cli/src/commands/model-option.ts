import { initBackend } from '@bvllm/core';
import { defaultModelDir, loadModel, type BvllmModel } from '@bvllm/pipeline';

/** Loads `--model DIR`, or the shipped default model, with every inference module on `--runtime` when given. */
export async function loadModelOption(dir: string | undefined, runtime?: 'tfjs' | 'onnx'): Promise<BvllmModel> {
  await initBackend();
  const model = loadModel(dir ?? defaultModelDir());
  if (runtime) Object.assign(model.config.runtime, { llm: runtime, vision: runtime, frameSelect: runtime, spatialSample: runtime });
  return model;
}
