import { writeEvalReport } from '@bvllm/trainer';
import { evaluateSplit } from '@bvllm/pipeline';
import type { Command } from 'commander';
import { progressLine } from '../progress-line.js';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, positiveInt, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';

export function registerEval(program: Command, output: CliOutput): void {
  program
    .command('eval')
    .description('evaluate on a VideoLLaMA2-format split: MCQA (official letter extraction) and open QA (normalised exact match)')
    .requiredOption('--data <json>', 'the split (media paths relative to its folder)')
    .option('--model <dir>', 'a B-VLLM model folder (default: bvllm-tiny)')
    .option('--limit <n>', 'only the first n entries', positiveInt)
    .option('--seed <n>', 'seed of the frame-selection noise', nonNegativeInt, 0)
    .option('--out <dir>', 'write JSON and Markdown reports here')
    .option('--batch-size <n>', 'questions answered together (equal to one at a time, faster)', positiveInt, 8)
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName)
    .action(async (flags: { data: string; model?: string; limit?: number; seed: number; out?: string; batchSize: number; runtime?: 'tfjs' | 'onnx' }) => {
      const session = await openSessionOption(flags.model, { runtime: flags.runtime });
      try {
        const result = await evaluateSplit(session, flags.data, { limit: flags.limit, seed: flags.seed, batchSize: flags.batchSize, onItem: progressLine('questions', output) });
        for (const report of [result.mcqa?.report, result.open].filter((r) => r !== undefined)) {
          const tasks = Object.entries(report.perTask).map(([t, s]) => `${t} ${(100 * s.accuracy).toFixed(1)}%`).join(', ');
          output.out(`${report.kind}: ${(100 * report.overall.accuracy).toFixed(1)}% of ${report.overall.total} (${tasks})\n`);
          if (flags.out) writeEvalReport(flags.out, report, report.kind === 'mcqa' ? result.mcqa?.predictions : result.answers);
        }
      } finally {
        await session.close();
      }
    });
}
