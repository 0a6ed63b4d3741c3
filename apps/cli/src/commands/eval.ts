import { evaluateSplit } from '@bvllm/pipeline';
import type { Command } from 'commander';
import { addAnswerFlags, generationOf, maxNewTokensOf, samplingOf, sessionOptionsOf } from '../answer-flags.js';
import { progressLine } from '../progress-line.js';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, positiveInt, runtimeName } from '../flags.js';
import { printEvalResult, type EvalFlags } from '../eval-output.js';
import { evalOnQueue, type QueueFlags } from '../queue-commands.js';
import { openSessionOption } from './model-option.js';

type EvalCommandFlags = EvalFlags & Partial<QueueFlags>;

export function registerEval(program: Command, output: CliOutput): void {
  const command = program
    .command('eval')
    .description('evaluate on a VideoLLaMA2-format split: MCQA (official letter extraction) and open QA (normalised exact match)')
    .requiredOption('--data <json>', 'the split (media paths relative to its folder)')
    .option('--model <dir>', 'a B-VLLM model folder (default: bvllm-tiny)')
    .option('--limit <n>', 'only the first n entries', positiveInt)
    .option('--seed <n>', 'seed of the frame-selection noise and sampling', nonNegativeInt, 0)
    .option('--out <dir>', 'write JSON and Markdown reports here')
    .option('--batch-size <n>', 'questions answered together (equal to one at a time, faster)', positiveInt, 8)
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName)
    .option('--cache <dir>', 'feature cache folder (with --redis: the one all workers share)')
    .option('--redis <url>', 'enqueue on this Redis for `bvllm worker`s instead of answering here')
    .option('--detach', 'with --redis: print the run id and return (then `bvllm jobs status ID`)');
  addAnswerFlags(command).action(async (flags: EvalCommandFlags) => {
    if (flags.redis) return evalOnQueue({ ...flags, redis: flags.redis }, output);
    const session = await openSessionOption(flags.model, { runtime: flags.runtime, featureCacheDir: flags.cache, ...sessionOptionsOf(flags, output) });
    try {
      const result = await evaluateSplit(session, flags.data, {
        limit: flags.limit,
        seed: flags.seed,
        batchSize: flags.batchSize,
        sampling: samplingOf(flags),
        generation: generationOf(flags),
        onItem: progressLine('questions', output),
      });
      printEvalResult(result, flags.out, output);
      // A cut answer can score as wrong; say how many there were, so a low score is not misread.
      const cut = result.answers.filter((a) => a.finishReason === 'length').length;
      if (cut) output.err(`bvllm: note: ${cut} of ${result.answers.length} answers stopped at the ${maxNewTokensOf(session, flags)}-token limit; --max-new-tokens raises it\n`);
    } finally {
      await session.close();
    }
  });
}
