/**
 * The human turns, worded as the official evaluation scripts word them (spec §4.1), so a model trained here is
 * scored with the same prompt it will meet on MVBench or Perception Test.
 */
import { OPTION_LETTERS } from './vocabulary.js';

/** The video placeholder that starts every human turn (spec §2, `preprocess_multimodal`). */
export const VIDEO_TAG = '<video>\n';

export type McqaPromptStyle = 'perception-test' | 'mvbench';

/** `inference_video_mcqa_mvbench.py:64-65`. */
const MVBENCH_PREAMBLE =
  'Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of objects, ' +
  'and the action and pose of persons. Based on your observations, select the best option that accurately addresses the question.\n';

const ANSWER_INSTRUCTION = "Answer with the option's letter from the given choices directly and only give the best option.";

/**
 * The MCQA user text after `<video>\n`: "Question: {q}\nOptions:\n(A) …\n…" and the answer instruction
 * (Perception Test, `inference_video_mcqa_perception_test_mcqa.py:61`; MVBench adds its preamble).
 */
export function mcqaPrompt(question: string, options: readonly string[], style: McqaPromptStyle): string {
  const lines = options.map((option, i) => `(${OPTION_LETTERS[i]}) ${option}\n`).join('');
  const preamble = style === 'mvbench' ? MVBENCH_PREAMBLE : '';
  return `${preamble}Question: ${question}\nOptions:\n${lines}${ANSWER_INSTRUCTION}`;
}
