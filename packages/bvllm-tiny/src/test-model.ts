/** A small model for this package's unit tests (not exported): the tiny recipe's tokenizers on a toy corpus. */
import { QuestionTokenizer, buildWordPieceVocab } from '@bvllm/core';
import { QWEN2_CHAT_SPECIAL_TOKENS, QWEN2_DEFAULT_CHAT_TEMPLATE, Qwen2Tokenizer, byteBpeTokenizerJson, trainByteBpe } from '@bvllm/llm-bridge';
import type { BvllmAssets, PipelineConfigInput } from '@bvllm/pipeline';

const corpus = ['What colour is the square?', 'red', 'blue', 'What shape flashed briefly?', 'circle', 'system\nYou are a helpful assistant.', 'user\n', 'assistant\n'];

export function testAssets(): BvllmAssets {
  const { vocab, merges } = trainByteBpe(corpus, { merges: 40, specialTokens: QWEN2_CHAT_SPECIAL_TOKENS });
  const tokenizer = Qwen2Tokenizer.fromJson(byteBpeTokenizerJson(vocab, merges, QWEN2_CHAT_SPECIAL_TOKENS), {
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    chat_template: QWEN2_DEFAULT_CHAT_TEMPLATE,
  });
  const questionTokenizer = QuestionTokenizer.fromVocabTxt(buildWordPieceVocab(corpus).join('\n'), { maxLength: 32 });
  return { tokenizer, questionTokenizer };
}

/** Cv 24, Cq 32, D 40, K 4, R 6 at 32 px: every stage kind of the recipe, small enough for many test steps. */
export function testConfig(overrides: Partial<PipelineConfigInput> = {}): PipelineConfigInput {
  const qformer = { hiddenSize: 32, numLayers: 4, numHeads: 2, intermediateSize: 64, vocabSize: 100, maxPositions: 64, crossAttentionFrequency: 2 };
  return {
    name: 'test',
    vision: { vit: { hiddenSize: 24, intermediateSize: 48, numLayers: 1, numHeads: 2, imageSize: 32, patchSize: 16 }, batchSize: 4 },
    frameSelect: { kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer },
    tokenMerge: { kind: 'row-cosine' },
    spatialSample: { kind: 'qformer', numQueries: 6, tokenBudget: 24, qformer },
    projector: { kind: 'linear2' },
    llm: { vocabSize: 300, hiddenSize: 40, intermediateSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 512 },
    generation: { maxNewTokens: 4 },
    ...overrides,
  };
}
