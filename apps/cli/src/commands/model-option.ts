import { initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession, loadModel, type BvllmModel, type InferenceSessionOptions } from '@bvllm/pipeline';

/** Loads `--model DIR`, or the shipped default model, as a tfjs model (training and feature extraction). */
export async function loadModelOption(dir: string | undefined): Promise<BvllmModel> {
  await initBackend();
  return loadModel(dir ?? defaultModelDir());
}

/**
 * One inference session on `--model DIR` (or the shipped default model): the ONNX modules, exported on the first
 * run; with `--runtime` every module on that engine.
 */
export async function openSessionOption(dir: string | undefined, options: Pick<InferenceSessionOptions, 'runtime' | 'featureCacheDir' | 'nonFinite' | 'onWarning'> = {}): Promise<InferenceSession> {
  await initBackend();
  return InferenceSession.open(dir ?? defaultModelDir(), options);
}
