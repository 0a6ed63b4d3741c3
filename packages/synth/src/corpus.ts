/**
 * Every text the benchmark can produce, for building the tiny default model's tokenizers: the train split covers
 * the words only by chance, and a word first met at test time would be `[UNK]`.
 */
import type { SynthConfig } from './config.js';
import { mcqaPrompt } from './prompts.js';
import { COUNTS, DIRECTIONS, OPTION_LETTERS } from './vocabulary.js';

/**
 * One string per question wording and vocabulary word, plus every answer and each MCQA prompt frame. Covers every
 * word of every sample that `config` can generate (any seed, any counts).
 */
export function benchmarkCorpus(config: Pick<SynthConfig, 'shapes' | 'colours' | 'mcqaPrompt'>): string[] {
  const { shapes, colours } = config;
  const questions = [
    'What shape flashed briefly?',
    ...colours.map((c) => `How many ${c} shapes appear?`),
    ...shapes.flatMap((a) => shapes.filter((b) => b !== a).map((b) => `What appeared first, the ${a} or the ${b}?`)),
    ...colours.flatMap((c) => shapes.map((s) => `Which way does the ${c} ${s} move?`)),
    ...shapes.map((s) => `What colour is the ${s}?`),
    ...colours.map((c) => `What shape is the ${c} object?`),
  ];
  const answers = [...shapes, ...colours, ...DIRECTIONS, ...COUNTS, ...OPTION_LETTERS];
  const prompts = questions.map((q) => mcqaPrompt(q, OPTION_LETTERS.map((_, i) => answers[i % answers.length]), config.mcqaPrompt));
  return [...questions, ...answers, ...prompts];
}
