import { z } from 'zod';
import { COLOURS, SHAPES } from './vocabulary.js';

/** The question families (spec §4.1 reports MCQA accuracy per task, so every sample carries its family). */
export const TASKS = ['brief-event', 'counting', 'temporal-order', 'direction', 'attribute'] as const;
export type TaskName = (typeof TASKS)[number];

/** The two forms of each question: options with a letter answer, and a short open answer. */
export const FORMS = ['mcqa', 'open'] as const;
export type QuestionForm = (typeof FORMS)[number];

/** Video lengths of the `long` benchmark: 10 s, 1 min and 10 min (the short/medium/long split of Video-MME, scaled down). */
export const LONG_DURATIONS_SEC = [10, 60, 600] as const;

const distinct = <T>(xs: readonly T[]) => new Set(xs).size === xs.length;

/**
 * Everything that decides the benchmark's content. Defaults are sized for the default tiny model trained on a 2-core
 * CPU: 64 px frames, 8–12 s at 4 fps (the model samples 1 fps, spec §3), a few hundred training samples.
 */
export const synthConfigSchema = z
  .object({
    /** Folder that receives `videos/`, the split files and `meta.json`. */
    outDir: z.string().min(1),
    /** Seed of the core Philox `Rng`; the same seed and config give byte-identical output. Default 0. */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
    /** Questions (videos) per split; each video yields one sample per form. Defaults sized for minutes on a CPU. */
    counts: z
      .object({
        train: z.number().int().min(0).default(300),
        val: z.number().int().min(0).default(50),
        test: z.number().int().min(0).default(100),
      })
      .strict()
      .default({}),
    /** Frame width and height in pixels (square frames). Even, because yuv420p halves the chroma planes; at least 32 so shapes stay recognisable. Default 64. */
    size: z
      .number()
      .int()
      .min(32)
      .max(1024)
      .refine((n) => n % 2 === 0, 'must be even (yuv420p)')
      .default(64),
    /** Frames per second of the rendered video; an integer so 1-fps sampling (spec §3) lands on whole frames. Default 4. */
    fps: z.number().int().min(1).max(60).default(4),
    /** Shortest video in whole seconds. Default 8. */
    minDurationSec: z.number().int().min(2).default(8),
    /** Longest video in whole seconds. Default 12. */
    maxDurationSec: z.number().int().min(2).default(12),
    /** Cycle the lengths of {@link LONG_DURATIONS_SEC} instead of drawing from min/max (for long-video benchmarks). */
    long: z.boolean().default(false),
    /** Question families to generate, assigned round-robin so each gets an equal share. Default all five. */
    tasks: z.array(z.enum(TASKS)).nonempty().refine(distinct, 'tasks must be distinct').default([...TASKS]),
    /** Forms written for each question. Default both. */
    forms: z.array(z.enum(FORMS)).nonempty().refine(distinct, 'forms must be distinct').default([...FORMS]),
    /** Shape vocabulary; at least 4 so shape questions have 4 options. Default the four most distinct at 64 px. */
    shapes: z
      .array(z.enum(SHAPES))
      .min(4)
      .refine(distinct, 'shapes must be distinct')
      .default(['circle', 'square', 'triangle', 'cross']),
    /** Colour vocabulary; at least 4 so colour questions have 4 options. Default red, green, blue, yellow. */
    colours: z
      .array(z.enum(COLOURS))
      .min(4)
      .refine(distinct, 'colours must be distinct')
      .default(['red', 'green', 'blue', 'yellow']),
    /** Shortest visibility of the brief-event object, seconds. Default 1 (the task brief: visible 1–2 s). */
    briefMinSec: z.number().positive().default(1),
    /** Longest visibility of the brief-event object, seconds. Default 2. */
    briefMaxSec: z.number().positive().default(2),
    /**
     * K of the uniform baseline the brief event is placed to dodge: the window avoids the K frames VideoLLaMA2's
     * uniform `frame_sample` picks from the 1-fps frames, while still holding at least one 1-fps frame. Default 4.
     */
    uniformProbeFrames: z.number().int().positive().default(4),
    /** Which official MCQA prompt (spec §4.1) wraps the options. Default the short Perception Test prompt. */
    mcqaPrompt: z.enum(['perception-test', 'mvbench']).default('perception-test'),
    /** libx264 constant rate factor; low, because the frames are tiny and colours must survive. Default 18. */
    crf: z.number().int().min(0).max(51).default(18),
    /** ffmpeg encoders running at once; rendering stays on the main thread. Default 2 (the project's CPU count). */
    concurrency: z.number().int().positive().max(32).default(2),
  })
  .strict()
  .refine((c) => c.minDurationSec <= c.maxDurationSec, { message: 'minDurationSec must be ≤ maxDurationSec', path: ['maxDurationSec'] })
  .refine((c) => c.briefMinSec <= c.briefMaxSec, { message: 'briefMinSec must be ≤ briefMaxSec', path: ['briefMaxSec'] });

/** Config as written by a caller (defaults optional). */
export type SynthConfigInput = z.input<typeof synthConfigSchema>;
/** Config after validation, every default filled in. */
export type SynthConfig = z.infer<typeof synthConfigSchema>;
