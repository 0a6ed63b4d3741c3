/** Tiny tokenizers and configs for this package's tests (not exported from the package). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuestionTokenizer, Rng, buildWordPieceVocab, tf, type FrameFeatures } from '@bvllm/core';
import {
  QWEN2_CHAT_SPECIAL_TOKENS,
  Qwen2Tokenizer,
  QWEN2_DEFAULT_CHAT_TEMPLATE,
  byteBpeTokenizerJson,
  generateText,
  spliceVisual,
  tokenizeChat,
  trainByteBpe,
} from '@bvllm/llm-bridge';
import { disposeVisualPath, type BvllmAssets, type BvllmModel } from './bvllm-model.js';
import { QUESTION_TOKENIZER_DIR } from './model-dir.js';
import type { PipelineConfigInput } from './pipeline-config.js';

/**
 * The shipped default model's folder, a trained model for the tests that need one. By path: @bvllm/bvllm-tiny holds
 * it and depends on this package, so this package cannot depend on it.
 */
export const shippedModelDir = (): string => fileURLToPath(new URL('../../bvllm-tiny/models/bvllm-tiny', import.meta.url));

const corpus = ['What colour is the square?', 'red', 'blue', 'What shape flashed briefly?', 'circle', 'system\nYou are a helpful assistant.', 'user\n', 'assistant\n'];

const tokenizerConfig = { eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: QWEN2_DEFAULT_CHAT_TEMPLATE };

function tokenizerJson(): Record<string, unknown> {
  const { vocab, merges } = trainByteBpe(corpus, { merges: 40, specialTokens: QWEN2_CHAT_SPECIAL_TOKENS });
  return byteBpeTokenizerJson(vocab, merges, QWEN2_CHAT_SPECIAL_TOKENS);
}

export function testAssets(): BvllmAssets {
  const tokenizer = Qwen2Tokenizer.fromJson(tokenizerJson(), tokenizerConfig);
  const questionTokenizer = QuestionTokenizer.fromVocabTxt(buildWordPieceVocab(corpus).join('\n'), { maxLength: 32 });
  return { tokenizer, questionTokenizer };
}

/** The same tokenizers as files, laid out as a model folder's assets. */
export function buildAssetsDir(dir: string): void {
  mkdirSync(join(dir, QUESTION_TOKENIZER_DIR), { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  writeFileSync(join(dir, QUESTION_TOKENIZER_DIR, 'vocab.txt'), `${buildWordPieceVocab(corpus).join('\n')}\n`);
}

/** A small full model: Cv 24, Cq 32, D 40, K 4, R 6, the bvllm-visual fixture's widths. */
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

/**
 * The training (tfjs) path's answer, the reference the inference session must equal: `BvllmModel.visualPath` with
 * the noise an answer draws (D4), spliced with `spliceVisual`, and the model's generation on the tfjs LLM (greedy
 * by default, spec §3). Returns the text and the frames the merge kept.
 */
export async function tfjsAnswer(model: BvllmModel, features: FrameFeatures, question: string, seed = 0): Promise<{ text: string; frames: number[] }> {
  const turns = [{ role: 'user' as const, content: question }];
  const tokens = model.tokenizeQuestion(question);
  const ids = tokenizeChat(model.assets.tokenizer, model.template, model.messagesFor(turns), { addGenerationPrompt: true });
  const path = model.visualPath(features, tokens, { training: false, rng: Rng.fromSeed(seed).fork('frame-select') });
  const spliced = spliceVisual(model.llm, { inputIds: [ids], visual: [[path.visualEmbeds]] });
  try {
    const { text } = await generateText(model.llm, model.assets.tokenizer, { inputsEmbeds: spliced.inputsEmbeds, promptIds: ids }, { ...model.config.generation, seed });
    return { text, frames: [...path.merged.frameIndices] };
  } finally {
    disposeVisualPath(path);
    tf.dispose([spliced.inputsEmbeds, spliced.attentionMask, spliced.labels, tokens.inputIds, tokens.attentionMask]);
  }
}
