/** The default model's architecture, and the stage swaps of its ablation table. */
import type { PipelineConfigInput } from '@bvllm/pipeline';

/** The tiny architecture: the official kinds (spec §1.1) at widths a CPU trains in minutes. */
export function tinyPipelineConfig(sizes: { vocabSize: number; questionVocabSize: number }, overrides: Partial<PipelineConfigInput> = {}): PipelineConfigInput {
  const qformer = { hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, vocabSize: sizes.questionVocabSize, maxPositions: 128, crossAttentionFrequency: 1 };
  return {
    name: 'bvllm-tiny',
    vision: {
      vit: { family: 'instructblip', hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, imageSize: 64, patchSize: 16 },
      sampling: { mode: 'fps', samplesPerSec: 1 },
      trainFrames: 16,
      batchSize: 16,
    },
    questionMaxLength: 128,
    frameSelect: { kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer },
    tokenMerge: { kind: 'row-cosine' },
    spatialSample: { kind: 'qformer', numQueries: 4, tokenBudget: null, qformer },
    projector: { kind: 'linear2' },
    llm: { vocabSize: sizes.vocabSize, hiddenSize: 128, intermediateSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 1024, tieWordEmbeddings: true },
    generation: { maxNewTokens: 16 },
    ...overrides,
  };
}

/**
 * Stage swaps for the ablation table (spec §5), at the tiny model's sizes: `uniform` keeps the same K = 4 frames
 * so the comparison is at an equal budget; `pool` gives the same R = 4 tokens per frame (2 × 2 cells of the 4 × 4 grid).
 */
export function tinyAblation(kinds: { frameSelect?: string; tokenMerge?: string; spatialSample?: string }): Partial<PipelineConfigInput> {
  const overrides: Partial<PipelineConfigInput> = {};
  if (kinds.frameSelect === 'uniform') overrides.frameSelect = { kind: 'uniform', numFrames: 4 };
  else if (kinds.frameSelect === 'all') overrides.frameSelect = { kind: 'all' };
  else if (kinds.frameSelect !== undefined && kinds.frameSelect !== 'qformer-gumbel') overrides.frameSelect = { kind: kinds.frameSelect };
  if (kinds.tokenMerge !== undefined && kinds.tokenMerge !== 'row-cosine') overrides.tokenMerge = { kind: kinds.tokenMerge };
  if (kinds.spatialSample === 'pool') overrides.spatialSample = { kind: 'pool', outputGrid: [2, 2], patchGrid: [4, 4] };
  else if (kinds.spatialSample !== undefined && kinds.spatialSample !== 'qformer') overrides.spatialSample = { kind: kinds.spatialSample };
  return overrides;
}
