/**
 * What each job does. `extract`: decode and encode one video into the shared feature cache (a cache hit does no
 * work). `eval`: answer one video's questions, reading its features from that cache and keeping each answer in the
 * answer store, so only missing answers are computed. `report`: gather the children's answers in split order and
 * score them exactly as `evaluateSplit` does.
 */
import { generateBatch, type GenerationPrompt } from '@bvllm/llm-bridge';
import { scoreEvalAnswers, type EvalAnswer, type EvalQuestion } from '@bvllm/pipeline';
import { contentHash } from '@bvllm/vision-encoder';
import { UnrecoverableError, type Job } from 'bullmq';
import { AnswerStore, answerKey } from './answer-store.js';
import type { QueueConnection } from './connection.js';
import { parseFailure } from './job-failure.js';
import type { EvalJobData, EvalJobResult, ExtractJobData, ExtractJobResult, ReportJobData, RunFailure, RunResult } from './job-types.js';
import type { SessionPool } from './session-pool.js';

/** The one failure among a job's children, if any (a child that failed after all its attempts). */
async function childFailure(job: Job): Promise<string | undefined> {
  return Object.values(await job.getIgnoredChildrenFailures())[0];
}

export async function processExtract(job: Job<ExtractJobData>, sessions: SessionPool): Promise<ExtractJobResult> {
  const { video, cacheDir, sampling } = job.data;
  const session = await sessions.get(job.data);
  const encoded = await session.encode(video, { featureCacheDir: cacheDir, sampling });
  try {
    return { video, frames: encoded.numFrames, cached: encoded.cacheHit };
  } finally {
    encoded.close();
  }
}

export async function processEval(job: Job<EvalJobData>, sessions: SessionPool, connection: QueueConnection): Promise<EvalJobResult> {
  const { video, questions, seed, sampling, generation, batchSize } = job.data;
  // The video could not be extracted: its questions fail with the same typed reason, without decoding it again.
  const failed = await childFailure(job);
  if (failed) throw new UnrecoverableError(failed);
  const extract = Object.values(await job.getChildrenValues<ExtractJobResult>())[0]!;
  const store = new AnswerStore(connection, job.data.modelHash);
  const videoHash = await contentHash(video);
  const keys = questions.map((q) => answerKey({ videoHash, question: q.question, seed, sampling, generation }));
  const answers = await store.get(keys);
  const missing = questions.flatMap((q, i) => (answers[i] ? [] : [{ q, i }]));
  if (missing.length) {
    const session = await sessions.get(job.data);
    const encoded = await session.encode(video, { featureCacheDir: job.data.cacheDir, sampling });
    try {
      const config = session.generation({ seed, generation });
      for (let start = 0; start < missing.length; start += batchSize) {
        const batch = missing.slice(start, start + batchSize);
        const prompts: GenerationPrompt[] = [];
        for (const { q } of batch) prompts.push((await session.prompt(encoded, [{ role: 'user', content: q.question }], seed)).prompt);
        const results = await generateBatch(session.decoder, prompts, config, { tokenizer: session.assets.tokenizer });
        const made = batch.map(({ i }, b): [string, EvalAnswer] => [keys[i], { output: results[b]!.text!, finishReason: results[b]!.finishReason }]);
        made.forEach(([, answer], b) => (answers[batch[b].i] = answer));
        // Stored batch by batch: a worker killed mid-video loses at most one batch of work.
        await store.set(made);
      }
    } finally {
      encoded.close();
    }
  }
  return { index: job.data.index, extract, answers: answers as EvalAnswer[], reused: questions.length - missing.length };
}

/** `<prefix>:<queue>:<jobId>` → jobId; children's ids end in their position (`…-e3`, `…-x3`). */
const positionOf = (jobKey: string) => Number(/-[ex](\d+)$/.exec(jobKey)![1]);

export async function processReport(job: Job<ReportJobData>): Promise<RunResult> {
  const values = await job.getChildrenValues<EvalJobResult | ExtractJobResult>();
  const failures = await job.getIgnoredChildrenFailures();
  const byPosition = new Map(Object.entries(values).map(([key, value]) => [positionOf(key), value]));
  const failedAt = new Map(Object.entries(failures).map(([key, reason]) => [positionOf(key), parseFailure(reason)]));
  const stats = { encoded: 0, cached: 0, answered: 0, reused: 0 };
  const runFailures: RunFailure[] = [];
  const count = (extract: ExtractJobResult) => (extract.cached ? stats.cached++ : stats.encoded++);
  if (job.data.kind === 'extract') {
    const videos: ExtractJobResult[] = [];
    job.data.videos!.forEach((video, i) => {
      const value = byPosition.get(i) as ExtractJobResult | undefined;
      if (value) videos.push(value), count(value);
      else runFailures.push({ video, ...(failedAt.get(i) ?? { code: 'UNEXPECTED', message: 'no result' }) });
    });
    return { kind: 'extract', videos, failures: runFailures, stats };
  }
  const answered: { question: EvalQuestion; answer: EvalAnswer }[] = [];
  job.data.split!.forEach(({ video, questions }, i) => {
    const value = byPosition.get(i) as EvalJobResult | undefined;
    if (!value) {
      runFailures.push({ video, questions: questions.map((q) => q.id), ...(failedAt.get(i) ?? { code: 'UNEXPECTED', message: 'no result' }) });
      return;
    }
    count(value.extract);
    stats.reused += value.reused;
    stats.answered += questions.length - value.reused;
    questions.forEach((question, q) => answered.push({ question, answer: value.answers[q] }));
  });
  const evalResult = await scoreEvalAnswers(answered, job.data.benchmark);
  return { kind: 'eval', eval: evalResult, failures: runFailures, stats };
}
