/**
 * The answer controls `ask`, `chat` and `eval` share (issue #20 item 6): frame sampling per call (`--fps`,
 * `--num-frames`), generation (`--max-new-tokens`, `--temperature`; `--seed` is each command's own), and the note
 * printed when an answer stops at the token limit, so a cut answer is never mistaken for a whole one.
 */
import type { AskOptions, AskResult, EncodeVideoOptions, InferenceSession, InferenceSessionOptions } from '@bvllm/pipeline';
import type { SamplingInput } from '@bvllm/vision-encoder';
import { Option, type Command } from 'commander';
import { nonNegativeNumber, positiveInt, positiveNumber } from './flags.js';
import type { CliOutput } from './run-cli.js';

/** The flags {@link addAnswerFlags} registers, as commander parses them. */
export interface AnswerFlags {
  fps?: number;
  numFrames?: number;
  maxNewTokens?: number;
  temperature?: number;
  allowNonFiniteWeights?: boolean;
}

/** Registers the shared answer flags on `command`. */
export function addAnswerFlags(command: Command): Command {
  return command
    .addOption(new Option('--fps <n>', 'frames sampled per second of video (default: the model config, 1 fps as the paper)').argParser(positiveNumber).conflicts('numFrames'))
    .addOption(new Option('--num-frames <n>', 'sample this many frames spread uniformly over the video instead of a rate').argParser(positiveInt))
    .option('--max-new-tokens <n>', 'longest answer in tokens (default: the model config)', positiveInt)
    .option('--temperature <t>', 'sampling temperature (0 = greedy, the default); seeded by --seed', nonNegativeNumber)
    .option('--allow-non-finite-weights', 'load a model whose weights hold NaN or Infinity, with a warning, instead of refusing it');
}

/** Frame sampling for `session.encode`: a rate or a count when a flag gives one, else the model's own. */
export function samplingOf(flags: AnswerFlags): SamplingInput | undefined {
  if (flags.numFrames !== undefined) return { mode: 'uniform', numFrames: flags.numFrames };
  if (flags.fps !== undefined) return { mode: 'fps', samplesPerSec: flags.fps };
  return undefined;
}

/** Encode options carrying the flags' sampling. */
export function encodeOptionsOf(flags: AnswerFlags, rest: Omit<EncodeVideoOptions, 'sampling'> = {}): EncodeVideoOptions {
  const sampling = samplingOf(flags);
  return { ...rest, ...(sampling && { sampling }) };
}

/** Generation overrides of the model's defaults. */
export function generationOf(flags: AnswerFlags): NonNullable<AskOptions['generation']> {
  return {
    ...(flags.maxNewTokens !== undefined && { maxNewTokens: flags.maxNewTokens }),
    // 0 keeps greedy decoding (the reference's default, spec §3); a positive temperature samples.
    ...(flags.temperature !== undefined && (flags.temperature > 0 ? { doSample: true, temperature: flags.temperature } : { doSample: false })),
  };
}

/** Session options the flags imply: non-finite weights reported on stderr instead of refused. */
export function sessionOptionsOf(flags: AnswerFlags, output: CliOutput): Pick<InferenceSessionOptions, 'nonFinite' | 'onWarning'> {
  // Always a printer: the session also reports weights it skips (a stage switched to another kind).
  const onWarning = (message: string) => output.err(`bvllm: warning: ${message}\n`);
  return flags.allowNonFiniteWeights ? { nonFinite: 'warn', onWarning } : { onWarning };
}

/** The token limit an answer runs under: the flag, else the model's generation default. */
export function maxNewTokensOf(session: InferenceSession, flags: AnswerFlags): number {
  return Number(session.generation({ generation: generationOf(flags) }).maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS);
}

/** `generationConfig`'s own default (`@bvllm/llm-bridge`), for a model config that sets none. */
const DEFAULT_MAX_NEW_TOKENS = 2048;

/** The line printed on stderr after an answer that stopped at the token limit (none for any other finish). */
export function tokenLimitNote(finishReason: AskResult['finishReason'], maxNewTokens: number): string | undefined {
  return finishReason === 'length' ? `bvllm: note: the answer stopped at the ${maxNewTokens}-token limit; --max-new-tokens raises it\n` : undefined;
}
