import { writeEvalReport } from '@bvllm/trainer';
import type { EvaluateResult } from '@bvllm/pipeline';
import type { AnswerFlags } from './answer-flags.js';
import type { CliOutput } from './run-cli.js';

/** `bvllm eval`'s flags, shared by the in-process run and the queue (`--redis`). */
export interface EvalFlags extends AnswerFlags {
  data: string;
  model?: string;
  limit?: number;
  seed: number;
  out?: string;
  batchSize: number;
  runtime?: 'tfjs' | 'onnx';
  cache?: string;
}

/** One line per report (accuracy overall and per task) on stdout; with `out`, the JSON and Markdown reports there. */
export function printEvalResult(result: EvaluateResult, out: string | undefined, output: CliOutput): void {
  for (const report of [result.mcqa?.report, result.open].filter((r) => r !== undefined)) {
    const tasks = Object.entries(report.perTask).map(([t, s]) => `${t} ${(100 * s.accuracy).toFixed(1)}%`).join(', ');
    output.out(`${report.kind}: ${(100 * report.overall.accuracy).toFixed(1)}% of ${report.overall.total} (${tasks})\n`);
    if (out) writeEvalReport(out, report, report.kind === 'mcqa' ? result.mcqa?.predictions : result.answers);
  }
}
