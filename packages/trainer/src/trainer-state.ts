/**
 * `trainer-state.json`, validated (issue #20 item 8): a checkpoint is a file users copy, edit and truncate, so every
 * field the loop trusts on resume is checked here, and a bad one is a CheckpointFormatError naming the field.
 */
import { z } from 'zod';
import { CheckpointFormatError } from '@bvllm/core';

export const CHECKPOINT_FORMAT = 'bvllm-trainer-checkpoint';
export const CHECKPOINT_VERSION = 1;

const count = z.number().int().nonnegative();
/** Philox counters are 32-bit words; the counter is the draw position. */
const uint32 = z.number().int().min(0).max(0xffffffff);

const trainerStateSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.literal(CHECKPOINT_VERSION),
    stage: z.enum(['stage1', 'stage2']),
    step: count,
    totalSteps: z.number().int().positive(),
    cursor: count,
    rng: z.object({ seed: uint32, stream: uint32, counter: count }).strict(),
    // JSON has no NaN: an update whose every sample was skipped has loss NaN, which JSON.stringify writes as null.
    lossHistory: z.array(z.number().nullable()).transform((losses) => losses.map((l) => l ?? Number.NaN)),
    skipped: count,
    run: z.object({ seed: count, microBatchSize: z.number().int().positive(), gradientAccumulationSteps: z.number().int().positive(), datasetLength: z.number().int().positive() }).strict(),
  })
  .strict()
  .refine((s) => s.lossHistory.length === s.step, { message: 'lossHistory must hold one loss per update done (its length must equal step)', path: ['lossHistory'] })
  .refine((s) => s.step <= s.totalSteps, { message: 'step is past totalSteps', path: ['step'] })
  .refine((s) => s.cursor >= s.step, { message: 'cursor (micro-batches consumed) is below step; every update consumes at least one', path: ['cursor'] });

/** The loop's position and bookkeeping, enough to continue bit-for-bit where it stopped. */
export interface TrainerState {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  stage: 'stage1' | 'stage2';
  /** Optimizer updates done; the schedule's next step. */
  step: number;
  totalSteps: number;
  /** Micro-batches consumed from the shuffled stream (the data position). */
  cursor: number;
  /** The training-noise generator passed to `loss` as `context.rng`. */
  rng: { seed: number; stream: number; counter: number };
  /** Mean loss of each update so far, for the curve (NaN where every sample was skipped). */
  lossHistory: number[];
  /** Samples skipped so far. */
  skipped: number;
  /** What must match for a resume to be the same run. */
  run: { seed: number; microBatchSize: number; gradientAccumulationSteps: number; datasetLength: number };
}

/** Validates a parsed `trainer-state.json`; `path` is the file, for the error. */
export function parseTrainerState(value: unknown, path: string): TrainerState {
  const format = (value as { format?: unknown } | null)?.format;
  // The two checks a reader of another format or version needs first, in the words that say how to fix it.
  if (format !== CHECKPOINT_FORMAT) throw new CheckpointFormatError(path, `format is ${JSON.stringify(format)}, expected "${CHECKPOINT_FORMAT}"`);
  const version = (value as { version?: unknown }).version;
  if (version !== CHECKPOINT_VERSION)
    throw new CheckpointFormatError(path, `version ${String(version)}, this trainer reads version ${CHECKPOINT_VERSION}; resume with the trainer that wrote it`);
  const result = trainerStateSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new CheckpointFormatError(path, `${issue.path.join('.') || '(root)'}: ${issue.message}`, { cause: result.error });
  }
  return result.data;
}
