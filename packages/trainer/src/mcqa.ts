/**
 * Multiple-choice video QA as the official eval scripts run it (spec §4.1): the prompt of each benchmark (appended
 * to the user turn after `<video>\n`) and the answer extraction of its `*_dump` function, quirks included, so our
 * accuracies are comparable with the reported ones.
 */
import { InvalidArgumentError } from '@bvllm/core';

export type McqaBenchmark = 'mvbench' | 'egoschema' | 'videomme' | 'perception-test' | 'vnbench';
export const MCQA_BENCHMARKS: readonly McqaBenchmark[] = ['mvbench', 'egoschema', 'videomme', 'perception-test', 'vnbench'];

export interface McqaQuestion {
  question: string;
  /** Option texts in order; letters A, B, … are assigned by position. */
  options: readonly string[];
}

const ANSWER_DIRECTLY = "Answer with the option's letter from the given choices directly and only give the best option.";

export function optionLetter(index: number): string {
  return String.fromCharCode(65 + index);
}

const lettered = (options: readonly string[]) => options.map((o, i) => `(${optionLetter(i)}) ${o}\n`).join('');

/** The instruction text of a benchmark, exactly as its inference script builds it. */
export function mcqaPrompt(benchmark: McqaBenchmark, { question, options }: McqaQuestion): string {
  if (options.length < 2 || options.length > 26) throw new InvalidArgumentError('options', `expected 2 to 26 options, got ${options.length}`);
  switch (benchmark) {
    case 'mvbench': // inference_video_mcqa_mvbench.py:64-65
      return (
        'Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of objects, ' +
        'and the action and pose of persons. Based on your observations, select the best option that accurately addresses the question.\n' +
        `Question: ${question}\nOptions:\n${lettered(options)}${ANSWER_DIRECTLY}`
      );
    case 'egoschema': // inference_video_mcqa_egoschema.py:65
      return (
        `Select the best answer to the following multiple-choice question based on the video.\n${question}\nOptions:\n` +
        `${lettered(options)}${ANSWER_DIRECTLY} The best answer is: `
      );
    case 'videomme': // inference_video_mcqa_videomme.py:279-285; the choices arrive as "A. text"
      return (
        'Select the best answer to the following multiple-choice question based on the video. ' +
        'Respond with only the letter (A, B, C, or D) of the correct option.\n' +
        `${question}\n${options.map((o, i) => `${optionLetter(i)}. ${o}\n`).join('')}${ANSWER_DIRECTLY} The best answer is: `
      );
    case 'perception-test': // inference_video_mcqa_perception_test_mcqa.py:61
      return `Question: ${question}\nOptions:\n${lettered(options)}${ANSWER_DIRECTLY}`;
    case 'vnbench': // inference_video_mcqa_vnbench.py:147-155
      return `${question}\n${lettered(options)}Answer with the option's letter from the given choices directly`;
  }
}

/** How a prediction was read: a letter, the text of an option, or the scripts' fallback for an unreadable answer. */
export type ExtractionVia = 'letter' | 'option-text' | 'unparsed';

export interface McqaExtraction {
  /** The predicted option index; for `unparsed` the official fallback, index 2 (−1 with fewer than 3 options). */
  index: number;
  via: ExtractionVia;
}

/** Per benchmark: does the script fall back to matching option text, and does it also match digits as words. */
const RULES: Readonly<Record<McqaBenchmark, { optionText: boolean; digitWords: boolean }>> = {
  mvbench: { optionText: true, digitWords: false }, // mvbench_dump
  videomme: { optionText: true, digitWords: true }, // videomme_dump
  vnbench: { optionText: true, digitWords: false },
  egoschema: { optionText: false, digitWords: false }, // letter regex only, failure → 2
  'perception-test': { optionText: false, digitWords: false },
};

const DIGIT_WORDS: Readonly<Record<string, string>> = {
  '0': 'zero', '1': 'one', '2': 'two', '3': 'three', '4': 'four', '5': 'five', '6': 'six', '7': 'seven', '8': 'eight', '9': 'nine',
};

/**
 * The scripts' extraction: drop the words `answer`/`Answer`, take the first capital letter in the option range
 * anywhere in the text (the regex's brackets and spaces are optional, so "Based on…" reads as B, and "A red
 * circle" as A, even when that is another option's text); else the first option whose text occurs in the output
 * (case-insensitive); else index 2. Lower-case letters ("b") are not letters to these regexes.
 */
export function extractMcqaAnswer(benchmark: McqaBenchmark, output: string, options: readonly string[]): McqaExtraction {
  const rule = RULES[benchmark];
  const text = output.replaceAll('answer', '').replaceAll('Answer', '');
  const last = optionLetter(options.length - 1);
  const letter = new RegExp(`[A-${last}]`).exec(text);
  if (letter) return { index: letter[0].charCodeAt(0) - 65, via: 'letter' };
  if (rule.optionText) {
    const lower = text.toLowerCase();
    const found = options.findIndex((o) => lower.includes(o.toLowerCase()) || (rule.digitWords && o in DIGIT_WORDS && lower.includes(DIGIT_WORDS[o])));
    if (found >= 0) return { index: found, via: 'option-text' };
  }
  return { index: options.length > 2 ? 2 : -1, via: 'unparsed' };
}
