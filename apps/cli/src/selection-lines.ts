import type { SelectionSummary } from '@bvllm/pipeline';

/**
 * What `ask --show-frames` adds on stderr after the answer, so the first command shows the method at work: which
 * frames the text-conditioned selection kept (time, weight, how many queries the temporal merge joined there) out
 * of how many sampled, how many visual tokens reached the LLM, and where the contact sheet is.
 * `[K][T]` frameWeights give T, the frames sampled.
 */
export function selectionLines(selection: SelectionSummary, sheet: string): string {
  const sampled = selection.frameWeights[0]?.length ?? 0;
  const queries = selection.frameWeights.length;
  const frames = selection.frames
    .map((f) => `${f.timestampSec.toFixed(1)} s (weight ${f.weight.toFixed(2)}${f.mergedQueries.length > 1 ? `, ${f.mergedQueries.length} queries merged` : ''})`)
    .join(', ');
  return (
    `frames: ${queries} selection queries kept ${selection.frames.length} of ${sampled} sampled: ${frames}; ${selection.visualTokens} visual tokens\n` +
    `contact sheet: ${sheet}\n`
  );
}

/** One line on what the shipped default model is, printed when no `--model` was given. */
export const DEFAULT_MODEL_NOTE =
  'model: bvllm-tiny, the default, trained from scratch by this project on its synthetic videos of coloured shapes; it shows the method, and knows nothing of real video (--model DIR for another)\n';
