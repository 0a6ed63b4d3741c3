/**
 * `--redis` on `extract` and `eval`: enqueue a run on `bvllm worker`s, then either print its id (`--detach`) or
 * follow it with one progress line and print its result as the in-process command would, plus the videos that
 * failed, by code. `bvllm jobs status` prints a run the same way.
 */
import { InvalidArgumentError } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { QueueClient, type RunResult, type RunStatus } from '@bvllm/queue';
import { listVideos } from '@bvllm/vision-encoder';
import { generationOf, samplingOf } from './answer-flags.js';
import { printEvalResult, type EvalFlags } from './eval-output.js';
import type { CliOutput } from './run-cli.js';

/** The flags `--redis` adds to a command. */
export interface QueueFlags {
  redis: string;
  detach?: boolean;
}

type EvalQueueFlags = EvalFlags & QueueFlags;

/** `bvllm eval --redis`: one eval job per video of the split, each after its video's extract job. */
export async function evalOnQueue(flags: EvalQueueFlags, output: CliOutput): Promise<void> {
  // Workers read each video's features from the cache its extract job wrote, so it must be one folder they share.
  if (!flags.cache) throw new InvalidArgumentError('--cache', 'needed with --redis: the feature cache folder all workers share');
  const client = await QueueClient.connect(flags.redis);
  try {
    const runId = await client.enqueueEval({
      annotationsPath: flags.data,
      modelDir: flags.model ?? defaultModelDir(),
      cacheDir: flags.cache,
      runtime: flags.runtime,
      limit: flags.limit,
      seed: flags.seed,
      batchSize: flags.batchSize,
      sampling: samplingOf(flags),
      generation: generationOf(flags),
    });
    await runOrDetach(client, runId, flags, output);
  } finally {
    await client.close();
  }
}

/** `bvllm extract --redis`: one extract job per video of the folder. */
export async function extractOnQueue(dir: string, flags: QueueFlags & { cache: string; model?: string }, output: CliOutput): Promise<void> {
  const client = await QueueClient.connect(flags.redis);
  try {
    const runId = await client.enqueueExtract({ videos: listVideos(dir), modelDir: flags.model ?? defaultModelDir(), cacheDir: flags.cache });
    await runOrDetach(client, runId, flags, output);
  } finally {
    await client.close();
  }
}

/** `eval 4/6 done, 1 running, 0 failed, ETA 12s` (seconds or m:ss). */
export function statusLine(status: RunStatus): string {
  const eta = status.etaMs === undefined ? '' : `, ETA ${formatDuration(status.etaMs)}`;
  return `${status.kind} ${status.done}/${status.total} done, ${status.running} running, ${status.failed} failed${status.state === 'running' ? eta : `, ${status.state}`}`;
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** ` (Redis at URL unreachable for 12s; waiting for it)`: what a progress line adds during an outage. */
export function outageNote(url: string, waitedMs: number): string {
  return ` (Redis at ${url} unreachable for ${formatDuration(waitedMs)}; waiting for it)`;
}

/**
 * Follows a run on stderr: rewritten in place on a terminal, one line at the end otherwise. During a Redis outage
 * the line says so (a terminal) or one line says it once (a log), instead of the progress silently stopping.
 */
async function followRun(client: QueueClient, runId: string, output: CliOutput): Promise<RunResult> {
  const tty = process.stderr.isTTY;
  let last = '';
  let inOutage = false;
  const result = await client.wait(runId, {
    onStatus: (status) => {
      last = statusLine(status);
      inOutage = false;
      if (tty) output.err(`\r${last}\x1b[K`);
    },
    onUnreachable: (waitedMs) => {
      if (tty) output.err(`\r${last}${outageNote(client.connection.url, waitedMs)}\x1b[K`);
      else if (!inOutage) output.err(`bvllm: ${last}${outageNote(client.connection.url, waitedMs)}\n`);
      inOutage = true;
    },
  });
  output.err(tty ? '\n' : `${last}\n`);
  return result;
}

/** What a finished run prints: the eval report lines (and files with `out`) or the extract summary, then failures. */
export function printRunResult(result: RunResult, out: string | undefined, output: CliOutput): void {
  if (result.eval) {
    printEvalResult(result.eval, out, output);
    // As in process: a cut answer can score as wrong, so say how many there were.
    const cut = result.eval.answers.filter((a) => a.finishReason === 'length').length;
    if (cut) output.err(`bvllm: note: ${cut} of ${result.eval.answers.length} answers stopped at the token limit; --max-new-tokens raises it\n`);
  }
  if (result.videos) output.out(`${result.videos.length} videos, ${result.stats.encoded} newly encoded\n`);
  for (const f of result.failures) output.err(`bvllm: failed ${f.code}: ${f.video}${f.questions ? ` (${f.questions.length} questions)` : ''}: ${f.message.replace(/\s*\n\s*/g, ' ')}\n`);
}

/** Enqueued: with `detach` print the id and how to follow it; else wait and print the result. */
async function runOrDetach(client: QueueClient, runId: string, flags: { redis: string; detach?: boolean; out?: string }, output: CliOutput): Promise<void> {
  if (flags.detach) {
    output.out(`${runId}\n`);
    output.err(`bvllm: enqueued; follow it with: bvllm jobs status ${runId} --redis ${flags.redis}\n`);
    return;
  }
  printRunResult(await followRun(client, runId, output), flags.out, output);
}
