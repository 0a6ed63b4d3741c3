/**
 * The default model's tokenizers: learned once from a benchmark (byte-level BPE for Qwen2, WordPiece for the
 * Q-Formers) and saved, or taken fixed from a base model folder. A run on a base never relearns them, so the base's
 * token ids keep their meaning; data whose questions hold words the base's vocabulary lacks is refused, since those
 * words would all read as `[UNK]`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BvllmError, basicTokens, buildWordPieceVocab } from '@bvllm/core';
import { QWEN2_CHAT_SPECIAL_TOKENS, QWEN2_DEFAULT_CHAT_TEMPLATE, byteBpeTokenizerJson, trainByteBpe } from '@bvllm/llm-bridge';
import { QUESTION_TOKENIZER_DIR } from '@bvllm/pipeline';
import { benchmarkCorpus, captionSamples, parseSynthConfig, type CaptionSample, type Scene, type SynthConfig } from '@bvllm/synth';

/** A benchmark sample as the recipe reads it (the VideoLLaMA2 JSON of `bvllm synth`). */
export interface Entry {
  id: string;
  video?: string;
  conversations: { from: string; value: string }[];
  question?: string;
}

export const SPLITS = ['train', 'val', 'test'] as const;

export const readSplit = (dataDir: string, split: string): Entry[] => JSON.parse(readFileSync(join(dataDir, `${split}.json`), 'utf8')) as Entry[];

export const readScenes = (dataDir: string): { video: string; scene: Scene }[] => JSON.parse(readFileSync(join(dataDir, 'scenes.json'), 'utf8'));

/** Only the training split's scenes are ever read for training, so nothing about a test video is seen. */
export const isTrainingVideo = (video: string) => video.startsWith('videos/train-');

/** Captions of the training videos, from the benchmark's `scenes.json`: stage 1's video-text pairs (spec §2). */
export function trainingCaptions(dataDir: string): CaptionSample[] {
  return captionSamples(readScenes(dataDir), isTrainingVideo);
}

/** The generator settings the benchmark in `dataDir` was made with (its `meta.json`). */
export function readSynthSettings(dataDir: string): SynthConfig {
  const meta = JSON.parse(readFileSync(join(dataDir, 'meta.json'), 'utf8')) as { settings: object };
  return parseSynthConfig({ ...meta.settings, outDir: dataDir });
}

const withoutTag = (text: string) => text.replace('<video>\n', '');

/** Every question the benchmark's samples and captions ask (what the question tokenizer reads). */
function questionTexts(dataDir: string): string[] {
  const entries = [...SPLITS.flatMap((s) => readSplit(dataDir, s)), ...trainingCaptions(dataDir)];
  return entries.flatMap((e) => e.conversations.filter((c) => c.from === 'human').map((c) => withoutTag(c.value)));
}

/** The LLM tokenizer's file besides `tokenizer.json`: Qwen2's class, eos and pad tokens and chat template. */
const tokenizerConfig = {
  tokenizer_class: 'Qwen2Tokenizer',
  eos_token: '<|im_end|>',
  pad_token: '<|endoftext|>',
  model_max_length: 1024,
  chat_template: QWEN2_DEFAULT_CHAT_TEMPLATE,
};

/**
 * Learns both tokenizers from the benchmark's text and writes them as HF files into `assetsDir`. The question
 * vocabulary also holds every word the benchmark's generator can ask (`benchmarkCorpus`), so later data from the same
 * generator fits it; the BPE merges are learned from the data's own text, as byte-level BPE encodes any text.
 */
export function buildTinyAssets(dataDir: string, assetsDir: string, merges = 400): { vocabSize: number; questionVocabSize: number } {
  const entries = [...SPLITS.flatMap((s) => readSplit(dataDir, s)), ...trainingCaptions(dataDir)];
  const texts = entries.flatMap((e) => e.conversations.map((c) => withoutTag(c.value)));
  // The chat template's fixed text is in every prompt; learning it keeps prompts short.
  const template = ['system\nYou are a helpful assistant.', 'user\n', 'assistant\n'];
  const { vocab, merges: learned } = trainByteBpe([...texts, ...template, ...template], { merges, specialTokens: QWEN2_CHAT_SPECIAL_TOKENS });
  mkdirSync(join(assetsDir, QUESTION_TOKENIZER_DIR), { recursive: true });
  writeFileSync(join(assetsDir, 'tokenizer.json'), JSON.stringify(byteBpeTokenizerJson(vocab, learned, QWEN2_CHAT_SPECIAL_TOKENS)));
  writeFileSync(join(assetsDir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
  const questionVocab = buildWordPieceVocab([...questionTexts(dataDir), ...benchmarkCorpus(readSynthSettings(dataDir))]);
  writeFileSync(join(assetsDir, QUESTION_TOKENIZER_DIR, 'vocab.txt'), `${questionVocab.join('\n')}\n`);
  return { vocabSize: vocab.size + QWEN2_CHAT_SPECIAL_TOKENS.length, questionVocabSize: questionVocab.length };
}

/** Whether `assetsDir` holds the three tokenizer files {@link buildTinyAssets} writes (a run's, built once). */
export const hasTinyAssets = (assetsDir: string): boolean =>
  ['tokenizer.json', 'tokenizer_config.json', join(QUESTION_TOKENIZER_DIR, 'vocab.txt')].every((file) => existsSync(join(assetsDir, file)));

/**
 * The data of a run does not fit the vocabulary it must keep (a `--base` model's): its questions hold words the
 * question tokenizer would read as `[UNK]`. Relearning the vocabulary would renumber the base's tokens, so the run
 * stops instead.
 */
export class VocabularyMismatchError extends BvllmError {
  constructor(
    readonly dataDir: string,
    readonly vocabularyDir: string,
    /** The words missing from the vocabulary, in order of first use. */
    readonly missing: readonly string[],
  ) {
    const shown = missing.slice(0, 12).map((w) => JSON.stringify(w)).join(', ') + (missing.length > 12 ? `, … (${missing.length} in all)` : '');
    super(
      'VOCABULARY_MISMATCH',
      `${dataDir} does not fit the vocabulary of ${vocabularyDir}: its questions use ${missing.length} word(s) it lacks (${shown}); train without --base to learn a vocabulary from this data`,
    );
  }
}

/** Throws {@link VocabularyMismatchError} when a question of the benchmark in `dataDir` has a word outside `vocabularyDir`'s question vocabulary. */
export function checkDataFits(dataDir: string, vocabularyDir: string): void {
  const known = new Set(readFileSync(join(vocabularyDir, QUESTION_TOKENIZER_DIR, 'vocab.txt'), 'utf8').split('\n'));
  const missing = new Set<string>();
  for (const text of questionTexts(dataDir)) for (const word of basicTokens(text)) if (!known.has(word)) missing.add(word);
  if (missing.size) throw new VocabularyMismatchError(dataDir, vocabularyDir, [...missing]);
}
