/**
 * The records of `train.json`, `val.json` and `test.json`: VideoLLaMA2/LLaVA samples (spec §2, `train.py:256-358`)
 * with extra fields that the VideoLLaMA2 loader ignores and our trainer and evaluator read.
 */
import { z } from 'zod';
import { FORMS, TASKS } from './config.js';

export const conversationTurnSchema = z.object({ from: z.enum(['human', 'gpt']), value: z.string().min(1) }).strict();

export const benchmarkSampleSchema = z
  .object({
    /** `<split>-<index>-<form>`, unique across the benchmark. */
    id: z.string().min(1),
    /** The mp4, relative to the benchmark folder (VideoLLaMA2's `--data_folder`). */
    video: z.string().regex(/^videos\/[\w-]+\.mp4$/),
    /** One human turn starting with `<video>\n` and the gpt answer. */
    conversations: z.tuple([
      conversationTurnSchema.extend({ from: z.literal('human'), value: z.string().startsWith('<video>\n') }),
      conversationTurnSchema.extend({ from: z.literal('gpt') }),
    ]),
    /** The question family, for per-task accuracy (spec §4.1). */
    task: z.enum(TASKS),
    /** `mcqa`: the human turn lists options and the answer is a letter; `open`: the answer is a word or a count. */
    form: z.enum(FORMS),
    /** The bare question, without prompt or options. */
    question: z.string().min(1),
    /** MCQA only: the options in the order the prompt lists them. */
    options: z.array(z.string().min(1)).min(2).max(4).optional(),
    /** The gpt turn's text: a letter (`mcqa`) or the short answer (`open`). */
    answer: z.string().min(1),
    /** The short answer in words, for both forms. */
    answerText: z.string().min(1),
    durationSec: z.number().positive(),
    /** Brief-event only: the seconds `[start, end)` during which the answer object is visible. */
    eventSec: z.tuple([z.number(), z.number()]).optional(),
  })
  .strict();

export type BenchmarkSample = z.infer<typeof benchmarkSampleSchema>;

/** A whole split file. */
export const benchmarkSplitSchema = z.array(benchmarkSampleSchema);
