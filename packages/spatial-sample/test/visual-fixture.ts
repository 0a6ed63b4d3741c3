/** Loads the shared `bvllm-visual` fixture in place (see its README for how it was made). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors, tf, type MergedFrames, type QuestionTokens } from '@bvllm/core';

export const fixtureDir = fileURLToPath(new URL('../../../../shared/fixtures/bvllm-visual/', import.meta.url));
const json = (name: string) => JSON.parse(readFileSync(fixtureDir + name, 'utf8'));
export const visualInputs = json('inputs.json');
export const visualExpected = json('expected.json');

/** The fixture's Q-Former shape in our config's terms. */
export const tinyQFormer = {
  hiddenSize: 32,
  numLayers: 4,
  numHeads: 2,
  intermediateSize: 64,
  vocabSize: 100,
  maxPositions: 64,
  crossAttentionFrequency: 2,
  layerNormEps: 1e-12,
  hiddenAct: 'gelu' as const,
};

/** The fixture's tensors whose key starts with one of `prefixes`; the caller disposes them. */
export function fixtureWeights(prefixes: readonly string[]): Map<string, tf.Tensor> {
  return readSafetensors(fixtureDir + 'model.safetensors', (k) => prefixes.some((p) => k.startsWith(p)));
}

/** `X_merged` [3, 8, 24] as the temporal merge hands it over: kept queries 0, 1, 3, groups [[0], [1, 2], [3]]. */
export function fixtureMerged(rows: readonly number[][][] = visualExpected.X_merged): MergedFrames {
  return { merged: tf.tensor3d(rows as number[][][]), groups: [[0], [1, 2], [3]], frameIndices: Int32Array.from([0, 1, 2]), timestampsSec: [0, 1, 2] };
}

export function fixtureQuestion(): QuestionTokens {
  return {
    inputIds: tf.tensor2d(visualInputs.input_ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(visualInputs.attention_mask, undefined, 'int32'),
  };
}

/** Max |a − b| between a tensor and a nested array of its shape. */
export function maxAbsDiff(a: tf.Tensor, b: unknown): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, tf.tensor(b as number[], a.shape)))).dataSync()[0]);
}
